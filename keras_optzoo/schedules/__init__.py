"""Learning-rate schedules: `keras.optimizers.schedules.LearningRateSchedule`s.

Each is traced into the compiled train step, serializes under `keras_optzoo`
(a saved model reloads without `custom_objects`), validates its arguments at
construction, and is 0-indexed like Keras's `optimizer.iterations`: the value
at step 0 is the rate of the first update. `Warmup` puts a warmup in front of
any schedule or constant and `Join` runs schedules one after another.
"""

from keras_optzoo.schedules.base import ZooSchedule
from keras_optzoo.schedules.cosine import CosineDecay, CosineDecayRestarts, WarmupCosine
from keras_optzoo.schedules.cyclical import TriangularCyclical
from keras_optzoo.schedules.exponential import ExponentialDecay
from keras_optzoo.schedules.inverse_sqrt import InverseSqrtDecay
from keras_optzoo.schedules.one_cycle import OneCycle
from keras_optzoo.schedules.scaling import scale_learning_rate
from keras_optzoo.schedules.step import MultiStepDecay, StepDecay
from keras_optzoo.schedules.warmup import Join, Warmup
from keras_optzoo.schedules.wsd import WarmupStableDecay

__all__ = [
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "InverseSqrtDecay",
    "Join",
    "MultiStepDecay",
    "OneCycle",
    "StepDecay",
    "TriangularCyclical",
    "Warmup",
    "WarmupCosine",
    "WarmupStableDecay",
    "ZooSchedule",
    "scale_learning_rate",
]
