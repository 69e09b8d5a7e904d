"""Warmup in front of any schedule or constant, and joins of schedules."""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

from keras_optzoo.optimizers.base import (
    validate_choice,
    validate_non_negative,
    validate_positive,
)
from keras_optzoo.schedules.base import (
    ScheduleOrConstant,
    ZooSchedule,
    register_schedule,
    serialize_schedule,
    validate_boundaries,
    validate_schedule_or_constant,
    validate_steps,
    value_at,
)

WARMUP_KINDS = ("linear", "exponential")


@register_schedule
class Warmup(ZooSchedule):
    """Ramp from `initial_learning_rate` to a schedule's first value, then run it.

    With `η₀ = initial_learning_rate`, `W = warmup_steps`, the wrapped schedule
    `s` and its first value `η* = s(0)`:

        linear:       η(t) = η₀ + (η* − η₀)·t/W           for t < W
        exponential:  η(t) = η₀·(η*/η₀)^(t/W)             for t < W
        both:         η(t) = s(t − W)                      for t ≥ W

    The wrapped schedule is shifted by `W`, so it starts at step `W` exactly
    as it would start at step 0 unwrapped, and `η(W) = η*`: a warmup in front
    of any schedule without changing its own length. Step 0 (the first update)
    uses `η₀`; the last warmup step, `W − 1`, uses `η₀ + (η* − η₀)·(W−1)/W`.

    The linear ramp is the gradual warmup of Goyal et al. (2017) and equals
    `optax.linear_schedule(η₀, η*, W)` and torch's `LinearLR(start_factor=η₀/η*,
    total_iters=W)`. The exponential ramp is a geometric interpolation (equal
    ratios per step), `optax.exponential_decay(η₀, W, η*/η₀, end_value=η*)`;
    it is not the `1 − exp(−t/τ)` warmup of Ma & Yarats (2021), which never
    reaches `η*` in finite time.

    Args:
        schedule: the schedule to warm up into, or a constant learning rate.
        warmup_steps: `W`, integer >= 0 (0: the schedule unchanged).
        initial_learning_rate: `η₀ >= 0` (`> 0` for `kind="exponential"`).
            Defaults to 0.0.
        kind: `"linear"` (default) or `"exponential"`.

    Example:
    ```python
    schedule = oz.schedules.Warmup(oz.schedules.StepDecay(0.1, 30), 5)
    ```

    References:
        Goyal, Dollár, Girshick, Noordhuis, Wesolowski, Kyrola, Tulloch, Jia
        & He, 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1
        Hour", Sec. 2.2 (gradual warmup).
    """

    schedule_arguments = ("schedule",)

    def __init__(
        self,
        schedule: ScheduleOrConstant,
        warmup_steps: int,
        initial_learning_rate: float = 0.0,
        kind: str = "linear",
    ):
        self.schedule = validate_schedule_or_constant("schedule", schedule)
        self.warmup_steps = validate_steps("warmup_steps", warmup_steps)
        self.kind = validate_choice("kind", kind, WARMUP_KINDS)
        if kind == "exponential":
            # A geometric ramp needs both ends > 0.
            validate_positive("initial_learning_rate", initial_learning_rate)
            if isinstance(self.schedule, float):
                validate_positive("schedule", self.schedule)
        else:
            validate_non_negative("initial_learning_rate", initial_learning_rate)
        self.initial_learning_rate = float(initial_learning_rate)

    def evaluate(self, step):
        after = value_at(self.schedule, ops.maximum(step - self.warmup_steps, 0.0))
        if self.warmup_steps == 0:
            return after
        target = value_at(self.schedule, ops.zeros_like(step))
        fraction = ops.minimum(step / self.warmup_steps, 1.0)
        start = self.initial_learning_rate
        if self.kind == "linear":
            ramp = start + (target - start) * fraction
        else:
            ramp = start * ops.power(target / start, fraction)
        return ops.where(step < self.warmup_steps, ramp, after)

    def get_config(self):
        return {
            "schedule": serialize_schedule(self.schedule),
            "warmup_steps": self.warmup_steps,
            "initial_learning_rate": self.initial_learning_rate,
            "kind": self.kind,
        }


@register_schedule
class Join(ZooSchedule):
    """Schedules one after another, each restarted from its own step 0.

    With boundaries `b₁ < … < bₙ` and schedules `s₀ … sₙ` (`b₀ = 0`):

        η(t) = sᵢ(t − bᵢ)      for bᵢ ≤ t < bᵢ₊₁

    so at step `bᵢ` schedule `sᵢ` gives its first value. This is
    `optax.join_schedules(schedules, boundaries)` and torch's
    `SequentialLR(schedulers, milestones=boundaries)`.

    Args:
        schedules: `n + 1` schedules or constant learning rates.
        boundaries: `n` strictly increasing integer steps `>= 0`.

    Example:
    ```python
    # 1000 steps at 0.1, then a 9000-step cosine decay.
    schedule = oz.schedules.Join([0.1, oz.schedules.CosineDecay(0.1, 9000)], [1000])
    ```
    """

    schedule_arguments = ("schedules",)

    def __init__(self, schedules: Sequence[ScheduleOrConstant], boundaries: Sequence[int]):
        if isinstance(schedules, (str, bytes)) or not isinstance(schedules, Sequence) or not schedules:
            raise ValueError(f"schedules must be a non-empty sequence, got {schedules!r}")
        self.schedules = [
            validate_schedule_or_constant(f"schedules[{i}]", s) for i, s in enumerate(schedules)
        ]
        self.boundaries = validate_boundaries("boundaries", boundaries) if boundaries else []
        if len(self.boundaries) != len(self.schedules) - 1:
            raise ValueError(
                f"boundaries must have len(schedules) - 1 = {len(self.schedules) - 1} "
                f"entries, got {len(self.boundaries)}"
            )

    def evaluate(self, step):
        value = value_at(self.schedules[0], step)
        for boundary, schedule in zip(self.boundaries, self.schedules[1:]):
            local = value_at(schedule, ops.maximum(step - boundary, 0.0))
            value = ops.where(step >= boundary, local, value)
        return value

    def get_config(self):
        return {
            "schedules": [serialize_schedule(s) for s in self.schedules],
            "boundaries": list(self.boundaries),
        }
