"""Shared pieces of the integration tests (training, saving, non-finite policy).

Everything here is backend-neutral: the suite runs once per `KERAS_BACKEND`.
The problem is a small teacher-student regression whose data come from NumPy
with a fixed seed, so every test sees the same inputs on every backend.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import keras
import numpy as np

import keras_optzoo as oz
from tests.harness import BACKEND, compiled_apply, to_numpy  # noqa: F401  (re-exported)

NAMES: list[str] = oz.optimizers.names()

# A learning rate per registered name that brings the regression below a quarter
# of its initial loss in 40 steps with margin (measured: every name ends below
# 0.11 of the initial loss on all three backends). Adadelta's rate is a plain
# multiplier on an update that starts near sqrt(epsilon), hence the large value.
LEARNING_RATES: dict[str, float] = {
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.05,
    "adagrad": 0.3,
    "adadelta": 5.0,
    "rmsprop": 0.01,
    "adam": 0.02,
    "amsgrad": 0.02,
    "adamw": 0.02,
    "nadam": 0.02,
    "radam": 0.05,
    "adabelief": 0.02,
    "yogi": 0.05,
    "lion": 0.02,
}
# A name registered later without a row here still gets every test; the default
# suits the Adam family, which most additions belong to.
DEFAULT_LEARNING_RATE = 0.02

INPUT_DIM = 4
BATCH_SIZE = 32
NUM_SAMPLES = 256


def learning_rate(name: str) -> float:
    return LEARNING_RATES.get(name, DEFAULT_LEARNING_RATE)


def make_optimizer(name: str, /, **kwargs: Any) -> keras.optimizers.Optimizer:
    """`oz.get(name)` at the sensible learning rate, other arguments passed on."""
    kwargs.setdefault("learning_rate", learning_rate(name))
    return oz.get(name, **kwargs)


def regression_data(
    num_samples: int = NUM_SAMPLES, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Targets of a random one-hidden-layer tanh teacher: learnable, not linear."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((num_samples, INPUT_DIM)).astype("float32")
    hidden = rng.standard_normal((INPUT_DIM, 8))
    readout = rng.standard_normal((8, 1))
    y = (np.tanh(x @ hidden) @ readout).astype("float32")
    return x, y


def make_model(seed: int = 0, hidden: int = 16) -> keras.Model:
    """A tiny MLP whose initial weights depend only on `seed` (per backend).

    Layers are named so that two models built in one test have the same
    variable paths, hence the same optimizer slot paths, and their optimizer
    states can be compared by path.
    """
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((INPUT_DIM,)),
            keras.layers.Dense(hidden, activation="tanh", name="hidden"),
            keras.layers.Dense(1, name="readout"),
        ],
        name="mlp",
    )


def values(variables: Iterable[Any]) -> list[np.ndarray]:
    return [to_numpy(v) for v in variables]


def optimizer_state(
    optimizer: keras.optimizers.Optimizer, exclude: Iterable[Any] = ()
) -> dict[str, np.ndarray]:
    """Every optimizer variable (slots, iteration, skipped_steps, ...), in order.

    Keys are "<position> <path>": two optimizers are compared position by
    position (a loaded Sequential names its variables without the model
    prefix, so paths alone do not match), and a mismatch still names the
    variable. `exclude` drops variables by identity (e.g. `skipped_steps`,
    expected to differ between a run with a skipped step and one without).
    """
    excluded = {id(v) for v in exclude}
    kept = [v for v in optimizer.variables if id(v) not in excluded]
    return {f"{i:03d} {v.path}": to_numpy(v) for i, v in enumerate(kept)}


def assert_arrays_identical(
    actual: list[np.ndarray] | dict[str, np.ndarray],
    expected: list[np.ndarray] | dict[str, np.ndarray],
    what: str,
) -> None:
    """Bit-identical (dtype, shape and every value; NaN equal to NaN).

    Dicts from `optimizer_state` are compared in key order (by position).
    """
    if isinstance(expected, dict):
        assert isinstance(actual, dict)
        labels = sorted(expected)
        actual_values = [actual[k] for k in sorted(actual)]
        expected_values = [expected[k] for k in labels]
    else:
        labels = [str(i) for i in range(len(expected))]
        actual_values, expected_values = list(actual), list(expected)
    assert len(actual_values) == len(expected_values), (
        f"{what}: {len(actual_values)} arrays, expected {len(expected_values)}"
    )
    for label, a, e in zip(labels, actual_values, expected_values):
        a, e = np.asarray(a), np.asarray(e)
        assert a.dtype == e.dtype, f"{what}[{label}]: dtype {a.dtype} != {e.dtype}"
        assert a.shape == e.shape, f"{what}[{label}]: shape {a.shape} != {e.shape}"
        assert np.array_equal(a, e, equal_nan=np.issubdtype(e.dtype, np.floating)), (
            f"{what}[{label}] differs: max |diff| = "
            f"{np.nanmax(np.abs(a.astype(np.float64) - e.astype(np.float64)))}"
        )


def apply_step(
    optimizer: keras.optimizers.Optimizer,
    variables: list[keras.Variable],
    grads: list[np.ndarray],
) -> None:
    """One eager `optimizer.apply` with gradients given as NumPy arrays."""
    optimizer.apply(
        [
            keras.ops.convert_to_tensor(g, dtype=v.dtype)
            for g, v in zip(grads, variables)
        ],
        variables,
    )


def make_variables(
    shapes: Iterable[tuple[int, ...]], seed: int = 0
) -> list[keras.Variable]:
    rng = np.random.default_rng(seed)
    return [
        keras.Variable(rng.standard_normal(shape).astype("float32"), name=f"w{i}")
        for i, shape in enumerate(shapes)
    ]


def gradient_sequence(
    shapes: Iterable[tuple[int, ...]], steps: int, seed: int = 1
) -> list[list[np.ndarray]]:
    """Gradients of varied sign and magnitude (1e-2 to 1e1), no exact zeros."""
    rng = np.random.default_rng(seed)
    shapes = list(shapes)
    return [
        [
            (
                rng.choice([-1.0, 1.0], size=shape)
                * 10.0 ** rng.uniform(-2.0, 1.0, size=shape)
            ).astype("float32")
            for shape in shapes
        ]
        for _ in range(steps)
    ]
