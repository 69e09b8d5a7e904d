"""Callbacks that set the optimizer's learning rate from a schedule.

A schedule passed as `learning_rate=` is evaluated inside the compiled step and
is the cheaper choice. The callbacks serve users who keep a float learning rate
(for example to change it by hand, or to schedule per epoch as torch does):
they assign the optimizer's learning-rate variable between steps and write the
rate they set into the logs, so `History`, `ProgbarLogger` and `TensorBoard`
record it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from keras_optzoo.optimizers.base import validate_choice
from keras_optzoo.schedules import CosineDecay, StepDecay, Warmup
from keras_optzoo.schedules.base import ScheduleOrConstant

PER_CHOICES = ("batch", "epoch")


def _as_float(value: Any) -> float:
    return float(keras.ops.convert_to_numpy(value))


class ScheduleCallback(keras.callbacks.Callback):
    """Set the learning rate from a schedule before every batch or epoch.

    `per="batch"`: before each training batch the rate becomes
    `schedule(optimizer.iterations)`, the same step a schedule passed as
    `learning_rate=` sees, so the two train identically; the step is the
    optimizer's own counter, so a model saved and reloaded continues where it
    stopped. `per="epoch"`: before each epoch the rate becomes
    `schedule(epoch)` with the 0-based epoch index `fit` passes, which honours
    `fit(initial_epoch=k)` on resume.

    The rate set is written to the logs as `learning_rate`: every batch's logs
    with `per="batch"`, and each epoch's logs (the last rate of that epoch)
    in both modes.

    The optimizer must have been built with a float learning rate: a
    schedule inside the optimizer would override the value set here, so
    training raises `TypeError` at its start instead. With
    `steps_per_execution > 1` batch callbacks run once per execution, so
    `per="batch"` sets the rate once per group of steps. On JAX, `per="batch"`
    syncs the training state to the model before each batch (Keras's
    mechanism for callbacks that touch variables), which costs time on large
    models.

    Args:
        schedule: a `LearningRateSchedule` or any callable from the step (or
            epoch) to a float.
        per: `"batch"` (default) or `"epoch"`.
        verbose: 0 (quiet) or 1 (print the rate at the start of each epoch).

    Example:
    ```python
    model.compile(optimizer=oz.optimizers.SGD(learning_rate=0.1), loss="mse")
    callback = oz.callbacks.ScheduleCallback(
        oz.schedules.StepDecay(0.1, step_size=30, gamma=0.1), per="epoch")
    history = model.fit(x, y, epochs=90, callbacks=[callback])
    history.history["learning_rate"]   # 0.1 for 30 epochs, 0.01, 0.001
    ```
    """

    def __init__(self, schedule: Callable[[Any], Any], per: str = "batch", verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            # ValueError, as for every bad argument in keras_optzoo.
            raise ValueError(  # noqa: TRY004
                "schedule must be a LearningRateSchedule or a callable of the step, "
                f"got {schedule!r}"
            )
        self.schedule = schedule
        self.per = validate_choice("per", per, PER_CHOICES)
        self.verbose = validate_choice("verbose", verbose, (0, 1))
        self.learning_rate: float | None = None

    def _learning_rate_variable(self) -> keras.Variable:
        optimizer = self.model.optimizer
        variable = getattr(optimizer, "learning_rate", None)
        if not isinstance(variable, keras.Variable):
            raise TypeError(
                f"{type(self).__name__} sets the optimizer's learning-rate variable, but "
                f"optimizer {optimizer.name!r} evaluates its own learning-rate schedule "
                "or callable, which would override it. Build the optimizer with a float "
                "learning_rate, or pass the schedule as learning_rate and drop the callback."
            )
        return variable

    def _set(self, step: int) -> None:
        self.learning_rate = _as_float(self.schedule(step))
        self._learning_rate_variable().assign(self.learning_rate)

    def on_train_begin(self, logs=None):
        self._learning_rate_variable()
        self.learning_rate = None

    def _report(self, when: str) -> None:
        print(f"\n{type(self).__name__}: learning rate {self.learning_rate:.6g} at {when}.")

    def on_epoch_begin(self, epoch, logs=None):
        if self.per == "epoch":
            self._set(epoch)
            if self.verbose:
                self._report(f"epoch {epoch + 1}")

    def on_train_batch_begin(self, batch, logs=None):
        if self.per != "batch":
            return
        # JAX's fit keeps the state outside the variables between syncs; syncing
        # makes `iterations` current and makes fit re-read the rate set here.
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self._set(step)
        if self.verbose and batch == 0:
            self._report(f"step {step}")

    def on_train_batch_end(self, batch, logs=None):
        if self.per == "batch" and logs is not None and self.learning_rate is not None:
            logs["learning_rate"] = self.learning_rate

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.learning_rate is not None:
            logs["learning_rate"] = self.learning_rate


class WarmupCallback(ScheduleCallback):
    """`ScheduleCallback(Warmup(learning_rate, warmup_steps, ...))`, per batch.

    Ramps from `initial_learning_rate` to `learning_rate` (a float or the
    first value of a schedule, which then runs shifted by `warmup_steps`);
    see `keras_optzoo.schedules.Warmup` for the exact values.

    Args:
        learning_rate: the rate (or schedule) to warm up into.
        warmup_steps: integer >= 0, counted in batches (`per="batch"`) or
            epochs (`per="epoch"`).
        initial_learning_rate: the rate at step 0. Defaults to 0.0.
        kind: `"linear"` (default) or `"exponential"`.
        per: `"batch"` (default) or `"epoch"`.
        verbose: 0 or 1.

    Example:
    ```python
    callbacks = [oz.callbacks.WarmupCallback(0.1, warmup_steps=500)]
    ```

    References:
        Goyal et al., 2017, "Accurate, Large Minibatch SGD: Training ImageNet
        in 1 Hour", Sec. 2.2.
    """

    def __init__(
        self,
        learning_rate: ScheduleOrConstant,
        warmup_steps: int,
        initial_learning_rate: float = 0.0,
        kind: str = "linear",
        per: str = "batch",
        verbose: int = 0,
    ):
        schedule = Warmup(learning_rate, warmup_steps, initial_learning_rate, kind)
        super().__init__(schedule, per=per, verbose=verbose)


class CosineAnnealingCallback(ScheduleCallback):
    """`ScheduleCallback(CosineDecay(initial_learning_rate, decay_steps, alpha))`, per epoch.

    Like torch's `CosineAnnealingLR` stepped once per epoch (with
    `eta_min = alpha·initial_learning_rate`), but holding the floor after
    `decay_steps` instead of rising again.

    Args:
        initial_learning_rate: the rate at epoch (or step) 0.
        decay_steps: length of the decay, in epochs (`per="epoch"`) or
            batches (`per="batch"`), integer >= 1.
        alpha: the floor as a fraction of `initial_learning_rate`. Defaults to 0.0.
        per: `"epoch"` (default) or `"batch"`.
        verbose: 0 or 1.

    Example:
    ```python
    callbacks = [oz.callbacks.CosineAnnealingCallback(0.1, decay_steps=100)]
    ```

    References:
        Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent with
        Warm Restarts", ICLR, Eq. 5.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        per: str = "epoch",
        verbose: int = 0,
    ):
        schedule = CosineDecay(initial_learning_rate, decay_steps, alpha)
        super().__init__(schedule, per=per, verbose=verbose)


class StepDecayCallback(ScheduleCallback):
    """`ScheduleCallback(StepDecay(initial_learning_rate, step_size, gamma))`, per epoch.

    torch's `StepLR` stepped once per epoch: the rate is multiplied by
    `gamma` every `step_size` epochs.

    Args:
        initial_learning_rate: the rate at epoch (or step) 0.
        step_size: epochs (`per="epoch"`) or batches (`per="batch"`) between
            decays, integer >= 1.
        gamma: factor per decay, in [0, 1]. Defaults to 0.1.
        per: `"epoch"` (default) or `"batch"`.
        verbose: 0 or 1.

    Example:
    ```python
    callbacks = [oz.callbacks.StepDecayCallback(0.1, step_size=30)]
    ```

    References:
        Szegedy et al., 2015, "Going Deeper with Convolutions", CVPR, Sec. 6.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        step_size: int,
        gamma: float = 0.1,
        per: str = "epoch",
        verbose: int = 0,
    ):
        schedule = StepDecay(initial_learning_rate, step_size, gamma)
        super().__init__(schedule, per=per, verbose=verbose)
