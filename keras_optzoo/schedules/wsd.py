"""Warmup-stable-decay (trapezoidal): warm up, hold, then cool down."""

from __future__ import annotations

from keras import ops

from keras_optzoo.optimizers.base import (
    validate_choice,
    validate_non_negative,
    validate_range,
)
from keras_optzoo.schedules.base import (
    ZooSchedule,
    cosine_interpolate,
    register_schedule,
    validate_steps,
)
from keras_optzoo.schedules.warmup import Warmup

DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


@register_schedule
class WarmupStableDecay(ZooSchedule):
    """Linear warmup, a constant plateau, then a short cooldown to a floor.

    With `W`, `S`, `D` the warmup, stable and decay lengths, the floor
    `η_f = α·η_peak` and `p = min((t − W − S)/D, 1)`:

        η(t) = η₀ + (η_peak − η₀)·t/W             t < W
        η(t) = η_peak                              W ≤ t < W + S
        η(t) = η_f + (η_peak − η_f)·c(p)           t ≥ W + S

    with the cooldown shape `c(p) = 1 − p` ("linear"), `(1 + cos(π·p))/2`
    ("cosine") or `1 − √p` ("1-sqrt", the shape Hägele et al. find best).
    Step 0 uses `η₀`, steps `W … W + S` the peak, step `W + S + D` and later
    the floor. The plateau can be extended and a cooldown branched off any
    checkpoint, which is the point of the schedule.

    Args:
        peak_learning_rate: `η_peak >= 0`.
        warmup_steps: `W`, integer >= 0.
        stable_steps: `S`, integer >= 0.
        decay_steps: `D`, integer >= 1.
        alpha: the floor as a fraction of `η_peak`, in [0, 1]. Defaults to 0.0.
        initial_learning_rate: `η₀ >= 0`. Defaults to 0.0.
        decay_shape: `"linear"` (default), `"cosine"` or `"1-sqrt"`.

    Example:
    ```python
    schedule = oz.schedules.WarmupStableDecay(3e-4, 1000, 80_000, 19_000, decay_shape="1-sqrt")
    ```

    References:
        Hu et al., 2024, "MiniCPM: Unveiling the Potential of Small Language
        Models with Scalable Training Strategies", arXiv:2404.06395, Sec. 4
        (WSD); Hägele, Bakouch, Kosson, Ben Allal, Von Werra & Jaggi, 2024,
        "Scaling Laws and Compute-Optimal Training Beyond Fixed Training
        Durations", NeurIPS (cooldown shapes, 1 − sqrt).
    """

    def __init__(
        self,
        peak_learning_rate: float,
        warmup_steps: int,
        stable_steps: int,
        decay_steps: int,
        alpha: float = 0.0,
        initial_learning_rate: float = 0.0,
        decay_shape: str = "linear",
    ):
        self.peak_learning_rate = float(validate_non_negative("peak_learning_rate", peak_learning_rate))
        self.warmup_steps = validate_steps("warmup_steps", warmup_steps)
        self.stable_steps = validate_steps("stable_steps", stable_steps)
        self.decay_steps = validate_steps("decay_steps", decay_steps, 1)
        self.alpha = float(validate_range("alpha", alpha, 0.0, 1.0))
        self.initial_learning_rate = float(
            validate_non_negative("initial_learning_rate", initial_learning_rate)
        )
        self.decay_shape = validate_choice("decay_shape", decay_shape, DECAY_SHAPES)
        self._warmup = Warmup(self.peak_learning_rate, self.warmup_steps, self.initial_learning_rate)

    def _cooldown(self, progress):
        peak, floor = self.peak_learning_rate, self.alpha * self.peak_learning_rate
        if self.decay_shape == "cosine":
            return cosine_interpolate(peak, floor, progress)
        remaining = 1.0 - progress if self.decay_shape == "linear" else 1.0 - ops.sqrt(progress)
        return floor + (peak - floor) * remaining

    def evaluate(self, step):
        decay_start = self.warmup_steps + self.stable_steps
        progress = ops.clip((step - decay_start) / self.decay_steps, 0.0, 1.0)
        return ops.where(step >= decay_start, self._cooldown(progress), self._warmup.evaluate(step))

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "stable_steps": self.stable_steps,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "initial_learning_rate": self.initial_learning_rate,
            "decay_shape": self.decay_shape,
        }
