"""NAdam: Adam with Nesterov momentum."""

from __future__ import annotations

import keras
from keras import ops

from keras_optzoo.optimizers.base import (
    ZooOptimizer,
    debias,
    ema,
    register,
    validate_beta,
    validate_non_negative,
    validate_positive,
)


@register("nadam")
class NAdam(ZooOptimizer):
    """NAdam (Dozat, 2016), with the momentum schedule of torch.optim and keras core.

        μ_t  = β₁·(1 − ½·0.96^(t·ψ)),   Π_t = Π_{t−1}·μ_t   (Π_0 = 1)
        m ← β₁·m + (1 − β₁)·g
        v ← β₂·v + (1 − β₂)·g²,         v̂ = v / (1 − β₂ᵗ)
        θ ← θ − η·[(1 − μ_t)/(1 − Π_t)·g + μ_{t+1}/(1 − Π_t·μ_{t+1})·m] / (√v̂ + ε)

    ψ (`momentum_decay`) warms the momentum coefficient up from β₁/2 towards β₁;
    the paper's Algorithm 2 is the ψ → 0 limit with a constant μ.

    Args:
        learning_rate: float >= 0 or a schedule. Defaults to 0.002 (the paper's).
        beta_1: β₁ in [0, 1). Defaults to 0.9.
        beta_2: β₂ in [0, 1). Defaults to 0.999.
        epsilon: ε > 0. Defaults to 1e-8.
        momentum_decay: ψ >= 0. Defaults to 0.004.
        **kwargs: Keras optimizer arguments and `nonfinite`.

    Slots: `m`, `v`, plus one scalar `mu_product` (Π_t) for the whole optimizer.

    References:
        Dozat, 2016, "Incorporating Nesterov Momentum into Adam", ICLR
        workshop, Algorithm 2 and section 3.
    """

    first_moment_slot, second_moment_slot = "m", "v"

    def __init__(
        self,
        learning_rate=0.002,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        momentum_decay: float = 0.004,
        name: str = "nadam",
        **kwargs,
    ):
        validate_beta("beta_1", beta_1)
        validate_beta("beta_2", beta_2)
        validate_positive("epsilon", epsilon)
        validate_non_negative("momentum_decay", momentum_decay)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.set_hyperparameters(
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            momentum_decay=momentum_decay,
        )

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.mu_product = self.add_variable(
            shape=(), initializer="ones", dtype="float32", name="mu_product"
        )

    def slot_initial_values(self):
        return {"m": 0.0, "v": 0.0}

    def _mu(self, t):
        return self.beta_1 * (1.0 - 0.5 * ops.power(0.96, t * self.momentum_decay))

    def update_global_state(self, step):
        self.assign_global(self.mu_product, self.mu_product * self._mu(step))

    def update(self, g, theta, slots, lr, t):
        b1, b2 = self.beta_1, self.beta_2
        mu_t, mu_next = self._mu(t), self._mu(t + 1.0)
        pi_t = ops.cast(self.mu_product, keras.backend.standardize_dtype(g.dtype))
        m = ema(slots["m"], g, b1)
        v = ema(slots["v"], g * g, b2)
        nesterov_m = (1.0 - mu_t) / (1.0 - pi_t) * g + mu_next / (1.0 - pi_t * mu_next) * m
        return theta - lr * nesterov_m / (ops.sqrt(debias(v, b2, t)) + self.epsilon), {
            "m": m,
            "v": v,
        }
