"""The non-finite-gradient policy (`nonfinite="apply"|"skip"`), for every name.

`apply` (the default) behaves as Keras: the update goes through, so a NaN shows
up in the weights. `skip`: a step whose gradients hold an inf or NaN in ANY
variable leaves every weight, every slot and `iterations` unchanged, counts the
step in `skipped_steps`, and the finite steps after it continue exactly the
trajectory of a run that never saw the bad step.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.helpers_training import (
    BACKEND,
    NAMES,
    apply_step,
    assert_arrays_identical,
    compiled_apply,
    gradient_sequence,
    make_model,
    make_optimizer,
    make_variables,
    optimizer_state,
    regression_data,
    to_numpy,
    values,
)

SHAPES = [(3, 2), (4,)]
# Non-default hyperparameters that every optimizer accepts and that the skip
# must also hold back: the decoupled decay is a weight change of its own.
WEIGHT_DECAY = 0.05


def _poisoned(
    grads: list[np.ndarray], variable_index: int, value: float
) -> list[np.ndarray]:
    """A copy of one step's gradients with a single bad entry in one variable.

    Only one entry of one variable is bad, so the test fails if the policy
    looks at the first variable only, or skips per variable instead of per step.
    """
    grads = [g.copy() for g in grads]
    grads[variable_index].flat[1] = value
    return grads


def test_default_policy_is_apply() -> None:
    optimizer = make_optimizer("adam")
    assert optimizer.nonfinite == "apply"
    assert optimizer.get_config()["nonfinite"] == "apply"


@pytest.mark.parametrize("name", NAMES)
def test_apply_policy_propagates_nan_like_keras(name: str) -> None:
    good = gradient_sequence(SHAPES, steps=1)[0]
    variables = make_variables(SHAPES)
    optimizer = make_optimizer(name, nonfinite="apply")
    apply_step(optimizer, variables, _poisoned(good, 1, np.nan))

    clean_variables = make_variables(SHAPES)
    apply_step(make_optimizer(name, nonfinite="apply"), clean_variables, good)

    # The NaN reaches the poisoned entry's weight or its slots. Not always the
    # weight: torch's sign(NaN) is 0, so Lion on torch (keras core's too) holds
    # the weight and carries the NaN in its momentum instead.
    reached = [to_numpy(variables[1])] + values(
        optimizer.slots_for(variables[1]).values()
    )
    assert any(np.isnan(state.flat[1]) for state in reached), (
        "the NaN gradient entry reached neither its weight nor its slots"
    )
    # Nothing else is held back: the other variable takes the normal step.
    assert_arrays_identical(
        values(variables[:1]), values(clean_variables[:1]), "weights"
    )
    assert int(to_numpy(optimizer.iterations)) == 1
    assert int(to_numpy(optimizer.skipped_steps)) == 0


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name", NAMES)
def test_skip_policy_skips_bad_steps_and_resumes_the_clean_trajectory(
    name: str, compiled: bool
) -> None:
    # torch's compiled path is `fused=True`; compiling costs seconds per
    # optimizer, so it runs for the names with global state or a sign update.
    fused = {"fused": True} if compiled and BACKEND == "torch" else {}
    if fused and name not in ("adam", "nadam", "lion"):
        pytest.skip("the fused torch step is checked on adam, nadam and lion")
    good = gradient_sequence(SHAPES, steps=5)
    # Bad steps after good ones (slots are non-zero, so "unchanged" is a real
    # check) and two kinds of bad value in different variables.
    bad_steps = {2: _poisoned(good[2], 1, np.nan), 4: _poisoned(good[3], 0, -np.inf)}

    def run(
        with_bad_steps: bool,
    ) -> tuple[list[keras.Variable], keras.optimizers.Optimizer]:
        variables = make_variables(SHAPES)
        optimizer = make_optimizer(name, nonfinite="skip", weight_decay=WEIGHT_DECAY, **fused)
        apply = (
            compiled_apply(optimizer, variables)
            if compiled
            else (lambda grads: apply_step(optimizer, variables, grads))
        )
        good_steps = iter(good)
        for step in range(len(good) + len(bad_steps)):
            if step in bad_steps:
                if not with_bad_steps:
                    continue
                before_weights = values(variables)
                before_state = optimizer_state(
                    optimizer, exclude=[optimizer.skipped_steps]
                )
                skipped_before = int(to_numpy(optimizer.skipped_steps))
                apply(bad_steps[step])
                assert_arrays_identical(values(variables), before_weights, "weights")
                assert_arrays_identical(
                    optimizer_state(optimizer, exclude=[optimizer.skipped_steps]),
                    before_state,
                    "optimizer state",
                )
                assert int(to_numpy(optimizer.skipped_steps)) == skipped_before + 1
            else:
                apply(next(good_steps))
        return variables, optimizer

    variables, optimizer = run(with_bad_steps=True)
    clean_variables, clean_optimizer = run(with_bad_steps=False)

    assert int(to_numpy(optimizer.skipped_steps)) == 2
    assert int(to_numpy(clean_optimizer.skipped_steps)) == 0
    assert int(to_numpy(optimizer.iterations)) == len(good)
    assert_arrays_identical(values(variables), values(clean_variables), "weights")
    assert_arrays_identical(
        optimizer_state(optimizer, exclude=[optimizer.skipped_steps]),
        optimizer_state(clean_optimizer, exclude=[clean_optimizer.skipped_steps]),
        "optimizer state",
    )
    # The comparison can fail: the good steps moved the weights.
    assert not np.array_equal(
        to_numpy(variables[0]), to_numpy(make_variables(SHAPES)[0])
    )


@pytest.mark.parametrize(
    "bad_micro_step", [0, 1], ids=["first-micro-step", "last-micro-step"]
)
@pytest.mark.parametrize("name", ["adam", "nadam", "momentum", "lion"])
def test_skip_with_gradient_accumulation_discards_the_whole_window(
    name: str, bad_micro_step: int
) -> None:
    """With k=2, a bad micro-gradient poisons its window's mean; the window is
    dropped as a whole and the accumulators restart from zero."""
    good = gradient_sequence(SHAPES, steps=6)
    bad_window = [good[2], good[3]]
    bad_window[bad_micro_step] = _poisoned(bad_window[bad_micro_step], 1, np.nan)

    def make() -> tuple[list[keras.Variable], keras.optimizers.Optimizer]:
        return make_variables(SHAPES), make_optimizer(
            name, nonfinite="skip", gradient_accumulation_steps=2
        )

    variables, optimizer = make()
    for grads in good[:2]:
        apply_step(optimizer, variables, grads)
    assert int(to_numpy(optimizer.iterations)) == 1
    before_weights = values(variables)
    before_state = optimizer_state(optimizer, exclude=[optimizer.skipped_steps])
    for grads in bad_window:
        apply_step(optimizer, variables, grads)
    assert_arrays_identical(values(variables), before_weights, "weights")
    assert_arrays_identical(
        optimizer_state(optimizer, exclude=[optimizer.skipped_steps]),
        before_state,
        "optimizer state (accumulators back at zero, counters unchanged)",
    )
    assert int(to_numpy(optimizer.skipped_steps)) == 1
    assert int(to_numpy(optimizer.iterations)) == 1
    for grads in good[4:]:
        apply_step(optimizer, variables, grads)

    clean_variables, clean_optimizer = make()
    for grads in good[:2] + good[4:]:
        apply_step(clean_optimizer, clean_variables, grads)

    assert int(to_numpy(optimizer.iterations)) == 2
    assert_arrays_identical(values(variables), values(clean_variables), "weights")
    assert_arrays_identical(
        optimizer_state(optimizer, exclude=[optimizer.skipped_steps]),
        optimizer_state(clean_optimizer, exclude=[clean_optimizer.skipped_steps]),
        "optimizer state",
    )


@pytest.mark.skipif(BACKEND != "jax", reason="stateless_apply is JAX's optimizer API")
@pytest.mark.parametrize("name", ["adam", "nadam", "momentum"])
def test_stateless_apply_skip_returns_the_input_state(name: str) -> None:
    import jax

    good = gradient_sequence(SHAPES, steps=3)
    variables = make_variables(SHAPES)
    optimizer = make_optimizer(name, nonfinite="skip", weight_decay=WEIGHT_DECAY)
    for grads in good[:2]:
        apply_step(optimizer, variables, grads)
    weights_in = [v.value for v in variables]
    state_in = [v.value for v in optimizer.variables]

    new_weights, new_state = jax.jit(optimizer.stateless_apply)(
        state_in,
        [jax.numpy.asarray(g) for g in _poisoned(good[2], 0, np.nan)],
        weights_in,
    )

    assert_arrays_identical(values(new_weights), values(weights_in), "returned weights")
    skipped_index = next(
        i for i, v in enumerate(optimizer.variables) if v is optimizer.skipped_steps
    )
    for i, (after, before) in enumerate(zip(values(new_state), values(state_in))):
        expected = before + 1 if i == skipped_index else before
        assert_arrays_identical([after], [expected], optimizer.variables[i].path)
    # Stateless means stateless: the Keras variables themselves are untouched.
    assert_arrays_identical(values(variables), values(weights_in), "variables")
    assert int(to_numpy(optimizer.skipped_steps)) == 0


def _fit(name: str, nonfinite: str, x: np.ndarray, y: np.ndarray) -> keras.Model:
    model = make_model(seed=3)
    model.compile(optimizer=make_optimizer(name, nonfinite=nonfinite), loss="mse")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    return model


@pytest.mark.parametrize("name", ["adam", "nadam", "momentum", "lion"])
def test_fit_skips_a_batch_with_a_nan_target(name: str) -> None:
    x, y = regression_data(num_samples=64)
    y_bad = y.copy()
    y_bad[20] = np.nan  # batch 1 of 4: its loss, hence every gradient, is NaN

    model = _fit(name, "skip", x, y_bad)
    keep = np.r_[0:16, 32:64]
    clean = _fit(name, "skip", x[keep], y[keep])

    optimizer = model.optimizer
    assert int(to_numpy(optimizer.skipped_steps)) == 1
    assert int(to_numpy(optimizer.iterations)) == 3
    assert_arrays_identical(values(model.weights), values(clean.weights), "weights")
    assert_arrays_identical(
        optimizer_state(optimizer, exclude=[optimizer.skipped_steps]),
        optimizer_state(clean.optimizer, exclude=[clean.optimizer.skipped_steps]),
        "optimizer state",
    )


def test_fit_apply_policy_lets_the_nan_through() -> None:
    x, y = regression_data(num_samples=64)
    y[20] = np.nan
    model = _fit("adam", "apply", x, y)
    assert all(np.isnan(w).all() for w in values(model.trainable_weights))
    assert int(to_numpy(model.optimizer.skipped_steps)) == 0
    assert int(to_numpy(model.optimizer.iterations)) == 4


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_skip_also_holds_the_ema_of_the_weights(name: str) -> None:
    """The EMA of the weights is optimizer state too: a skipped step must not
    move it, or the EMA weights (what `finalize_variable_values` installs)
    leave the trajectory of the run that never saw the bad step."""
    good = gradient_sequence(SHAPES, steps=4)

    def run(with_bad_step: bool) -> keras.optimizers.Optimizer:
        variables = make_variables(SHAPES)
        optimizer = make_optimizer(
            name, nonfinite="skip", use_ema=True, ema_momentum=0.5
        )
        for grads in good[:2]:
            apply_step(optimizer, variables, grads)
        if with_bad_step:
            before = optimizer_state(optimizer, exclude=[optimizer.skipped_steps])
            apply_step(optimizer, variables, _poisoned(good[2], 1, np.nan))
            assert_arrays_identical(
                optimizer_state(optimizer, exclude=[optimizer.skipped_steps]),
                before,
                "optimizer state incl. EMA",
            )
        for grads in good[2:]:
            apply_step(optimizer, variables, grads)
        return optimizer

    optimizer, clean_optimizer = run(with_bad_step=True), run(with_bad_step=False)
    assert_arrays_identical(
        optimizer_state(optimizer, exclude=[optimizer.skipped_steps]),
        optimizer_state(clean_optimizer, exclude=[clean_optimizer.skipped_steps]),
        "optimizer state incl. EMA",
    )
