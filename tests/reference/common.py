"""Shared pieces of the float64 NumPy references.

Every reference is written from the paper's algorithm box, as pinned down by the project's
SPEC.md, and is deliberately independent of keras_optzoo: it imports NumPy only, so a bug in
the library cannot leak into the yardstick it is measured with.

A reference holds one algorithm's per-tensor math in ``update``; the base class applies the
decoupled weight decay that SPEC.md prescribes for every optimizer
(``theta <- theta * (1 - lr * wd)``, before the algorithm's update, as Keras does) and runs
whole trajectories over several tensors.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

Slots = dict[str, np.ndarray]


def ema(average: np.ndarray, value: np.ndarray, decay: float) -> np.ndarray:
    """Exponential moving average ``decay * average + (1 - decay) * value``."""
    return decay * average + (1.0 - decay) * value


def bias_correction(decay: float, t: int) -> float:
    """``1 - decay**t``: the weight an EMA started at zero has collected after t steps."""
    return 1.0 - decay**t


def debias(average: np.ndarray, decay: float, t: int) -> np.ndarray:
    """Bias-corrected EMA ``average / (1 - decay**t)`` (Kingma & Ba 2015, Alg. 1)."""
    return average / bias_correction(decay, t)


def decoupled_weight_decay(theta: np.ndarray, learning_rate: float, weight_decay: float) -> np.ndarray:
    """Loshchilov & Hutter 2019: shrink the weights before, and apart from, the update."""
    return theta * (1.0 - learning_rate * weight_decay)


class Reference:
    """Base class: per-tensor ``update`` math in subclasses, decay and trajectories here.

    Subclasses list their keyword arguments (SPEC.md's names and defaults) in ``defaults``;
    they become attributes. Values are not validated: the reference must be able to run the
    configurations the library rejects, and validation is the library's job.
    """

    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, learning_rate: float, weight_decay: float = 0.0, **hyperparameters: Any) -> None:
        unknown = set(hyperparameters) - set(self.defaults)
        if unknown:
            # A misspelt name in a test table would otherwise silently test the default.
            raise TypeError(f"{type(self).__name__} got unknown arguments {sorted(unknown)}")
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay or 0.0)
        self.hyperparameters = {**self.defaults, **hyperparameters}
        for name, value in self.hyperparameters.items():
            setattr(self, name, value)
        self.reset()

    def reset(self) -> None:
        """Reset per-optimizer (not per-tensor) state; ``run`` calls it first."""

    def global_state(self) -> dict[str, float]:
        """Per-optimizer scalars a trajectory should record (NAdam's ``mu_product``)."""
        return {}

    def initial_slots(self) -> dict[str, float]:
        """Slot name -> initial value, for exactly the slots this configuration has."""
        raise NotImplementedError

    def init_slots(self, theta: np.ndarray) -> Slots:
        theta = np.asarray(theta, dtype=np.float64)
        return {name: np.full_like(theta, value) for name, value in self.initial_slots().items()}

    def begin_step(self, t: int) -> None:
        """Hook for state shared by all tensors of one step; called once before them."""

    def update(self, g: np.ndarray, theta: np.ndarray, slots: Slots, t: int) -> tuple[np.ndarray, Slots]:
        """The algorithm's own math for one tensor, on the already decayed ``theta``."""
        raise NotImplementedError

    def step(self, g: np.ndarray, theta: np.ndarray, slots: Slots, t: int) -> tuple[np.ndarray, Slots]:
        """One step (t = 1, 2, ...) for one tensor; returns new values, mutates nothing."""
        g = np.asarray(g, dtype=np.float64)
        theta = np.asarray(theta, dtype=np.float64)
        if self.weight_decay:
            theta = decoupled_weight_decay(theta, self.learning_rate, self.weight_decay)
        return self.update(g, theta, dict(slots), t)

    def run(self, params0: list[np.ndarray], grads: list[list[np.ndarray]]) -> list[dict[str, Any]]:
        """Trajectory: after each step ``{"params": [...], "slots": {name: [...]}, "globals": {...}}``."""
        self.reset()
        params = [np.array(p, dtype=np.float64) for p in params0]
        slots = [self.init_slots(p) for p in params]
        trajectory = []
        for t, step_grads in enumerate(grads, start=1):
            self.begin_step(t)
            for i, g in enumerate(step_grads):
                params[i], slots[i] = self.step(g, params[i], slots[i], t)
            trajectory.append(
                {
                    "params": [p.copy() for p in params],
                    "slots": {name: [s[name].copy() for s in slots] for name in slots[0]} if slots else {},
                    "globals": self.global_state(),
                }
            )
        return trajectory
