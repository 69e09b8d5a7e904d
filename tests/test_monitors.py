"""The monitoring callbacks inside `fit`, checked against closed forms and NumPy.

A two-branch linear model trained full-batch has a gradient known in closed
form, so the logged gradient norms (global and per layer), update ratios and
learning rate are compared with values computed in NumPy from the weights; the
moment statistics with NumPy statistics of the slot values; the TensorBoard
files are read back. Alerts must fire on an injected spike and stay silent on
the same run without it.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from pathlib import Path

import keras
import numpy as np
import pytest
from keras.src import utils as keras_utils

import keras_optzoo as oz
from keras_optzoo.callbacks import (
    GradientNormMonitor,
    LearningRateMonitor,
    MomentMonitor,
    Monitored,
    UpdateRatioMonitor,
    read_events,
)
from keras_optzoo.callbacks import monitors as monitors_module
from keras_optzoo.callbacks.monitors import _sample_positions
from tests.harness import BACKEND, to_numpy


def _weights(model: keras.Model) -> list[np.ndarray]:
    if BACKEND == "jax":
        model.jax_state_sync()
    return [to_numpy(v).astype(np.float64) for v in model.trainable_variables]


def _two_branch_model(optimizer) -> keras.Model:
    keras.utils.set_random_seed(0)
    left_in, right_in = keras.Input((4,)), keras.Input((3,))
    out = keras.layers.Add()(
        [keras.layers.Dense(1, name="left")(left_in), keras.layers.Dense(1, name="right")(right_in)]
    )
    model = keras.Model([left_in, right_in], out)
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _layer(variable) -> str:
    return variable.path.rsplit("/", 1)[0]


def test_gradient_update_and_learning_rate_monitors_match_closed_forms(tmp_path: Path):
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((64, 4)), rng.standard_normal((64, 3))
    y = rng.standard_normal((64, 1))
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=10, decay_rate=0.5)
    model = _two_branch_model(oz.optimizers.SGD(learning_rate=schedule, momentum=0.5))
    before_step: list[list[np.ndarray]] = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda *_: before_step.append(_weights(model)))
    monitors = [
        GradientNormMonitor(every_n_steps=3, log_dir=tmp_path),
        UpdateRatioMonitor(every_n_steps=3, log_dir=tmp_path),
        LearningRateMonitor(every_n_steps=3, log_dir=tmp_path),
    ]
    history = model.fit(
        [x1.astype("float32"), x2.astype("float32")], y.astype("float32"),
        batch_size=64, epochs=6, verbose=0, callbacks=[record, *monitors],
    )
    gradient_monitor, ratio_monitor, rate_monitor = monitors

    # One full batch per epoch: step 6 starts from the weights before epoch 6.
    w_left, b_left, w_right, b_right = before_step[5]
    residual = x1 @ w_left + b_left + x2 @ w_right + b_right - y
    d_prediction = 2.0 * residual / len(y)
    grads = [x1.T @ d_prediction, d_prediction.sum(0), x2.T @ d_prediction, d_prediction.sum(0)]
    left = np.sqrt(np.sum(grads[0] ** 2) + np.sum(grads[1] ** 2))
    right = np.sqrt(np.sum(grads[2] ** 2) + np.sum(grads[3] ** 2))
    assert [s for s, _ in gradient_monitor.history["grad_norm"]] == [3, 6]
    variables = model.trainable_variables
    measured = {name: values[-1][1] for name, values in gradient_monitor.history.items()}
    np.testing.assert_allclose(measured["grad_norm"], np.hypot(left, right), rtol=1e-5)
    np.testing.assert_allclose(measured["grad_norm_clipped"], np.hypot(left, right), rtol=1e-5)
    np.testing.assert_allclose(measured[f"grad_norm/{_layer(variables[0])}"], left, rtol=1e-5)
    np.testing.assert_allclose(measured[f"grad_norm/{_layer(variables[2])}"], right, rtol=1e-5)
    assert measured["grad_clipped_fraction"] == 0.0

    after = _weights(model)
    delta = [a - b for a, b in zip(after, before_step[5])]

    def ratio(indices):
        return np.sqrt(sum(np.sum(delta[i] ** 2) for i in indices) / sum(np.sum(after[i] ** 2) for i in indices))

    ratios = {name: values[-1][1] for name, values in ratio_monitor.history.items()}
    np.testing.assert_allclose(ratios["update_ratio"], ratio(range(4)), rtol=1e-4)
    np.testing.assert_allclose(ratios[f"update_ratio/{_layer(variables[0])}"], ratio([0, 1]), rtol=1e-4)
    np.testing.assert_allclose(ratios[f"update_ratio/{_layer(variables[2])}"], ratio([2, 3]), rtol=1e-4)

    expected_rates = [(s, 0.05 * 0.5 ** (s / 10)) for s in (3, 6)]
    np.testing.assert_allclose(rate_monitor.history["learning_rate"], expected_rates, rtol=1e-6)

    # The epoch logs (History) carry the latest global values, not per-layer ones.
    assert history.history["grad_norm"][-1] == measured["grad_norm"]
    assert history.history["learning_rate"][-1] == rate_monitor.history["learning_rate"][-1][1]
    assert not any("/" in key for key in history.history)

    events = read_events(tmp_path)
    for monitor in monitors:
        for name, series in monitor.history.items():
            logged = events["scalars"][f"optimizer/{name}"]
            assert [s for s, _ in logged] == [s for s, _ in series]
            np.testing.assert_allclose([v for _, v in logged], [v for _, v in series], rtol=1e-6)
    assert events["texts"] == {}, "a clean run raises no alert"


def _spike_run(spike_at: int | None, tmp_path: Path, make_optimizer=None, strategy=None):
    """`(monitor, events)` of two epochs with a corrupt batch at `spike_at`;
    the model and optimizer built in `strategy`'s scope when given."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((640, 8)).astype("float32")
    y = (x @ rng.standard_normal((8, 1))).astype("float32")
    if spike_at is not None:
        # A corrupt batch: inputs and targets off by orders of magnitude.
        x[spike_at * 32 : (spike_at + 1) * 32] *= 100.0
        y[spike_at * 32 : (spike_at + 1) * 32] *= 1000.0
    keras.utils.set_random_seed(0)
    make_optimizer = make_optimizer or (lambda: oz.optimizers.Adam(1e-3))
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)]
        )
        model.compile(optimizer=make_optimizer(), loss="mse")
    monitor = GradientNormMonitor(every_n_steps=5, log_dir=tmp_path)
    model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0, callbacks=[monitor])
    return monitor, read_events(tmp_path)


