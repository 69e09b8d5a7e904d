"""RAdam: Adam with the variance of its adaptive step rectified."""

from __future__ import annotations

from keras import ops

from keras_optzoo.optimizers.base import (
    ZooOptimizer,
    debias,
    ema,
    register,
    validate_beta,
    validate_positive,
    validate_range,
)


@register("radam")
class RAdam(ZooOptimizer):
    """RAdam (Liu et al., 2020, Algorithm 2).

        m ← β₁·m + (1 − β₁)·g,   v ← β₂·v + (1 − β₂)·g²
        ρ_∞ = 2/(1 − β₂) − 1,    ρ_t = ρ_∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
        if ρ_t > threshold:
            r_t = √[(ρ_t − 4)(ρ_t − 2)ρ_∞ / ((ρ_∞ − 4)(ρ_∞ − 2)ρ_t)]
            θ ← θ − η·r_t·m̂ / (√v̂ + ε)
        else:
            θ ← θ − η·m̂                      (SGD with momentum while v is unreliable)

    The paper's Algorithm 2 tests ρ_t > 4; the authors' code, torch.optim and
    optax use 5, the default here. torch.optim adds ε to √v before the bias
    correction (`r_t·m̂·√(1 − β₂ᵗ)/(√v + ε)`); optax, like this, adds it to √v̂.

    Args:
        learning_rate: float >= 0 or a schedule. Defaults to 0.001.
        beta_1: β₁ in [0, 1). Defaults to 0.9.
        beta_2: β₂ in [0, 1). Defaults to 0.999.
        epsilon: ε > 0. Defaults to 1e-8.
        rectification_threshold: ρ_t above which the adaptive step is used,
            >= 4 (r_t is undefined below). Defaults to 5.
        **kwargs: Keras optimizer arguments and `nonfinite`.

    Slots: `m`, `v`.

    References:
        Liu, Jiang, He, Chen, Liu, Gao & Han, 2020, "On the Variance of the
        Adaptive Learning Rate and Beyond", ICLR, Algorithm 2.
    """

    first_moment_slot, second_moment_slot = "m", "v"

    def __init__(
        self,
        learning_rate=0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        rectification_threshold: float = 5.0,
        name: str = "radam",
        **kwargs,
    ):
        validate_beta("beta_1", beta_1)
        validate_beta("beta_2", beta_2)
        validate_positive("epsilon", epsilon)
        if beta_2 <= 0.6:
            # ρ_∞ = 2/(1 − β₂) − 1 must exceed 4 for r_t to exist at all.
            raise ValueError(f"beta_2 must be in (0.6, 1) for RAdam, got {beta_2!r}")
        validate_range("rectification_threshold", rectification_threshold, 4.0)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.set_hyperparameters(
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            rectification_threshold=rectification_threshold,
        )

    def slot_initial_values(self):
        return {"m": 0.0, "v": 0.0}

    def update(self, g, theta, slots, lr, t):
        b1, b2 = self.beta_1, self.beta_2
        m = ema(slots["m"], g, b1)
        v = ema(slots["v"], g * g, b2)
        m_hat = debias(m, b1, t)
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        b2_t = ops.power(b2, t)
        rho_t = rho_inf - 2.0 * t * b2_t / (1.0 - b2_t)
        tractable = rho_t > self.rectification_threshold
        # Clamp so the square root stays real on the branch `where` discards.
        rho_safe = ops.maximum(rho_t, 4.0 + 1e-3)
        r_t = ops.sqrt(
            (rho_safe - 4.0) * (rho_safe - 2.0) * rho_inf
            / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_safe)
        )
        adaptive = r_t * m_hat / (ops.sqrt(debias(v, b2, t)) + self.epsilon)
        return theta - lr * ops.where(tractable, adaptive, m_hat), {"m": m, "v": v}
