"""AdamW: Adam with decoupled weight decay."""

from __future__ import annotations

from keras_optzoo.optimizers.adam import Adam
from keras_optzoo.optimizers.base import register


@register("adamw")
class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019, Algorithm 2).

    Adam whose weight decay is decoupled from the gradient:

        θ ← θ·(1 − η·λ)
        θ ← θ − η·m̂ / (√v̂ + ε)            (Adam's update, see `Adam`)

    This is torch.optim.AdamW and keras core's AdamW exactly; the paper writes
    the decay as `η_t·λ·θ` with a schedule multiplier η_t, which is the learning
    rate schedule here. Every `Adam` argument (amsgrad, epsilon_hat, ...) applies.

    Args:
        learning_rate: float >= 0 or a schedule. Defaults to 0.001.
        weight_decay: λ >= 0. Defaults to 0.01 (torch.optim's default).
        **kwargs: the arguments of `Adam`.

    References:
        Loshchilov & Hutter, 2019, "Decoupled Weight Decay Regularization",
        Algorithm 2.
    """

    def __init__(self, learning_rate=0.001, weight_decay: float = 0.01, name: str = "adamw", **kwargs):
        super().__init__(
            learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs
        )