def test_spike_alert_fires_on_an_injected_spike_and_not_on_the_clean_run(tmp_path: Path):
    clean, clean_events = _spike_run(None, tmp_path / "clean")
    assert clean.alerts == [] and clean_events["texts"] == {}
    assert len(clean.history["grad_norm"]) == 8

    # Batch 16 is step 17 in the first epoch and step 37 in the second, each
    # between two readings (15 and 20, 35 and 40): only the running maximum
    # can catch them.
    spiked, events = _spike_run(16, tmp_path / "spiked")
    assert [(a.step, a.kind) for a in spiked.alerts] == [(17, "spike"), (37, "spike")]
    assert spiked.alerts[0].value > 10 * max(v for _, v in clean.history["grad_norm_max"])
    assert dict(spiked.history["grad_norm_max"])[20] == spiked.alerts[0].value
    texts = events["texts"]["optimizer/alerts"]
    assert [step for step, _ in texts] == [17, 37] and "spike at step 17" in texts[0][1]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute strategies are TensorFlow's")
@pytest.mark.parametrize(
    "make_optimizer",
    [lambda: oz.optimizers.Adam(1e-3, global_clipnorm=5.0), lambda: Monitored(keras.optimizers.Adam(1e-3))],
    ids=["zoo_clipped", "monitored_keras"],
)
def test_gradient_norm_monitor_under_a_distribution_strategy_reads_what_it_reads_without(make_optimizer, tmp_path):
    """Under a (one-device) `MirroredStrategy` the telemetry variables are
    mirrored, which have no in-place scatter: the maximum's restart after
    each reading must still happen, so the spike is reported once."""
    import tensorflow as tf

    plain, _ = _spike_run(16, tmp_path / "plain", make_optimizer)
    mirrored, _ = _spike_run(16, tmp_path / "mirrored", make_optimizer, tf.distribute.MirroredStrategy(["/cpu:0"]))
    assert [(a.step, a.kind) for a in mirrored.alerts] == [(17, "spike"), (37, "spike")]
    # The same series in the same order (the second model's layers have other names).
    assert [n.partition("/")[0] for n in mirrored.history] == [n.partition("/")[0] for n in plain.history]
    for got, expected in zip(mirrored.history.values(), plain.history.values()):
        assert [s for s, _ in got] == [s for s, _ in expected]
        np.testing.assert_allclose([v for _, v in got], [v for _, v in expected], rtol=1e-4)


