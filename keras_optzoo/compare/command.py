"""`optzoo compare`: several optimizers on one task, identical starts and batches."""

from __future__ import annotations

import argparse


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


def configure(parser: argparse.ArgumentParser) -> None:
    from keras_optzoo.quickstart import DEFAULT_OPTIMIZERS

    parser.add_argument(
        "--optimizers",
        type=_names,
        default=",".join(DEFAULT_OPTIMIZERS),
        help="comma-separated registry names (default: %(default)s)",
    )
    parser.add_argument("--epochs", type=_positive_int, default=20)
    parser.add_argument("--batch-size", type=_positive_int, default=32)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from keras_optzoo import quickstart

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
