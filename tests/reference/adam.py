"""Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", Algorithm 1), AMSGrad
(Reddi, Kale & Kumar 2018, "On the Convergence of Adam and Beyond", Algorithm 2) and AdamW
(Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", Algorithm 2)::

    m <- b1*m + (1-b1)*g ;  v <- b2*v + (1-b2)*g^2
    amsgrad (torch/Keras form):  v_max <- max(v_max, v) ;  v_used = v_max      else v_used = v
    amsgrad, debias_before_max (optax form): v_max <- max(v_max, v/(1-b2^t)) ; v_hat = v_max
    m_hat = m/(1-b1^t) ;  v_hat = v_used/(1-b2^t)
    theta <- theta - lr*m_hat/(sqrt(v_hat) + eps)
    epsilon_hat (Alg. 1's "efficient version", Keras/TF1): lr*sqrt(1-b2^t)/(1-b1^t)*m/(sqrt(v_used) + eps)

Reddi et al.'s Alg. 2 has no bias correction at all; both AMSGrad forms above keep Adam's, as
every framework does. SPEC.md does not define epsilon_hat together with debias_before_max; here
eps is then added to the un-debiased root, sqrt(v_max*(1-b2^t)), which is what epsilon_hat means
in the other cases. AdamW is Adam with the base class's decoupled decay, default wd = 0.01.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tests.reference.common import Reference, Slots, bias_correction, ema


class Adam(Reference):
    defaults: ClassVar[dict[str, Any]] = {
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-8,
        "amsgrad": False,
        "debias_before_max": False,
        "epsilon_hat": False,
    }

    def initial_slots(self) -> dict[str, float]:
        return {"m": 0.0, "v": 0.0, "v_max": 0.0} if self.amsgrad else {"m": 0.0, "v": 0.0}

    def update(self, g: np.ndarray, theta: np.ndarray, slots: Slots, t: int) -> tuple[np.ndarray, Slots]:
        bc1, bc2 = bias_correction(self.beta_1, t), bias_correction(self.beta_2, t)
        new: Slots = {"m": ema(slots["m"], g, self.beta_1), "v": ema(slots["v"], g * g, self.beta_2)}
        # v_raw is on the scale of v (no debias), v_hat on the debiased scale.
        v_raw = new["v"]
        if self.amsgrad and self.debias_before_max:
            new["v_max"] = np.maximum(slots["v_max"], new["v"] / bc2)
            v_raw = new["v_max"] * bc2
        elif self.amsgrad:
            new["v_max"] = np.maximum(slots["v_max"], new["v"])
            v_raw = new["v_max"]
        if self.epsilon_hat:
            step = self.learning_rate * np.sqrt(bc2) / bc1 * new["m"] / (np.sqrt(v_raw) + self.epsilon)
        elif self.amsgrad and self.debias_before_max:
            step = self.learning_rate * (new["m"] / bc1) / (np.sqrt(new["v_max"]) + self.epsilon)
        else:
            step = self.learning_rate * (new["m"] / bc1) / (np.sqrt(v_raw / bc2) + self.epsilon)
        return theta - step, new


class AdamW(Adam):
    def __init__(self, learning_rate: float, weight_decay: float = 0.01, **hyperparameters: object) -> None:
        super().__init__(learning_rate, weight_decay, **hyperparameters)
