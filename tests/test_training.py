"""Real training with every registered optimizer, and the Keras base features.

`model.fit` is a smoke test of convergence (the reference tests prove the
math); the Keras features every optimizer must keep (clipping, EMA, gradient
accumulation, schedules, loss scaling, mixed precision, sparse gradients) are
checked numerically, so a feature that silently does nothing fails.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_optzoo as oz
from tests.helpers_training import (
    BACKEND,
    BATCH_SIZE,
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

EPOCHS = 5  # 5 epochs x 8 batches = 40 steps
STEPS = EPOCHS * 256 // BATCH_SIZE
SHAPES = [(3, 2), (4,)]


def _fit_and_measure(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, **compile_kwargs
) -> tuple[float, float]:
    x, y = regression_data()
    model.compile(optimizer=optimizer, loss="mse", **compile_kwargs)
    initial = model.evaluate(x, y, batch_size=256, verbose=0)
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=False, verbose=0)
    final = model.evaluate(x, y, batch_size=256, verbose=0)
    return float(initial), float(final)


@pytest.mark.parametrize("name", NAMES)
def test_fit_reduces_the_loss(name: str) -> None:
    optimizer = make_optimizer(name)
    initial, final = _fit_and_measure(make_model(), optimizer)
    assert np.isfinite(final)
    assert final < 0.25 * initial, f"{name}: loss {initial:.3f} -> {final:.3f}"
    assert int(to_numpy(optimizer.iterations)) == STEPS


@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="jit_compile is a TF switch; JAX fit is always jitted",
)
@pytest.mark.parametrize("name", ["sgd", "nesterov", "adam", "nadam", "radam", "lion"])
def test_fit_with_xla_reduces_the_loss(name: str) -> None:
    # On a CPU-only machine Keras's "auto" turns XLA off for TF, so ask for it.
    # An XLA fit costs seconds of compilation on CPU, so a sample of the registry:
    # every name's update already runs under XLA in test_nonfinite's
    # compiled case (with weight decay and the skip policy's ops.where).
    initial, final = _fit_and_measure(
        make_model(), make_optimizer(name), jit_compile=True
    )
    assert final < 0.25 * initial, f"{name}: loss {initial:.3f} -> {final:.3f}"


def _assert_float32_slots(
    optimizer: keras.optimizers.Optimizer, model: keras.Model
) -> None:
    for variable in model.trainable_variables:
        assert variable.dtype == "float32"
        for slot_name, slot in optimizer.slots_for(variable).items():
            assert slot.dtype == "float32", (
                f"{slot_name} of {variable.path} is {slot.dtype}"
            )


@pytest.fixture
def mixed_policy(request: pytest.FixtureRequest):
    """Set a global dtype policy for one test and restore the previous one."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("mixed_policy", ["mixed_float16"], indirect=True)
@pytest.mark.parametrize("name", NAMES)
def test_mixed_float16_with_explicit_loss_scale_optimizer(
    name: str, mixed_policy: str
) -> None:
    inner = make_optimizer(name)
    optimizer = keras.optimizers.LossScaleOptimizer(inner)
    model = make_model()
    assert model.layers[0].compute_dtype == "float16"
    initial, final = _fit_and_measure(model, optimizer)
    assert model.optimizer is optimizer
    assert final < 0.5 * initial, f"{name}: loss {initial:.3f} -> {final:.3f}"
    _assert_float32_slots(inner, model)
    # The loss (about 25) times the initial scale 2**15 overflows float16: the
    # wrapper skips those first steps and halves its scale each time (it only
    # grows again after 2000 finite steps), so the halvings count the steps that
    # never reached our optimizer. Our own policy saw only finite gradients.
    halvings = np.log2(2.0**15 / float(to_numpy(optimizer.dynamic_scale)))
    assert halvings == int(halvings) and halvings >= 1
    assert int(to_numpy(inner.iterations)) == STEPS - int(halvings)
    assert int(to_numpy(inner.skipped_steps)) == 0


@pytest.mark.parametrize("mixed_policy", ["mixed_float16"], indirect=True)
@pytest.mark.parametrize("name", ["sgd", "adam", "nadam", "lion"])
def test_mixed_float16_compile_wraps_in_a_loss_scale_optimizer(
    name: str, mixed_policy: str
) -> None:
    inner = make_optimizer(name)
    model = make_model()
    initial, final = _fit_and_measure(model, inner)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.optimizer.inner_optimizer is inner
    assert final < 0.5 * initial, f"{name}: loss {initial:.3f} -> {final:.3f}"
    _assert_float32_slots(inner, model)


