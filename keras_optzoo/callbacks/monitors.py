"""Monitors: what the optimizer sees, measured every `every_n_steps`.

Each monitor is a `keras.callbacks.Callback`. On the steps it measures it
computes its statistics with `keras.ops` on the device (in one compiled
function on JAX and TensorFlow, built once), copies the handful of resulting
numbers to the host in one transfer, writes them to TensorBoard (if
given a `log_dir`, through `keras_optzoo.callbacks.tensorboard`), keeps them in
`monitor.history` and puts the latest into the epoch's `logs` (so `History`
and the progress bar show them). On the other steps it does nothing at all.

Two choices keep training at full speed:

  * The optimizer records its gradient and update norms inside the compiled
    step (`keras_optzoo.optimizers.telemetry`), so no monitor needs the
    gradients; the monitors switch that recording on at `on_train_begin`
    (making Keras trace the step again) and off at `on_train_end`.
  * Monitors measure in `on_train_batch_begin`, when the previous step's state
    is complete, and define no `on_train_batch_end`: Keras dispatches the
    batch-end callbacks (and converts the batch logs to Python floats) on a
    worker thread only while no callback overrides that hook, so overriding it
    would force a host sync every step.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
import statistics
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import keras
import numpy as np
from keras import ops

from keras_optzoo.callbacks.tensorboard import get_writer
from keras_optzoo.optimizers import telemetry
from keras_optzoo.optimizers.base import has_small_tensors

__all__ = [
    "Alert",
    "GradientNormMonitor",
    "LearningRateMonitor",
    "MomentMonitor",
    "OptimizerMonitor",
    "UpdateRatioMonitor",
]

logger = logging.getLogger("keras_optzoo.callbacks")

# A spike needs a baseline: at least this many earlier readings.
_MIN_READINGS = 3
# Equal-width buckets of the histograms written to TensorBoard.
_HISTOGRAM_BINS = 30
# `MomentMonitor`'s name suffix of a quantity's sample for percentiles.
_SAMPLE = "_sample"


class Alert(NamedTuple):
    """One alert raised by a monitor.

    Attributes:
        step: The optimizer step it concerns (1-based; the step of the spike).
        kind: `"spike"`, `"vanishing"` or `"nonfinite"`.
        value: The offending gradient norm.
        message: The line that was logged.
    """

    step: int
    kind: str
    value: float
    message: str


def _validate_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _layer_name(variable) -> str:
    path = getattr(variable, "path", None) or variable.name
    return path.rsplit("/", 1)[0] if "/" in path else path


def _layer_groups(variables: list) -> dict[str, list[int]]:
    """Layer name -> indices of its variables, in first-seen order."""
    groups: dict[str, list[int]] = {}
    for index, variable in enumerate(variables):
        groups.setdefault(_layer_name(variable), []).append(index)
    return groups


def _layer_sums(values, variables: list) -> tuple[tuple[str, ...], Any]:
    """`(layer names, per-layer sums)`: `values` (one per variable, a vector)
    summed over each layer's variables, in one matrix product."""
    groups = _layer_groups(variables)
    membership = np.zeros((len(groups), len(variables)), "float32")
    for row, indices in enumerate(groups.values()):
        membership[row, indices] = 1.0
    return tuple(groups), ops.matmul(ops.convert_to_tensor(membership), values)


def _concatenated(parts: list):
    """`parts` (vectors) as one vector; no copy for a single part."""
    return ops.concatenate(parts) if len(parts) > 1 else parts[0]


def _flattened(tensors) -> list:
    """`tensors` (a tensor or a list of them) as float32 vectors."""
    if not isinstance(tensors, (list, tuple)):
        tensors = [tensors]
    return [_flat_values(t) for t in tensors]


def _parts(source, variables: list, indices) -> Iterator:
    """The values `source(index)` gives for the variables at `indices`
    (positions in `variables`), in order, as float32 vectors to reduce one
    after the other: a generator, so that on an eager backend (torch) a
    part's temporaries are freed before the next is computed, and a reading
    holds one variable's worth of them, not the whole model's.

    Consecutive small tensors come concatenated into one vector: their
    statistics are bound by the cost of each op (or XLA kernel), not by
    memory (the 26k-parameter MLP's `MomentMonitor` reading inside `fit`:
    1.03 against 1.15 ms on JAX, 1.29 against 1.45 ms on TensorFlow). Large
    ones come whole: each copy costs more than its statistics (on XLA:CPU
    6 ms for 1.8M values against 1 ms for the values themselves)."""
    for small, run in itertools.groupby(indices, key=lambda i: has_small_tensors([variables[i]])):
        if small:
            yield _concatenated([source(i) for i in run])
        else:
            yield from (source(i) for i in run)


def _flat_values(tensor):
    """`tensor`'s (or a variable's) values as a float32 vector."""
    return ops.reshape(telemetry.as_float32(tensor), (-1,))


