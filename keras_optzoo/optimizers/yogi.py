"""Yogi: additive, sign-controlled second-moment updates."""

from __future__ import annotations

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


@register("yogi")
class Yogi(ZooOptimizer):
    """Yogi (Zaheer et al., 2018, Algorithm 2).

        m ← β₁·m + (1 − β₁)·g
        v ← v − (1 − β₂)·sign(v − g²)·g²
        θ ← θ − η·m / (√v + ε)

    v moves towards g² by at most (1 − β₂)·g² per step, so it cannot collapse
    the way Adam's v can when gradients suddenly shrink. As in the paper there
    is no bias correction by default; v starts at `initial_accumulator_value`
    and m at 0.

    `bias_correction=True` is the form of optax.yogi and pytorch_optimizer.Yogi
    (and TensorFlow Addons): m and v both start at `initial_accumulator_value`
    and the step uses m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ) in place of m and v.

    Args:
        learning_rate: float >= 0 or a schedule. Defaults to 0.01.
        beta_1: β₁ in [0, 1). Defaults to 0.9.
        beta_2: β₂ in [0, 1). Defaults to 0.999.
        epsilon: ε > 0. Defaults to 1e-3 (the paper's).
        initial_accumulator_value: v's starting value, >= 0. Defaults to 1e-6.
        bias_correction: the optax form, see above. Defaults to False.
        **kwargs: Keras optimizer arguments and `nonfinite`.

    Slots: `m`, `v`.

    References:
        Zaheer, Reddi, Sachan, Kale & Kumar, 2018, "Adaptive Methods for
        Nonconvex Optimization", NeurIPS, Algorithm 2.
    """

    first_moment_slot, second_moment_slot = "m", "v"

    def __init__(
        self,
        learning_rate=0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-3,
        initial_accumulator_value: float = 1e-6,
        bias_correction: bool = False,
        name: str = "yogi",
        **kwargs,
    ):
        validate_beta("beta_1", beta_1)
        validate_beta("beta_2", beta_2)
        validate_positive("epsilon", epsilon)
        validate_non_negative("initial_accumulator_value", initial_accumulator_value)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.set_hyperparameters(
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            initial_accumulator_value=initial_accumulator_value,
            bias_correction=bool(bias_correction),
        )

    def slot_initial_values(self):
        initial_m = self.initial_accumulator_value if self.bias_correction else 0.0
        return {"m": initial_m, "v": self.initial_accumulator_value}

    def update(self, g, theta, slots, lr, t):
        m = ema(slots["m"], g, self.beta_1)
        g2 = g * g
        v = slots["v"] - (1.0 - self.beta_2) * ops.sign(slots["v"] - g2) * g2
        if self.bias_correction:
            step = debias(m, self.beta_1, t) / (ops.sqrt(debias(v, self.beta_2, t)) + self.epsilon)
        else:
            step = m / (ops.sqrt(v) + self.epsilon)
        return theta - lr * step, {"m": m, "v": v}
