"""Lion: sign of an interpolated momentum."""

from __future__ import annotations

from keras import ops

from keras_optzoo.optimizers.base import ZooOptimizer, ema, register, validate_beta


@register("lion")
class Lion(ZooOptimizer):
    """Lion (Chen et al., 2023, Algorithm 2).

        c = β₁·m + (1 − β₁)·g
        θ ← θ − η·sign(c)
        m ← β₂·m + (1 − β₂)·g

    Every coordinate moves by exactly η (or 0 where c is 0), so Lion wants a
    learning rate 3-10x smaller than AdamW's and a weight decay 3-10x larger.
    The paper's `θ ← θ − η·(sign(c) + λ·θ)` is the decoupled `weight_decay`.

    Args:
        learning_rate: float >= 0 or a schedule. Defaults to 1e-4.
        beta_1: β₁ in [0, 1), the interpolation for the update. Defaults to 0.9.
        beta_2: β₂ in [0, 1), the momentum decay. Defaults to 0.99.
        **kwargs: Keras optimizer arguments and `nonfinite`.

    Slots: `m`.

    References:
        Chen, Liang, Huang, Real, Wang, Pham, Dong, Luong, Hsieh, Lu & Le, 2023,
        "Symbolic Discovery of Optimization Algorithms", NeurIPS, Algorithm 2.
    """

    first_moment_slot, second_moment_slot = "m", None

    def __init__(
        self,
        learning_rate=1e-4,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        name: str = "lion",
        **kwargs,
    ):
        validate_beta("beta_1", beta_1)
        validate_beta("beta_2", beta_2)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.set_hyperparameters(
            beta_1=beta_1,
            beta_2=beta_2,
        )

    def slot_initial_values(self):
        return {"m": 0.0}

    def update(self, g, theta, slots, lr, t):
        c = ema(slots["m"], g, self.beta_1)
        return theta - lr * ops.sign(c), {"m": ema(slots["m"], g, self.beta_2)}