@pytest.mark.parametrize("mixed_policy", ["mixed_bfloat16"], indirect=True)
@pytest.mark.parametrize("name", NAMES)
def test_mixed_bfloat16_trains_without_loss_scaling(
    name: str, mixed_policy: str
) -> None:
    optimizer = make_optimizer(name)
    model = make_model()
    assert model.layers[0].compute_dtype == "bfloat16"
    initial, final = _fit_and_measure(model, optimizer)
    # bfloat16 has float32's range: Keras does not wrap, and the optimizer runs as is.
    assert model.optimizer is optimizer
    assert final < 0.5 * initial, f"{name}: loss {initial:.3f} -> {final:.3f}"
    _assert_float32_slots(optimizer, model)


# -- clipping ---------------------------------------------------------------


def test_clipnorm_clips_each_variable_to_the_norm() -> None:
    lr, clip = 0.1, 1.0
    variables = make_variables([(2,), (2,), (2,)])
    start = values(variables)
    # Norms 500 and 5000 are clipped; norm 0.5 is below the threshold.
    grads = [
        np.array([300.0, 400.0], "float32"),
        np.array([0.0, -5000.0], "float32"),
        np.array([0.3, 0.4], "float32"),
    ]
    apply_step(oz.get("sgd", learning_rate=lr, clipnorm=clip), variables, grads)
    moves = [after - before for after, before in zip(values(variables), start)]
    np.testing.assert_allclose(moves[0], -lr * clip * np.array([0.6, 0.8]), rtol=1e-6)
    np.testing.assert_allclose(moves[1], [0.0, lr * clip], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(moves[2], -lr * grads[2], rtol=1e-6)


def test_global_clipnorm_scales_all_gradients_together() -> None:
    lr, clip = 0.1, 1.0
    variables = make_variables([(2,), (1,)])
    start = values(variables)
    grads = [
        np.array([30.0, 0.0], "float32"),
        np.array([40.0], "float32"),
    ]  # global norm 50
    apply_step(oz.get("sgd", learning_rate=lr, global_clipnorm=clip), variables, grads)
    moves = [after - before for after, before in zip(values(variables), start)]
    np.testing.assert_allclose(moves[0], [-lr * 0.6, 0.0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(moves[1], [-lr * 0.8], rtol=1e-6)
    total = np.sqrt(sum(float(np.sum(m**2)) for m in moves))
    np.testing.assert_allclose(total, lr * clip, rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_clipping_feeds_the_clipped_gradient_to_every_optimizer(name: str) -> None:
    """global_clipnorm=1 on gradients of global norm >> 1 equals feeding the
    pre-scaled gradients: the optimizer sees the clipped values, whatever it is."""
    grads = [[g * 100.0 for g in step] for step in gradient_sequence(SHAPES, steps=3)]
    clipped_vars = make_variables(SHAPES)
    clipped_opt = make_optimizer(name, global_clipnorm=1.0)
    scaled_vars = make_variables(SHAPES)
    scaled_opt = make_optimizer(name)
    for step in grads:
        norm = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in step))
        assert norm > 10.0
        apply_step(clipped_opt, clipped_vars, step)
        apply_step(
            scaled_opt, scaled_vars, [(g / norm).astype("float32") for g in step]
        )
    for clipped, scaled in zip(values(clipped_vars), values(scaled_vars)):
        np.testing.assert_allclose(clipped, scaled, rtol=2e-5, atol=1e-6)
    unclipped_vars = make_variables(SHAPES)
    unclipped_opt = make_optimizer(name)
    for step in grads:
        apply_step(unclipped_opt, unclipped_vars, step)
    # Guard: the clipping changes the run (weights, or at least the slots for
    # sign-based Lion; a scale-invariant first Adam step alone would not show
    # it, hence three steps).
    unclipped = values(unclipped_vars) + values(
        unclipped_opt.slots_for(unclipped_vars[0]).values()
    )
    scaled = values(scaled_vars) + values(scaled_opt.slots_for(scaled_vars[0]).values())
    assert not all(np.allclose(u, c, rtol=1e-4) for u, c in zip(unclipped, scaled))


# -- EMA ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sgd", "nadam"])
def test_ema_tracks_the_moving_average_of_the_weights(name: str) -> None:
    momentum = 0.8
    grads = gradient_sequence(SHAPES, steps=4)
    variables = make_variables(SHAPES)
    optimizer = make_optimizer(name, use_ema=True, ema_momentum=momentum)
    expected = None
    for step in grads:
        apply_step(optimizer, variables, step)
        weights = [w.astype(np.float64) for w in values(variables)]
        # Keras's EMA starts at the weights after the first step.
        expected = (
            weights
            if expected is None
            else [
                momentum * e + (1.0 - momentum) * w for e, w in zip(expected, weights)
            ]
        )
    averages = values(optimizer._model_variables_moving_average)
    assert len(averages) == len(variables)
    for average, exp, weight in zip(averages, expected, values(variables)):
        np.testing.assert_allclose(average, exp, rtol=1e-5, atol=1e-6)
        assert not np.allclose(average, weight, rtol=1e-4)


def test_ema_overwrite_frequency_installs_the_average() -> None:
    grads = gradient_sequence(SHAPES, steps=4)
    variables = make_variables(SHAPES)
    optimizer = make_optimizer(
        "adam", use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=3
    )
    for step_number, step in enumerate(grads, start=1):
        apply_step(optimizer, variables, step)
        averages = values(optimizer._model_variables_moving_average)
        if step_number == 3:
            assert_arrays_identical(
                values(variables), averages, "weights after overwrite"
            )
        elif step_number > 1:
            assert not np.array_equal(values(variables)[0], averages[0])


def test_fit_with_ema_ends_on_the_average_weights() -> None:
    x, y = regression_data()
    optimizer = make_optimizer("adam", use_ema=True, ema_momentum=0.9)
    model = make_model()
    model.compile(optimizer=optimizer, loss="mse")
    history = model.fit(
        x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=False, verbose=0
    )
    losses = history.history["loss"]
    assert losses[-1] < 0.25 * losses[0]
    averages = values(optimizer._model_variables_moving_average)
    assert len(averages) == len(model.trainable_variables)
    # `fit` ends with `finalize_variable_values`, which installs the EMA.
    assert_arrays_identical(
        values(model.trainable_variables), averages, "weights vs EMA"
    )
    plain = make_model()
    _fit_and_measure(plain, make_optimizer("adam"))
    assert not np.allclose(values(plain.trainable_variables)[0], averages[0], rtol=1e-3)


def test_optimizer_state_survives_evaluate_after_an_ema_fit() -> None:
    """On JAX keras core's EMA overwrite aliases the EMA buffer into the
    weight, and the next jitted call deletes it (keras.optimizers.Adam(
    use_ema=True) fails so); ZooOptimizer copies instead."""
    x, y = regression_data()
    optimizer = make_optimizer("adam", use_ema=True)
    model = make_model()
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
    model.evaluate(x, y, verbose=0)
    averages = values(optimizer._model_variables_moving_average)
    assert_arrays_identical(
        values(model.trainable_variables), averages, "weights vs EMA"
    )
    # ... and training can go on.
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
    assert np.isfinite(values(model.trainable_variables)[0]).all()


# -- gradient accumulation -----------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_gradient_accumulation_equals_a_step_with_the_mean_gradient(name: str) -> None:
    k = 3
    micro = gradient_sequence(SHAPES, steps=2 * k)
    variables = make_variables(SHAPES)
    optimizer = make_optimizer(name, gradient_accumulation_steps=k)
    reference_vars = make_variables(SHAPES)
    reference = make_optimizer(name)
    start = values(variables)
    for window in range(2):
        steps = micro[window * k : (window + 1) * k]
        for i, step in enumerate(steps):
            apply_step(optimizer, variables, step)
            if i < k - 1:
                assert int(to_numpy(optimizer.iterations)) == window
                if window == 0:
                    assert_arrays_identical(
                        values(variables), start, "weights mid-window"
                    )
        assert int(to_numpy(optimizer.iterations)) == window + 1
        # Keras sums micro-gradients in arrival order, then divides by k; the
        # same float32 operations here make the comparison exact.
        mean = [
            ((steps[0][j] + steps[1][j]) + steps[2][j]) / np.float32(k)
            for j in range(len(SHAPES))
        ]
        apply_step(reference, reference_vars, mean)
        np.testing.assert_allclose(
            values(variables)[0], values(reference_vars)[0], rtol=1e-6, atol=1e-7
        )
    for accumulated, reference_value in zip(values(variables), values(reference_vars)):
        np.testing.assert_allclose(accumulated, reference_value, rtol=1e-6, atol=1e-7)
    for slot_name, slot in optimizer.slots_for(variables[0]).items():
        np.testing.assert_allclose(
            to_numpy(slot),
            to_numpy(reference.slots_for(reference_vars[0])[slot_name]),
            rtol=1e-6,
            atol=1e-7,
        )


def test_fit_with_gradient_accumulation_steps_once_per_window() -> None:
    optimizer = make_optimizer("adam", gradient_accumulation_steps=2)
    initial, final = _fit_and_measure(make_model(), optimizer)
    assert int(to_numpy(optimizer.iterations)) == STEPS // 2
    assert final < 0.5 * initial


# -- learning-rate schedules ---------------------------------------------------


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_schedule_sets_the_learning_rate_of_each_step(compiled: bool) -> None:
    schedule = keras.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=1, decay_rate=0.5
    )
    variables = make_variables([(3,)])
    optimizer = oz.get("sgd", learning_rate=schedule)
    apply = (
        compiled_apply(optimizer, variables)
        if compiled
        else (lambda grads: apply_step(optimizer, variables, grads))
    )
    g = np.array([1.0, -2.0, 4.0], "float32")
    for t in range(4):
        before = values(variables)[0]
        apply([g])
        # The step counted from 0 picks the rate: 0.1, 0.05, 0.025, 0.0125.
        np.testing.assert_allclose(
            before - values(variables)[0], 0.1 * 0.5**t * g, rtol=1e-5
        )


@pytest.mark.parametrize("name", NAMES)
def test_every_optimizer_reads_the_schedule_each_step(name: str) -> None:
    """A rate of 0 for the first two steps, then 0.01: no optimizer may move a
    weight (weight decay included) before step 3, and every one moves at step 3.
    (Not the reverse: a velocity with the rate inside keeps moving at rate 0.)"""
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([1], [0.0, 0.01])
    grads = gradient_sequence(SHAPES, steps=3)
    variables = make_variables(SHAPES)
    optimizer = make_optimizer(name, learning_rate=schedule, weight_decay=0.1)
    start = values(variables)
    for step in grads[:2]:
        apply_step(optimizer, variables, step)
    assert_arrays_identical(values(variables), start, "weights at learning rate 0")
    apply_step(optimizer, variables, grads[2])
    assert all(not np.array_equal(a, b) for a, b in zip(values(variables), start))


def test_fit_with_a_schedule_decays_the_rate() -> None:
    schedule = keras.optimizers.schedules.ExponentialDecay(
        0.02, decay_steps=10, decay_rate=0.5
    )
    optimizer = make_optimizer("adam", learning_rate=schedule)
    initial, final = _fit_and_measure(make_model(), optimizer)
    assert final < 0.5 * initial
    np.testing.assert_allclose(
        float(to_numpy(optimizer.learning_rate)), 0.02 * 0.5 ** (STEPS / 10), rtol=1e-6
    )


# -- loss scale factor ---------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_loss_scale_factor_unscales_the_gradients(name: str) -> None:
    # A power of two scales exactly in float32, so the runs must be identical.
    factor = 1024.0
    grads = gradient_sequence(SHAPES, steps=3)
    scaled_vars, plain_vars = make_variables(SHAPES), make_variables(SHAPES)
    scaled_opt = make_optimizer(name, loss_scale_factor=factor)
    plain_opt = make_optimizer(name)
    for step in grads:
        apply_step(scaled_opt, scaled_vars, [g * np.float32(factor) for g in step])
        apply_step(plain_opt, plain_vars, step)
    assert_arrays_identical(values(scaled_vars), values(plain_vars), "weights")


def test_fit_with_loss_scale_factor_matches_the_unscaled_fit() -> None:
    scaled, plain = make_model(), make_model()
    _fit_and_measure(scaled, make_optimizer("adam", loss_scale_factor=256.0))
    _fit_and_measure(plain, make_optimizer("adam"))
    # Scaling by 256 and back is exact, but XLA (jax 0.10) may fold the
    # unscale into the gradient's own fusion and round differently in the
    # last bit (1.9e-9 seen); a missing unscale would be off by orders of magnitude.
    scaled_state, plain_state = optimizer_state(scaled.optimizer), optimizer_state(plain.optimizer)
    assert sorted(scaled_state) == sorted(plain_state)
    pairs = list(zip(values(scaled.weights), values(plain.weights)))
    pairs += [(scaled_state[key], plain_state[key]) for key in sorted(plain_state)]
    for index, (a, b) in enumerate(pairs):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, err_msg=f"array {index}")


