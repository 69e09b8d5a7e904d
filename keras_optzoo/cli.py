"""The `optzoo` command line.

    optzoo compare --optimizers sgd,momentum,adam,adamw,adabelief --epochs 10

The backend is chosen the Keras way, before the command starts:
`KERAS_BACKEND=jax optzoo compare`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def _names(text: str) -> list[str]:
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one optimizer name")
    return names


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from keras_optzoo.quickstart import DEFAULT_OPTIMIZERS

    parser = argparse.ArgumentParser(
        prog="optzoo",
        description="keras_optzoo: Keras 3 optimizers, compared. "
        "Set KERAS_BACKEND=tensorflow|jax|torch to pick the backend.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    compare = commands.add_parser(
        "compare",
        help="train one model with several optimizers from identical starts "
        "and print a table",
        description="Train a small MLP on scikit-learn's digits with each "
        "optimizer (same initial weights, same batch order) and print final "
        "train loss, test accuracy and ms/step.",
    )
    compare.add_argument(
        "--optimizers",
        type=_names,
        default=",".join(DEFAULT_OPTIMIZERS),
        help="comma-separated registry names (default: %(default)s)",
    )
    compare.add_argument("--epochs", type=_positive_int, default=20)
    compare.add_argument("--batch-size", type=_positive_int, default=32)
    compare.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="one rate for all optimizers (default: a tuned rate per optimizer)",
    )
    compare.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "compare":
        from keras_optzoo import quickstart

        # Build every optimizer once up front, so a misspelled name or a bad
        # learning rate fails before any training starts.
        for name in args.optimizers:
            try:
                quickstart.make_optimizer(name, args.learning_rate)
            except ValueError as error:
                parser.error(str(error))
        quickstart.main(
            optimizers=args.optimizers,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
