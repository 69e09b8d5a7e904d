"""What every keras_optzoo schedule shares.

`ZooSchedule.__call__` turns the step into a float32 tensor and hands it to the
subclass's `evaluate(step)`, written with `keras.ops` only (it is traced into
the compiled train step, so there is no Python `if` on a tensor). Every
`evaluate` is elementwise, so a vector of steps gives the whole run at once.

Step convention: Keras calls a schedule with `optimizer.iterations`, which is 0
during the first update. All schedules here are 0-indexed the same way, as are
optax's; torch's value after k calls of `scheduler.step()` is ours at step k.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from keras_optzoo.optimizers.base import validate_non_negative

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule
ScheduleOrConstant = LearningRateSchedule | float


def register_schedule(cls: type) -> type:
    """Class decorator: Keras-serializable as `keras_optzoo>ClassName`."""
    return keras.saving.register_keras_serializable(package="keras_optzoo")(cls)


def validate_steps(name: str, value: Any, minimum: int = 0) -> int:
    """A step count: an integer `>= minimum` (bools and floats are refused)."""
    if (
        not isinstance(value, numbers.Integral)
        or isinstance(value, bool)
        or value < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def validate_boundaries(name: str, values: Any, minimum: int = 0) -> list[int]:
    """Step boundaries: a non-empty, strictly increasing sequence of integers."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(
            f"{name} must be a non-empty sequence of increasing integers, got {values!r}"
        )
    steps = [validate_steps(f"{name}[{i}]", v, minimum) for i, v in enumerate(values)]
    if any(later <= earlier for earlier, later in itertools.pairwise(steps)):
        raise ValueError(f"{name} must be strictly increasing, got {list(values)!r}")
    return steps


def validate_schedule_or_constant(name: str, value: Any) -> ScheduleOrConstant:
    """A `LearningRateSchedule`, or a float `>= 0` held constant."""
    if isinstance(value, LearningRateSchedule):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(validate_non_negative(name, float(value)))
    raise ValueError(
        f"{name} must be a LearningRateSchedule or a float >= 0, got {value!r}"
    )


def value_at(schedule: ScheduleOrConstant, step):
    """`schedule(step)` as float32, a constant broadcast to the step's shape."""
    if isinstance(schedule, LearningRateSchedule):
        return ops.cast(schedule(step), "float32")
    return ops.zeros_like(step) + ops.cast(schedule, "float32")


def serialize_schedule(schedule: ScheduleOrConstant) -> Any:
    """A nested schedule's config entry (a constant stays a float)."""
    if isinstance(schedule, LearningRateSchedule):
        return keras.saving.serialize_keras_object(schedule)
    return schedule


def deserialize_schedule(config: Any) -> ScheduleOrConstant:
    if isinstance(config, dict):
        return keras.saving.deserialize_keras_object(config)
    return config


def floor_divide(numerator, denominator):
    """`floor(numerator / denominator)` for float32 tensors holding integers.

    Float32 division rounds `k·d − 1` up to `k` once `k·d` nears 2**24 / d; one
    correction each way against the exact products keeps the cycle index right.
    """
    quotient = ops.floor(numerator / denominator)
    quotient = ops.where(quotient * denominator > numerator, quotient - 1.0, quotient)
    return ops.where((quotient + 1.0) * denominator <= numerator, quotient + 1.0, quotient)


def cosine_interpolate(start, end, fraction):
    """`end + (start − end)·(1 + cos(π·fraction))/2`: `start` at 0, `end` at 1."""
    return end + (start - end) * 0.5 * (1.0 + ops.cos(fraction * math.pi))


class ZooSchedule(LearningRateSchedule):
    """Base of keras_optzoo schedules.

    A subclass implements `evaluate(step)` on a float32 tensor of steps and
    `get_config()`. Arguments that hold a nested schedule are listed in
    `schedule_arguments`; `from_config` rebuilds them.
    """

    schedule_arguments: tuple[str, ...] = ()

    def __call__(self, step):
        return self.evaluate(ops.cast(step, "float32"))

    def evaluate(self, step):
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        config = dict(config)
        for name in cls.schedule_arguments:
            value = config[name]
            if isinstance(value, list):
                config[name] = [deserialize_schedule(v) for v in value]
            else:
                config[name] = deserialize_schedule(value)
        return cls(**config)

