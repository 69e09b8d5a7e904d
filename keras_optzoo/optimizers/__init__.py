"""keras_optzoo optimizers: one algorithm per module, all on `base.ZooOptimizer`.

Importing this package registers every optimizer by name (see `names()`) and
for Keras serialization under the package name `keras_optzoo`.
"""

from keras_optzoo.optimizers.adabelief import AdaBelief
from keras_optzoo.optimizers.adadelta import Adadelta
from keras_optzoo.optimizers.adagrad import Adagrad
from keras_optzoo.optimizers.adam import Adam
from keras_optzoo.optimizers.adamw import AdamW
from keras_optzoo.optimizers.base import ZooOptimizer
from keras_optzoo.optimizers.lion import Lion
from keras_optzoo.optimizers.nadam import NAdam
from keras_optzoo.optimizers.radam import RAdam
from keras_optzoo.optimizers.registry import entry, get, names
from keras_optzoo.optimizers.rmsprop import RMSprop
from keras_optzoo.optimizers.sgd import SGD
from keras_optzoo.optimizers.yogi import Yogi

__all__ = [
    "SGD",
    "AdaBelief",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Lion",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Yogi",
    "ZooOptimizer",
    "entry",
    "get",
    "names",
]