def test_vanishing_and_nonfinite_gradients_raise_alerts():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=oz.optimizers.Adam(1e-3, nonfinite="skip"), loss="mse")
    zeros = np.zeros((32, 3), "float32")
    monitor = GradientNormMonitor(every_n_steps=2)
    model.fit(zeros, zeros[:, :1], batch_size=8, epochs=1, verbose=0, callbacks=[monitor])
    assert [(a.step, a.kind) for a in monitor.alerts] == [(2, "vanishing"), (4, "vanishing")]

    poisoned = np.ones((32, 3), "float32")
    poisoned[9, 1] = np.nan  # in batch 1, i.e. step 2 (skipped, so steps are 1, 2, 2, 3)
    monitor = GradientNormMonitor(every_n_steps=2, vanishing_threshold=0.0)
    model.fit(poisoned, poisoned[:, :1], batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[monitor])
    assert [a.kind for a in monitor.alerts] == ["nonfinite"]
    assert monitor.alerts[0].step == 2 + 4  # four steps taken in the first fit


def _moment_optimizer(kind: str):
    if kind == "zoo":
        return oz.optimizers.Adam(0.01, epsilon=1e-3)
    keras_adam = keras.optimizers.Adam(0.01, epsilon=1e-3)
    return Monitored(keras_adam) if kind == "monitored_keras" else keras_adam


@pytest.mark.parametrize("kind", ["zoo", "monitored_keras", "keras"])
def test_moment_statistics_equal_numpy_statistics_of_the_slots(kind, tensor_size, tmp_path: Path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 3)).astype("float32"), rng.standard_normal((12, 2)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    optimizer = _moment_optimizer(kind)
    model.compile(optimizer=optimizer, loss="mse")
    monitor = MomentMonitor(every_n_steps=3, log_dir=tmp_path, per_layer=True, percentiles=(10, 50, 99))
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[monitor])
    assert [s for s, _ in monitor.history["second_moment_mean"]] == [3, 6]

    inner = optimizer.inner_optimizer if kind == "monitored_keras" else optimizer
    if kind == "zoo":
        m = [to_numpy(s) for s in inner._slots["m"]]
        v = [to_numpy(s) for s in inner._slots["v"]]
        effective = [0.01 / (np.sqrt(vi / (1 - 0.999**6)) + 1e-3) for vi in v]
    else:
        m = [to_numpy(s) for s in inner._momentums]
        v = [to_numpy(s) for s in inner._velocities]
        effective = [0.01 * np.sqrt(1 - 0.999**6) / (np.sqrt(vi) + 1e-3) for vi in v]
    quantities = {"first_moment_abs": [np.abs(a) for a in m], "second_moment": v, "effective_lr": effective}
    final = {name: values[-1][1] for name, values in monitor.history.items()}
    layer = _layer(model.trainable_variables[2])
    for quantity, per_variable in quantities.items():
        for suffix, indices in (("", range(4)), (f"/{layer}", [2, 3])):
            flat = np.concatenate([np.ravel(per_variable[i]).astype(np.float64) for i in indices])
            expected = {"mean": flat.mean(), "max": flat.max()}
            expected.update({f"p{q}": np.percentile(flat, q) for q in (10, 50, 99)})
            for statistic, value in expected.items():
                np.testing.assert_allclose(
                    final[f"{quantity}_{statistic}{suffix}"], value, rtol=2e-5,
                    err_msg=f"{quantity}_{statistic}{suffix}",
                )

    histograms = read_events(tmp_path)["histograms"]
    assert sorted(histograms) == [
        "optimizer/effective_lr_log10", "optimizer/first_moment", "optimizer/second_moment",
    ]
    (step, first), = histograms["optimizer/first_moment"][-1:]
    all_m = np.concatenate([np.ravel(a) for a in m])
    assert step == 6 and first["num"] == all_m.size == 4 * 3 + 4 + 4 * 2 + 2
    np.testing.assert_allclose([first["min"], first["max"]], [all_m.min(), all_m.max()], rtol=1e-6)
    counts, edges = np.histogram(all_m, bins=30, range=(all_m.min(), all_m.max()))
    np.testing.assert_array_equal(first["bucket"], counts)
    np.testing.assert_allclose(first["bucket_limit"], edges[1:], atol=1e-6 * np.ptp(all_m))


