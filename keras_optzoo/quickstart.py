"""Quickstart comparison: several optimizers on scikit-learn's bundled digits.

Every optimizer trains the same small MLP from the same initial weights on the
same sequence of batches, so the only difference between rows is the
optimizer. The data set ships with scikit-learn (no download), and the whole
run takes about a minute on two CPU cores with any Keras backend
(`KERAS_BACKEND=tensorflow|jax|torch`).

Run it as `python examples/quickstart.py` or `optzoo compare`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

import keras_optzoo as oz

DEFAULT_OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "adabelief", "lion")

# Learning rates that train this MLP well within the default epochs. Registry
# defaults follow the papers and frameworks, which are too small for plain SGD
# on a 20-epoch run. Momentum SGD keeps lr inside the velocity, so its
# effective step is lr / (1 - 0.9): 0.01 matches plain SGD at 0.1. Lion's sign
# update has magnitude lr on every coordinate, hence a rate ~3-10x below Adam's.
TASK_LEARNING_RATES = {
    "sgd": 0.1,
    "momentum": 0.01,
    "nesterov": 0.01,
    "adagrad": 0.05,
    "adadelta": 1.0,
    "rmsprop": 1e-3,
    "adam": 1e-3,
    "amsgrad": 1e-3,
    "adamw": 1e-3,
    "nadam": 2e-3,
    "radam": 1e-3,
    "adabelief": 1e-3,
    "yogi": 1e-2,
    "lion": 3e-4,
}


@dataclass
class Result:
    """One optimizer's outcome on the quickstart task."""

    optimizer: str
    learning_rate: float
    train_loss: float
    test_accuracy: float
    ms_per_step: float


class _StepTimer(keras.callbacks.Callback):
    """Wall time between consecutive batch ends, i.e. one training step each."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.stamps.append(time.perf_counter())

    def ms_per_step(self, warmup: int = 5) -> float:
        """Median step time, skipping the first steps (tracing/compilation)."""
        gaps = np.diff(np.asarray(self.stamps[warmup:]))
        return float(np.median(gaps) * 1e3) if gaps.size else float("nan")


def load_digits_split(seed: int = 0):
    """8x8 digits scaled to [0, 1]; stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    return train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)


def build_model(hidden: int = 64) -> keras.Model:
    """A 64-hidden-64-hidden-10 MLP (about 9k parameters)."""
    return keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def batch_order(n: int, epochs: int, seed: int) -> np.ndarray:
    """Indices of all epochs, each a fresh permutation, shared by every optimizer."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(n) for _ in range(epochs)])


def make_optimizer(name: str, learning_rate: float | None = None):
    """`keras_optzoo.get(name)` at the given rate, else the task's tuned rate."""
    lr = learning_rate if learning_rate is not None else TASK_LEARNING_RATES.get(name)
    return oz.get(name) if lr is None else oz.get(name, learning_rate=lr)


def run(
    optimizers: Sequence[str] = DEFAULT_OPTIMIZERS,
    epochs: int = 20,
    batch_size: int = 32,
    learning_rate: float | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> list[Result]:
    """Train the MLP once per optimizer and return one `Result` each.

    Args:
        optimizers: registry names, passed to `keras_optzoo.get`.
        epochs: passes over the training set.
        batch_size: examples per step.
        learning_rate: one rate for every optimizer; `None` uses
            `TASK_LEARNING_RATES`, falling back to the registry default.
        seed: seeds the initial weights, the split and the batch order.
        verbose: print one line per optimizer as it finishes.

    Returns:
        A list of `Result`, in the order of `optimizers`.
    """
    x_train, x_test, y_train, y_test = load_digits_split(seed)
    # Every epoch's permutation, laid end to end and fed unshuffled in one
    # fit() call: identical batches in identical order for every optimizer.
    order = batch_order(len(x_train), epochs, seed)
    x_stream, y_stream = x_train[order], y_train[order]

    keras.utils.set_random_seed(seed)
    initial_weights = build_model().get_weights()

    results = []
    for name in optimizers:
        optimizer = make_optimizer(name, learning_rate)
        model = build_model()
        model.set_weights(initial_weights)
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        timer = _StepTimer()
        model.fit(
            x_stream,
            y_stream,
            batch_size=batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[timer],
        )
        # Loss over the whole training set with the final weights, not the
        # running average fit() reports, so rows compare end points.
        train_loss, _ = model.evaluate(x_train, y_train, batch_size=512, verbose=0)
        _, test_accuracy = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
        result = Result(
            optimizer=name,
            learning_rate=float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
            train_loss=float(train_loss),
            test_accuracy=float(test_accuracy),
            ms_per_step=timer.ms_per_step(),
        )
        results.append(result)
        if verbose:
            print(
                f"  {name:<10} done: loss {result.train_loss:.4f}, "
                f"accuracy {result.test_accuracy:.4f}",
                flush=True,
            )
    return results


def format_table(results: Sequence[Result]) -> str:
    """A plain-text table, one row per optimizer."""
    header = (
        f"{'optimizer':<11} {'lr':>8} {'train loss':>11} {'test acc':>9} {'ms/step':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.optimizer:<11} {r.learning_rate:>8.2g} {r.train_loss:>11.4f} "
            f"{r.test_accuracy:>9.4f} {r.ms_per_step:>8.2f}"
        )
    return "\n".join(lines)


def main(
    optimizers: Sequence[str] = DEFAULT_OPTIMIZERS,
    epochs: int = 20,
    batch_size: int = 32,
    learning_rate: float | None = None,
    seed: int = 0,
) -> list[Result]:
    """Run the comparison and print the table."""
    if keras.backend.backend() == "torch":
        import torch

        # A 9k-parameter MLP is dispatch-bound: extra intra-op threads only add
        # synchronization (2x slower per step on two busy cores).
        torch.set_num_threads(1)
    steps = -(-int(0.8 * 1797) // batch_size) * epochs
    print(
        f"digits MLP, backend {keras.backend.backend()}, {epochs} epochs "
        f"(~{steps} steps of {batch_size}), seed {seed}",
        flush=True,
    )
    start = time.perf_counter()
    results = run(optimizers, epochs, batch_size, learning_rate, seed)
    print()
    print(format_table(results))
    print(f"\ntotal {time.perf_counter() - start:.1f} s")
    return results
