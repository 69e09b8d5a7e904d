"""Schedule callbacks: the rates they set, the logs they write, resuming.

A tiny model is fitted on each backend. The rates in the logs must equal the
schedule's values at the optimizer step (per batch) or the epoch index (per
epoch); a per-batch callback must train exactly like the same schedule passed
as `learning_rate=`; and a model saved mid-training, reloaded and resumed with
`fit(initial_epoch=k)` must continue the rates (and weights) of the run that
never stopped.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import keras_optzoo as oz
from keras_optzoo import schedules as sch
from tests.harness import to_numpy

BATCH_SIZE = 8
BATCHES_PER_EPOCH = 4
EPOCHS = 4
RESUME_EPOCH = 2


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH_SIZE * BATCHES_PER_EPOCH, 3)).astype("float32")
    return x, np.tanh(x @ rng.standard_normal((3, 1))).astype("float32")


def _model(learning_rate=0.1) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((3,)),
        keras.layers.Dense(4, activation="tanh", name="hidden"),
        keras.layers.Dense(1, name="out"),
    ])
    model.compile(optimizer=oz.optimizers.SGD(learning_rate=learning_rate, momentum=0.9), loss="mse")
    return model


class BatchRates(keras.callbacks.Callback):
    """Collects `logs["learning_rate"]` after every batch (placed after the schedule callback)."""

    def __init__(self):
        super().__init__()
        self.rates: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        if "learning_rate" in logs:
            self.rates.append(logs["learning_rate"])


def _fit(model: keras.Model, callback: keras.callbacks.Callback, epochs: int, initial_epoch: int = 0):
    x, y = _data()
    rates = BatchRates()
    history = model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, initial_epoch=initial_epoch,
                        shuffle=False, verbose=0, callbacks=[callback, rates])
    return history.history, rates.rates


def _values(schedule, steps) -> list[float]:
    return [float(to_numpy(schedule(step))) for step in steps]


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [to_numpy(w) for w in model.weights]


# Each per-mode case: how to build the callback, and the schedule it applies.
MODES = {
    "batch": lambda: oz.callbacks.ScheduleCallback(sch.WarmupCosine(0.1, 3, 10, alpha=0.1), per="batch"),
    "epoch": lambda: oz.callbacks.StepDecayCallback(0.1, step_size=2, gamma=0.5),
}


def _expected_epoch_rates(callback, epochs: range) -> list[float]:
    if callback.per == "epoch":
        return _values(callback.schedule, epochs)
    # Per batch, an epoch's logs hold the rate of its last batch.
    return _values(callback.schedule, [(e + 1) * BATCHES_PER_EPOCH - 1 for e in epochs])


@pytest.mark.parametrize("per", sorted(MODES))
def test_rates_follow_the_schedule_and_continue_after_save_and_resume(per: str, tmp_path: Path) -> None:
    callback = MODES[per]()
    assert callback.per == per

    model = _model()
    history, batch_rates = _fit(model, callback, EPOCHS)
    assert history["learning_rate"] == pytest.approx(_expected_epoch_rates(callback, range(EPOCHS)), rel=1e-7)
    if per == "batch":
        assert batch_rates == pytest.approx(_values(callback.schedule, range(EPOCHS * BATCHES_PER_EPOCH)), rel=1e-7)
    else:
        assert batch_rates == [], "per-epoch mode leaves the batch logs alone"
    rates = history["learning_rate"]
    assert len(set(rates)) > 1, "the schedule must change the rate during the run"

    interrupted = _model()
    first, _ = _fit(interrupted, MODES[per](), RESUME_EPOCH)
    interrupted.save(tmp_path / "model.keras")
    resumed = keras.saving.load_model(tmp_path / "model.keras")
    second, _ = _fit(resumed, MODES[per](), EPOCHS, initial_epoch=RESUME_EPOCH)

    assert first["learning_rate"] + second["learning_rate"] == rates
    for actual, expected in zip(_weights(resumed), _weights(model)):
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-7)


def test_per_batch_callback_trains_like_the_schedule_in_the_optimizer() -> None:
    schedule = sch.WarmupCosine(0.1, 3, 10, alpha=0.1)
    with_callback = _model()
    _fit(with_callback, oz.callbacks.ScheduleCallback(schedule, per="batch"), 2)
    in_optimizer = _model(learning_rate=schedule)
    x, y = _data()
    in_optimizer.fit(x, y, batch_size=BATCH_SIZE, epochs=2, shuffle=False, verbose=0)
    for actual, expected in zip(_weights(with_callback), _weights(in_optimizer)):
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-7)
    # And not trivially: a constant rate ends elsewhere.
    constant = _model(learning_rate=0.1)
    constant.fit(x, y, batch_size=BATCH_SIZE, epochs=2, shuffle=False, verbose=0)
    assert not np.allclose(_weights(constant)[0], _weights(in_optimizer)[0], rtol=1e-4)


def test_verbose_prints_the_rate_it_sets(capsys: pytest.CaptureFixture) -> None:
    _fit(_model(), oz.callbacks.CosineAnnealingCallback(0.1, decay_steps=2, verbose=1), 2)
    printed = capsys.readouterr().out
    assert "CosineAnnealingCallback: learning rate 0.1 at epoch 1." in printed
    assert "learning rate 0.05 at epoch 2." in printed


def test_optimizer_with_a_schedule_is_refused_when_training_starts() -> None:
    model = _model(learning_rate=sch.CosineDecay(0.1, 10))
    callback = oz.callbacks.ScheduleCallback(sch.CosineDecay(0.1, 10))
    with pytest.raises(TypeError, match="float learning_rate"):
        _fit(model, callback, 1)


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: oz.callbacks.ScheduleCallback(0.1), "schedule"),
        (lambda: oz.callbacks.ScheduleCallback(sch.CosineDecay(0.1, 10), per="step"), "per"),
        (lambda: oz.callbacks.ScheduleCallback(sch.CosineDecay(0.1, 10), verbose=2), "verbose"),
        (lambda: oz.callbacks.WarmupCallback(0.1, warmup_steps=-1), "warmup_steps"),
        (lambda: oz.callbacks.WarmupCallback(0.1, 5, kind="cosine"), "kind"),
        (lambda: oz.callbacks.CosineAnnealingCallback(0.1, decay_steps=0), "decay_steps"),
        (lambda: oz.callbacks.CosineAnnealingCallback(0.1, 10, alpha=2.0), "alpha"),
        (lambda: oz.callbacks.StepDecayCallback(0.1, step_size=0), "step_size"),
        (lambda: oz.callbacks.StepDecayCallback(-0.1, step_size=3), "initial_learning_rate"),
        (lambda: oz.callbacks.StepDecayCallback(0.1, 3, per="week"), "per"),
    ],
)
def test_bad_argument_raises_value_error_naming_it(make, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        make()


@pytest.mark.parametrize(
    "callback, schedule, per",
    [
        (oz.callbacks.WarmupCallback(0.1, 5, initial_learning_rate=0.01),
         sch.Warmup(0.1, 5, 0.01), "batch"),
        (oz.callbacks.WarmupCallback(sch.StepDecay(0.1, 3), 5, kind="exponential", initial_learning_rate=1e-3,
                                     per="epoch"),
         sch.Warmup(sch.StepDecay(0.1, 3), 5, 1e-3, kind="exponential"), "epoch"),
        (oz.callbacks.CosineAnnealingCallback(0.1, 20, alpha=0.1), sch.CosineDecay(0.1, 20, 0.1), "epoch"),
        (oz.callbacks.StepDecayCallback(0.1, 30, gamma=0.2, per="batch"), sch.StepDecay(0.1, 30, 0.2), "batch"),
    ],
)
def test_convenience_callbacks_wrap_the_named_schedule(callback, schedule, per: str) -> None:
    assert type(callback.schedule) is type(schedule)
    assert callback.schedule.get_config() == schedule.get_config()
    assert callback.per == per
