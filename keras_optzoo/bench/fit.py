"""Step time inside `model.fit`: ours against keras core's version of one
algorithm, on one model.

An isolated optimizer step can be fast while `fit` is not (a fast path that
`fit`'s compiled train step never takes, a host sync, a retrace). So both
optimizers train the same model from the same initial weights on the same
random batches, and a callback stamps the end of every batch; the median
interval after warm-up is the step time. A callback without `async_safe`
makes Keras call it synchronously with the batch's logs converted to Python
numbers, so each stamp follows the device's work for that batch.
"""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np


@dataclass(frozen=True)
class FitModel:
    """An MLP on random data: `inputs → hidden... → classes`."""

    name: str
    inputs: int
    hidden: tuple[int, ...]
    classes: int
    batch_size: int

    def build(self) -> keras.Model:
        layers = [keras.Input((self.inputs,))]
        layers += [keras.layers.Dense(width, activation="relu") for width in self.hidden]
        layers.append(keras.layers.Dense(self.classes))
        return keras.Sequential(layers)

    def parameter_count(self) -> int:
        widths = (self.inputs, *self.hidden, self.classes)
        return sum((a + 1) * b for a, b in itertools.pairwise(widths))


#: digits-sized (8x8 images, 10 classes) and a ~10M-parameter MLP.
FIT_MODELS = (
    FitModel("small (digits MLP)", 64, (128, 128), 10, 32),
    FitModel("mid (MLP)", 1024, (2048, 2048, 2048), 10, 64),
)
QUICK_FIT_MODELS = (FitModel("tiny (MLP)", 16, (32,), 4, 8),)


class _BatchClock(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.stamps.append(time.perf_counter())


def _optimizers(algorithm: str) -> dict[str, Any]:
    from keras_optzoo.bench.algorithms import ALGORITHMS
    from keras_optzoo.optimizers import get

    # The same math on both sides: ours at keras core's convention (its ε
    # placement for Adam), every hyperparameter spelled out for both.
    pairing = ALGORITHMS[algorithm].keras_core
    ours = ALGORITHMS[algorithm].ours_kwargs("keras_core")
    return {"ours": lambda: get(algorithm, **ours), "keras_core": pairing.peer.build}


def time_fit(
    spec: FitModel, warmup: int, steps: int, repeats: int = 1, algorithm: str = "adam"
) -> dict[str, Any]:
    """Median `fit` step time of our `algorithm` and keras core's on `spec`.

    Args:
        spec: the model and batch size.
        warmup: batches excluded from the median (compilation, first touches).
        steps: batches timed.
        repeats: alternating `fit` runs per optimizer (the medians are pooled),
            so that a burst of load on a shared machine hits both.
        algorithm: a name in `algorithms.ALGORITHMS` with a keras core pairing.

    Returns:
        `{"algorithm", "model", "parameters", "batch_size", "steps", "ms": {key: median},
        "samples_ms": {key: [...]}, "core/ours": ratio}`.
    """
    rng = np.random.default_rng(0)
    samples = (warmup + steps) * spec.batch_size
    x = rng.standard_normal((samples, spec.inputs)).astype("float32")
    y = rng.integers(0, spec.classes, samples)
    keras.utils.set_random_seed(0)
    initial_weights = spec.build().get_weights()
    intervals: dict[str, list[float]] = {}
    for _ in range(repeats):
        for key, make in _optimizers(algorithm).items():
            model = spec.build()
            model.set_weights(initial_weights)
            model.compile(optimizer=make(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            clock = _BatchClock()
            model.fit(x, y, batch_size=spec.batch_size, epochs=1, shuffle=False, verbose=0,
                      callbacks=[clock])
            stamps = clock.stamps[max(0, warmup - 1):]
            intervals.setdefault(key, []).extend(np.diff(stamps).tolist())
    ms = {key: 1e3 * statistics.median(values) for key, values in intervals.items()}
    return {
        "algorithm": algorithm,
        "model": spec.name,
        "parameters": spec.parameter_count(),
        "batch_size": spec.batch_size,
        "steps": steps,
        "ms": ms,
        "samples_ms": {key: [1e3 * v for v in values] for key, values in intervals.items()},
        "core/ours": ms["keras_core"] / ms["ours"],
    }
