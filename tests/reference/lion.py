"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2)::

    c = b1*m + (1-b1)*g ;  theta <- theta - lr*sign(c) ;  m <- b2*m + (1-b2)*g

The paper's decay, theta - lr*(sign(c) + wd*theta), equals the base class's decoupled decay
followed by the sign step, because sign(c) does not depend on theta. Slot "m".
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tests.reference.common import Reference, Slots, ema


class Lion(Reference):
    defaults: ClassVar[dict[str, Any]] = {"beta_1": 0.9, "beta_2": 0.99}

    def initial_slots(self) -> dict[str, float]:
        return {"m": 0.0}

    def update(self, g: np.ndarray, theta: np.ndarray, slots: Slots, t: int) -> tuple[np.ndarray, Slots]:
        c = ema(slots["m"], g, self.beta_1)
        return theta - self.learning_rate * np.sign(c), {"m": ema(slots["m"], g, self.beta_2)}
