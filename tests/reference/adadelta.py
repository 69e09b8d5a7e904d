"""Adadelta (Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method", Algorithm 1)::

    E[g^2] <- rho*E[g^2] + (1-rho)*g^2
    dx      = -sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g
    E[dx^2] <- rho*E[dx^2] + (1-rho)*dx^2
    theta  <- theta + lr*dx

The paper has no learning rate (lr = 1); like torch and Keras, lr scales the applied step but
not the dx that enters E[dx^2]. Slots "accumulated_grad" (E[g^2]), "accumulated_delta" (E[dx^2]).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tests.reference.common import Reference, Slots, ema


class Adadelta(Reference):
    defaults: ClassVar[dict[str, Any]] = {"rho": 0.95, "epsilon": 1e-6}

    def initial_slots(self) -> dict[str, float]:
        return {"accumulated_grad": 0.0, "accumulated_delta": 0.0}

    def update(self, g: np.ndarray, theta: np.ndarray, slots: Slots, t: int) -> tuple[np.ndarray, Slots]:
        eg = ema(slots["accumulated_grad"], g * g, self.rho)
        dx = -np.sqrt(slots["accumulated_delta"] + self.epsilon) / np.sqrt(eg + self.epsilon) * g
        ed = ema(slots["accumulated_delta"], dx * dx, self.rho)
        return theta + self.learning_rate * dx, {"accumulated_grad": eg, "accumulated_delta": ed}
