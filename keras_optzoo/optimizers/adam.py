"""Adam and AMSGrad."""

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


@register("adam", amsgrad={"amsgrad": True})
class Adam(ZooOptimizer):
    """Adam (Kingma & Ba, 2015, Algorithm 1), with AMSGrad (Reddi et al., 2018).

        m ← β₁·m + (1 − β₁)·g
        v ← β₂·v + (1 − β₂)·g²
        m̂ = m / (1 − β₁ᵗ),   v̂ = v / (1 − β₂ᵗ)
        θ ← θ − η·m̂ / (√v̂ + ε)

    AMSGrad replaces v by its running maximum. Two conventions exist:
    `debias_before_max=False` (torch.optim, keras core): `v_max ← max(v_max, v)`,
    `v̂ = v_max / (1 − β₂ᵗ)`; `debias_before_max=True` (optax):
    `v_max ← max(v_max, v / (1 − β₂ᵗ))`, `v̂ = v_max`. They differ while the
    bias correction is still shrinking, i.e. in the first ~1/(1 − β₂) steps.

    `epsilon_hat=True` gives keras core's and TF1's form (the "ε̂" of the paper's
    section 2): `θ ← θ − η·√(1 − β₂ᵗ)/(1 − β₁ᵗ)·m / (√v + ε)`.

    Args:
        learning_rate: float >= 0 or a schedule. Defaults to 0.001.
        beta_1: β₁ in [0, 1). Defaults to 0.9.
        beta_2: β₂ in [0, 1). Defaults to 0.999.
        epsilon: ε > 0. Defaults to 1e-8 (paper, torch, optax; keras core 1e-7).
        amsgrad: use AMSGrad. Defaults to False.
        debias_before_max: AMSGrad convention, see above. Defaults to False.
        epsilon_hat: keras core's ε placement, see above. Defaults to False.
        **kwargs: Keras optimizer arguments and `nonfinite`.

    Slots: `m`, `v`, and `v_max` with AMSGrad.

    References:
        Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization",
        Algorithm 1. Reddi, Kale & Kumar, 2018, "On the Convergence of Adam
        and Beyond", Algorithm 2.
    """

    first_moment_slot, second_moment_slot = "m", "v"

    def __init__(
        self,
        learning_rate=0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        amsgrad: bool = False,
        debias_before_max: bool = False,
        epsilon_hat: bool = False,
        name: str = "adam",
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
            amsgrad=bool(amsgrad),
            debias_before_max=bool(debias_before_max),
            epsilon_hat=bool(epsilon_hat),
        )

    def slot_initial_values(self):
        slots = {"m": 0.0, "v": 0.0}
        if self.amsgrad:
            slots["v_max"] = 0.0
        return slots

    def update(self, g, theta, slots, lr, t):
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        m = ema(slots["m"], g, b1)
        v = ema(slots["v"], g * g, b2)
        new_slots = {"m": m, "v": v}
        v_used = v
        if self.amsgrad:
            if self.debias_before_max:
                v_used = ops.maximum(slots["v_max"], debias(v, b2, t))
            else:
                v_used = ops.maximum(slots["v_max"], v)
            new_slots["v_max"] = v_used
        debiased_max = self.amsgrad and self.debias_before_max
        if self.epsilon_hat:
            correction_2 = 1.0 - ops.power(b2, t)
            v_raw = v_used * correction_2 if debiased_max else v_used
            step_size = lr * ops.sqrt(correction_2) / (1.0 - ops.power(b1, t))
            return theta - step_size * m / (ops.sqrt(v_raw) + eps), new_slots
        v_hat = v_used if debiased_max else debias(v_used, b2, t)
        return theta - lr * debias(m, b1, t) / (ops.sqrt(v_hat) + eps), new_slots
