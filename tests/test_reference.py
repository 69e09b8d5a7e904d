"""Every registered optimizer against its independent float64 NumPy reference.

150 steps, non-default hyperparameters, gradients that change sign and span
1e-3..1e2; parameters AND every slot are compared at every step, eagerly and
through the backend's compiled path: XLA on TensorFlow and JAX, the
torch.compile fused step (`fused=True`) on torch; on torch also through the
executor `fused=None` picks for the problem (in-place `_foreach` for SGD,
the concatenated step for the others).
"""

from __future__ import annotations

import numpy as np
import pytest

import keras_optzoo as oz
from tests.harness import BACKEND, max_relative_error, run_zoo
from tests.optimizer_table import CASES, Case, cases
from tests.problems import make_problem
from tests.reference import REFERENCES

STEPS = 150


def reference_trajectory(case: Case, params0, grads):
    cls, preset = REFERENCES[case.name]
    return cls(**{**preset, **case.kwargs}).run(params0, grads)


def assert_trajectories_match(case: Case, ours, reference):
    assert len(ours) == len(reference)
    for t, (mine, ref) in enumerate(zip(ours, reference), start=1):
        assert sorted(mine["slots"]) == sorted(ref["slots"]), f"slot names differ at step {t}"
        pairs = [("param", a, b) for a, b in zip(mine["params"], ref["params"])]
        for name in ref["slots"]:
            pairs += [(name, a, b) for a, b in zip(mine["slots"][name], ref["slots"][name])]
        for label, actual, expected in pairs:
            # Elements near zero are judged against 1% of their tensor's scale:
            # float32 rounding of the big entries sets the absolute error there.
            floor = max(case.floor, 1e-2 * float(np.max(np.abs(expected))))
            error = max_relative_error(actual, expected, floor)
            assert error < case.rtol, (
                f"{case.id}: {label} differs from the reference at step {t}: "
                f"relative error {error:.2e} > {case.rtol:.0e}"
            )


def test_table_covers_every_registered_name():
    assert {c.name for c in CASES} == set(oz.optimizers.names())
    assert set(REFERENCES) == set(oz.optimizers.names())


@pytest.mark.parametrize("case", cases())
@pytest.mark.parametrize("executor", ["eager", "compiled", "default"])
def test_matches_reference_for_150_steps(case: Case, executor: str):
    if executor == "default" and BACKEND != "torch":
        pytest.skip("only torch's default executor differs from its eager and compiled ones")
    compiled = executor == "compiled"
    params0, grads = make_problem(seed=0, steps=STEPS)
    # Keras runs the optimizer eagerly on torch; our compiled path there is `fused`.
    fused = {"fused": {"eager": False, "compiled": True, "default": None}[executor]}
    optimizer = oz.get(case.name, **case.kwargs, **(fused if BACKEND == "torch" else {}))
    ours = run_zoo(optimizer, params0, grads, compiled=compiled)
    if compiled and BACKEND == "torch":
        assert type(optimizer._fused_step).__name__ == "CompiledStep"
        assert not optimizer._fused_step.failed
    assert_trajectories_match(case, ours, reference_trajectory(case, params0, grads))


def test_nadam_mu_product_matches_reference():
    case = next(c for c in CASES if c.name == "nadam")
    params0, grads = make_problem(seed=0, steps=40)
    optimizer = oz.get(case.name, **case.kwargs)
    run_zoo(optimizer, params0, grads)
    expected = reference_trajectory(case, params0, grads)[-1]["globals"]["mu_product"]
    np.testing.assert_allclose(float(np.asarray(optimizer.mu_product.value)), expected, rtol=1e-5)


@pytest.mark.parametrize("case", cases())
def test_comparison_can_fail(case: Case):
    """The reference must be far from SGD and sign-SGD on the same inputs."""
    params0, grads = make_problem(seed=0, steps=STEPS)
    reference = reference_trajectory(case, params0, grads)[-1]["params"]
    lr = case.kwargs["learning_rate"]
    for label, direction in (("sgd", lambda g: g), ("sign-sgd", np.sign)):
        params = [p.copy() for p in params0]
        for step in grads:
            params = [p - lr * direction(g) for p, g in zip(params, step)]
        if case.name == "sgd" and label == "sgd":
            continue
        if case.name == "lion" and label == "sign-sgd":
            continue
        distance = max(max_relative_error(p, r, case.floor) for p, r in zip(params, reference))
        assert distance > 100 * case.rtol, f"{case.id} is indistinguishable from {label}"
