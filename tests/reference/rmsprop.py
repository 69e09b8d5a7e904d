"""RMSprop (Tieleman & Hinton 2012, Coursera lecture 6.5), centered variant and momentum as in
Graves 2013, "Generating Sequences With Recurrent Neural Networks", Eq. 38-41::

    v <- rho*v + (1-rho)*g^2 ;  centered: gbar <- rho*gbar + (1-rho)*g ; s = v - gbar^2 ; else s = v
    denom = sqrt(s) + eps            [epsilon_inside_sqrt=True (Keras, optax): sqrt(s + eps)]
    momentum > 0: b <- momentum*b + lr*g/denom ; theta <- theta - b
    else:         theta <- theta - lr*g/denom

Slots "velocity", "average_gradient" (centered only), "momentum" (momentum > 0 only).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tests.reference.common import Reference, Slots, ema


class RMSprop(Reference):
    defaults: ClassVar[dict[str, Any]] = {
        "rho": 0.9,
        "momentum": 0.0,
        "epsilon": 1e-7,
        "centered": False,
        "epsilon_inside_sqrt": False,
    }

    def initial_slots(self) -> dict[str, float]:
        slots = {"velocity": 0.0}
        if self.centered:
            slots["average_gradient"] = 0.0
        if self.momentum > 0:
            slots["momentum"] = 0.0
        return slots

    def update(self, g: np.ndarray, theta: np.ndarray, slots: Slots, t: int) -> tuple[np.ndarray, Slots]:
        new: Slots = {"velocity": ema(slots["velocity"], g * g, self.rho)}
        s = new["velocity"]
        if self.centered:
            new["average_gradient"] = ema(slots["average_gradient"], g, self.rho)
            s = s - new["average_gradient"] ** 2
        denom = np.sqrt(s + self.epsilon) if self.epsilon_inside_sqrt else np.sqrt(s) + self.epsilon
        step = self.learning_rate * g / denom
        if self.momentum > 0:
            new["momentum"] = self.momentum * slots["momentum"] + step
            step = new["momentum"]
        return theta - step, new
