"""Optimizer telemetry: what the compiled step records, checked against NumPy.

Gradient norms are compared with norms computed in NumPy from the very
gradients fed to the step (before and after Keras's clipping, also computed in
NumPy), update norms with ‖θ_after − θ_before‖ read from the variables, and the
effective learning rate with the step it actually took. The `Monitored`
wrapper must leave keras core's trajectory bit-identical.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import keras_optzoo as oz
from keras_optzoo.callbacks import GradientNormMonitor, Monitored, UpdateRatioMonitor
from keras_optzoo.optimizers import telemetry
from tests.harness import compiled_apply, to_numpy

SHAPES = [(3, 2), (4,), (2, 2)]
# Gradient scales per step: some steps are clipped by every clipping option
# below, some by none, so `clipped_steps` must count exactly the clipped ones.
SCALES = [0.02, 10.0, 0.1, 3.0, 0.05]


def _variables(seed: int = 0, shapes=SHAPES) -> list[keras.Variable]:
    rng = np.random.default_rng(seed)
    return [keras.Variable(rng.standard_normal(s).astype("float32"), name=f"w{i}") for i, s in enumerate(shapes)]


def _gradients(seed: int = 1, shapes=SHAPES, factor: float = 1.0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[(rng.standard_normal(s) * scale * factor).astype("float32") for s in shapes] for scale in SCALES]


def _numpy_clip(grads: list[np.ndarray], clip: dict) -> tuple[list[np.ndarray], bool]:
    """Keras's clipping in float64, and whether it changed anything."""
    g = [x.astype(np.float64) for x in grads]
    if "global_clipnorm" in clip:
        c = clip["global_clipnorm"]
        norm = np.sqrt(sum((x**2).sum() for x in g))
        return [x * min(1.0, c / norm) for x in g], norm > c
    if "clipnorm" in clip:
        c = clip["clipnorm"]
        norms = [np.linalg.norm(x) for x in g]
        return [x * min(1.0, c / n) for x, n in zip(g, norms)], max(norms) > c
    if "clipvalue" in clip:
        c = clip["clipvalue"]
        return [np.clip(x, -c, c) for x in g], max(np.abs(x).max() for x in g) > c
    return g, False


def _read(state: telemetry.Telemetry) -> dict[str, np.ndarray]:
    names = [
        "gradient_norm", "clipped_gradient_norm", "max_gradient_norm", "max_gradient_norm_step",
        "clipped_steps", "recorded_steps", "update_norm", "gradient_norms", "update_norms",
    ]
    return {name: to_numpy(getattr(state, name)).astype(np.float64) for name in names}


def _global(norms) -> float:
    return float(np.sqrt(np.sum(np.square(norms))))


