"""RMSprop, plain, centered and with momentum."""

from __future__ import annotations

from keras import ops

from keras_optzoo.optimizers.base import (
    ZooOptimizer,
    ema,
    register,
    validate_beta,
    validate_positive,
)


@register("rmsprop")
class RMSprop(ZooOptimizer):
    """RMSprop (Tieleman & Hinton, 2012), with Graves's centered variant.

        v ← ρ·v + (1 − ρ)·g²
        centered:  ḡ ← ρ·ḡ + (1 − ρ)·g,   s = v − ḡ²      else  s = v
        d = √s + ε                       (epsilon_inside_sqrt=False: torch.optim)
        d = √(s + ε)                     (epsilon_inside_sqrt=True: keras core)
        momentum > 0:  b ← μ·b + η·g/d,   θ ← θ − b
        otherwise:     θ ← θ − η·g/d

    The momentum buffer holds learning-rate-scaled increments as in keras core
    and TensorFlow; torch.optim keeps η outside it (`b ← μ·b + g/d; θ ← θ − η·b`),
    which is the same trajectory for a constant learning rate.

    Args:
        learning_rate: float >= 0 or a schedule. Defaults to 0.001.
        rho: ρ in [0, 1) (torch's `alpha`). Defaults to 0.9.
        momentum: μ in [0, 1). Defaults to 0.
        epsilon: ε > 0. Defaults to 1e-7.
        centered: divide by the estimated variance instead of the raw second
            moment. Defaults to False.
        epsilon_inside_sqrt: where ε goes, see above. Defaults to False.
        **kwargs: Keras optimizer arguments and `nonfinite`.

    Slots: `velocity` (v); `average_gradient` (ḡ) if centered; `momentum` (b)
    if momentum > 0.

    References:
        Tieleman & Hinton, 2012, Lecture 6.5 of "Neural Networks for Machine
        Learning". Graves, 2013, "Generating Sequences With Recurrent Neural
        Networks", arXiv:1308.0850, Eq. 38-41 (centered form).
    """

    first_moment_slot, second_moment_slot = "average_gradient", "velocity"

    def __init__(
        self,
        learning_rate=0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        epsilon_inside_sqrt: bool = False,
        name: str = "rmsprop",
        **kwargs,
    ):
        validate_beta("rho", rho)
        validate_beta("momentum", momentum)
        validate_positive("epsilon", epsilon)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.set_hyperparameters(
            rho=rho,
            momentum=momentum,
            epsilon=epsilon,
            centered=bool(centered),
            epsilon_inside_sqrt=bool(epsilon_inside_sqrt),
        )

    def slot_initial_values(self):
        slots = {"velocity": 0.0}
        if self.centered:
            slots["average_gradient"] = 0.0
        if self.momentum > 0:
            slots["momentum"] = 0.0
        return slots

    def update(self, g, theta, slots, lr, t):
        new_slots = {"velocity": ema(slots["velocity"], g * g, self.rho)}
        s = new_slots["velocity"]
        if self.centered:
            new_slots["average_gradient"] = ema(slots["average_gradient"], g, self.rho)
            s = s - new_slots["average_gradient"] ** 2
        if self.epsilon_inside_sqrt:
            denominator = ops.sqrt(s + self.epsilon)
        else:
            denominator = ops.sqrt(s) + self.epsilon
        increment = lr * g / denominator
        if self.momentum > 0:
            increment = self.momentum * slots["momentum"] + increment
            new_slots["momentum"] = increment
        return theta - increment, new_slots
