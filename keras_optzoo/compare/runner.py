"""Train one task with several optimizers from identical starts on identical batches.

For each seed the runner draws the model's initial weights once and one batch
order (a fresh permutation of the training set per epoch, laid end to end);
every optimizer then trains a fresh copy of the model from those weights on
that exact sequence of batches, so the only difference between two runs of
one seed is the optimizer.

Training is a series of `model.fit` calls, one per evaluation interval (an
epoch, or fewer when there would be more than `MAX_EVALUATIONS`), over
consecutive slices of the batch stream; every batch is full, so each backend
traces the train step once. What is recorded per step comes from the logs
Keras already hands to callbacks each batch: the batch's own loss (a metric
that keeps the last value, where Keras's `loss` is the running mean of the
epoch) and the time it ended. Test loss and metric are evaluated at step 0 and
after each interval.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_optzoo.compare.specs import OptimizerSpec
from keras_optzoo.compare.tasks import Task
from keras_optzoo.memory import state_bytes
from keras_optzoo.optimizers import registry

SCHEDULES = ("constant", "cosine", "warmup-cosine", "step")
WARMUP_FRACTION = 0.05
MAX_EVALUATIONS = 50
# ms/step is the median step time after this many steps (tracing, compilation).
WARMUP_STEPS = 5
# "Steps to target" reads the trailing mean of this many batch losses: a
# single lucky batch below the target does not count.
TARGET_WINDOW = 20
_BATCH_LOSS = "batch_loss"


# ---------------------------------------------------------------------------
# Optimizers and schedules.
# ---------------------------------------------------------------------------


def learning_rate_schedule(name: str, learning_rate: float, total_steps: int):
    """The learning rate for `--schedule name`, peaking at `learning_rate`.

    Args:
        name: one of `SCHEDULES`. `constant` returns `learning_rate` itself;
            `cosine` decays to 0 over the run; `warmup-cosine` ramps up
            linearly from 0 over the first 5% of the steps, then decays to 0;
            `step` multiplies by 0.1 at 50% and again at 75% of the steps.
        learning_rate: the constant or peak learning rate.
        total_steps: the length of the run in optimizer steps.

    Returns:
        A float or a `keras.optimizers.schedules.LearningRateSchedule`.
    """
    from keras_optzoo.schedules.cosine import CosineDecay, WarmupCosine
    from keras_optzoo.schedules.step import MultiStepDecay

    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}")
    if name == "constant":
        return learning_rate
    if name == "cosine":
        return CosineDecay(learning_rate, decay_steps=max(1, total_steps))
    if name == "warmup-cosine":
        warmup = max(1, round(WARMUP_FRACTION * total_steps))
        return WarmupCosine(learning_rate, warmup_steps=warmup, decay_steps=max(1, total_steps - warmup))
    milestones = sorted({m for m in (total_steps // 2, (3 * total_steps) // 4) if m >= 1})
    return MultiStepDecay(learning_rate, milestones=milestones) if milestones else learning_rate


def resolved_hyperparameters(spec: OptimizerSpec, task: Task) -> dict[str, Any]:
    """The spec's hyperparameters plus the task's tuned learning rate, if any.

    A `learning_rate` given in the spec wins; without one and without a tuned
    rate for the name, the registry default applies (and is not listed).
    """
    hyperparameters = dict(spec.hyperparameters)
    if "learning_rate" not in hyperparameters and spec.name in task.learning_rates:
        hyperparameters["learning_rate"] = task.learning_rates[spec.name]
    return hyperparameters


def make_optimizer(
    spec: OptimizerSpec, task: Task, schedule: str = "constant", total_steps: int = 1
) -> keras.optimizers.Optimizer:
    """Build the optimizer a comparison trains with.

    Args:
        spec: registry name and hyperparameters.
        task: supplies the tuned learning rate when the spec has none.
        schedule: one of `SCHEDULES`; the learning rate is its peak.
        total_steps: the run's length, for the schedule.

    Returns:
        A fresh `keras.optimizers.Optimizer`.

    Raises:
        ValueError: the optimizer's own error for a bad hyperparameter, or an
            unknown name or keyword.
    """
    hyperparameters = resolved_hyperparameters(spec, task)
    try:
        optimizer = registry.get(spec.name, **hyperparameters)
    except TypeError as error:
        # An unknown keyword: Python's message names it; say which optimizer.
        raise ValueError(f"{spec.name}: {error}") from error
    if schedule == "constant":
        return optimizer
    peak = hyperparameters.get("learning_rate", peak_learning_rate(optimizer))
    hyperparameters["learning_rate"] = learning_rate_schedule(schedule, float(peak), total_steps)
    return registry.get(spec.name, **hyperparameters)


def peak_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The constant learning rate of an optimizer built with `schedule="constant"`.

    Keras stores it in a float32 variable; 7 significant digits give back the
    number it was built from (0.001, not 0.0010000000474974513).
    """
    return float(f"{scalar(optimizer.learning_rate):.7g}")


