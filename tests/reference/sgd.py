"""SGD, with heavy-ball or Nesterov momentum, in both velocity conventions.

``lr_inside_velocity=True`` (Sutskever et al. 2013, "On the importance of initialization and
momentum in deep learning", Eq. 1-2 and 3-4 as reformulated by Keras)::

    v <- mu*v - lr*(1 - tau)*g ;  plain: theta <- theta + v ;  nesterov: theta <- theta + mu*v - lr*g

``lr_inside_velocity=False`` (torch.optim.SGD; Polyak 1964 heavy ball with dampening)::

    b <- g at t == 1, else mu*b + (1 - tau)*g ;  plain: theta <- theta - lr*b ;
    nesterov: theta <- theta - lr*(g + mu*b)

Both keep the buffer in slot "momentum"; for a constant lr and tau == 0 they agree (v = -lr*b).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tests.reference.common import Reference, Slots


class SGD(Reference):
    defaults: ClassVar[dict[str, Any]] = {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "lr_inside_velocity": True}

    def initial_slots(self) -> dict[str, float]:
        return {"momentum": 0.0} if self.momentum > 0 else {}

    def update(self, g: np.ndarray, theta: np.ndarray, slots: Slots, t: int) -> tuple[np.ndarray, Slots]:
        lr, mu, tau = self.learning_rate, self.momentum, self.dampening
        if mu == 0:
            return theta - lr * g, slots
        if self.lr_inside_velocity:
            v = mu * slots["momentum"] - lr * (1.0 - tau) * g
            theta = theta + (mu * v - lr * g if self.nesterov else v)
        else:
            # torch seeds the buffer with the raw gradient, undamped, on the first step.
            v = g.copy() if t == 1 else mu * slots["momentum"] + (1.0 - tau) * g
            theta = theta - lr * (g + mu * v if self.nesterov else v)
        return theta, {"momentum": v}
