"""NonFiniteGuard: stops at the poisoned batch and keeps exactly the last good state.

The restored (and saved) weights and optimizer variables must equal, bit for
bit, the state after the last good batch: taken from a clean guarded run of
the same model on the same batches (which must not trip), or, for keras
core's Adam, from a recorder placed before the guard in the poisoned run
itself (the batches before the poisoned one are the clean run's).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

import keras_optzoo as oz
from keras_optzoo.callbacks import NonFiniteGuard

BATCH, BATCHES_PER_EPOCH, EPOCHS = 8, 8, 2
BAD_STEP = 11  # epoch 1, batch 3: counted across epochs


@keras.saving.register_keras_serializable(package="tests_guard")
def masked_mse(y_true, y_pred):
    """MSE that ignores NaN targets in the forward pass but not in the gradient.

    `where` after `square` is the classic trap: the loss is finite, yet the
    gradient is 0 · ∂(p − NaN)² = NaN, so a NaN target yields a finite loss
    and a non-finite gradient.
    """
    return ops.mean(ops.where(ops.isfinite(y_true), ops.square(y_pred - y_true), 0.0), axis=-1)


def batches(poison: str | None = None):
    """`EPOCHS` epochs of fixed batches; `poison` puts a NaN in the inputs
    (`"x"`, so the loss is NaN) or in the targets (`"y"`, so only the gradient
    is) of global step `BAD_STEP`."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCHES_PER_EPOCH * BATCH, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]]) + 0.1).astype("float32")
    step = 0
    for _ in range(EPOCHS):
        for b in range(BATCHES_PER_EPOCH):
            xb, yb = x[b * BATCH : (b + 1) * BATCH].copy(), y[b * BATCH : (b + 1) * BATCH].copy()
            if step == BAD_STEP and poison == "x":
                xb[2, 1] = np.nan
            if step == BAD_STEP and poison == "y":
                yb[5, 0] = np.nan
            yield xb, yb
            step += 1


def make_model(optimizer):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(8, activation="tanh"),
        keras.layers.BatchNormalization(),  # non-trainable weights too
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=optimizer, loss=masked_mse)
    return model


def values(variables) -> list[np.ndarray]:
    return [np.array(ops.convert_to_numpy(v.value)) for v in variables]


def state(model) -> list[np.ndarray]:
    return values(model.weights) + values(model.optimizer.variables)


class Recorder(keras.callbacks.Callback):
    """Counts the batches begun and records the full state after each one
    (placed before the guard, so it sees the state the guard tripped on)."""

    def __init__(self):
        super().__init__()
        self.begun = 0
        self.after = []

    def on_train_batch_begin(self, batch, logs=None):
        self.begun += 1

    def on_train_batch_end(self, batch, logs=None):
        self.after.append(state(self.model))


def fit(model, poison=None, **guard_kwargs):
    guard = NonFiniteGuard(**guard_kwargs)
    recorder = Recorder()
    model.fit(
        batches(poison), steps_per_epoch=BATCHES_PER_EPOCH, epochs=EPOCHS,
        callbacks=[recorder, guard], shuffle=False, verbose=0,
    )
    return guard, recorder


_clean_run: list = []


def clean_trajectory() -> list[list[np.ndarray]]:
    """State after every batch of an unpoisoned, guarded run with our Adam
    (the `nonfinite` policy does not change finite steps)."""
    if not _clean_run:
        guard, recorder = fit(make_model(oz.optimizers.Adam(1e-2)))
        assert guard.reason is None, guard.reason  # no false alarm
        assert recorder.begun == EPOCHS * BATCHES_PER_EPOCH
        _clean_run.extend(recorder.after)
    return _clean_run


def reload_weights(path, **optimizer_kwargs):
    """A fresh model (and built optimizer) with the weights file loaded."""
    model = make_model(oz.optimizers.Adam(1e-2, **optimizer_kwargs))
    model.optimizer.build(model.trainable_variables)
    model.load_weights(path)
    return model