def scalar(value) -> float:
    """A one-element tensor or Variable as a Python float."""
    if isinstance(value, keras.Variable):
        value = value.value
    return float(np.asarray(ops.convert_to_numpy(value)).reshape(()))


# ---------------------------------------------------------------------------
# Results.
# ---------------------------------------------------------------------------


@dataclass
class RunResult:
    """One optimizer and seed: per-step and per-evaluation records.

    Attributes:
        label: the optimizer spec's label.
        seed: the seed of the initial weights and batch order.
        batch_loss: training loss of each step's batch (steps 1..N).
        wall_time: seconds of training at the end of each step, counted from
            the start of the run (compilation included, evaluations excluded).
        eval_steps: steps at which the test set was evaluated, 0 first.
        eval_wall_time: `wall_time` at those steps (0 at step 0).
        test_loss: test loss at `eval_steps`.
        test_metric: the task's test metric at `eval_steps`.
        learning_rate: the optimizer's learning rate at `eval_steps`.
        train_loss: loss over the whole training set with the final weights.
        ms_per_step: median step time after `WARMUP_STEPS`, in milliseconds.
        state_bytes: the optimizer's per-parameter state (slots, and an EMA or
            gradient accumulators when on), measured by
            `keras_optzoo.memory.state_bytes`.
    """

    label: str
    seed: int
    batch_loss: np.ndarray
    wall_time: np.ndarray
    eval_steps: np.ndarray
    eval_wall_time: np.ndarray
    test_loss: np.ndarray
    test_metric: np.ndarray
    learning_rate: np.ndarray
    train_loss: float
    ms_per_step: float
    state_bytes: int

    @property
    def steps(self) -> np.ndarray:
        return np.arange(1, len(self.batch_loss) + 1)

    @property
    def test_metric_final(self) -> float:
        return float(self.test_metric[-1])

    def steps_to_target(self, target: float, window: int = TARGET_WINDOW) -> int | None:
        """The first step whose trailing mean batch loss (over up to `window`
        steps) is at or below `target`, else None."""
        hits = np.flatnonzero(trailing_mean(self.batch_loss, window) <= target)
        return int(hits[0]) + 1 if hits.size else None


@dataclass
class Comparison:
    """Everything one `compare` call measured.

    Attributes:
        task: the task.
        backend: the Keras backend that ran it.
        specs: the optimizers, in the order given.
        hyperparameters: label -> the arguments each optimizer was built with
            (the spec's plus the task's tuned learning rate).
        learning_rates: label -> the constant or peak learning rate.
        seeds: the seeds.
        total_steps: optimizer steps per run.
        batch_size: examples per step.
        schedule: the `--schedule` name.
        target_loss: the loss for "steps to target".
        steps_per_epoch: batches per pass over the training set.
        parameters: trainable parameters of the model.
        runs: one `RunResult` per optimizer and seed, optimizer-major.
    """

    task: Task
    backend: str
    specs: list[OptimizerSpec]
    hyperparameters: dict[str, dict[str, Any]]
    learning_rates: dict[str, float]
    seeds: list[int]
    total_steps: int
    batch_size: int
    schedule: str
    target_loss: float
    steps_per_epoch: int
    parameters: int
    runs: list[RunResult] = field(default_factory=list)

    def runs_for(self, label: str) -> list[RunResult]:
        return [run for run in self.runs if run.label == label]


# ---------------------------------------------------------------------------
# Progress.
# ---------------------------------------------------------------------------


