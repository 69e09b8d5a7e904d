"""The tasks `optzoo compare` trains on: data, model, loss, metric and defaults.

Every task is deterministic: its data come from scikit-learn's bundled digits or
from a fixed NumPy generator, never from the network, so a comparison runs
offline and the same command gives the same data on every machine. The seeds of
a comparison (`--seeds`) vary the initial weights and the batch order; the data
stay fixed, so the spread over seeds is the optimizer's, not the split's.

Each task carries learning rates tuned so that its default run is meaningful
for every registered optimizer: registry defaults follow the papers and
frameworks, and plain SGD at 0.01 barely moves a small MLP in 20 epochs. A
rate given on the command line (`adam:learning_rate=3e-4`) always wins.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import keras
import numpy as np
from keras import ops

DEFAULT_OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "adabelief", "lion")

# Momentum SGD keeps the learning rate inside the velocity, so its effective
# step is lr / (1 - 0.9): 0.01 matches plain SGD at 0.1. Lion's sign update
# moves every coordinate by lr, hence a rate 3-10x below Adam's.
_MLP_LEARNING_RATES = {
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

# The Transformer trains best a little hotter than the MLPs, with its
# warmup-cosine schedule (these are the peaks).
_TRANSFORMER_LEARNING_RATES = {
    **_MLP_LEARNING_RATES,
    "sgd": 0.3,
    "momentum": 0.03,
    "nesterov": 0.03,
    "adam": 3e-3,
    "amsgrad": 3e-3,
    "adamw": 3e-3,
    "nadam": 3e-3,
    "radam": 3e-3,
    "adabelief": 3e-3,
    "lion": 5e-4,
}

# Least squares: plain gradient descent is stable below 1/λ_max (λ_max ≈ 2
# here); the adaptive methods need about 10x their MLP rates to cover the
# distance to the optimum within the run.
_ILLCOND_LEARNING_RATES = {
    **_MLP_LEARNING_RATES,
    "sgd": 0.3,
    "momentum": 0.03,
    "nesterov": 0.03,
    "adam": 1e-2,
    "amsgrad": 1e-2,
    "adamw": 1e-2,
    "nadam": 1e-2,
    "radam": 1e-2,
    "adabelief": 1e-2,
    "lion": 3e-3,
}

# A deep tanh stack: the MLP rates, except Lion, which needs 3x its MLP rate
# to get through the flat start of the spirals' loss.
_DEEP_LEARNING_RATES = {**_MLP_LEARNING_RATES, "lion": 1e-3}


@dataclass(frozen=True)
class TaskData:
    """Training and test arrays of a task."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class Task:
    """One comparison task.

    Args:
        name: the `--task` name.
        description: one line for `--help` and the report.
        load_data: returns the task's `TaskData`, identical on every call.
        build_model: returns a fresh, built, uncompiled model; its initial
            weights come from Keras's global seed.
        loss: returns the training loss.
        metric: returns the test metric; its `name` heads the report column.
        higher_is_better: whether a larger test metric is better.
        target_loss: the training loss whose first crossing the report counts
            as "steps to target".
        epochs: default passes over the training set.
        batch_size: default examples per step.
        learning_rates: tuned learning rate per registry name; a name absent
            here uses its registry default.
        schedule: the default `--schedule`.
    """

    name: str
    description: str
    load_data: Callable[[], TaskData]
    build_model: Callable[[], keras.Model]
    loss: Callable[[], keras.losses.Loss]
    metric: Callable[[], keras.metrics.Metric]
    higher_is_better: bool
    target_loss: float
    epochs: int
    batch_size: int
    learning_rates: Mapping[str, float] = field(default_factory=dict)
    schedule: str = "constant"

    @property
    def metric_name(self) -> str:
        return self.metric().name


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> TaskData:
    """A fixed random split; `test_fraction` of the rows go to the test set."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = round(test_fraction * len(x))
    test, train = order[:n_test], order[n_test:]
    return TaskData(x[train], y[train], x[test], y[test])


def _classification_loss() -> keras.losses.Loss:
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _accuracy() -> keras.metrics.Metric:
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")


# ---------------------------------------------------------------------------
# digits-mlp and digits-cnn: scikit-learn's bundled 8x8 digits (1797 images).
# ---------------------------------------------------------------------------


def _digits() -> TaskData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=y
    )
    return TaskData(x_train, y_train, x_test, y_test)


def _digits_images() -> TaskData:
    data = _digits()
    return TaskData(
        data.x_train.reshape(-1, 8, 8, 1), data.y_train,
        data.x_test.reshape(-1, 8, 8, 1), data.y_test,
    )


def _digits_mlp() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def _digits_cnn() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


# ---------------------------------------------------------------------------
# sequence-transformer: sort a sequence of digits, token by token.
# ---------------------------------------------------------------------------

SEQUENCE_LENGTH = 10
VOCABULARY = 10


def _sorting() -> TaskData:
    # Sorting needs every output position to attend to every input token and
    # to count: a task a 2-layer Transformer learns, and an MLP over the
    # flattened sequence learns far more slowly.
    rng = np.random.default_rng(1234)
    x = rng.integers(0, VOCABULARY, size=(5120, SEQUENCE_LENGTH)).astype("int32")
    y = np.sort(x, axis=1).astype("int32")
    return _split(x, y, test_fraction=0.2, seed=1234)


class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding of each position to a `(batch, length, dim)` input."""

    def __init__(self, length: int, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.length = length
        self.dim = dim

    def build(self, input_shape) -> None:
        self.embedding = self.add_weight(
            shape=(self.length, self.dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="embedding",
        )

    def call(self, inputs):
        return inputs + ops.expand_dims(self.embedding, 0)

    def get_config(self) -> dict:
        return {**super().get_config(), "length": self.length, "dim": self.dim}


def _transformer(dim: int = 32, heads: int = 4, blocks: int = 2) -> keras.Model:
    """A pre-LayerNorm Transformer encoder (Xiong et al., 2020) with per-token logits."""
    tokens = keras.Input(shape=(SEQUENCE_LENGTH,), dtype="int32")
    h = keras.layers.Embedding(VOCABULARY, dim)(tokens)
    h = PositionEmbedding(SEQUENCE_LENGTH, dim)(h)
    for _ in range(blocks):
        a = keras.layers.LayerNormalization(epsilon=1e-5)(h)
        a = keras.layers.MultiHeadAttention(heads, dim // heads)(a, a)
        h = h + a
        f = keras.layers.LayerNormalization(epsilon=1e-5)(h)
        f = keras.layers.Dense(4 * dim, activation="gelu")(f)
        h = h + keras.layers.Dense(dim)(f)
    h = keras.layers.LayerNormalization(epsilon=1e-5)(h)
    return keras.Model(tokens, keras.layers.Dense(VOCABULARY)(h))


# ---------------------------------------------------------------------------
# regression-illcond: least squares whose Hessian has condition number 1e3.
# ---------------------------------------------------------------------------

ILLCOND_FEATURES = 32
ILLCOND_CONDITION = 1e3
ILLCOND_NOISE = 0.1


def _illcond_regression() -> TaskData:
    # X = Z·diag(s)·Qᵀ: the Hessian XᵀX/n has eigenvalues s² spanning
    # ILLCOND_CONDITION, along random directions Q, so a per-coordinate
    # preconditioner (Adam's) cannot undo the conditioning by rescaling axes.
    # The true weights are w* = Q·(c/s): every eigendirection carries the
    # same share of the signal, so the slow directions matter to the loss.
    rng = np.random.default_rng(4321)
    n, d = 2560, ILLCOND_FEATURES
    s = np.logspace(0, -0.5 * math.log10(ILLCOND_CONDITION), d)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    x = (rng.standard_normal((n, d)) * s) @ q.T
    w = q @ (rng.standard_normal(d) / s) / math.sqrt(d)
    y = x @ w + ILLCOND_NOISE * rng.standard_normal(n)
    return _split(x.astype("float32"), y[:, None].astype("float32"), 0.2, seed=4321)


def _linear_model() -> keras.Model:
    return keras.Sequential([keras.Input(shape=(ILLCOND_FEATURES,)), keras.layers.Dense(1)])


def _mse() -> keras.metrics.Metric:
    return keras.metrics.MeanSquaredError(name="mse")


# ---------------------------------------------------------------------------
# deep-narrow-mlp: two interleaved spirals through 8 tanh layers of width 16.
# ---------------------------------------------------------------------------


def _spirals() -> TaskData:
    rng = np.random.default_rng(2024)
    n = 1500  # per class
    radius = np.sqrt(rng.uniform(0.0, 1.0, n)) * 3.0 * math.pi
    arms = []
    for label, phase in ((0, 0.0), (1, math.pi)):
        angle = radius + phase
        points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        arms.append((points / (3.0 * math.pi), np.full(n, label)))
    x = np.concatenate([a[0] for a in arms]) + 0.02 * rng.standard_normal((2 * n, 2))
    y = np.concatenate([a[1] for a in arms])
    return _split(x.astype("float32"), y.astype("int32"), 0.2, seed=2024)


def _deep_narrow_mlp(depth: int = 8, width: int = 16) -> keras.Model:
    layers = [keras.Input(shape=(2,))]
    layers += [keras.layers.Dense(width, activation="tanh") for _ in range(depth)]
    layers.append(keras.layers.Dense(2))
    return keras.Sequential(layers)


# ---------------------------------------------------------------------------
# The registry.
# ---------------------------------------------------------------------------

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            name="digits-mlp",
            description="scikit-learn digits (8x8, 10 classes), 64-64 ReLU MLP",
            load_data=_digits,
            build_model=_digits_mlp,
            loss=_classification_loss,
            metric=_accuracy,
            higher_is_better=True,
            target_loss=0.1,
            epochs=20,
            batch_size=32,
            learning_rates=_MLP_LEARNING_RATES,
        ),
        Task(
            name="digits-cnn",
            description="scikit-learn digits as 8x8 images, 2-conv CNN",
            load_data=_digits_images,
            build_model=_digits_cnn,
            loss=_classification_loss,
            metric=_accuracy,
            higher_is_better=True,
            target_loss=0.1,
            epochs=10,
            batch_size=32,
            learning_rates=_MLP_LEARNING_RATES,
        ),
        Task(
            name="sequence-transformer",
            description=(
                f"sort {SEQUENCE_LENGTH} digits token by token, 2-block pre-LN "
                "Transformer (d=32, 4 heads)"
            ),
            load_data=_sorting,
            build_model=_transformer,
            loss=_classification_loss,
            metric=_accuracy,
            higher_is_better=True,
            target_loss=0.02,
            epochs=6,
            batch_size=64,
            learning_rates=_TRANSFORMER_LEARNING_RATES,
            schedule="warmup-cosine",
        ),
        Task(
            name="regression-illcond",
            description=(
                f"linear least squares, {ILLCOND_FEATURES} features, Hessian condition "
                f"number {ILLCOND_CONDITION:g} along rotated axes"
            ),
            load_data=_illcond_regression,
            build_model=_linear_model,
            loss=keras.losses.MeanSquaredError,
            metric=_mse,
            higher_is_better=False,
            target_loss=5 * ILLCOND_NOISE**2,
            epochs=20,
            batch_size=32,
            learning_rates=_ILLCOND_LEARNING_RATES,
        ),
        Task(
            name="deep-narrow-mlp",
            description="two interleaved spirals, 8 tanh layers of width 16",
            load_data=_spirals,
            build_model=_deep_narrow_mlp,
            loss=_classification_loss,
            metric=_accuracy,
            higher_is_better=True,
            target_loss=0.2,
            epochs=20,
            batch_size=32,
            learning_rates=_DEEP_LEARNING_RATES,
        ),
    )
}


def names() -> list[str]:
    """Every task name, in registry order (the default first)."""
    return list(TASKS)


def get(name: str) -> Task:
    """The task registered under `name`.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks are: {', '.join(TASKS)}")
    return TASKS[name]