# -- sparse gradients (TensorFlow IndexedSlices) -------------------------------

tensorflow_only = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="IndexedSlices are TensorFlow's sparse gradients"
)
VOCAB, DIM = 10, 3
# Row 3 appears twice in the first step (duplicates must be summed); rows
# 0, 2, 5, 6, 8 and 9 are never looked up.
SPARSE_STEPS = [[1, 3, 3, 7], [4, 1], [7, 7, 7]]


def _indexed_slices(step: int, seed: int = 0):
    import tensorflow as tf

    indices = np.array(SPARSE_STEPS[step], "int64")
    rng = np.random.default_rng(seed + step)
    rows = (
        rng.standard_normal((len(indices), DIM)) * 10.0 ** rng.uniform(-1, 1)
    ).astype("float32")
    return tf.IndexedSlices(
        tf.constant(rows), tf.constant(indices), tf.constant([VOCAB, DIM], "int64")
    )


@tensorflow_only
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("name", NAMES)
def test_indexed_slices_update_equals_the_densified_update(
    name: str, graph: bool
) -> None:
    import tensorflow as tf

    def run(densify: bool) -> tuple[keras.Variable, keras.optimizers.Optimizer]:
        table = make_variables([(VOCAB, DIM)])[0]
        optimizer = make_optimizer(name, weight_decay=0.01)
        optimizer.build([table])

        def step(grad):
            optimizer.apply([tf.convert_to_tensor(grad) if densify else grad], [table])

        step_fn = tf.function(step) if graph else step
        for t in range(len(SPARSE_STEPS)):
            step_fn(_indexed_slices(t))
        return table, optimizer

    sparse_table, sparse_opt = run(densify=False)
    dense_table, dense_opt = run(densify=True)
    assert_arrays_identical(
        values([sparse_table]), values([dense_table]), "embedding table"
    )
    assert_arrays_identical(
        optimizer_state(sparse_opt), optimizer_state(dense_opt), "optimizer state"
    )
    # Rows never looked up are treated as rows with a zero gradient (moments
    # decay, weight decay applies), exactly as in the dense run above; with
    # weight decay they do move, so they were not dropped.
    never = [0, 2, 5, 6, 8, 9]
    start = make_variables([(VOCAB, DIM)])[0]
    assert not np.array_equal(to_numpy(sparse_table)[never], to_numpy(start)[never])