class ProgressLine:
    """One line per run on `stream`, redrawn in place on a terminal.

    Elsewhere (a log file, CI) only the finished line is printed, so logs do
    not fill with carriage returns.

    Args:
        stream: where to write; defaults to `sys.stderr`.
        width: characters of the bar.
    """

    def __init__(self, stream=None, width: int = 24) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = 0.0

    def start(
        self, index: int, count: int, label: str, seed: int | None, total_steps: int
    ) -> None:
        self._prefix = f"[{index}/{count}] {label}" + (f" seed {seed}" if seed is not None else "")
        self._total = total_steps
        self._started = time.perf_counter()
        self._last_draw = 0.0
        self.update(0, float("nan"))

    def _line(self, step: int, loss: float) -> str:
        done = int(self.width * step / max(1, self._total))
        bar = "=" * done + "." * (self.width - done)
        return (
            f"{self._prefix:<40} [{bar}] {step}/{self._total} "
            f"loss {loss:.4f}  {time.perf_counter() - self._started:.1f} s"
        )

    def update(self, step: int, loss: float) -> None:
        now = time.perf_counter()
        if self.interactive and (now - self._last_draw > 0.1 or step == self._total):
            self.stream.write("\r" + self._line(step, loss))
            self.stream.flush()
            self._last_draw = now

    def finish(self, result: RunResult, metric_name: str) -> None:
        line = self._line(len(result.batch_loss), result.train_loss)
        line += f"  test {metric_name} {result.test_metric_final:.4f}"
        self.stream.write(("\r" if self.interactive else "") + line + "\n")
        self.stream.flush()


# ---------------------------------------------------------------------------
# Training.
# ---------------------------------------------------------------------------


class _BatchLoss(keras.metrics.Metric):
    """The loss of the latest batch (Keras's own `loss` log is the epoch's running mean)."""

    def __init__(self, loss: keras.losses.Loss, name: str = _BATCH_LOSS) -> None:
        super().__init__(name=name)
        self._loss = loss
        self.value = self.add_variable(shape=(), initializer="zeros", name="value")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.value.assign(ops.cast(self._loss(y_true, y_pred, sample_weight), self.value.dtype))

    def result(self):
        return ops.convert_to_tensor(self.value)

    def reset_state(self):
        self.value.assign(0.0)


class _Recorder(keras.callbacks.Callback):
    """Batch losses and end-of-step times across several `fit` calls."""

    def __init__(self, progress: ProgressLine | None) -> None:
        super().__init__()
        self.progress = progress
        self.losses: list[float] = []
        self.times: list[float] = []
        self.gaps: list[float] = []  # between consecutive steps of one fit call
        self._elapsed = 0.0

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._previous = None

    def on_train_batch_end(self, batch, logs=None):
        # Keras has already brought the logs to the host (floats) by now.
        loss = float(logs[_BATCH_LOSS])
        now = time.perf_counter()
        self.losses.append(loss)
        self.times.append(self._elapsed + now - self._start)
        if self._previous is not None:
            self.gaps.append(now - self._previous)
        self._previous = now
        if self.progress is not None:
            self.progress.update(len(self.losses), loss)

    def on_train_end(self, logs=None):
        self._elapsed += time.perf_counter() - self._start

    def ms_per_step(self) -> float:
        # Gaps are recorded from step 2 of each fit call; the first gaps of
        # the run still carry tracing and compilation.
        gaps = np.asarray(self.gaps[WARMUP_STEPS:] or self.gaps)
        return float(np.median(gaps) * 1e3) if gaps.size else float("nan")


