"""NAdam (Dozat 2016, "Incorporating Nesterov Momentum into Adam", Algorithm 2, with the
momentum schedule of Sec. 3 as torch.optim.NAdam and Keras implement it)::

    mu_t = b1*(1 - 0.5*0.96^(t*psi)) ; mu_next = b1*(1 - 0.5*0.96^((t+1)*psi)) ; Pi_t = Pi_{t-1}*mu_t
    m <- b1*m + (1-b1)*g ;  v <- b2*v + (1-b2)*g^2 ;  v_hat = v/(1-b2^t)
    theta <- theta - lr*[(1-mu_t)/(1-Pi_t)*g + mu_next/(1-Pi_t*mu_next)*m] / (sqrt(v_hat) + eps)

psi = momentum_decay (the paper's 1/250 = 0.004). Unlike Alg. 2, m is updated with the constant
b1 (torch/Keras), and v_hat has no extra factor b2. Pi ("mu_product", Pi_0 = 1) is one scalar
per optimizer, advanced once per step in ``begin_step``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tests.reference.common import Reference, Slots, bias_correction, ema


class NAdam(Reference):
    defaults: ClassVar[dict[str, Any]] = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8, "momentum_decay": 0.004}

    def reset(self) -> None:
        self.mu_product = 1.0
        self.mu_t = self.mu_next = 0.0

    def global_state(self) -> dict[str, float]:
        return {"mu_product": self.mu_product}

    def _mu(self, t: int) -> float:
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))

    def begin_step(self, t: int) -> None:
        self.mu_t, self.mu_next = self._mu(t), self._mu(t + 1)
        self.mu_product *= self.mu_t

    def initial_slots(self) -> dict[str, float]:
        return {"m": 0.0, "v": 0.0}

    def update(self, g: np.ndarray, theta: np.ndarray, slots: Slots, t: int) -> tuple[np.ndarray, Slots]:
        m = ema(slots["m"], g, self.beta_1)
        v = ema(slots["v"], g * g, self.beta_2)
        v_hat = v / bias_correction(self.beta_2, t)
        nesterov_m = (1.0 - self.mu_t) / (1.0 - self.mu_product) * g + self.mu_next / (
            1.0 - self.mu_product * self.mu_next
        ) * m
        return theta - self.learning_rate * nesterov_m / (np.sqrt(v_hat) + self.epsilon), {"m": m, "v": v}
