"""The Transformer's inverse-square-root schedule with linear warmup."""

from __future__ import annotations

from keras import ops

from keras_optzoo.optimizers.base import validate_non_negative
from keras_optzoo.schedules.base import ZooSchedule, register_schedule, validate_steps


@register_schedule
class InverseSqrtDecay(ZooSchedule):
    """Linear warmup to a peak, then decay proportional to 1/√step ("Noam").

    Vaswani et al. count steps from 1; the update at Keras step `t` (0 first)
    is their step `n = t + 1`:

        η(t) = η_peak·min(n/W, √(W/n)),   n = t + 1

    Step 0 uses `η_peak/W`, step `W − 1` the peak, and the rate halves every
    time the step count quadruples after that. The paper's
    `d_model^−0.5·min(n^−0.5, n·W^−1.5)` is this with
    `η_peak = (d_model·W)^−0.5`.

    Args:
        peak_learning_rate: `η_peak >= 0`.
        warmup_steps: `W`, integer >= 1.

    Example:
    ```python
    # The paper's base model: d_model = 512, W = 4000.
    schedule = oz.schedules.InverseSqrtDecay((512 * 4000) ** -0.5, warmup_steps=4000)
    ```

    References:
        Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser &
        Polosukhin, 2017, "Attention Is All You Need", NeurIPS, Sec. 5.3, Eq. 3.
    """

    def __init__(self, peak_learning_rate: float, warmup_steps: int):
        self.peak_learning_rate = float(validate_non_negative("peak_learning_rate", peak_learning_rate))
        self.warmup_steps = validate_steps("warmup_steps", warmup_steps, 1)

    def evaluate(self, step):
        n = step + 1.0
        warmup = n / self.warmup_steps
        decay = ops.sqrt(self.warmup_steps / n)
        return self.peak_learning_rate * ops.minimum(warmup, decay)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "warmup_steps": self.warmup_steps}
