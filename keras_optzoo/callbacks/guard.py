"""`NonFiniteGuard`: stop training at the first NaN or inf, keep the last good state."""

from __future__ import annotations

import functools
import logging
import math
from typing import Any

import keras
from keras import ops

logger = logging.getLogger(__name__)

_SAVE_SUFFIXES = (".keras", ".weights.h5")


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, gradient or weight.

    After every training batch the guard reads the loss from `logs` (Keras has
    already brought it to the host, so this costs nothing). Every
    `check_every_n_steps` batches it also checks that every model weight
    (trainable or not) and every optimizer variable (slots included) is finite,
    and if so keeps a copy of all of them as the "last good" state.

    It trips when
      * the batch's loss is NaN or inf;
      * a weight or optimizer variable is non-finite after the step (this is
        how a non-finite gradient shows up with an optimizer that applies it,
        e.g. any keras core optimizer);
      * with `stop_on_skipped_gradients`, the optimizer's `skipped_steps`
        counter grew: keras_optzoo optimizers built with `nonfinite="skip"`
        refuse a step whose gradient is non-finite and count it.

    When it trips it sets `model.stop_training`, which Keras 3 honours right
    after this batch on every backend, so no further batch updates the
    weights. It logs a warning naming the first non-finite variable (by
    `variable.path`), records `reason`, `first_nonfinite_variable`,
    `stopped_at_step` and `stopped_at_epoch`, restores the last good state
    (`restore_last_good`) and saves it to `filepath`. The state is the model's
    weights and all optimizer variables (step counter, slots, `skipped_steps`),
    so training resumed from it continues the clean trajectory.

    Cost: a check reduces every weight and optimizer variable on the device and
    brings one small vector to the host (one sync), then copies all of them
    on the device (each a single compiled call on JAX and TensorFlow), so it
    moves about as many bytes as an optimizer step; the copy holds as much memory as the weights plus the
    optimizer state (for Adam, three times the parameters). A larger
    `check_every_n_steps` divides that time cost, but a non-finite weight
    with a finite loss is then noticed up to `n - 1` batches late, and the
    restored state is the one from the last check, up to `n - 1` batches
    older than the failure. The loss is checked at every batch regardless.
    The granularity is a call of `on_train_batch_end`: with
    `steps_per_execution > 1`, one per execution.

    Args:
        check_every_n_steps: Check (and copy) weights and optimizer state every
            this many batches, >= 1. Defaults to 1.
        filepath: Where to save the last good model when the guard trips:
            a path ending in `.keras` (whole model, with optimizer state, via
            `model.save`) or `.weights.h5` (`model.save_weights`). Defaults to
            `None` (nothing saved).
        restore_last_good: Set the model's weights and optimizer state back to
            the last good copy when the guard trips. Defaults to True. With
            False the model keeps its non-finite values (to inspect them) and
            only `filepath` receives the good ones.
        stop_on_skipped_gradients: Trip when the optimizer's `skipped_steps`
            grows. Defaults to True. Without it, an optimizer with
            `nonfinite="skip"` keeps training past non-finite gradients.

    Attributes:
        reason: `None`, or the message logged when the guard tripped.
        first_nonfinite_variable: `None`, or the `path` of the first non-finite
            variable (model weights first, then optimizer variables).
        stopped_at_step: `None`, or the 0-based index of the batch that
            tripped, counted over all epochs of this `fit`.
        stopped_at_epoch: `None`, or the epoch of that batch.
        restored_step: `None`, or the batch index the last good state was
            taken after (`-1`: the state before training).

    Example:

    ```python
    guard = oz.callbacks.NonFiniteGuard(filepath="last_good.keras")
    model.fit(x, y, callbacks=[guard])
    if guard.reason:
        print(guard.reason)     # "... first non-finite variable: dense/kernel"
    ```
    """

    def __init__(
        self,
        check_every_n_steps: int = 1,
        filepath: str | None = None,
        restore_last_good: bool = True,
        stop_on_skipped_gradients: bool = True,
    ) -> None:
        super().__init__()
        if (
            isinstance(check_every_n_steps, bool)
            or not isinstance(check_every_n_steps, int)
            or check_every_n_steps < 1
        ):
            raise ValueError(
                f"check_every_n_steps must be an integer >= 1, got {check_every_n_steps!r}"
            )
        if filepath is not None and not str(filepath).endswith(_SAVE_SUFFIXES):
            raise ValueError(
                f"filepath must end in one of {_SAVE_SUFFIXES}, got {filepath!r}"
            )
        self.check_every_n_steps = check_every_n_steps
        self.filepath = None if filepath is None else str(filepath)
        self.restore_last_good = bool(restore_last_good)
        self.stop_on_skipped_gradients = bool(stop_on_skipped_gradients)
        self._reset()

    def _reset(self) -> None:
        self.reason: str | None = None
        self.first_nonfinite_variable: str | None = None
        self.stopped_at_step: int | None = None
        self.stopped_at_epoch: int | None = None
        self.restored_step: int | None = None
        self._good_state: list[tuple[Any, Any]] = []
        self._good_skipped_steps = 0
        self._batches_done = 0
        self._epoch = 0
        self._epoch_start = 0

    # -- Keras hooks ----------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._reset()
        variables = self._variables()
        flags, skipped = self._finite_flags(variables)
        # A state that is already non-finite is not worth restoring to.
        if all(flags):
            self._keep(variables, step=-1, skipped=skipped)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_start = self._batches_done

    def on_train_batch_end(self, batch, logs=None):
        if self.reason is not None:
            return
        self._batches_done = self._epoch_start + batch + 1
        step = self._batches_done - 1
        loss = (logs or {}).get("loss")
        loss_is_finite = loss is None or math.isfinite(float(loss))
        if loss_is_finite and self._batches_done % self.check_every_n_steps:
            return

        variables = self._variables()
        flags, skipped = self._finite_flags(variables)
        gradient_skipped = self.stop_on_skipped_gradients and skipped > self._good_skipped_steps
        if loss_is_finite and all(flags) and not gradient_skipped:
            self._keep(variables, step=step, skipped=skipped)
            return

        first_bad = next((v for v, ok in zip(variables, flags) if not ok), None)
        causes = []
        if not loss_is_finite:
            causes.append(f"the loss is {float(loss)}")
        if gradient_skipped:
            causes.append(
                f"the optimizer skipped {skipped - self._good_skipped_steps} step(s) "
                "with a non-finite gradient"
            )
        if first_bad is not None:
            causes.append(f"first non-finite variable: {first_bad.path}")
        self._trip(step, "; ".join(causes), first_bad)

    # -- internals ------------------------------------------------------------

    def _variables(self) -> list:
        # `self.model` (not `_model`) so JAX attaches its training state first.
        model = self.model
        variables = list(model.weights)
        if getattr(model, "optimizer", None) is not None:
            variables += list(model.optimizer.variables)
        return variables

    def _skipped_steps_variable(self):
        optimizer = getattr(self.model, "optimizer", None)
        for candidate in (optimizer, getattr(optimizer, "inner_optimizer", None)):
            counter = getattr(candidate, "skipped_steps", None)
            if isinstance(counter, keras.Variable):
                return counter
        return None

    def _finite_flags(self, variables) -> tuple[list[bool], int]:
        """Per-variable "all finite" flags and the skipped-step count: one
        compiled call, one device-to-host transfer."""
        counter = self._skipped_steps_variable()
        host = ops.convert_to_numpy(
            _compiled(_flags)([v.value for v in variables], None if counter is None else counter.value)
        )
        return [bool(f) for f in host[:-1]], int(host[-1])

    def _keep(self, variables, step: int, skipped: int) -> None:
        # Drop the old copy first, so that at most one copy is alive.
        self._good_state = []
        self._good_state = list(zip(variables, _snapshot(variables)))
        self._good_skipped_steps = skipped
        self.restored_step = step

    def _assign(self, state) -> None:
        for variable, value in state:
            variable.assign(value)

    def _trip(self, step: int, causes: str, first_bad) -> None:
        self.stopped_at_step = step
        self.stopped_at_epoch = self._epoch
        self.first_nonfinite_variable = None if first_bad is None else first_bad.path
        self.model.stop_training = True
        if self._good_state:
            restored = f"last good state: after batch {self.restored_step}"
        else:
            restored = "no finite state to restore"
            self.restored_step = None
        self.reason = (
            f"NonFiniteGuard stopped training at step {step} (epoch {self._epoch}): "
            f"{causes}; {restored}"
        )
        logger.warning(self.reason)
        if not self._good_state:
            return
        bad_state = None
        if not self.restore_last_good:
            variables = [v for v, _ in self._good_state]
            bad_state = list(zip(variables, _snapshot(variables)))
        self._assign(self._good_state)
        if self.filepath is not None:
            if self.filepath.endswith(".keras"):
                self.model.save(self.filepath)
            else:
                self.model.save_weights(self.filepath)
        if bad_state is not None:
            self._assign(bad_state)


def _flags(values, counter):
    flags = [
        ops.all(ops.isfinite(x)) if keras.backend.is_float_dtype(x.dtype) else True
        for x in values
    ]
    flags.append(True if counter is None else counter)
    return ops.stack([ops.cast(f, "int32") for f in flags])


def _copies(values):
    # Copies, not references: JAX donates the state buffers to the next step,
    # TensorFlow and Torch update variables in place. `stop_gradient` keeps
    # Torch from recording the copies in an autograd graph.
    return [ops.copy(ops.stop_gradient(x)) for x in values]


@functools.cache
def _compiled(function):
    """`function` compiled for the backend: one dispatch instead of a few
    eager ops per variable (which cost more than the checks themselves)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(function)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, reduce_retracing=True)
    return function


def _snapshot(variables) -> list:
    return list(_compiled(_copies)([v.value for v in variables]))
