"""`optzoo compare`: several optimizers on one task, identical starts and batches.

    optzoo compare                                       # digits-mlp, 6 optimizers
    optzoo compare --optimizers adam:learning_rate=3e-4,adamw:weight_decay=0.05
    optzoo compare --task sequence-transformer --optimizers adam,adamw --seeds 0,1,2

Everything is checked before any training starts: the optimizer names and
their hyperparameters (each optimizer is built once, so its own `ValueError`
speaks), the task, the seeds and the output folder. Errors go through
`parser.error`: a message and exit status 2.

`--backend` is a hint. Keras fixes its backend when it is first imported,
which `optzoo` has done by the time options are read; when the hint differs
from the running backend, the command runs itself again in a subprocess with
`KERAS_BACKEND` set, and returns that run's exit status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from keras_optzoo.cli import positive_float, positive_int

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_OUT = "optzoo_results"
_RELAUNCHED = "OPTZOO_COMPARE_RELAUNCHED"


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers such as 0,1,2, got {text!r}"
        ) from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"must be distinct integers such as 0,1,2, got {text!r}")
    return seeds


# (flags, add_argument keywords): configure() adds these, and a relaunch under
# another backend forwards each one from the parsed namespace.
def _options() -> list[tuple[tuple[str, ...], dict]]:
    from keras_optzoo.compare import runner, tasks

    return [
        (("--optimizers",), {
            "default": ",".join(tasks.DEFAULT_OPTIMIZERS), "metavar": "SPECS",
            "help": "comma-separated registry names, each optionally with "
            "hyperparameters: adam:learning_rate=3e-4:beta_2=0.95,adamw:weight_decay=0.05 "
            "(default: %(default)s)",
        }),
        (("--task",), {
            "default": tasks.names()[0],
            "help": "one of: " + "; ".join(f"{t.name} ({t.description})" for t in tasks.TASKS.values())
            + " (default: %(default)s)",
        }),
        (("--epochs",), {
            "type": positive_int, "help": "passes over the training set (default: the task's)",
        }),
        (("--steps",), {
            "type": positive_int, "help": "optimizer steps per run; overrides --epochs",
        }),
        (("--batch-size",), {"type": positive_int, "help": "examples per step (default: the task's)"}),
        (("--seeds",), {
            "type": _seeds, "default": [0],
            "help": "comma-separated seeds of the initial weights and batch order; several "
            "give mean and spread (default: 0)",
        }),
        (("--schedule",), {
            "choices": runner.SCHEDULES,
            "help": "learning-rate schedule; each optimizer's learning rate is its peak "
            "(default: the task's: warmup-cosine for sequence-transformer, else constant)",
        }),
        (("--target-loss",), {
            "type": positive_float,
            "help": "training loss for the 'steps to target' column (default: the task's)",
        }),
        (("--backend",), {
            "choices": BACKENDS,
            "help": "Keras backend; if it is not the running one, the command re-runs itself "
            "with KERAS_BACKEND set (default: the running backend)",
        }),
        (("--out",), {
            "default": DEFAULT_OUT, "metavar": "DIR",
            "help": "output folder for results.md, results.csv, curves.png, history.csv and "
            "tensorboard/ (default: %(default)s)",
        }),
        (("--quiet",), {"action": "store_true", "help": "no progress lines"}),
    ]


def configure(parser: argparse.ArgumentParser) -> None:
    for flags, keywords in _options():
        parser.add_argument(*flags, **keywords)


def forwarded_argv(args: argparse.Namespace) -> list[str]:
    """The `compare` command line that reproduces the parsed `args`."""
    argv = ["compare"]
    for flags, keywords in _options():
        value = getattr(args, flags[0][2:].replace("-", "_"))
        if keywords.get("action") == "store_true":
            argv += [flags[0]] if value else []
        elif value is not None:
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            argv += [flags[0], text]
    return argv


def _out_dir_problem(path: str) -> str | None:
    """Why nothing can be written under `path`, or None if it can.

    Nothing is created: a missing folder only needs a writable ancestor.
    """
    target = Path(path).absolute()
    if target.exists():
        if not target.is_dir():
            return f"--out {path!r} exists and is not a directory"
        if not os.access(target, os.W_OK | os.X_OK):
            return f"--out {path!r} is not writable"
        return None
    ancestor = target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"--out {path!r} cannot be created: {str(ancestor)!r} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"--out {path!r} cannot be created: {str(ancestor)!r} is not writable"
    return None


def _relaunch(args: argparse.Namespace, parser: argparse.ArgumentParser, running: str) -> int:
    if os.environ.get(_RELAUNCHED):
        parser.error(
            f"--backend {args.backend}: KERAS_BACKEND={args.backend} was set, but Keras "
            f"started with {running}"
        )
    print(
        f"Keras is running {running}; running again with KERAS_BACKEND={args.backend}",
        file=sys.stderr,
        flush=True,
    )
    env = {**os.environ, "KERAS_BACKEND": args.backend, _RELAUNCHED: "1"}
    command = [sys.executable, "-m", "keras_optzoo", *forwarded_argv(args)]
    return subprocess.call(command, env=env)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import keras

    from keras_optzoo.compare import report, runner, tasks
    from keras_optzoo.compare.specs import parse_optimizer_specs

    try:
        specs = parse_optimizer_specs(args.optimizers)
    except ValueError as error:
        parser.error(f"--optimizers: {error}")
    try:
        task = tasks.get(args.task)
    except ValueError as error:
        parser.error(f"--task: {error}")
    data = task.load_data()
    batch_size = args.batch_size or task.batch_size
    schedule = args.schedule or task.schedule
    total_steps = runner.total_steps_for(
        task, len(data.x_train), batch_size, args.epochs, args.steps
    )
    for spec in specs:
        try:
            runner.make_optimizer(spec, task, schedule, total_steps)
        except ValueError as error:
            parser.error(f"--optimizers {spec.label}: {error}")
    problem = _out_dir_problem(args.out)
    if problem:
        parser.error(problem)
    running = keras.backend.backend()
    if args.backend and args.backend != running:
        return _relaunch(args, parser, running)

    out = Path(args.out)
    start = time.perf_counter()
    if not args.quiet:
        print(
            f"{task.name} on {running}: {len(specs)} optimizer(s) x {len(args.seeds)} "
            f"seed(s), {total_steps} steps of {batch_size}, schedule {schedule}",
            file=sys.stderr,
            flush=True,
        )
    comparison = runner.compare(
        task,
        specs,
        seeds=args.seeds,
        epochs=args.epochs,
        steps=args.steps,
        batch_size=batch_size,
        schedule=schedule,
        target_loss=args.target_loss,
        log_dir=out / "tensorboard",
        progress=None if args.quiet else runner.ProgressLine(),
    )
    paths = report.write_report(comparison, out)
    print()
    print(report.markdown_table(comparison))
    print()
    print(f"{time.perf_counter() - start:.1f} s; wrote {', '.join(str(p) for p in paths.values())} "
          f"and {out / 'tensorboard'}/")
    return 0