def _check_step(state, grads, clip, before, after, expected_clipped, step, rtol=2e-5):
    recorded = _read(state)
    clipped, _ = _numpy_clip(grads, clip)
    norms = [np.linalg.norm(g.astype(np.float64)) for g in grads]
    np.testing.assert_allclose(recorded["gradient_norms"], norms, rtol=rtol)
    np.testing.assert_allclose(recorded["gradient_norm"], _global(norms), rtol=rtol)
    np.testing.assert_allclose(
        recorded["clipped_gradient_norm"], _global([np.linalg.norm(g) for g in clipped]), rtol=rtol
    )
    if before is None:
        assert not np.any(recorded["update_norms"]) and recorded["update_norm"] == 0, "not asked for"
    else:
        updates = [np.linalg.norm(a - b) for a, b in zip(after, before)]
        np.testing.assert_allclose(recorded["update_norms"], updates, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(recorded["update_norm"], _global(updates), rtol=1e-4, atol=1e-7)
    assert recorded["clipped_steps"] == expected_clipped
    assert recorded["recorded_steps"] == step


def _check_recording(optimizer, variables, gradient_steps, clip: dict) -> None:
    """Apply each step's gradients through the compiled step and check the
    recording against float64 NumPy after every step (`_check_step`: the
    update norms where the optimizer records them, else that they stay 0),
    the running maximum and its step included."""
    apply = compiled_apply(optimizer, variables)
    state = optimizer._telemetry
    updates = telemetry.recording_updates(optimizer)
    expected_clipped, largest, largest_step = 0, 0.0, 0
    for step, grads in enumerate(gradient_steps, start=1):
        before = [to_numpy(v).astype(np.float64) for v in variables] if updates else None
        apply(grads)
        after = [to_numpy(v).astype(np.float64) for v in variables] if updates else None
        expected_clipped += int(_numpy_clip(grads, clip)[1])
        _check_step(state, grads, clip, before, after, expected_clipped, step)
        norm = _global([np.linalg.norm(g.astype(np.float64)) for g in grads])
        if norm > largest:
            largest, largest_step = norm, step
        np.testing.assert_allclose(to_numpy(state.max_gradient_norm), largest, rtol=2e-5)
        assert int(to_numpy(state.max_gradient_norm_step)) == largest_step
    if clip:
        assert 0 < expected_clipped < len(SCALES), "the scales must clip some steps, not all"


# Each clipping (thresholds that clip some of `_gradients()`'s steps, not all).
over_clippings = pytest.mark.parametrize(
    "clip",
    [{}, {"global_clipnorm": 1.0}, {"clipnorm": 0.5}, {"clipvalue": 0.3}],
    ids=["none", "global_clipnorm", "clipnorm", "clipvalue"],
)


@over_clippings
def test_recorded_norms_match_numpy_in_the_compiled_step(clip):
    variables = _variables()
    # Weight decay is part of the update the norms must include.
    optimizer = oz.optimizers.Adam(learning_rate=0.05, weight_decay=0.1, **clip)
    optimizer.build(variables)
    optimizer.record_telemetry = True
    _check_recording(optimizer, variables, _gradients(), clip)


@over_clippings
def test_gradient_norms_recorded_without_update_norms_match_numpy(clip, monkeypatch):
    """As the monitors record: gradients only. Small tensors, so on torch the
    eager step records, with its bookkeeping in Python floats
    (`telemetry._HostScalars`); a step on some variables only records 0 for
    the others."""
    variables = _variables()
    optimizer = oz.optimizers.Adam(learning_rate=0.05, **clip)
    optimizer.build(variables)
    optimizer.record_telemetry, optimizer.record_update_norms = True, False
    chosen = []
    step_ops = telemetry._step_ops

    def spy(opt):
        chosen.append(step_ops(opt))
        return chosen[-1]

    monkeypatch.setattr(telemetry, "_step_ops", spy)
    _check_recording(optimizer, variables, _gradients(), clip)
    state = optimizer._telemetry

    # A step on the last variable only (Keras drops the variables that got no gradient).
    last = _gradients(seed=5)[1][-1]
    optimizer.apply([keras.ops.convert_to_tensor(last)], variables[-1:])
    recorded = _read(state)
    np.testing.assert_allclose(recorded["gradient_norms"], [0.0, 0.0, np.linalg.norm(last)], rtol=2e-5)
    assert recorded["recorded_steps"] == len(SCALES) + 1
    if keras.backend.backend() == "torch":
        namespaces = {namespace for namespace, _, _ in chosen}
        assert namespaces == {telemetry._HostScalars}, "the eager CPU step records on the host"


# Large enough for TensorFlow's XLA update function (tensors of 2**15
# elements on average); on torch `fused=True` runs `CompiledStep`, which
# records the gradient telemetry inside its compiled graph.
LARGE_SHAPES = [(200, 200), (40000,)]


@pytest.mark.parametrize(
    "clip",
    [{}, {"global_clipnorm": 1.0}, {"clipnorm": 0.5}, {"clipvalue": 0.05}],
    ids=["none", "global_clipnorm", "clipnorm", "clipvalue"],
)
def test_gradient_norms_recorded_inside_the_compiled_update_match_numpy(clip, monkeypatch):
    variables = _variables(shapes=LARGE_SHAPES)
    optimizer = oz.optimizers.Adam(learning_rate=0.05, fused=True, **clip)
    optimizer.build(variables)
    optimizer.record_telemetry, optimizer.record_update_norms = True, False
    taken = []
    take = telemetry.take_gradients
    monkeypatch.setattr(telemetry, "take_gradients", lambda opt: taken.append(take(opt)) or taken[-1])
    # Scaled so that the clipping thresholds clip some steps, not all.
    _check_recording(optimizer, variables, _gradients(shapes=LARGE_SHAPES, factor=1 / 200), clip)
    if keras.backend.backend() == "torch":
        # `CompiledStep` took the recording over, and compiled it (a failed
        # compile falls back to the eager step for good, which records too).
        assert len(taken) == len(SCALES) and all(note is not None for note in taken)
        assert not optimizer._fused_step.failed


def test_gradient_accumulation_records_the_averaged_gradient_once_per_update():
    variables = _variables()
    optimizer = oz.optimizers.Adam(learning_rate=0.05, gradient_accumulation_steps=2)
    optimizer.build(variables)
    optimizer.record_telemetry, optimizer.record_update_norms = True, False
    apply = compiled_apply(optimizer, variables)
    state = optimizer._telemetry
    gradients = _gradients()[:4]
    for update, (first, second) in enumerate(zip(gradients[::2], gradients[1::2]), start=1):
        apply(first)
        assert int(to_numpy(state.recorded_steps)) == update - 1, "recorded before the update step"
        apply(second)
        averaged = [(a.astype(np.float64) + b) / 2 for a, b in zip(first, second)]
        norms = [np.linalg.norm(g) for g in averaged]
        np.testing.assert_allclose(to_numpy(state.gradient_norms), norms, rtol=2e-5)
        np.testing.assert_allclose(to_numpy(state.gradient_norm), _global(norms), rtol=2e-5)
        assert int(to_numpy(state.recorded_steps)) == update


def test_nothing_is_recorded_while_recording_is_off():
    variables = _variables()
    optimizer = oz.optimizers.Adam(learning_rate=0.05, global_clipnorm=1.0)
    optimizer.build(variables)
    # Created at build, whatever the flag, so a traced step never creates one.
    assert all(any(v is w for w in optimizer.variables) for v in optimizer._telemetry.variables)
    assert optimizer.record_telemetry is False
    apply = compiled_apply(optimizer, variables)
    for grads in _gradients():
        apply(grads)
    for name, value in _read(optimizer._telemetry).items():
        assert not np.any(value), f"{name} was recorded with record_telemetry=False"


def test_reset_max_zeroes_the_maximum_and_its_step_only():
    variables = _variables()
    optimizer = oz.optimizers.Adam(learning_rate=0.05)
    optimizer.build(variables)
    optimizer.record_telemetry = True
    apply = compiled_apply(optimizer, variables)
    for grads in _gradients():
        apply(grads)
    state = optimizer._telemetry
    before = _read(state)
    assert before["max_gradient_norm"] > 0 and before["max_gradient_norm_step"] > 0
    state.reset_max()
    after = _read(state)
    assert after.pop("max_gradient_norm") == 0 and after.pop("max_gradient_norm_step") == 0
    for name, value in after.items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


@pytest.mark.parametrize("bad", [np.inf, np.nan], ids=["inf", "nan"])
@pytest.mark.parametrize("update_norms", [True, False], ids=["with_update_norms", "gradients_only"])
def test_skipped_step_records_its_nonfinite_norm(bad, update_norms):
    """Gradients only is how the monitors record (on torch's eager CPU step,
    the bookkeeping in Python floats)."""
    variables = _variables()
    optimizer = oz.optimizers.Adam(learning_rate=0.05, nonfinite="skip")
    optimizer.build(variables)
    optimizer.record_telemetry, optimizer.record_update_norms = True, update_norms
    grads = _gradients()[0]
    grads[1] = grads[1].copy()
    grads[1][0] = bad
    before = [to_numpy(v) for v in variables]
    compiled_apply(optimizer, variables)(grads)
    recorded = _read(optimizer._telemetry)
    check = np.isinf if np.isinf(bad) else np.isnan
    assert check(recorded["gradient_norm"]) and check(recorded["max_gradient_norm"])
    assert check(recorded["gradient_norms"][1]) and np.isfinite(recorded["gradient_norms"][[0, 2]]).all()
    assert recorded["max_gradient_norm_step"] == 1 and recorded["recorded_steps"] == 1
    assert recorded["update_norm"] == 0.0, "a skipped step changes no weight"
    assert [np.array_equal(to_numpy(v), b) for v, b in zip(variables, before)] == [True] * 3


def test_wrapper_keeps_keras_core_adam_trajectory_and_records_the_same():
    grads_sequence = _gradients()
    clip = {"global_clipnorm": 1.0}
    plain_vars, wrapped_vars = _variables(), _variables()
    plain = keras.optimizers.Adam(learning_rate=0.05, amsgrad=True, **clip)
    wrapped = Monitored(keras.optimizers.Adam(learning_rate=0.05, amsgrad=True, **clip))
    wrapped.build(wrapped_vars)
    wrapped.record_telemetry = True
    apply_plain = compiled_apply(plain, plain_vars)
    apply_wrapped = compiled_apply(wrapped, wrapped_vars)
    expected_clipped = 0
    for step, grads in enumerate(grads_sequence, start=1):
        before = [to_numpy(v).astype(np.float64) for v in wrapped_vars]
        apply_plain(grads)
        apply_wrapped(grads)
        after = [to_numpy(v).astype(np.float64) for v in wrapped_vars]
        for p, w in zip(plain_vars, wrapped_vars):
            np.testing.assert_array_equal(to_numpy(w), to_numpy(p))
        expected_clipped += int(_numpy_clip(grads, clip)[1])
        _check_step(wrapped._telemetry, grads, clip, before, after, expected_clipped, step)
    for p, w in zip(plain.variables, wrapped.inner_optimizer.variables):
        np.testing.assert_array_equal(to_numpy(w), to_numpy(p))
    assert int(to_numpy(wrapped.iterations)) == len(grads_sequence)


def test_wrapper_round_trips_through_model_saving(tmp_path: Path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=Monitored(keras.optimizers.Adam(learning_rate=0.01)), loss="mse")
    x = np.random.default_rng(0).standard_normal((32, 3)).astype("float32")
    model.fit(x, x[:, :2], batch_size=8, epochs=1, verbose=0,
              callbacks=[GradientNormMonitor(every_n_steps=2)])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, Monitored)
    assert isinstance(loaded.optimizer.inner_optimizer, keras.optimizers.Adam)
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def _dense_model(optimizer) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


