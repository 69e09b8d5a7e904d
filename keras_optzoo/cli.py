"""The `optzoo` command line.

    optzoo compare   --optimizers sgd,momentum,adam,adamw,adabelief --epochs 10
    optzoo landscape --optimizers sgd,momentum,nesterov,adagrad,adam
    optzoo memory    --params 7e9
    optzoo bench     --optimizers adam,adamw,lion --params 100M

The backend is chosen the Keras way, before the command starts:
`KERAS_BACKEND=jax optzoo compare`.

Each subcommand lives in its own module, which provides
`configure(parser)` (adds its arguments) and `run(args, parser) -> int`. A
module is imported only when its subcommand runs, so `optzoo --help` and one
command's start-up never pay for the others' imports.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "compare": (
        "keras_optzoo.compare.command",
        (
            "train one model with several optimizers from identical starts; "
            "write a table, curves and TensorBoard logs"
        ),
    ),
    "landscape": (
        "keras_optzoo.compare.landscape",
        "optimizer trajectories on 2-D test functions (Rosenbrock, Beale, ...)",
    ),
    "memory": (
        "keras_optzoo.memory",
        "optimizer-state bytes for N parameters or a saved .keras model",
    ),
    "bench": (
        "keras_optzoo.bench.command",
        "optimizer step time against keras core, optax and torch.optim",
    ),
}


# -- argument types shared by the subcommands ----------------------------------


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def parameter_count(text: str) -> int:
    """argparse type: a parameter count such as 7e9, 7B, 350M (`memory.parse_count`)."""
    from keras_optzoo.memory import parse_count

    try:
        return parse_count(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only `command`'s module is imported and configured."""
    parser = argparse.ArgumentParser(
        prog="optzoo",
        description="keras_optzoo: Keras 3 optimizers, compared. "
        "Set KERAS_BACKEND=tensorflow|jax|torch to pick the backend.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        subparser = commands.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module_name).configure(subparser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(command if command in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    return int(module.run(args, parser) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