def _percentiles(values: np.ndarray, percentiles: tuple[float, ...]) -> list[float]:
    """NumPy's default ("linear") percentiles of a 1-D array: what
    `np.percentile` gives, from one partition around the ranks needed (a
    quarter of the cost of sorting a 4096-value sample)."""
    positions = [q / 100.0 * (values.size - 1) for q in percentiles]
    ranks = sorted({int(f(p)) for p in positions for f in (math.floor, math.ceil)})
    ordered = np.partition(values, ranks)
    results = []
    for position in positions:
        low, high = math.floor(position), math.ceil(position)
        results.append(float(ordered[low] + (ordered[high] - ordered[low]) * (position - low)))
    return results


@functools.lru_cache(maxsize=64)
def _sample_positions(size: int, sample_size: int) -> np.ndarray | None:
    """Ascending positions of a uniform sample of `sample_size` of `size`
    elements without replacement (fixed seed, so every reading samples the
    same parameters), or None when `size <= sample_size` (no sampling).
    Cached (read-only): torch's eager reading draws them at every reading."""
    if size <= sample_size:
        return None
    positions = np.sort(np.random.default_rng(0).choice(size, sample_size, replace=False))
    positions.flags.writeable = False
    return positions


@functools.lru_cache(maxsize=256)
def _positions_within(size: int, sample_size: int, offset: int, length: int) -> np.ndarray:
    """The positions of `_sample_positions(size, sample_size)` that fall in
    `[offset, offset + length)`, less `offset` (read-only)."""
    positions = _sample_positions(size, sample_size)
    low, high = np.searchsorted(positions, [offset, offset + length])
    within = positions[low:high] - offset
    within.flags.writeable = False
    return within


@functools.lru_cache(maxsize=256)
def _torch_positions(size: int, sample_size: int, offset: int, length: int, device):
    """`_positions_within` as a torch index on `device`, made once: `ops.take`
    costs eager torch about eight ops a call."""
    import torch

    return torch.tensor(_positions_within(size, sample_size, offset, length), device=device)


def _sample_of_part(part, size: int, sample_size: int, offset: int):
    """The entries of `part` (the values at `[offset, offset + len(part))`
    of `size` values) in their fixed sample of `sample_size`, or None."""
    length = int(part.shape[0])
    if keras.backend.backend() == "torch":
        import torch

        index = _torch_positions(size, sample_size, offset, length, part.device)
        return torch.index_select(part, 0, index) if index.numel() else None
    within = _positions_within(size, sample_size, offset, length)
    return ops.take(part, within) if within.size else None


def _percentile_name(q: float) -> str:
    return f"p{q:g}"