@pytest.mark.parametrize("wrapped", [False, True], ids=["zoo", "monitored_keras"])
def test_monitor_retraces_an_already_built_step_and_switches_recording_off_after(wrapped):
    optimizer = Monitored(keras.optimizers.SGD(0.01)) if wrapped else oz.optimizers.SGD(0.01)
    model = _dense_model(optimizer)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 3)).astype("float32"), rng.standard_normal((64, 1)).astype("float32")

    def state():
        return _read(optimizer._telemetry)

    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # traces a step without recording
    assert state()["recorded_steps"] == 0
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[GradientNormMonitor(every_n_steps=4)])
    after_monitored = state()
    assert after_monitored["recorded_steps"] == 8
    assert after_monitored["gradient_norm"] > 0
    assert not np.any(after_monitored["update_norms"]), "no monitor asked for update norms"
    assert optimizer.record_telemetry is False
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert state()["recorded_steps"] == 8, "recording must stop with the monitor"
    # UpdateRatioMonitor compares weight copies: the step still records no update norms.
    monitors = [GradientNormMonitor(every_n_steps=4), UpdateRatioMonitor(every_n_steps=4)]
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=monitors)
    assert state()["recorded_steps"] == 12 and not np.any(state()["update_norms"])
    assert monitors[1].history["update_ratio"][-1][1] > 0
    assert optimizer.record_telemetry is False and not hasattr(optimizer, "record_update_norms")


