"""Schedule and monitoring callbacks (planned: see the monitoring issue)."""

from keras_optzoo.callbacks.guard import NonFiniteGuard
from keras_optzoo.callbacks.monitored import Monitored
from keras_optzoo.callbacks.monitors import (
    Alert,
    GradientNormMonitor,
    LearningRateMonitor,
    MomentMonitor,
    OptimizerMonitor,
    UpdateRatioMonitor,
)
from keras_optzoo.callbacks.schedule import (
    CosineAnnealingCallback,
    ScheduleCallback,
    StepDecayCallback,
    WarmupCallback,
)
from keras_optzoo.callbacks.tensorboard import EventWriter, get_writer, read_events

__all__ = [
    "Alert",
    "CosineAnnealingCallback",
    "EventWriter",
    "GradientNormMonitor",
    "LearningRateMonitor",
    "MomentMonitor",
    "Monitored",
    "NonFiniteGuard",
    "OptimizerMonitor",
    "ScheduleCallback",
    "StepDecayCallback",
    "UpdateRatioMonitor",
    "WarmupCallback",
    "get_writer",
    "read_events",
]
