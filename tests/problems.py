"""A deterministic, open-loop, multi-tensor test problem for optimizer trajectories.

The gradients are precomputed and do not depend on the parameters, so two implementations that
agree step by step see exactly the same inputs and a disagreement cannot be amplified (or hidden)
by a feedback loop; the comparison stays well-conditioned over many steps.

Each gradient entry is ``sign * 10**exponent * jitter``: the sign follows a slow noisy sinusoid,
so it persists for a few steps (momentum matters) and flips often (sign-dependent branches such as
AMSGrad's max, Yogi's sign and Lion's sign all fire); the exponent sweeps [-3, 2] at a per-entry
frequency, so every tensor sees magnitudes across 1e-3 to 1e2 and its scale drifts over time. No
entry is exactly zero, so Lion and Yogi never meet a sign tie.
"""

from __future__ import annotations

import numpy as np

SHAPES: tuple[tuple[int, ...], ...] = ((4, 3), (5,), (2, 3, 2), ())
# The jitter in [1, 2) tops the sweep up to 10**2 at MAX_EXPONENT = 2 - log10(2).
MIN_EXPONENT, MAX_EXPONENT = -3.0, 2.0 - float(np.log10(2.0))


def make_problem(seed: int = 0, steps: int = 150) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """Return ``(params0, grads)``: float64 initial parameters, one array per shape in SHAPES,
    and ``grads[t][i]``, the gradient of tensor i at step t + 1."""
    rng = np.random.default_rng(seed)
    params0 = [rng.standard_normal(shape) for shape in SHAPES]
    waves = [
        {
            "sign_phase": rng.uniform(0.0, 2.0 * np.pi, shape),
            "sign_frequency": rng.uniform(0.05, 0.6, shape),
            "scale_phase": rng.uniform(0.0, 2.0 * np.pi, shape),
            "scale_frequency": rng.uniform(0.02, 0.2, shape),
        }
        for shape in SHAPES
    ]
    grads = []
    for t in range(steps):
        step_grads = []
        for shape, wave in zip(SHAPES, waves, strict=True):
            sign_signal = np.sin(wave["sign_frequency"] * t + wave["sign_phase"]) + 0.5 * rng.standard_normal(shape)
            sign = np.where(sign_signal >= 0.0, 1.0, -1.0)
            sweep = 0.5 + 0.5 * np.sin(wave["scale_frequency"] * t + wave["scale_phase"])
            exponent = MIN_EXPONENT + (MAX_EXPONENT - MIN_EXPONENT) * sweep
            jitter = rng.uniform(1.0, 2.0, shape)
            step_grads.append(np.asarray(sign * 10.0**exponent * jitter, dtype=np.float64))
        grads.append(step_grads)
    return params0, grads
