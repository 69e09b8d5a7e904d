"""Stochastic gradient descent with heavy-ball or Nesterov momentum."""

from __future__ import annotations

from keras import ops

from keras_optzoo.optimizers.base import (
    ZooOptimizer,
    register,
    validate_beta,
    validate_range,
)


@register("sgd", momentum={"momentum": 0.9}, nesterov={"momentum": 0.9, "nesterov": True})
class SGD(ZooOptimizer):
    """SGD with optional momentum, dampening and Nesterov momentum.

    With `μ = momentum`, `τ = dampening`, `η = learning_rate`:

    `lr_inside_velocity=True` (default; Sutskever et al., 2013, and Keras):

        v ← μ·v − η·(1 − τ)·g          (v starts at 0)
        θ ← θ + v                       (plain)
        θ ← θ + μ·v − η·g               (nesterov)

    `lr_inside_velocity=False` (torch.optim.SGD):

        b ← g at the first step, else b ← μ·b + (1 − τ)·g
        θ ← θ − η·b                     (plain)
        θ ← θ − η·(g + μ·b)             (nesterov)

    The two agree for a constant learning rate and no dampening; with a
    schedule the first applies each step's rate to that step's gradient only,
    the second rescales the whole history by the current rate. `momentum=0`
    is plain SGD, `θ ← θ − η·g`, and keeps no slot.

    Args:
        learning_rate: float >= 0 or a schedule. Defaults to 0.01.
        momentum: μ in [0, 1). Defaults to 0 (no momentum, no slot).
        dampening: τ in [0, 1]: the share of the gradient left out of the
            velocity. Defaults to 0.
        nesterov: Nesterov momentum; needs `momentum > 0` and no dampening.
        lr_inside_velocity: the convention above. Defaults to True.
        **kwargs: Keras optimizer arguments and `nonfinite`.

    Slots: `momentum` (v or b) when `momentum > 0`.

    References:
        Polyak, 1964, "Some methods of speeding up the convergence of
        iteration methods". Sutskever, Martens, Dahl & Hinton, 2013, "On the
        importance of initialization and momentum in deep learning", Eq. 1-4.
    """

    first_moment_slot, second_moment_slot = "momentum", None

    def __init__(
        self,
        learning_rate=0.01,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        lr_inside_velocity: bool = True,
        name: str = "sgd",
        **kwargs,
    ):
        validate_beta("momentum", momentum)
        validate_range("dampening", dampening, 0.0, 1.0)
        if nesterov and (momentum == 0 or dampening != 0):
            raise ValueError(
                "nesterov=True needs momentum in (0, 1) and dampening == 0, got "
                f"momentum={momentum!r}, dampening={dampening!r}"
            )
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.set_hyperparameters(
            momentum=momentum,
            dampening=dampening,
            nesterov=bool(nesterov),
            lr_inside_velocity=bool(lr_inside_velocity),
        )

    def slot_initial_values(self):
        return {"momentum": 0.0} if self.momentum > 0 else {}

    def update(self, g, theta, slots, lr, t):
        mu, tau = self.momentum, self.dampening
        if mu == 0:
            return theta - lr * g, {}
        if self.lr_inside_velocity:
            # Eager torch pays for every op, a multiply by 1 included.
            gradient_scale = lr * (1.0 - tau) if tau else lr
            v = mu * slots["momentum"] - gradient_scale * g
            step = mu * v - lr * g if self.nesterov else v
            return theta + step, {"momentum": v}
        b = ops.where(t == 1.0, g, mu * slots["momentum"] + (1.0 - tau) * g)
        direction = g + mu * b if self.nesterov else b
        return theta - lr * direction, {"momentum": b}
