"""Yogi (Zaheer et al. 2018, "Adaptive Methods for Nonconvex Optimization", Algorithm 2)::

    m <- b1*m + (1-b1)*g ;  v <- v - (1-b2)*sign(v - g^2)*g^2 ;  theta <- theta - lr*m/(sqrt(v) + eps)

No bias correction, as in Alg. 2. Slot "m" starts at 0, "v" at ``initial_accumulator_value``.
optax.yogi and pytorch_optimizer's Yogi both bias-correct m and v and start m at
``initial_accumulator_value`` too: a different trajectory (see tests/test_reference_sanity.py),
available as ``bias_correction=True``::

    m, v start at v0 ;  same m, v updates ;  theta <- theta - lr*(m/(1-b1^t))/(sqrt(v/(1-b2^t)) + eps)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tests.reference.common import Reference, Slots, debias, ema


class Yogi(Reference):
    defaults: ClassVar[dict[str, Any]] = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-3, "initial_accumulator_value": 1e-6,
                                          "bias_correction": False}

    def initial_slots(self) -> dict[str, float]:
        m0 = self.initial_accumulator_value if self.bias_correction else 0.0
        return {"m": m0, "v": self.initial_accumulator_value}

    def update(self, g: np.ndarray, theta: np.ndarray, slots: Slots, t: int) -> tuple[np.ndarray, Slots]:
        m = ema(slots["m"], g, self.beta_1)
        g2 = g * g
        v = slots["v"] - (1.0 - self.beta_2) * np.sign(slots["v"] - g2) * g2
        if self.bias_correction:
            m_used, v_used = debias(m, self.beta_1, t), debias(v, self.beta_2, t)
        else:
            m_used, v_used = m, v
        return theta - self.learning_rate * m_used / (np.sqrt(v_used) + self.epsilon), {"m": m, "v": v}