def _fit_26_parameters_with(monitor):
    """Three Adam steps of a 3-4-2 MLP (26 parameters) under `monitor`."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((12, 3)).astype("float32"), rng.standard_normal((12, 2)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    optimizer = oz.optimizers.Adam(0.01)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[monitor])
    return model, optimizer


@pytest.fixture(params=["small", "large", "mixed"])
def tensor_size(request, monkeypatch):
    """The reading concatenates consecutive small tensors and keeps large
    ones apart (`_parts`): all three ways, with the same tiny model (3-4-2:
    12, 4, 8 and 2 values; "mixed" takes the first kernel alone and the
    other three concatenated)."""
    large_from = {"small": math.inf, "large": 0, "mixed": 12}[request.param]
    monkeypatch.setattr(
        monitors_module, "has_small_tensors", lambda tensors: max(math.prod(t.shape) for t in tensors) < large_from
    )
    return request.param


def test_percentiles_over_sample_size_are_those_of_the_fixed_sample(tensor_size):
    monitor = MomentMonitor(every_n_steps=3, per_layer=True, percentiles=(0, 50, 90), sample_size=7)
    model, optimizer = _fit_26_parameters_with(monitor)
    final = {name: values[-1][1] for name, values in monitor.history.items()}
    v = [to_numpy(s).astype(np.float64) for s in optimizer._slots["v"]]
    layer = _layer(model.trainable_variables[2])
    for suffix, indices in (("", range(4)), (f"/{layer}", [2, 3])):
        flat = np.concatenate([np.ravel(v[i]) for i in indices])
        sample = flat[_sample_positions(flat.size, 7)]
        assert sample.size == 7 and np.unique(_sample_positions(flat.size, 7)).size == 7
        for q in (0, 50, 90):
            np.testing.assert_allclose(
                final[f"second_moment_p{q}{suffix}"], np.percentile(sample, q), rtol=2e-5
            )
        # The sample's percentiles differ from the full ones (so this test can
        # fail); mean and max stay exact.
        assert any(
            not np.isclose(np.percentile(sample, q), np.percentile(flat, q), rtol=1e-3)
            for q in (0, 50, 90)
        )
        np.testing.assert_allclose(final[f"second_moment_max{suffix}"], flat.max(), rtol=2e-5)
        np.testing.assert_allclose(final[f"second_moment_mean{suffix}"], flat.mean(), rtol=2e-5)


def test_histograms_over_sample_size_are_the_fixed_sample_scaled(tensor_size, tmp_path: Path):
    """Over `sample_size` parameters a histogram is the percentile sample's,
    its counts and sums scaled to the number of parameters."""
    _, optimizer = _fit_26_parameters_with(MomentMonitor(every_n_steps=3, log_dir=tmp_path, sample_size=7))
    flat = np.concatenate([np.ravel(to_numpy(s)).astype(np.float64) for s in optimizer._slots["v"]])
    sample = flat[_sample_positions(flat.size, 7)]
    (step, written), = read_events(tmp_path)["histograms"]["optimizer/second_moment"]
    assert step == 3 and written["num"] == pytest.approx(flat.size)
    np.testing.assert_allclose([written["min"], written["max"]], [sample.min(), sample.max()], rtol=1e-6)
    counts, _ = np.histogram(sample, bins=30, range=(sample.min(), sample.max()))
    np.testing.assert_allclose(written["bucket"], counts * flat.size / 7, rtol=1e-6)
    np.testing.assert_allclose(written["sum"], sample.sum() * flat.size / 7, rtol=1e-5)
    # Not the whole's histogram (so this test can fail).
    assert (sample.min(), sample.max()) != (flat.min(), flat.max())


@pytest.mark.skipif(BACKEND != "torch", reason="only torch's reading runs eagerly; XLA fuses the others")
def test_moment_reading_holds_one_variables_values_at_a_time(monkeypatch):
    """On an eager backend a reading reduces each large variable's values
    (such as its effective learning rates) before computing the next one's,
    so its temporaries are one variable's worth, not the whole model's."""
    monkeypatch.setattr(monitors_module, "has_small_tensors", lambda tensors: False)
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(shape).astype("float32") for shape in ((3, 4), (4,), (4, 2), (2,))]
    variables = [keras.Variable(a) for a in arrays]
    held = []

    def tracked(index):
        assert all(ref() is None for ref in held), "an earlier part is still held"
        values = keras.ops.reshape(keras.ops.convert_to_tensor(variables[index]) * 2.0, (-1,))
        held.append(weakref.ref(values))
        return values

    parts = monitors_module._parts(tracked, variables, range(4))
    first = next(parts)
    with pytest.raises(AssertionError, match="still held"):
        next(parts)  # `first` is still held here (so this test can fail).
    del first
    held.clear()
    monitor = MomentMonitor(sample_size=5)
    import torch

    with torch.no_grad():  # as the reading runs (`_compile`)
        (total, largest, size), (sample, scale) = monitor._reduce(
            tracked, variables, range(4), statistics=True, sample=True
        )
    flat = 2.0 * np.concatenate([a.ravel() for a in arrays]).astype(np.float64)
    assert size == flat.size == 26 and scale == pytest.approx(26 / 5)
    np.testing.assert_allclose([to_numpy(total), to_numpy(largest)], [flat.sum(), flat.max()], rtol=1e-6)
    np.testing.assert_allclose(to_numpy(sample), flat[_sample_positions(26, 5)], rtol=1e-6)


def test_per_layer_reading_computes_each_variables_values_once(monkeypatch):
    """With `per_layer` a variable's effective learning rates serve both the
    whole model's statistics and its layer's: computed once per reading
    (traced once, on the compiled backends)."""
    evaluated = []
    per_variable_fn = monitors_module.telemetry.effective_learning_rate_fn

    def counting(optimizer):
        per_variable = per_variable_fn(optimizer)
        return lambda index: evaluated.append(index) or per_variable(index)

    monkeypatch.setattr(monitors_module.telemetry, "effective_learning_rate_fn", counting)
    model, _ = _fit_26_parameters_with(MomentMonitor(every_n_steps=3, per_layer=True))
    assert sorted(evaluated) == list(range(len(model.trainable_variables)))


def test_monitors_measure_only_every_n_steps_and_leave_batch_end_async():
    monitor = LearningRateMonitor(every_n_steps=5)
    calls = []
    measure = monitor.measure
    monitor.measure = lambda optimizer, step: calls.append(step) or measure(optimizer, step)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x = np.ones((56, 2), "float32")
    model.fit(x, x[:, :1], batch_size=4, epochs=2, verbose=0, callbacks=[monitor])
    assert calls == [5, 10, 15, 20, 25]
    for cls in (GradientNormMonitor, MomentMonitor, UpdateRatioMonitor, LearningRateMonitor):
        # Overriding it would make Keras convert the logs on the main thread every step.
        assert keras_utils.is_default(cls.on_train_batch_end)


def test_monitors_due_together_read_the_optimizer_step_of_their_own_fit():
    """The monitors due after the same batch share one read of the optimizer
    step; a later `fit` of the same model counts its batches from 0 again,
    and must not get the step read at the same count in the fit before."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=oz.optimizers.SGD(0.01), loss="mse")
    # Two batches a fit: each reads once, at the same count (2).
    x = np.ones((8, 2), "float32")
    monitors = [GradientNormMonitor(every_n_steps=2), LearningRateMonitor(every_n_steps=2)]
    for _ in range(2):
        model.fit(x, x[:, :1], batch_size=4, epochs=1, verbose=0, callbacks=monitors)
    for monitor, name in zip(monitors, ["grad_norm", "learning_rate"]):
        assert [step for step, _ in monitor.history[name]] == [2, 4]