class OptimizerMonitor(keras.callbacks.Callback):
    """Base of the monitors: the step counting, logging and recording switch.

    A subclass implements `compute(optimizer) -> (scalars, arrays)`: dicts of
    device tensors computed from the current state (a key of `scalars` may be
    a tuple of names, for a vector holding one value each), reading variables only
    (it is compiled: a `jax.jit` over the state on JAX, a `tf.function` on
    TensorFlow); `arrays` are written as histograms (NumPy counts the
    buckets on the host, so keep them to samples of a few thousand values),
    each a tensor, a list of tensors, or `(sample, scale)` for a sample whose
    counts stand for `scale` times as many values. All
    of it reaches the host packed in one vector, in one transfer. It may override
    `postprocess(values, step)`, which gets the scalars as Python floats (a
    1-D entry of `scalars`, such as a sample to take percentiles of, as a
    float64 NumPy array) and returns the floats to log (and may raise alerts
    or assign state). Names without
    a `/` are global and go into the epoch logs; per-layer values are named
    `<name>/<layer>`. Every value is written to TensorBoard as
    `optimizer/<name>`.

    Args:
        every_n_steps: Measure after every this many optimizer steps, >= 1.
            Defaults to 100.
        log_dir: A directory for TensorBoard event files, or None (then the
            values go only to `history`, the logs and, for alerts, the log).
    """

    needs_telemetry = False

    def __init__(self, every_n_steps: int = 100, log_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.every_n_steps = _validate_positive_int("every_n_steps", every_n_steps)
        if log_dir is not None and not isinstance(log_dir, (str, os.PathLike)):
            raise ValueError(f"log_dir must be a path or None, got {log_dir!r}")
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.alerts: list[Alert] = []
        self.latest: dict[str, float] = {}
        self._writer = None
        self._switched_on = None
        self._reset_counters()

    # -- what subclasses provide -------------------------------------------

    def compute(self, optimizer, *inputs) -> tuple[dict[str, Any], dict[str, Any]]:
        raise NotImplementedError

    def postprocess(self, values: dict[str, float], step: int) -> dict[str, float]:
        return values

    def measure(self, optimizer, step: int, *inputs) -> dict[str, float]:
        """One reading: `compute` on the device, one copy to the host,
        histograms written, then `postprocess`. `inputs` (device tensors) are
        passed on to `compute` as arguments of the compiled function."""
        packed = ops.convert_to_numpy(self._compiled_compute(optimizer, inputs)).astype(np.float64)
        values, offset = {}, 0
        for kind, name, size in self._layout:
            block, offset = packed[offset : offset + size], offset + size
            if kind == "histogram":
                if self._writer is not None:
                    self._writer.histogram(
                        f"optimizer/{name}", block, step, _HISTOGRAM_BINS, self._histogram_scales[name]
                    )
            elif kind == "scalars":
                values.update(zip(name, block.tolist()))
            else:
                values[name] = block
        return self.postprocess(values, step)

    # -- Keras hooks ---------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._reset_counters()
        _STATE_POSITIONS.pop(self.model, None)
        _ROUND_STEPS.pop(self.model, None)
        self._writer = get_writer(self.log_dir) if self.log_dir else None
        if self.needs_telemetry:
            self._switch_recording_on()

    def on_epoch_begin(self, epoch, logs=None):
        self._last_batch = -1

    def on_train_batch_begin(self, batch, logs=None):
        self._last_batch = batch
        self._maybe_measure(self._epoch_start + batch)

    def on_epoch_end(self, epoch, logs=None):
        if self._last_batch >= 0:
            steps = self._last_batch + getattr(self.model, "steps_per_execution", 1)
            total = (self.params or {}).get("steps")
            self._epoch_start += min(steps, total) if total else steps
        self._maybe_measure(self._epoch_start)
        if logs is not None:
            logs.update({name: value for name, value in self.latest.items() if "/" not in name})
        if self._writer is not None:
            self._writer.flush()

    def on_train_end(self, logs=None):
        self._maybe_measure(self._epoch_start)
        if self._writer is not None:
            self._writer.flush()
        self._switch_recording_off()

    # -- helpers for subclasses ---------------------------------------------

    def alert(self, step: int, kind: str, value: float, message: str) -> None:
        """Log an alert line, write it to TensorBoard's Text tab, keep it in `alerts`."""
        self.alerts.append(Alert(step, kind, value, message))
        logger.warning(message)
        if self._writer is not None:
            self._writer.text("optimizer/alerts", message, step)

    # -- internals -----------------------------------------------------------

    def _reset_counters(self) -> None:
        self._epoch_start = 0
        self._last_batch = -1
        self._last_measured = 0

    def _compiled_compute(self, optimizer, inputs: tuple):
        """`compute` packed into one vector, compiled (see `_compiled`)."""
        return self._compiled(self._packed_compute, optimizer)(*inputs)

    def _compiled(self, function, optimizer):
        """`function(optimizer, *inputs)` compiled (`_compile`) once per
        (function, optimizer, model)."""
        key = (function.__name__, id(optimizer), id(self._model))
        cache = self.__dict__.setdefault("_compiled_functions", {})
        if key not in cache:
            cache[key] = _compile(function, optimizer, self._model)
        return cache[key]

    def _packed_compute(self, optimizer, *inputs):
        """`compute`'s scalars, vectors and histogram values as one float32
        vector, laid out as `self._layout` says: `(kind, name, size)` per block,
        fixed when the function is traced (and read back by `measure`). The
        0-d scalars go first, stacked in one op: torch runs this eagerly, at
        several microseconds an op."""
        scalars, arrays = self.compute(optimizer, *inputs)
        zero_d = {name: value for name, value in scalars.items() if len(ops.shape(value)) == 0}
        layout, blocks = [], []
        if zero_d:
            layout.append(("scalars", tuple(zero_d), len(zero_d)))
            blocks.append(ops.stack([telemetry.as_float32(value) for value in zero_d.values()]))
        for name, value in scalars.items():
            if name in zero_d:
                continue
            block = ops.reshape(telemetry.as_float32(value), (-1,))
            # A tuple of names: one scalar each (per-layer values computed together).
            layout.append(("scalars" if isinstance(name, tuple) else "vector", name, int(block.shape[0])))
            blocks.append(block)
        self._histogram_scales = {}
        for name, values in arrays.items():
            values, self._histogram_scales[name] = values if isinstance(values, tuple) else (values, 1.0)
            block = _concatenated(_flattened(values))
            layout.append(("histogram", name, int(block.shape[0])))
            blocks.append(block)
        self._layout = layout
        if not blocks:
            return ops.zeros((0,))
        return _concatenated(blocks)

    def _reading_due(self, completed_steps: int) -> bool:
        """Whether a reading falls due once `completed_steps` steps are done:
        a multiple of `every_n_steps` was passed since the last reading."""
        n = self.every_n_steps
        return completed_steps // n > self._last_measured // n

    def _maybe_measure(self, completed_steps: int) -> None:
        if not self._reading_due(completed_steps):
            return
        self._last_measured = completed_steps
        # `self._model`: on JAX, `self.model` syncs the whole training state.
        optimizer = self._model.optimizer
        step = _round_step(self._model, optimizer, completed_steps)
        values = self.measure(optimizer, step)
        for name, value in values.items():
            self.history.setdefault(name, []).append((step, value))
        if self._writer is not None:
            self._writer.scalars({f"optimizer/{name}": value for name, value in values.items()}, step)
        self.latest.update(values)

    def _switch_recording_on(self) -> None:
        owner = telemetry.telemetry_owner(self.model.optimizer)
        if owner is None:
            raise ValueError(
                f"{type(self).__name__} needs an optimizer that records telemetry: a "
                "keras_optzoo optimizer, or any Keras optimizer wrapped as "
                "keras_optzoo.callbacks.Monitored(optimizer); got "
                f"{type(self.model.optimizer).__name__}"
            )
        if owner.record_telemetry:
            return
        owner.record_telemetry = True
        # No monitor reads the per-step update norms (`UpdateRatioMonitor`
        # compares weight copies instead); they are the costliest recording.
        owner.record_update_norms = False
        self._switched_on = owner
        # `fit` built its step before this hook; the recording is decided
        # when the step is traced, so build it again (tracing happens at
        # its first call, which comes after this).
        self.model.make_train_function(force=True)

    def _switch_recording_off(self) -> None:
        if self._switched_on is not None:
            self._switched_on.record_telemetry = False
            del self._switched_on.record_update_norms
            self._switched_on = None
            # The next `fit` or `train_on_batch` builds a step without recording.
            self.model.train_function = None


class GradientNormMonitor(OptimizerMonitor):
    """Gradient norms before and after clipping, per layer, with alerts.

    Logged on each measured step (TensorBoard tag `optimizer/<name>`):

      * `grad_norm`, `grad_norm_clipped`: the global L2 norm of the last
        step's gradients before and after the optimizer's clipping;
      * `grad_norm_max`: the largest pre-clip norm since the previous reading
        (every step counts, not only the measured ones);
      * `grad_clipped_fraction`: the fraction of the steps since the previous
        reading whose gradients clipping changed;
      * `grad_norm/<layer>` (with `per_layer`): the layer's pre-clip norm.

    Alerts (a `logging` warning on the `keras_optzoo.callbacks` logger, a
    TensorBoard text entry under `optimizer/alerts`, and an `Alert` in
    `monitor.alerts`):

      * `"spike"`: `grad_norm_max` exceeds `spike_factor` times the median of
        the last `window` readings of `grad_norm` (once there are 3); the
        alert names the step of the spike;
      * `"vanishing"`: `grad_norm` is below `vanishing_threshold`;
      * `"nonfinite"`: a gradient norm since the previous reading was inf/NaN.

    Needs an optimizer that records telemetry: any keras_optzoo optimizer, or
    `keras_optzoo.callbacks.Monitored(optimizer)` for any other.

    Args:
        every_n_steps: Measure after every this many steps, >= 1. Defaults to 100.
        log_dir: TensorBoard directory, or None. Defaults to None.
        spike_factor: > 1. Defaults to 10.
        window: How many earlier readings the median covers, >= 1. Defaults to 20.
        vanishing_threshold: >= 0 (0 disables the alert). Defaults to 1e-7.
        per_layer: Also log each layer's norm. Defaults to True.

    Example:

    ```python
    monitor = oz.callbacks.GradientNormMonitor(every_n_steps=50, log_dir="logs")
    model.fit(x, y, callbacks=[monitor])
    monitor.alerts          # [Alert(step=1234, kind="spike", ...)]
    ```
    """

    needs_telemetry = True

    def __init__(
        self,
        every_n_steps: int = 100,
        log_dir: str | os.PathLike | None = None,
        spike_factor: float = 10.0,
        window: int = 20,
        vanishing_threshold: float = 1e-7,
        per_layer: bool = True,
    ) -> None:
        super().__init__(every_n_steps, log_dir)
        if not _is_number(spike_factor) or not spike_factor > 1:
            raise ValueError(f"spike_factor must be a number > 1, got {spike_factor!r}")
        if not _is_number(vanishing_threshold) or not vanishing_threshold >= 0:
            raise ValueError(
                f"vanishing_threshold must be a number >= 0, got {vanishing_threshold!r}"
            )
        self.spike_factor = float(spike_factor)
        self.window = _validate_positive_int("window", window)
        self.vanishing_threshold = float(vanishing_threshold)
        self.per_layer = bool(per_layer)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._readings: deque[float] = deque(maxlen=self.window)
        self._counters = (0.0, 0.0)
        state = getattr(telemetry.telemetry_owner(self.model.optimizer), "_telemetry", None)
        if state is not None:
            # The counters live as long as the optimizer; fractions are per fit.
            _sync(self.model)
            self._counters = (
                float(ops.convert_to_numpy(state.clipped_steps)),
                float(ops.convert_to_numpy(state.recorded_steps)),
            )
            state.reset_max()

    def compute(self, optimizer):
        owner = telemetry.telemetry_owner(optimizer)
        state = owner._telemetry
        tensors = {
            "grad_norm": state.gradient_norm,
            "grad_norm_clipped": state.clipped_gradient_norm,
            "grad_norm_max": state.max_gradient_norm,
            "max_step": state.max_gradient_norm_step,
            "clipped_steps": state.clipped_steps,
            "recorded_steps": state.recorded_steps,
        }
        if self.per_layer:
            squares = ops.square(ops.convert_to_tensor(state.gradient_norms))
            layers, layer_squares = _layer_sums(squares, owner._trainable_variables)
            tensors[tuple(f"grad_norm/{layer}" for layer in layers)] = ops.sqrt(layer_squares)
        return tensors, {}

    def _packed_compute(self, optimizer, *inputs):
        packed = super()._packed_compute(optimizer, *inputs)
        if keras.backend.backend() != "jax":
            # The maximum (and its step) restarts with every reading, in the
            # same compiled call (two eager assigns cost 0.7 ms on
            # TensorFlow): after the read, in program order, which
            # `tf.function` keeps for ops on one variable and torch's eager
            # reading runs in (`packed` is a copy). JAX's reading is a pure
            # function: see `postprocess`.
            telemetry.telemetry_owner(optimizer)._telemetry.reset_max()
        return packed

    def postprocess(self, values: dict[str, float], step: int) -> dict[str, float]:
        if keras.backend.backend() == "jax":
            # Assigning needs the variables current: a sync, the only one
            # the readings make (a value written into `model._jax_state` is
            # lost: Keras tracks that dict as a copy of the state its loop
            # passes on).
            _sync(self._model)
            telemetry.telemetry_owner(self._model.optimizer)._telemetry.reset_max()
        clipped, recorded = values.pop("clipped_steps"), values.pop("recorded_steps")
        max_step = int(values.pop("max_step"))
        new_steps = recorded - self._counters[1]
        values["grad_clipped_fraction"] = (
            (clipped - self._counters[0]) / new_steps if new_steps > 0 else 0.0
        )
        self._counters = (clipped, recorded)
        self._check(values["grad_norm"], values["grad_norm_max"], max_step, step)
        return values

    def _check(self, norm: float, largest: float, largest_step: int, step: int) -> None:
        if not (math.isfinite(norm) and math.isfinite(largest)):
            bad = largest if not math.isfinite(largest) else norm
            self.alert(
                largest_step or step, "nonfinite", bad,
                f"GradientNormMonitor: non-finite gradient norm ({bad}) at step "
                f"{largest_step or step}",
            )
            return
        if len(self._readings) >= min(_MIN_READINGS, self.window):
            median = statistics.median(self._readings)
            if largest > self.spike_factor * median:
                self.alert(
                    largest_step, "spike", largest,
                    f"GradientNormMonitor: gradient norm spike at step {largest_step}: "
                    f"{largest:.4g} is {largest / median:.3g}x the running median "
                    f"{median:.4g} (spike_factor={self.spike_factor:g})",
                )
        if norm < self.vanishing_threshold:
            self.alert(
                step, "vanishing", norm,
                f"GradientNormMonitor: vanishing gradient norm at step {step}: "
                f"{norm:.3g} < vanishing_threshold={self.vanishing_threshold:g}",
            )
        self._readings.append(norm)


class UpdateRatioMonitor(OptimizerMonitor):
    """The size of the last update relative to the weights, per layer.

    Logged (TensorBoard tag `optimizer/<name>`): `update_ratio`, the global
    `‖θ_t − θ_{t−1}‖ / ‖θ_t‖` of the last step before the reading, and
    `update_ratio/<layer>` (with `per_layer`), the same over each layer's
    variables. Values around 1e-3 are the usual rule of thumb; far above, the
    learning rate is too high for that layer, far below, the layer barely
    learns.

    The steps in between cost nothing: before the last step ahead of each
    reading the monitor copies the weights on the device (one weight-sized
    buffer, once every `every_n_steps`), and the reading compares them with
    the weights after it. So it works with any Keras optimizer, needs no
    telemetry, and keeps the torch fast path on. With `steps_per_execution`
    k > 1 the copy is taken before the last execution, so the ratio is that
    of the last k steps together.

    Args:
        every_n_steps: Measure after every this many steps, >= 1. Defaults to 100.
        log_dir: TensorBoard directory, or None. Defaults to None.
        per_layer: Also log each layer's ratio. Defaults to True.
    """

    def __init__(
        self,
        every_n_steps: int = 100,
        log_dir: str | os.PathLike | None = None,
        per_layer: bool = True,
    ) -> None:
        super().__init__(every_n_steps, log_dir)
        self.per_layer = bool(per_layer)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # The weights before the last step ahead of the next reading.
        self._before: list | None = None
        # Read once: on JAX, every `self.model` syncs the whole training state.
        self._steps_per_execution = getattr(self.model, "steps_per_execution", 1)

    def on_train_batch_begin(self, batch, logs=None):
        super().on_train_batch_begin(batch, logs)
        if self._reading_due(self._epoch_start + batch + self._steps_per_execution):
            # The step about to run is the last before a reading.
            self._copy_weights()

    def _copy_weights(self) -> None:
        # One compiled copy: eager JAX dispatches each copy for ~100 us.
        self._before = self._compiled(_weight_copies, self._model.optimizer)()

    def measure(self, optimizer, step: int) -> dict[str, float]:
        before, self._before = self._before, None
        if before is None:
            return {}
        return super().measure(optimizer, step, before)

    def compute(self, optimizer, before):
        variables = telemetry.unwrap(optimizer)._trainable_variables
        current = [telemetry.as_float32(v) for v in variables]
        update_squares = ops.square(
            telemetry.l2_norms([now - telemetry.as_float32(then) for now, then in zip(current, before)])
        )
        weight_squares = ops.square(telemetry.l2_norms(current))
        tensors = {
            "update_ratio": ops.sqrt(ops.sum(update_squares) / ops.sum(weight_squares)),
        }
        if self.per_layer:
            layers, layer_updates = _layer_sums(update_squares, variables)
            _, layer_weights = _layer_sums(weight_squares, variables)
            tensors[tuple(f"update_ratio/{layer}" for layer in layers)] = ops.sqrt(
                layer_updates / layer_weights
            )
        return tensors, {}


class MomentMonitor(OptimizerMonitor):
    """Statistics of the optimizer's moments and effective learning rate.

    On each measured step, over all parameters (and per layer with
    `per_layer`), for the algorithm's first moment `|m|`, second moment `v`
    and effective per-parameter learning rate (see
    `keras_optzoo.optimizers.telemetry.effective_learning_rates` for its exact
    definition per algorithm): `<quantity>_mean`, `<quantity>_max` and
    `<quantity>_p<q>` for each requested percentile, with `<quantity>` one of `first_moment_abs`,
    `second_moment`, `effective_lr`; per layer `<name>/<layer>`. With a
    `log_dir` and `histograms`, the histograms `first_moment`,
    `second_moment` and `effective_lr_log10` as well.

    A collapsing second moment shows as `effective_lr_max` shooting up; a
    warmup that is too short, as a wide `effective_lr` spread in the first
    readings.

    Everything is computed on the device, every `every_n_steps` only, and
    copied to the host in one transfer: means and maxima, and for the
    percentiles and histograms a sample of at most `sample_size` values per
    statistic, whose percentiles and 30 histogram buckets NumPy computes on
    the host. `mean` and `max` are exact. The percentiles are exact (NumPy's
    linear interpolation) over at most `sample_size` values; over more, they
    are the exact percentiles of a fixed uniform sample of `sample_size`
    parameters drawn without replacement (the same at every reading, so a
    trend is not sampling noise). As estimates of the full percentiles their
    rank error has a standard deviation of `100·√(q(1−q)/n)` percentile
    points for `q = percentile/100`, `n = sample_size`: with the default
    4096, ±0.78 points at p50, ±0.47 at p90, ±0.16 at p99 (three times that
    with 99.7% probability). Raise `sample_size` for a tail beyond p99.9.
    The histograms are of the same fixed sample (signed `m`, `v`, log10 of
    the effective learning rate), their counts and sums scaled to the number
    of parameters: over at most `sample_size` parameters they are exact; over
    more, each bucket's share has a standard error of `√(p(1−p)/n)` (at
    most 0.8% of all parameters at the default) and the histogram's min and
    max are the sample's (the `_max` scalars stay exact).

    Works with every keras_optzoo optimizer, keras core's Adam, AdamW, Nadam,
    Adamax, Lamb, RMSprop, Adagrad, Adadelta, SGD and Lion (directly or inside
    `Monitored` / `LossScaleOptimizer`); no telemetry recording is needed. An
    optimizer without moments (plain SGD) gets a warning and no values.

    Args:
        every_n_steps: Measure after every this many steps, >= 1. Defaults to 100.
        log_dir: TensorBoard directory, or None. Defaults to None.
        percentiles: Percentiles to report, each in [0, 100]. Defaults to
            (50, 90, 99).
        per_layer: Also report each layer's statistics. Defaults to False.
        histograms: Write histograms (needs `log_dir`). Defaults to True.
        sample_size: The most values the percentiles and histogram of one
            statistic are computed from, >= 1. Defaults to 4096.
    """

    def __init__(
        self,
        every_n_steps: int = 100,
        log_dir: str | os.PathLike | None = None,
        percentiles: tuple[float, ...] = (50, 90, 99),
        per_layer: bool = False,
        histograms: bool = True,
        sample_size: int = 4096,
    ) -> None:
        super().__init__(every_n_steps, log_dir)
        percentiles = tuple(percentiles)
        for q in percentiles:
            if not _is_number(q) or not 0 <= q <= 100:
                raise ValueError(f"percentiles must be numbers in [0, 100], got {percentiles!r}")
        self.percentiles = percentiles
        self.per_layer = bool(per_layer)
        self.histograms = bool(histograms)
        self.sample_size = _validate_positive_int("sample_size", sample_size)
        self._warned = False

    def sources(self, optimizer) -> dict[str, Callable | None]:
        """`{quantity: source}` on the device, a source `index -> float32
        vector` giving trainable variable `index`'s values of the quantity,
        flattened; None for a quantity the algorithm does not have."""
        first, second = telemetry.moment_slots(optimizer)
        effective = telemetry.effective_learning_rate_fn(optimizer)
        return {
            "first_moment_abs": None if first is None else (lambda index: ops.abs(_flat_values(first[index]))),
            "second_moment": None if second is None else (lambda index: _flat_values(second[index])),
            "effective_lr": None if effective is None else (lambda index: ops.reshape(effective(index), (-1,))),
        }

    def measure(self, optimizer, step: int) -> dict[str, float]:
        first, second = telemetry.moment_slots(optimizer)
        if first is None and second is None and not telemetry.has_effective_learning_rate(optimizer):
            if not self._warned:
                warnings.warn(
                    f"MomentMonitor: {type(telemetry.unwrap(optimizer)).__name__} keeps no "
                    "moments it knows of; nothing will be logged",
                    stacklevel=2,
                )
                self._warned = True
            return {}
        return super().measure(optimizer, step)

    def compute(self, optimizer):
        sources = {k: v for k, v in self.sources(optimizer).items() if v is not None}
        variables = telemetry.unwrap(optimizer)._trainable_variables
        everything = range(len(variables))
        histograms = self._writer is not None and self.histograms
        tensors: dict[str, Any] = {}
        samples = {}
        for quantity, source in sources.items():
            if self.per_layer:
                # Each variable's values serve the whole's statistics and its
                # layer's: computed once (then held through the reading).
                source = functools.cache(source)
            stats, samples[quantity] = self._statistics(quantity, source, variables, everything, histograms)
            tensors.update(stats)
            if self.per_layer:
                for layer, indices in _layer_groups(variables).items():
                    stats, _ = self._statistics(quantity, source, variables, indices)
                    tensors.update({f"{name}/{layer}": value for name, value in stats.items()})
        arrays = {}
        if histograms:
            first, _ = telemetry.moment_slots(optimizer)
            if first is not None:
                _, arrays["first_moment"] = self._reduce(
                    lambda index: _flat_values(first[index]), variables, everything, sample=True
                )
            if "second_moment" in samples:
                arrays["second_moment"] = samples["second_moment"]
            if "effective_lr" in samples:
                sample, scale = samples["effective_lr"]
                arrays["effective_lr_log10"] = (ops.log10(sample), scale)
        return tensors, arrays

    def _reduce(self, source, variables: list, indices, statistics: bool = False, sample: bool = False):
        """`((sum, max, count) or None, (sample, scale) or None)` of the values
        `source` gives for the variables at `indices`, taken together (see
        `_parts`). The sample is the fixed one of at most `sample_size` of
        them, with how many values each stands for: percentiles are taken of
        it, and histograms, a few kilobytes to copy to the host where those of
        every parameter would cost a copy of the slots."""
        size = sum(math.prod(variables[i].shape) for i in indices)
        sampled = sample and _sample_positions(size, self.sample_size) is not None
        sums, maxima, taken, offset = [], [], [], 0
        for part in _parts(source, variables, indices):
            if statistics:
                sums.append(ops.sum(part))
                maxima.append(ops.max(part))
            if sampled:
                part_sample = _sample_of_part(part, size, self.sample_size, offset)
                if part_sample is not None:
                    taken.append(part_sample)
            elif sample:
                taken.append(part)
            offset += int(part.shape[0])
            del part  # Before the generator computes the next one.
        reduced = (ops.sum(ops.stack(sums)), ops.max(ops.stack(maxima)), size) if statistics else None
        if not sample:
            return reduced, None
        return reduced, (_concatenated(taken), size / self.sample_size if sampled else 1.0)

    def _statistics(self, quantity: str, source, variables: list, indices, histogram: bool = False):
        """`(statistics, (sample, scale))` of one quantity over the variables
        at `indices`; the sample (for the percentiles and, with `histogram`,
        a histogram) or None."""
        (total, largest, size), sample = self._reduce(
            source, variables, indices, statistics=True, sample=bool(self.percentiles) or histogram
        )
        stats = {f"{quantity}_mean": total / size, f"{quantity}_max": largest}
        if self.percentiles:
            # Ranked on the host: XLA:CPU sorts 4096 floats 15x slower than
            # NumPy, and the sample is a few kilobytes.
            stats[f"{quantity}{_SAMPLE}"] = sample[0]
        return stats, sample

    def postprocess(self, values: dict[str, Any], step: int) -> dict[str, float]:
        for name in [name for name, value in values.items() if isinstance(value, np.ndarray)]:
            sample = values.pop(name)
            base, slash, layer = name.partition("/")
            quantity = base.removesuffix(_SAMPLE)
            for q, value in zip(self.percentiles, _percentiles(sample, self.percentiles)):
                values[f"{quantity}_{_percentile_name(q)}{slash}{layer}"] = value
        return values


class LearningRateMonitor(OptimizerMonitor):
    """The optimizer's current learning rate, `learning_rate` in the logs.

    A schedule is evaluated at `optimizer.iterations`, i.e. the value is the
    rate the next step uses, as Keras computes it. Works with any Keras
    optimizer; needs no telemetry.

    Args:
        every_n_steps: Measure after every this many steps, >= 1. Defaults to 100.
        log_dir: TensorBoard directory, or None. Defaults to None.
    """

    def compute(self, optimizer):
        return {"learning_rate": optimizer.learning_rate}, {}


def _weight_copies(optimizer) -> list:
    """A copy of each of the optimizer's trainable variables (new buffers: on
    JAX the next step donates the variables' own)."""
    return [ops.copy(ops.convert_to_tensor(v)) for v in telemetry.unwrap(optimizer)._trainable_variables]


def _compile(compute, optimizer, model):
    """`compute(optimizer, *inputs)` as a function of `inputs` that reads the
    current state, compiled where compiling pays: eager JAX compiles every op
    of a new shape on first use, which costs more than one `jax.jit`."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        variables = list(optimizer.variables) + list(model.trainable_variables)

        def pure(values, inputs):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return compute(optimizer, *inputs)

        jitted = jax.jit(pure)
        return lambda *inputs: jitted(_latest_values(model, variables), inputs)
    if backend == "tensorflow":
        import tensorflow as tf

        # No autograph: `compute` has no data-dependent Python control flow.
        function = tf.function(lambda *inputs: compute(optimizer, *inputs), autograph=False)
        concrete = []

        def call(*inputs):
            # The concrete function, traced at the first call: calling it skips
            # `tf.function`'s matching of the arguments, 60-150 us a call.
            if not concrete:
                concrete.append(function.get_concrete_function(*inputs))
            return concrete[0](*inputs)

        return call
    if backend == "torch":
        import torch

        # The weights are `Parameter`s: without this every op of the reading
        # would be recorded for autograd.
        return torch.no_grad()(lambda *inputs: compute(optimizer, *inputs))
    return lambda *inputs: compute(optimizer, *inputs)


def _sync(model) -> None:
    if keras.backend.backend() == "jax":
        # JAX's `fit` keeps the state outside the variables between syncs.
        model.jax_state_sync()


def _unsynced_jax_state(model) -> dict | None:
    """The training state JAX's `fit` holds outside the variables (which
    hold nothing then) until a sync, or None when the variables are current.

    Readings use it directly: a sync (`jax_state_sync`, which Keras's
    `Callback.model` runs on every access) costs ~0.2 ms, and makes the next
    step load the whole state again; one every 100 steps is 2% of a small
    model's training time."""
    if keras.backend.backend() != "jax" or getattr(model, "_jax_state_synced", True):
        return None
    return getattr(model, "_jax_state", None) or None


