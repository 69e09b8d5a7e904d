"""Adagrad (Duchi, Hazan & Singer 2011, "Adaptive Subgradient Methods...", Fig. 1 / Eq. 5,
diagonal version)::

    G <- G + g^2 ;  theta <- theta - lr*g/(sqrt(G) + eps)

``epsilon_inside_sqrt=True`` is the Keras/optax form ``lr*g/sqrt(G + eps)``. Slot "accumulator"
starts at ``initial_accumulator_value``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tests.reference.common import Reference, Slots


class Adagrad(Reference):
    defaults: ClassVar[dict[str, Any]] = {"initial_accumulator_value": 0.0, "epsilon": 1e-10, "epsilon_inside_sqrt": False}

    def initial_slots(self) -> dict[str, float]:
        return {"accumulator": self.initial_accumulator_value}

    def update(self, g: np.ndarray, theta: np.ndarray, slots: Slots, t: int) -> tuple[np.ndarray, Slots]:
        accumulator = slots["accumulator"] + g * g
        if self.epsilon_inside_sqrt:
            denom = np.sqrt(accumulator + self.epsilon)
        else:
            denom = np.sqrt(accumulator) + self.epsilon
        return theta - self.learning_rate * g / denom, {"accumulator": accumulator}