def assert_state_equal(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_array_equal(a, e)


def test_nan_loss_stops_at_that_batch_restores_and_saves_last_good(tmp_path):
    path = str(tmp_path / "last_good.keras")
    model = make_model(oz.optimizers.Adam(1e-2))
    guard, recorder = fit(model, poison="x", filepath=path)

    assert recorder.begun == BAD_STEP + 1  # no batch after the poisoned one
    assert guard.stopped_at_step == BAD_STEP and guard.stopped_at_epoch == 1
    assert guard.restored_step == BAD_STEP - 1
    # The NaN input made the loss NaN; the applied step poisoned every weight,
    # so the first one named is the first layer's kernel.
    kernel = model.layers[0].kernel.path
    assert guard.first_nonfinite_variable == kernel
    assert "the loss is nan" in guard.reason and kernel in guard.reason
    assert not np.isfinite(recorder.after[-1][0]).all()

    good = clean_trajectory()[BAD_STEP - 1]
    assert_state_equal(state(model), good)
    assert int(ops.convert_to_numpy(model.optimizer.iterations)) == BAD_STEP

    loaded = keras.saving.load_model(path)
    assert_state_equal(state(loaded), good)


def test_skipped_nonfinite_gradient_stops_training(tmp_path):
    path = str(tmp_path / "last_good.weights.h5")
    model = make_model(oz.optimizers.Adam(1e-2, nonfinite="skip"))
    guard, recorder = fit(model, poison="y", filepath=path)

    assert recorder.begun == BAD_STEP + 1
    assert guard.stopped_at_step == BAD_STEP
    assert "skipped 1 step(s) with a non-finite gradient" in guard.reason
    assert "loss" not in guard.reason  # the masked loss stayed finite
    assert guard.first_nonfinite_variable is None  # the skip kept every weight finite
    # The whole optimizer state is restored, the skip counter included.
    assert int(ops.convert_to_numpy(model.optimizer.skipped_steps)) == 0

    good = clean_trajectory()[BAD_STEP - 1]
    assert_state_equal(state(model), good)
    assert_state_equal(state(reload_weights(path, nonfinite="skip")), good)


def test_skipped_gradients_are_tolerated_when_asked():
    model = make_model(oz.optimizers.Adam(1e-2, nonfinite="skip"))
    guard, recorder = fit(model, poison="y", stop_on_skipped_gradients=False)
    assert guard.reason is None
    assert recorder.begun == EPOCHS * BATCHES_PER_EPOCH
    assert int(ops.convert_to_numpy(model.optimizer.skipped_steps)) == 1


def test_keras_core_optimizer_nonfinite_gradient_shows_as_named_weight():
    model = make_model(keras.optimizers.Adam(1e-2))
    guard, recorder = fit(model, poison="y")

    assert recorder.begun == BAD_STEP + 1
    assert guard.stopped_at_step == BAD_STEP
    kernel = model.layers[0].kernel.path
    assert guard.first_nonfinite_variable == kernel
    assert "loss" not in guard.reason and f"first non-finite variable: {kernel}" in guard.reason
    assert not np.isfinite(recorder.after[-1][0]).all()
    assert_state_equal(state(model), recorder.after[BAD_STEP - 1])


def test_sparse_checks_restore_the_last_check_and_can_leave_the_bad_weights(tmp_path):
    path = str(tmp_path / "last_good.weights.h5")
    model = make_model(oz.optimizers.Adam(1e-2))
    guard, _ = fit(model, poison="x", check_every_n_steps=4, filepath=path, restore_last_good=False)

    # The loss is still checked at every batch; the last weight check was
    # after batch 7 (8 batches done).
    assert guard.stopped_at_step == BAD_STEP
    assert guard.restored_step == 7
    assert "after batch 7" in guard.reason
    assert not np.isfinite(values(model.weights)[0]).all()  # left for inspection
    assert_state_equal(state(reload_weights(path)), clean_trajectory()[7])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"check_every_n_steps": 0}, "check_every_n_steps must be an integer >= 1, got 0"),
        ({"check_every_n_steps": 2.0}, "check_every_n_steps must be an integer >= 1, got 2.0"),
        ({"check_every_n_steps": True}, "check_every_n_steps must be an integer >= 1, got True"),
        ({"filepath": "model.h5"}, "filepath must end in one of .*, got 'model.h5'"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NonFiniteGuard(**kwargs)
