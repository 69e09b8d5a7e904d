"""AdaBelief (Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
Observed Gradients", Algorithm 2)::

    m <- b1*m + (1-b1)*g ;  s <- b2*s + (1-b2)*(g - m)^2 + eps      (the new m)
    theta <- theta - lr*m_hat/(sqrt(s_hat) + eps)                    (hats: bias-corrected)

eps enters twice, inside s and on the root, as in Alg. 2 and the official code (optax's
eps_root = eps). Slots "m", "s".
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tests.reference.common import Reference, Slots, debias, ema


class AdaBelief(Reference):
    defaults: ClassVar[dict[str, Any]] = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-16}

    def initial_slots(self) -> dict[str, float]:
        return {"m": 0.0, "s": 0.0}

    def update(self, g: np.ndarray, theta: np.ndarray, slots: Slots, t: int) -> tuple[np.ndarray, Slots]:
        m = ema(slots["m"], g, self.beta_1)
        s = ema(slots["s"], (g - m) ** 2, self.beta_2) + self.epsilon
        m_hat, s_hat = debias(m, self.beta_1, t), debias(s, self.beta_2, t)
        return theta - self.learning_rate * m_hat / (np.sqrt(s_hat) + self.epsilon), {"m": m, "s": s}