@tensorflow_only
@pytest.mark.parametrize("name", ["adam", "momentum", "nadam"])
def test_indexed_slices_with_a_nan_are_skipped(name: str) -> None:
    import tensorflow as tf

    table = make_variables([(VOCAB, DIM)])[0]
    optimizer = make_optimizer(name, nonfinite="skip")
    optimizer.apply([_indexed_slices(0)], [table])
    before_table, before_state = (
        values([table]),
        optimizer_state(optimizer, exclude=[optimizer.skipped_steps]),
    )
    bad = _indexed_slices(1)
    bad = tf.IndexedSlices(
        tf.tensor_scatter_nd_update(bad.values, [[0, 1]], [np.nan]),
        bad.indices,
        bad.dense_shape,
    )
    optimizer.apply([bad], [table])
    assert int(to_numpy(optimizer.skipped_steps)) == 1
    assert_arrays_identical(values([table]), before_table, "embedding table")
    assert_arrays_identical(
        optimizer_state(optimizer, exclude=[optimizer.skipped_steps]),
        before_state,
        "optimizer state",
    )


# Mean pooling divides each row's gradient by the sequence length, so the
# plain-gradient optimizers need larger rates than on the dense problem.
EMBEDDING_LEARNING_RATES = {
    "sgd": 0.5,
    "momentum": 0.1,
    "adam": 0.02,
    "adagrad": 0.3,
    "lion": 0.01,
}


@tensorflow_only
@pytest.mark.parametrize("name", sorted(EMBEDDING_LEARNING_RATES))
def test_fit_an_embedding_model(name: str) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, size=(256, 6))
    token_values = rng.standard_normal(50).astype("float32")
    y = token_values[tokens].mean(axis=1, keepdims=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,), dtype="int32"),
            keras.layers.Embedding(50, 4),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1),
        ]
    )
    with tf.GradientTape() as tape:
        loss = keras.losses.mean_squared_error(y[:8], model(tokens[:8]))
    embedding_grad = tape.gradient(loss, model.trainable_variables[0])
    assert isinstance(embedding_grad, tf.IndexedSlices), (
        "the test needs a sparse gradient"
    )

    model.compile(
        optimizer=make_optimizer(name, learning_rate=EMBEDDING_LEARNING_RATES[name]),
        loss="mse",
    )
    initial = model.evaluate(tokens, y, verbose=0)
    model.fit(tokens, y, batch_size=32, epochs=10, shuffle=False, verbose=0)
    final = model.evaluate(tokens, y, verbose=0)
    assert final < 0.25 * initial, f"{name}: loss {initial:.4f} -> {final:.4f}"
