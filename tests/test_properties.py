"""Properties that must hold whatever the reference says."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_optzoo as oz
from tests.harness import run_zoo

NAMES = oz.optimizers.names()
# RAdam is not: its first steps (ρ_t <= 5) are SGD with momentum.
SCALE_INVARIANT = ["adam", "amsgrad", "adamw", "nadam", "adabelief"]


def _problem(steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    params0 = [rng.normal(size=(3, 4)), rng.normal(size=(5,))]
    grads = [[rng.normal(size=p.shape) * 10.0 ** rng.uniform(-2, 1) for p in params0] for _ in range(steps)]
    return params0, grads


@pytest.mark.parametrize("name", NAMES)
def test_zero_gradient_without_decay_leaves_weights_unchanged(name):
    params0, _ = _problem(1)
    zeros = [[np.zeros_like(p) for p in params0] for _ in range(3)]
    trajectory = run_zoo(oz.get(name, weight_decay=0.0), params0, zeros)
    for before, after in zip(params0, trajectory[-1]["params"]):
        np.testing.assert_array_equal(after, before.astype(np.float32))


@pytest.mark.parametrize("name", NAMES)
def test_zero_gradient_with_decay_only_decays(name):
    params0, _ = _problem(1)
    zeros = [[np.zeros_like(p) for p in params0]]
    optimizer = oz.get(name, learning_rate=0.1, weight_decay=0.5)
    trajectory = run_zoo(optimizer, params0, zeros)
    for before, after in zip(params0, trajectory[-1]["params"]):
        np.testing.assert_allclose(after, before * (1 - 0.1 * 0.5), rtol=1e-6)


@pytest.mark.parametrize("name", SCALE_INVARIANT)
def test_update_is_invariant_to_gradient_scale(name):
    params0, grads = _problem(20)
    # epsilon far below every |g|, so scaling g by 1000 leaves the step alone
    eps = {"epsilon": 1e-12}
    base = run_zoo(oz.get(name, **eps), params0, grads)
    scaled = run_zoo(oz.get(name, **eps), params0, [[g * 1000.0 for g in s] for s in grads])
    for a, b in zip(base[-1]["params"], scaled[-1]["params"]):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_lion_moves_every_coordinate_by_exactly_the_learning_rate():
    params0, grads = _problem(10)
    lr = 0.0625  # a power of two, so θ ± lr is exact in float32 for |θ| < 4
    trajectory = run_zoo(oz.get("lion", learning_rate=lr), params0, grads)
    previous = [p.astype(np.float32).astype(np.float64) for p in params0]
    for record in trajectory:
        for before, after in zip(previous, record["params"]):
            np.testing.assert_allclose(np.abs(after - before), lr, rtol=1e-6)
        previous = record["params"]


def test_adam_first_step_is_learning_rate_times_sign():
    # m̂₁ = g and v̂₁ = g², so the first Adam step is η·sign(g) up to ε.
    params0, grads = _problem(1)
    trajectory = run_zoo(oz.get("adam", learning_rate=0.01, epsilon=1e-12), params0, grads)
    for p0, g, p1 in zip(params0, grads[0], trajectory[0]["params"]):
        np.testing.assert_allclose(p1, p0 - 0.01 * np.sign(g), rtol=1e-6, atol=1e-7)


def test_skipped_steps_is_optimizer_state():
    optimizer = oz.get("adam", nonfinite="skip")
    variables = [keras.Variable(np.ones(3, "float32"))]
    optimizer.build(variables)
    assert any(v is optimizer.skipped_steps for v in optimizer.variables)
