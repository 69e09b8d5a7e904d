"""AdaBelief: Adam whose second moment tracks the belief (g − m)²."""

from __future__ import annotations

from keras import ops

from keras_optzoo.optimizers.base import (
    ZooOptimizer,
    debias,
    ema,
    register,
    validate_beta,
    validate_positive,
)


@register("adabelief")
class AdaBelief(ZooOptimizer):
    """AdaBelief (Zhuang et al., 2020, Algorithm 2).

        m ← β₁·m + (1 − β₁)·g
        s ← β₂·s + (1 − β₂)·(g − m)² + ε        (m is the new m)
        m̂ = m / (1 − β₁ᵗ),   ŝ = s / (1 − β₂ᵗ)
        θ ← θ − η·m̂ / (√ŝ + ε)

    ε enters twice, as in the paper and the authors' code; optax exposes the
    two as `eps_root` (inside s) and `eps`, and `optax.adabelief(eps=ε,
    eps_root=ε)` is this update. The "rectify" and "weight_decouple" options of
    the authors' PyTorch package are left to RAdam and the `weight_decay`
    argument (which is always decoupled here).

    Args:
        learning_rate: float >= 0 or a schedule. Defaults to 0.001.
        beta_1: β₁ in [0, 1). Defaults to 0.9.
        beta_2: β₂ in [0, 1). Defaults to 0.999.
        epsilon: ε > 0. Defaults to 1e-16 (the authors' default).
        **kwargs: Keras optimizer arguments and `nonfinite`.

    Slots: `m`, `s`.

    References:
        Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris & Duncan, 2020,
        "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
        Gradients", NeurIPS, Algorithm 2.
    """

    first_moment_slot, second_moment_slot = "m", "s"

    def __init__(
        self,
        learning_rate=0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-16,
        name: str = "adabelief",
        **kwargs,
    ):
        validate_beta("beta_1", beta_1)
        validate_beta("beta_2", beta_2)
        validate_positive("epsilon", epsilon)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.set_hyperparameters(
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
        )

    def slot_initial_values(self):
        return {"m": 0.0, "s": 0.0}

    def update(self, g, theta, slots, lr, t):
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        m = ema(slots["m"], g, b1)
        s = ema(slots["s"], (g - m) ** 2, b2) + eps
        step = debias(m, b1, t) / (ops.sqrt(debias(s, b2, t)) + eps)
        return theta - lr * step, {"m": m, "s": s}