# (factory, direction the effective learning rate multiplies): "m_hat" the
# bias-corrected first moment, "m" the raw one, "g" the gradient.
EFFECTIVE_LR_CASES = {
    "adam": (lambda: oz.optimizers.Adam(0.1, epsilon=1e-3), "m_hat"),
    "amsgrad": (lambda: oz.optimizers.Adam(0.1, epsilon=1e-3, amsgrad=True), "m_hat"),
    "amsgrad_optax": (lambda: oz.optimizers.Adam(0.1, epsilon=1e-3, amsgrad=True, debias_before_max=True), "m_hat"),
    "adam_epsilon_hat": (lambda: oz.optimizers.Adam(0.1, epsilon=1e-3, epsilon_hat=True), "m_hat"),
    "radam": (lambda: oz.optimizers.RAdam(0.1, beta_2=0.9, epsilon=1e-3), "m_hat"),
    "adabelief": (lambda: oz.optimizers.AdaBelief(0.1, epsilon=1e-3), "m_hat"),
    "yogi": (lambda: oz.optimizers.Yogi(0.1, epsilon=1e-3), "m"),
    "yogi_bias_correction": (lambda: oz.optimizers.Yogi(0.1, epsilon=1e-3, bias_correction=True), "m_hat"),
    "rmsprop": (lambda: oz.optimizers.RMSprop(0.1, epsilon=1e-3), "g"),
    "rmsprop_centered_inside": (
        lambda: oz.optimizers.RMSprop(0.1, epsilon=1e-3, centered=True, epsilon_inside_sqrt=True), "g"
    ),
    "adagrad": (lambda: oz.optimizers.Adagrad(0.1, epsilon=1e-3), "g"),
    "adagrad_inside": (lambda: oz.optimizers.Adagrad(0.1, epsilon=1e-3, epsilon_inside_sqrt=True), "g"),
    "keras_adam": (lambda: keras.optimizers.Adam(0.1, epsilon=1e-3), "m_hat"),
    "keras_adamax": (lambda: keras.optimizers.Adamax(0.1, epsilon=1e-3), "m_hat"),
    "keras_rmsprop_centered": (lambda: keras.optimizers.RMSprop(0.1, epsilon=1e-3, centered=True), "g"),
    "keras_adagrad": (lambda: keras.optimizers.Adagrad(0.1, epsilon=1e-3), "g"),
}


