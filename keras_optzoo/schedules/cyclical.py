"""Cyclical learning rates (Smith 2017): triangle waves between two bounds."""

from __future__ import annotations

from keras import ops

from keras_optzoo.optimizers.base import (
    validate_choice,
    validate_non_negative,
    validate_range,
)
from keras_optzoo.schedules.base import (
    ZooSchedule,
    floor_divide,
    register_schedule,
    validate_steps,
)

CYCLICAL_MODES = ("triangular", "triangular2", "exp_range")


@register_schedule
class TriangularCyclical(ZooSchedule):
    """A triangle wave between `base_learning_rate` and `max_learning_rate`.

    With half-cycle `s = step_size` (Smith's `stepsize`), Smith's Sec. 3.1:

        cycle = ⌊1 + t/(2s)⌋,   x = |t/s − 2·cycle + 1|
        η(t)  = η_base + (η_max − η_base)·max(0, 1 − x)·scale

    `scale` is 1 ("triangular"), `1/2^(cycle−1)` ("triangular2": the height
    halves every cycle) or `γ^t` ("exp_range"). Step 0 uses `η_base`, step
    `s` the (scaled) top, step `2s` `η_base` again. Equals torch's
    `CyclicLR(base_lr, max_lr, step_size_up=s, mode=..., gamma=γ)`.

    Args:
        base_learning_rate: `η_base >= 0`, the lower bound.
        max_learning_rate: `η_max >= base_learning_rate`, the upper bound.
        step_size: `s`, steps per half cycle, integer >= 1.
        mode: `"triangular"` (default), `"triangular2"` or `"exp_range"`.
        gamma: `γ` in (0, 1], used by `"exp_range"`. Defaults to 1.0.

    Example:
    ```python
    schedule = oz.schedules.TriangularCyclical(1e-4, 1e-2, step_size=4 * steps_per_epoch)
    ```

    References:
        Smith, 2017, "Cyclical Learning Rates for Training Neural Networks",
        WACV, Sec. 3.1.
    """

    def __init__(
        self,
        base_learning_rate: float,
        max_learning_rate: float,
        step_size: int,
        mode: str = "triangular",
        gamma: float = 1.0,
    ):
        self.base_learning_rate = float(validate_non_negative("base_learning_rate", base_learning_rate))
        self.max_learning_rate = float(
            validate_range("max_learning_rate", max_learning_rate, self.base_learning_rate)
        )
        self.step_size = validate_steps("step_size", step_size, 1)
        self.mode = validate_choice("mode", mode, CYCLICAL_MODES)
        self.gamma = float(validate_range("gamma", gamma, 0.0, 1.0, low_inclusive=False))

    def evaluate(self, step):
        cycle = floor_divide(step, 2.0 * self.step_size)  # Smith's cycle − 1
        # Position in the cycle, exact in float32, so the peak lands on step s.
        position = step - 2.0 * self.step_size * cycle
        height = ops.maximum(0.0, 1.0 - ops.abs(position / self.step_size - 1.0))
        if self.mode == "triangular2":
            height = height / ops.power(2.0, cycle)
        elif self.mode == "exp_range":
            height = height * ops.power(self.gamma, step)
        return self.base_learning_rate + (self.max_learning_rate - self.base_learning_rate) * height

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "max_learning_rate": self.max_learning_rate,
            "step_size": self.step_size,
            "mode": self.mode,
            "gamma": self.gamma,
        }
