"""Adadelta: unit-corrected steps from running averages of g² and Δθ²."""

from __future__ import annotations

from keras import ops

from keras_optzoo.optimizers.base import (
    ZooOptimizer,
    ema,
    register,
    validate_beta,
    validate_positive,
)


@register("adadelta")
class Adadelta(ZooOptimizer):
    """Adadelta (Zeiler, 2012, Algorithm 1).

        E[g²]  ← ρ·E[g²] + (1 − ρ)·g²
        Δθ     = −√(E[Δθ²] + ε) / √(E[g²] + ε) · g
        E[Δθ²] ← ρ·E[Δθ²] + (1 − ρ)·Δθ²
        θ      ← θ + η·Δθ

    The paper has no learning rate (η = 1, the default); torch.optim and keras
    core scale Δθ by η after accumulating it, as here.

    Args:
        learning_rate: η, float >= 0 or a schedule. Defaults to 1.0.
        rho: ρ in [0, 1). Defaults to 0.95 (the paper's value).
        epsilon: ε > 0. Defaults to 1e-6 (the paper's value).
        **kwargs: Keras optimizer arguments and `nonfinite`.

    Slots: `accumulated_grad` (E[g²]), `accumulated_delta` (E[Δθ²]).

    References:
        Zeiler, 2012, "ADADELTA: An Adaptive Learning Rate Method",
        arXiv:1212.5701, Algorithm 1.
    """

    first_moment_slot, second_moment_slot = None, "accumulated_grad"

    def __init__(
        self,
        learning_rate=1.0,
        rho: float = 0.95,
        epsilon: float = 1e-6,
        name: str = "adadelta",
        **kwargs,
    ):
        validate_beta("rho", rho)
        validate_positive("epsilon", epsilon)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.set_hyperparameters(
            rho=rho,
            epsilon=epsilon,
        )

    def slot_initial_values(self):
        return {"accumulated_grad": 0.0, "accumulated_delta": 0.0}

    def update(self, g, theta, slots, lr, t):
        rho, eps = self.rho, self.epsilon
        Eg2 = ema(slots["accumulated_grad"], g * g, rho)
        delta = -ops.sqrt(slots["accumulated_delta"] + eps) / ops.sqrt(Eg2 + eps) * g
        Edelta2 = ema(slots["accumulated_delta"], delta * delta, rho)
        return theta + lr * delta, {
            "accumulated_grad": Eg2,
            "accumulated_delta": Edelta2,
        }