@pytest.mark.parametrize("case", sorted(EFFECTIVE_LR_CASES))
def test_effective_learning_rate_is_the_factor_of_the_step_taken(case):
    """With a constant rate, the last step was exactly `Δθ = −η_eff ⊙ direction`.

    ε = 1e-3 against gradients down to 1e-3 makes every ε placement and bias
    correction visible, and RAdam with β₂ = 0.9 crosses its threshold at step 6.
    """
    factory, direction = EFFECTIVE_LR_CASES[case]
    optimizer = factory()
    variables = _variables()
    optimizer.build(variables)
    rng = np.random.default_rng(2)
    first, _ = telemetry.moment_slots(optimizer)
    for step in range(1, 9):
        grads = [
            (rng.choice([-1.0, 1.0], size=s) * 10.0 ** rng.uniform(-3, 0, size=s)).astype("float32")
            for s in SHAPES
        ]
        before = [to_numpy(v).astype(np.float64) for v in variables]
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
        effective = [to_numpy(e).astype(np.float64) for e in telemetry.effective_learning_rates(optimizer)]
        for i, variable in enumerate(variables):
            if direction == "g":
                d = grads[i].astype(np.float64)
            else:
                d = to_numpy(first[i]).astype(np.float64)
                if direction == "m_hat":
                    d = d / (1.0 - optimizer.beta_1**step)
            np.testing.assert_allclose(
                to_numpy(variable) - before[i], -effective[i] * d, rtol=2e-4, atol=1e-7,
                err_msg=f"{case}, step {step}, variable {i}",
            )


def _numpy_moments(optimizer, variables) -> dict[str, list[np.ndarray]]:
    index = {id(v): i for i, v in enumerate(optimizer._trainable_variables)}
    return {
        name: [to_numpy(optimizer._slots[name][index[id(v)]]).astype(np.float64) for v in variables]
        for name in optimizer._slots
    }


def test_effective_learning_rate_formulas_of_nadam_and_adadelta():
    """NAdam's direction mixes m and g and Adadelta's is built from its own
    accumulators, so these two are checked against their formulas in NumPy."""
    for optimizer in (oz.optimizers.NAdam(0.1, epsilon=1e-3), oz.optimizers.Adadelta(0.5, epsilon=1e-3)):
        variables = _variables()
        optimizer.build(variables)
        for grads in _gradients()[:3]:
            optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
        slots = _numpy_moments(optimizer, variables)
        if isinstance(optimizer, oz.optimizers.NAdam):
            expected = [0.1 / (np.sqrt(v / (1 - 0.999**3)) + 1e-3) for v in slots["v"]]
        else:
            expected = [
                0.5 * np.sqrt(d + 1e-3) / np.sqrt(g + 1e-3)
                for g, d in zip(slots["accumulated_grad"], slots["accumulated_delta"])
            ]
        actual = [to_numpy(e) for e in telemetry.effective_learning_rates(optimizer)]
        for a, e in zip(actual, expected):
            np.testing.assert_allclose(a, e, rtol=1e-5)


def test_moment_slots_of_keras_core_and_zoo_optimizers():
    variables = _variables()
    cases = [
        (keras.optimizers.Adam(), "_momentums", "_velocities"),
        (keras.optimizers.RMSprop(), None, "_velocities"),
        (keras.optimizers.SGD(momentum=0.9), "momentums", None),
        (keras.optimizers.SGD(), None, None),
        (keras.optimizers.Lion(), "_momentums", None),
        (oz.optimizers.AdaBelief(), "m", "s"),
        (oz.optimizers.SGD(), None, None),
        (oz.optimizers.Adagrad(), None, "accumulator"),
    ]
    for optimizer, first_name, second_name in cases:
        wrapped = Monitored(optimizer)
        wrapped.build(variables)
        first, second = telemetry.moment_slots(wrapped)
        for found, name in ((first, first_name), (second, second_name)):
            if name is None:
                assert found is None, type(optimizer).__name__
                continue
            zoo_slots = getattr(optimizer, "_slots", {})
            expected = zoo_slots[name] if name in zoo_slots else getattr(optimizer, name)
            assert [id(v) for v in found] == [id(v) for v in expected]
    assert telemetry.effective_learning_rates(keras.optimizers.SGD()) is None


def test_wrapper_rejects_what_it_cannot_wrap():
    with pytest.raises(TypeError, match="keras.optimizers.Optimizer"):
        Monitored("adam")
    with pytest.raises(ValueError, match="clipnorm"):
        Monitored(keras.optimizers.Adam(), clipnorm=1.0)