@pytest.mark.skipif(BACKEND != "jax", reason="only JAX's fit keeps its state outside the variables")
def test_readings_mid_epoch_read_jax_state_without_syncing_it():
    class SyncEveryStep(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            _ = self.model  # Keras's `Callback.model` syncs the state on JAX

    def run(extra_callbacks):
        keras.utils.set_random_seed(0)
        schedule = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=3, decay_rate=0.5)
        model = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(4, name="hidden"), keras.layers.Dense(1, name="out")],
            name="net",
        )
        model.compile(optimizer=oz.optimizers.Adam(schedule), loss="mse")
        syncs = []
        sync = model.jax_state_sync
        model.jax_state_sync = lambda: syncs.append(model._jax_state_synced) or sync()
        monitors = [LearningRateMonitor(4), UpdateRatioMonitor(4), MomentMonitor(4, percentiles=(50,))]
        x = np.random.default_rng(0).standard_normal((48, 3)).astype("float32")
        model.fit(x, x[:, :1], batch_size=4, epochs=1, shuffle=False, verbose=0,
                  callbacks=[*extra_callbacks, *monitors])
        return [m.history for m in monitors], syncs

    histories, syncs = run([])
    synced_histories, forced = run([SyncEveryStep()])
    assert forced.count(False) > 10, "the reference run syncs at every step"
    # Readings after steps 4 and 8 read the unsynced state; Keras's own sync
    # at the end of the epoch is the only one.
    assert syncs.count(False) == 1
    assert [s for s, _ in histories[0]["learning_rate"]] == [4, 8, 12]
    for history, synced in zip(histories, synced_histories):
        assert history.keys() == synced.keys()
        for name in history:
            np.testing.assert_array_equal(history[name], synced[name], err_msg=name)


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_update_ratio_needs_no_telemetry_and_spans_the_last_execution(steps_per_execution):
    """Any Keras optimizer, unwrapped: the ratio compares the weights after the
    reading's step with a copy taken before its (last) execution."""
    if steps_per_execution > 1 and keras.backend.backend() == "torch":
        pytest.skip("Keras's torch trainer runs one step per execution")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(
        optimizer=keras.optimizers.Adam(0.05), loss="mse", steps_per_execution=steps_per_execution
    )
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((48, 3)).astype("float32"), rng.standard_normal((48, 2)).astype("float32")
    snapshots = {}
    record = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs=None: snapshots.setdefault(batch, _weights(model))
    )
    monitor = UpdateRatioMonitor(every_n_steps=6, per_layer=False)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[record, monitor])
    steps = [step for step, _ in monitor.history["update_ratio"]]
    assert steps == [6, 12]
    before, after = snapshots[12 - steps_per_execution], _weights(model)
    expected = np.sqrt(
        sum(np.sum((a - b) ** 2) for a, b in zip(after, before)) / sum(np.sum(a**2) for a in after)
    )
    np.testing.assert_allclose(monitor.history["update_ratio"][-1][1], expected, rtol=1e-4)
    assert not getattr(model.optimizer, "record_telemetry", False)


