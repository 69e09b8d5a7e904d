"""RAdam (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond", Algorithm 2)::

    m, v as Adam ;  m_hat = m/(1-b1^t) ;  v_hat = v/(1-b2^t)
    rho_inf = 2/(1-b2) - 1 ;  rho_t = rho_inf - 2*t*b2^t/(1-b2^t)
    rho_t > threshold: r_t = sqrt((rho_t-4)(rho_t-2)rho_inf / ((rho_inf-4)(rho_inf-2)rho_t))
                       theta <- theta - lr*r_t*m_hat/(sqrt(v_hat) + eps)
    otherwise:         theta <- theta - lr*m_hat

Alg. 2 has no eps (it divides by sqrt(v_hat)); eps sits on the debiased root as in optax.radam.
torch.optim.RAdam and pytorch_optimizer put it on the raw root sqrt(v) instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tests.reference.common import Reference, Slots, bias_correction, ema


class RAdam(Reference):
    defaults: ClassVar[dict[str, Any]] = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8, "rectification_threshold": 5.0}

    def initial_slots(self) -> dict[str, float]:
        return {"m": 0.0, "v": 0.0}

    def update(self, g: np.ndarray, theta: np.ndarray, slots: Slots, t: int) -> tuple[np.ndarray, Slots]:
        b2 = self.beta_2
        m = ema(slots["m"], g, self.beta_1)
        v = ema(slots["v"], g * g, b2)
        m_hat = m / bias_correction(self.beta_1, t)
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        rho_t = rho_inf - 2.0 * t * b2**t / bias_correction(b2, t)
        if rho_t > self.rectification_threshold:
            r_t = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            v_hat = v / bias_correction(b2, t)
            step = r_t * m_hat / (np.sqrt(v_hat) + self.epsilon)
        else:
            step = m_hat
        return theta - self.learning_rate * step, {"m": m, "v": v}
