"""`optzoo bench`: optimizer step time against keras core, optax and torch.optim.

    KERAS_BACKEND=jax optzoo bench --optimizers adam,adamw,lion --params 10M,100M --tensors 20,100
    optzoo bench --summary          # combine the latest run of every backend

One run benchmarks the backend named by KERAS_BACKEND and writes
`bench_<backend>_<device>_<date>.md` and `.json` under `--out`.
"""

from __future__ import annotations

import argparse

from keras_optzoo.bench.algorithms import ALGORITHMS, DEFAULT_OPTIMIZERS
from keras_optzoo.cli import parameter_count, positive_int

#: Tensor counts for the issue's standard sizes; other sizes: one per million.
STANDARD_TENSORS = {10**7: 20, 10**8: 100, 10**9: 200}
QUICK_SIZES = [(20_000, 4)]


def parse_count(text: str) -> int:
    """`10M`, `1e8`, `1B`, `250k` or `1000` as an integer >= 1 (`memory.parse_count`)."""
    return parameter_count(text)


def _counts(text: str) -> list[int]:
    return [parse_count(part) for part in text.split(",") if part.strip()] or [
        parse_count(text)
    ]


def _names(text: str) -> list[str]:
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one optimizer name")
    return names


def default_tensors(parameters: int) -> int:
    """The issue's pairing for 10M/100M/1B; else one tensor per million, 1..200."""
    return STANDARD_TENSORS.get(parameters, min(200, max(1, parameters // 10**6)))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--optimizers", type=_names, default=list(DEFAULT_OPTIMIZERS),
        help=f"comma-separated registry names (default: {','.join(DEFAULT_OPTIMIZERS)})",
    )
    parser.add_argument(
        "--params", type=_counts, default=None,
        help="comma-separated parameter counts: 10M, 1e8, 1B (default: 10M,100M, plus 1B "
        "on an accelerator)",
    )
    parser.add_argument(
        "--tensors", type=_counts, default=None,
        help="tensor count per --params entry (default: 20 for 10M, 100 for 100M, 200 for "
        "1B, else one per million)",
    )
    parser.add_argument("--repeats", type=positive_int, default=5,
                        help="timed repeats per contender; the median is reported (default 5)")
    parser.add_argument("--warmup", type=positive_int, default=2,
                        help="untimed steps before timing (default 2)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="steps per timed repeat (default: about 0.1 s worth)")
    parser.add_argument("--out", default="benchmarks/results",
                        help="directory for the .md and .json results (default %(default)s)")
    parser.add_argument("--fit", action="store_true",
                        help="also time model.fit steps, ours vs keras core")
    parser.add_argument("--fit-optimizers", type=_names, default=["adam"],
                        help="comma-separated algorithms timed in model.fit, each one keras "
                        "core also has (default: adam)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and one repeat of one step (for tests)")
    parser.add_argument("--summary", action="store_true",
                        help="only combine the latest results of every backend under --out")


def _sizes(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[tuple[int, int]]:
    if args.quick and args.params is None:
        return list(QUICK_SIZES)
    if args.params is None:
        from keras_optzoo.bench import machine

        args.params = [10**7, 10**8] + ([10**9] if machine.accelerator() else [])
    if args.tensors is None:
        args.tensors = [default_tensors(p) for p in args.params]
    if len(args.tensors) != len(args.params):
        parser.error(
            f"--tensors needs one count per --params entry: got {len(args.params)} "
            f"parameter counts and {len(args.tensors)} tensor counts"
        )
    for parameters, tensors in zip(args.params, args.tensors):
        if tensors > parameters:
            parser.error(f"--tensors {tensors} exceeds --params {parameters}: "
                         "every tensor needs at least one parameter")
    return list(zip(args.params, args.tensors))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from keras_optzoo.bench import report

    if args.summary:
        path = report.summarize(args.out)
        if path is None:
            parser.error(f"--summary found no bench_*.json under {args.out}")
        print(f"wrote {path}")
        return 0

    from keras_optzoo.optimizers import registry

    for name in args.optimizers:
        try:
            registry.entry(name)
        except ValueError as error:
            parser.error(f"--optimizers: {error}")
    for name in args.fit_optimizers:
        if name not in ALGORITHMS or ALGORITHMS[name].keras_core is None:
            with_core = ",".join(n for n, a in ALGORITHMS.items() if a.keras_core)
            parser.error(f"--fit-optimizers: {name!r} has no keras core version to race; "
                         f"choose from {with_core}")
    sizes = _sizes(args, parser)

    from keras_optzoo.bench import suite

    settings = suite.Settings(
        optimizers=args.optimizers,
        sizes=sizes,
        repeats=1 if args.quick else args.repeats,
        warmup=1 if args.quick else args.warmup,
        steps=1 if args.quick else args.steps,
        fit=args.fit,
        fit_optimizers=args.fit_optimizers,
        quick=args.quick,
    )
    results = suite.run(settings, log=lambda line: print(line, flush=True))
    markdown, record = report.write(results, args.out)
    print(f"wrote {markdown} and {record}")
    return 0
