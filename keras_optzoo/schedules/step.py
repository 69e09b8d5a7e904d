"""Piecewise-constant decay: every `step_size` steps, or at listed milestones."""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

from keras_optzoo.optimizers.base import validate_non_negative, validate_range
from keras_optzoo.schedules.base import (
    ZooSchedule,
    floor_divide,
    register_schedule,
    validate_boundaries,
    validate_steps,
)


@register_schedule
class StepDecay(ZooSchedule):
    """Multiply the learning rate by `gamma` every `step_size` steps.

        η(t) = η₀·γ^⌊t / step_size⌋

    Steps `0 … step_size − 1` use `η₀`; step `k·step_size` is the first at
    `η₀·γᵏ`. Equals torch's `StepLR(step_size, gamma)` and
    `optax.exponential_decay(η₀, step_size, γ, staircase=True)`.

    Args:
        initial_learning_rate: `η₀ >= 0`.
        step_size: integer >= 1.
        gamma: `γ`, the factor per step, in [0, 1]. Defaults to 0.1.

    Example:
    ```python
    # 4% less every 8 epochs of 390 steps, as in Szegedy et al. (2015).
    schedule = oz.schedules.StepDecay(0.1, step_size=8 * 390, gamma=0.96)
    ```

    References:
        Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke &
        Rabinovich, 2015, "Going Deeper with Convolutions", CVPR, Sec. 6.
    """

    def __init__(self, initial_learning_rate: float, step_size: int, gamma: float = 0.1):
        self.initial_learning_rate = float(
            validate_non_negative("initial_learning_rate", initial_learning_rate)
        )
        self.step_size = validate_steps("step_size", step_size, 1)
        self.gamma = float(validate_range("gamma", gamma, 0.0, 1.0))

    def evaluate(self, step):
        decays = floor_divide(step, float(self.step_size))
        return self.initial_learning_rate * ops.power(self.gamma, decays)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "step_size": self.step_size,
            "gamma": self.gamma,
        }


@register_schedule
class MultiStepDecay(ZooSchedule):
    """Multiply the learning rate by `gamma` at each milestone step.

        η(t) = η₀·γ^#{m ∈ milestones : m ≤ t}

    Step `m − 1` still uses the previous rate; step `m` is the first at the
    new one. Equals torch's `MultiStepLR(milestones, gamma)` and
    `optax.piecewise_constant_schedule(η₀, {m: γ for m in milestones})`.

    Args:
        initial_learning_rate: `η₀ >= 0`.
        milestones: strictly increasing integer steps >= 1.
        gamma: `γ`, the factor per milestone, in [0, 1]. Defaults to 0.1.

    Example:
    ```python
    schedule = oz.schedules.MultiStepDecay(0.1, milestones=[32_000, 48_000])
    ```

    References:
        He, Zhang, Ren & Sun, 2016, "Deep Residual Learning for Image
        Recognition", CVPR, Sec. 4.2 (divided by 10 at 32k and 48k iterations).
    """

    def __init__(self, initial_learning_rate: float, milestones: Sequence[int], gamma: float = 0.1):
        self.initial_learning_rate = float(
            validate_non_negative("initial_learning_rate", initial_learning_rate)
        )
        self.milestones = validate_boundaries("milestones", milestones, 1)
        self.gamma = float(validate_range("gamma", gamma, 0.0, 1.0))

    def evaluate(self, step):
        passed = ops.zeros_like(step)
        for milestone in self.milestones:
            passed = passed + ops.cast(step >= milestone, "float32")
        return self.initial_learning_rate * ops.power(self.gamma, passed)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "milestones": list(self.milestones),
            "gamma": self.gamma,
        }