# `_state_positions` per model, for one `fit` (monitors clear it when one begins).
_STATE_POSITIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _state_positions(model) -> dict[int, tuple[str, int]]:
    """`id(variable) -> (key in model._jax_state, index)` for every variable
    of the training state. Cached: listing a model's variables walks its
    layers (0.13 ms for 50 layers)."""
    if model in _STATE_POSITIONS:
        return _STATE_POSITIONS[model]
    owners = {
        "trainable_variables": model.trainable_variables,
        "non_trainable_variables": model.non_trainable_variables,
        "optimizer_variables": model.optimizer.variables,
        "metrics_variables": model.metrics_variables,
    }
    positions = {id(v): (kind, i) for kind, variables in owners.items() for i, v in enumerate(variables)}
    _STATE_POSITIONS[model] = positions
    return positions


def _latest_values(model, variables: list) -> list:
    """The current value of each of `variables` (the model's or its
    optimizer's), without a sync where JAX's `fit` holds the state
    (`_unsynced_jax_state`)."""
    if keras.backend.backend() != "jax":
        return [ops.convert_to_tensor(v) for v in variables]
    state = _unsynced_jax_state(model)
    if state is not None:
        positions = _state_positions(model)
        found = [positions.get(id(v)) for v in variables]
        if all(p is not None and state.get(p[0]) for p in found):
            return [state[kind][index] for kind, index in found]
    _sync(model)
    # `_value`, what `value` returns outside a stateless scope (and readings
    # are never inside one), at a thirtieth of its cost.
    return [v._value for v in variables]


def _completed_optimizer_steps(model, optimizer) -> int:
    """`optimizer.iterations` as an int, read as `_latest_values` reads."""
    inner = telemetry.unwrap(optimizer)
    (iterations,) = _latest_values(model, [inner._iterations])
    return int(ops.convert_to_numpy(iterations)) // (inner.gradient_accumulation_steps or 1)


# Per model, `(completed batches, optimizer step)` of the latest reading:
# every monitor due after the same batch reads the same step, and on
# TensorFlow each read costs 0.16-0.23 ms. Cleared when a `fit` begins.
_ROUND_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _round_step(model, optimizer, completed_steps: int) -> int:
    """`_completed_optimizer_steps`, read once per reading round (the
    monitors due after the same batch, which all count `completed_steps`)."""
    cached = _ROUND_STEPS.get(model)
    if cached is None or cached[0] != completed_steps:
        cached = _ROUND_STEPS[model] = (completed_steps, _completed_optimizer_steps(model, optimizer))
    return cached[1]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