def test_telemetry_monitors_need_a_recording_optimizer():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    x = np.ones((8, 2), "float32")
    with pytest.raises(ValueError, match="Monitored"):
        model.fit(x, x[:, :1], verbose=0, callbacks=[GradientNormMonitor()])
    model.compile(optimizer=oz.optimizers.SGD(0.01), loss="mse")
    with pytest.warns(UserWarning, match="keeps no moments"):
        model.fit(x, x[:, :1], batch_size=2, verbose=0, callbacks=[MomentMonitor(every_n_steps=2)])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: GradientNormMonitor(every_n_steps=0), "every_n_steps must be an integer >= 1, got 0"),
        (lambda: LearningRateMonitor(every_n_steps=2.5), "every_n_steps must be an integer >= 1"),
        (lambda: GradientNormMonitor(spike_factor=1.0), "spike_factor must be a number > 1, got 1.0"),
        (lambda: GradientNormMonitor(window=0), "window must be an integer >= 1, got 0"),
        (lambda: GradientNormMonitor(vanishing_threshold=-1e-3), "vanishing_threshold must be a number >= 0"),
        (lambda: MomentMonitor(percentiles=(50, 101)), r"percentiles must be numbers in \[0, 100\]"),
        (lambda: MomentMonitor(sample_size=0), "sample_size must be an integer >= 1, got 0"),
        (lambda: UpdateRatioMonitor(log_dir=3), "log_dir must be a path or None, got 3"),
    ],
)
def test_bad_arguments_raise_value_error_at_construction(make, message):
    with pytest.raises(ValueError, match=message):
        make()