def batch_stream(n: int, batch_size: int, total_steps: int, seed: int) -> np.ndarray:
    """Row indices of `total_steps` full batches: fresh permutations of
    `range(n)` laid end to end, one per pass over the data."""
    rng = np.random.default_rng(seed)
    needed = total_steps * batch_size
    passes = [rng.permutation(n) for _ in range(-(-needed // n))]
    return np.concatenate(passes)[:needed]


def evaluation_steps(total_steps: int, steps_per_epoch: int) -> list[int]:
    """Steps after which the test set is evaluated: every epoch, at most
    `MAX_EVALUATIONS` times, and always at the last step."""
    interval = max(steps_per_epoch, -(-total_steps // MAX_EVALUATIONS))
    return sorted(set(range(interval, total_steps, interval)) | {total_steps})


def trailing_mean(values, window: int) -> np.ndarray:
    """Mean of the last `window` values at each position (fewer at the start)."""
    sums = np.cumsum(np.asarray(values, dtype=np.float64))
    shifted = np.concatenate([np.zeros(window), sums])[: len(sums)]
    return (sums - shifted) / np.minimum(np.arange(1, len(sums) + 1), window)


def label_directory(label: str) -> str:
    """A file-system-safe directory name for an optimizer label."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", label)


def _evaluate(model, x, y, metric_name: str) -> tuple[float, float]:
    # One batch: the tasks' data sets are small, and a batch of another shape
    # would cost another trace of the test step.
    logs = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    return float(logs["loss"]), float(logs[metric_name])


def _train_one(
    task: Task,
    spec: OptimizerSpec,
    optimizer: keras.optimizers.Optimizer,
    initial_weights: list[np.ndarray],
    data,
    stream: np.ndarray,
    batch_size: int,
    eval_at: list[int],
    seed: int,
    writer_factory: Callable[[], Any] | None,
    progress: ProgressLine | None,
) -> RunResult:
    model = task.build_model()
    model.set_weights(initial_weights)
    loss = task.loss()
    metric = task.metric()
    model.compile(optimizer=optimizer, loss=loss, metrics=[metric, _BatchLoss(loss)])
    writer = writer_factory() if writer_factory is not None else None
    recorder = _Recorder(progress)

    evals = {"steps": [0], "time": [0.0], "loss": [], "metric": [], "lr": []}

    def evaluate(step: int) -> None:
        test_loss, test_metric = _evaluate(model, data.x_test, data.y_test, metric.name)
        evals["loss"].append(test_loss)
        evals["metric"].append(test_metric)
        evals["lr"].append(scalar(optimizer.learning_rate))
        if writer is not None:
            writer.scalar("test/loss", test_loss, step)
            writer.scalar(f"test/{metric.name}", test_metric, step)
            writer.scalar("train/learning_rate", evals["lr"][-1], step)

    evaluate(0)
    start = 0
    for end in eval_at:
        rows = stream[start * batch_size : end * batch_size]
        model.fit(
            data.x_train[rows],
            data.y_train[rows],
            batch_size=batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[recorder],
        )
        if writer is not None:
            for step in range(start + 1, end + 1):
                writer.scalar("train/batch_loss", recorder.losses[step - 1], step)
        evals["steps"].append(end)
        evals["time"].append(recorder.times[end - 1])
        evaluate(end)
        if writer is not None:
            writer.flush()
        start = end

    train_loss, _ = _evaluate(model, data.x_train, data.y_train, metric.name)
    if writer is not None:
        writer.scalar("train/loss", train_loss, eval_at[-1])
        writer.close()
    return RunResult(
        label=spec.label,
        seed=seed,
        batch_loss=np.asarray(recorder.losses),
        wall_time=np.asarray(recorder.times),
        eval_steps=np.asarray(evals["steps"]),
        eval_wall_time=np.asarray(evals["time"]),
        test_loss=np.asarray(evals["loss"]),
        test_metric=np.asarray(evals["metric"]),
        learning_rate=np.asarray(evals["lr"]),
        train_loss=train_loss,
        ms_per_step=recorder.ms_per_step(),
        state_bytes=state_bytes(optimizer, model.trainable_variables)["per_parameter_bytes"],
    )


def total_steps_for(
    task: Task, n_train: int, batch_size: int, epochs: int | None, steps: int | None
) -> int:
    """Optimizer steps of a run: `steps` if given, else `epochs` (or the
    task's default) times the batches per pass over `n_train` examples."""
    if steps is not None:
        return steps
    return (epochs or task.epochs) * -(-n_train // batch_size)


def compare(
    task: Task,
    specs: Sequence[OptimizerSpec],
    *,
    seeds: Sequence[int] = (0,),
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    schedule: str | None = None,
    target_loss: float | None = None,
    log_dir: str | os.PathLike | None = None,
    progress: ProgressLine | None = None,
) -> Comparison:
    """Train `task` once per optimizer and seed.

    Args:
        task: a `keras_optzoo.compare.tasks.Task`.
        specs: the optimizers; labels must be distinct.
        seeds: each seed draws new initial weights and a new batch order,
            shared by every optimizer.
        epochs: passes over the training set (default: the task's); ignored
            when `steps` is given.
        steps: optimizer steps per run, overriding `epochs`.
        batch_size: examples per step (default: the task's).
        schedule: one of `SCHEDULES` (default: the task's).
        target_loss: the loss for "steps to target" (default: the task's).
        log_dir: when given, TensorBoard logs go to
            `log_dir/<label>/` (one seed) or `log_dir/<label>/seed_<seed>/`.
        progress: a `ProgressLine`, or None for silence.

    Returns:
        A `Comparison`.

    Example:
        >>> from keras_optzoo.compare import tasks
        >>> from keras_optzoo.compare.specs import parse_optimizer_specs
        >>> result = compare(tasks.get("digits-mlp"), parse_optimizer_specs("sgd,adam"), epochs=2)
        >>> [run.label for run in result.runs]
        ['sgd', 'adam']
    """
    batch_size = batch_size or task.batch_size
    schedule = schedule or task.schedule
    data = task.load_data()
    total_steps = total_steps_for(task, len(data.x_train), batch_size, epochs, steps)
    steps_per_epoch = -(-len(data.x_train) // batch_size)
    eval_at = evaluation_steps(total_steps, steps_per_epoch)

    comparison = Comparison(
        task=task,
        backend=keras.backend.backend(),
        specs=list(specs),
        hyperparameters={s.label: resolved_hyperparameters(s, task) for s in specs},
        learning_rates={},
        seeds=list(seeds),
        total_steps=total_steps,
        batch_size=batch_size,
        schedule=schedule,
        target_loss=task.target_loss if target_loss is None else target_loss,
        steps_per_epoch=steps_per_epoch,
        parameters=0,
    )
    restore_threads = _single_threaded_torch()
    try:
        count, index = len(specs) * len(seeds), 0
        for seed in seeds:
            keras.utils.set_random_seed(seed)
            model = task.build_model()
            comparison.parameters = int(model.count_params())
            initial_weights = model.get_weights()
            stream = batch_stream(len(data.x_train), batch_size, total_steps, seed)
            for spec in specs:
                index += 1
                optimizer = make_optimizer(spec, task, schedule, total_steps)
                comparison.learning_rates[spec.label] = peak_learning_rate(
                    make_optimizer(spec, task)
                )
                if progress is not None:
                    progress.start(index, count, spec.label, seed if len(seeds) > 1 else None, total_steps)
                writer_factory = None
                if log_dir is not None:
                    run_dir = os.path.join(os.fspath(log_dir), label_directory(spec.label))
                    if len(seeds) > 1:
                        run_dir = os.path.join(run_dir, f"seed_{seed}")
                    writer_factory = _writer_factory(run_dir)
                result = _train_one(
                    task, spec, optimizer, initial_weights, data, stream,
                    batch_size, eval_at, seed, writer_factory, progress,
                )
                comparison.runs.append(result)
                if progress is not None:
                    progress.finish(result, task.metric_name)
    finally:
        restore_threads()
    order = {spec.label: i for i, spec in enumerate(specs)}
    comparison.runs.sort(key=lambda run: (order[run.label], seeds.index(run.seed)))
    return comparison


def _writer_factory(run_dir: str) -> Callable[[], Any]:
    from keras_optzoo.callbacks.tensorboard import get_writer

    def make():
        # Events files of an earlier run of the same label would mix with
        # this one's in TensorBoard.
        if os.path.isdir(run_dir):
            for name in os.listdir(run_dir):
                if "tfevents" in name:
                    os.remove(os.path.join(run_dir, name))
        return get_writer(run_dir)

    return make


def _single_threaded_torch() -> Callable[[], None]:
    """On Torch, one intra-op thread while comparing; returns the undo.

    The tasks' models are dispatch-bound: extra threads only add
    synchronization (2x slower per step on two busy cores).
    """
    if keras.backend.backend() != "torch":
        return lambda: None
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    return lambda: torch.set_num_threads(threads)
