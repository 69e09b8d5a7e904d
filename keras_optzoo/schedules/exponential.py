"""Exponential decay, continuous or in stairs."""

from __future__ import annotations

from keras import ops

from keras_optzoo.optimizers.base import (
    validate_choice,
    validate_non_negative,
    validate_positive,
)
from keras_optzoo.schedules.base import (
    ZooSchedule,
    floor_divide,
    register_schedule,
    validate_steps,
)


@register_schedule
class ExponentialDecay(ZooSchedule):
    """Multiply the learning rate by `decay_rate` every `decay_steps` steps.

        η(t) = η₀·r^(t/T)           (staircase: η₀·r^⌊t/T⌋)

    `η(0) = η₀`. With `T = 1` this is torch's `ExponentialLR(gamma=r)`;
    generally `optax.exponential_decay(η₀, T, r, staircase=...)` and
    `keras.optimizers.schedules.ExponentialDecay`. A rate above 1 grows the
    learning rate, as a learning-rate range test does.

    Args:
        initial_learning_rate: `η₀ >= 0`.
        decay_steps: `T`, integer >= 1.
        decay_rate: `r > 0`.
        staircase: decay in whole multiples of `T`. Defaults to False.

    Example:
    ```python
    schedule = oz.schedules.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.5)
    ```

    References:
        Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke &
        Rabinovich, 2015, "Going Deeper with Convolutions", CVPR, Sec. 6
        (staircase form: r = 0.96 every 8 epochs).
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
    ):
        self.initial_learning_rate = float(
            validate_non_negative("initial_learning_rate", initial_learning_rate)
        )
        self.decay_steps = validate_steps("decay_steps", decay_steps, 1)
        self.decay_rate = float(validate_positive("decay_rate", decay_rate))
        self.staircase = bool(validate_choice("staircase", staircase, (False, True)))

    def evaluate(self, step):
        if self.staircase:
            exponent = floor_divide(step, float(self.decay_steps))
        else:
            exponent = step / self.decay_steps
        return self.initial_learning_rate * ops.power(self.decay_rate, exponent)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
        }
