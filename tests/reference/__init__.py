"""Independent float64 NumPy references for every optimizer in SPEC.md.

``REFERENCES`` mirrors the library's registry: name -> (reference class, default kwargs), so
``cls, kwargs = REFERENCES["nesterov"]; cls(learning_rate, **kwargs, **overrides)``.
"""

from __future__ import annotations

from typing import Any

from tests.reference.adabelief import AdaBelief
from tests.reference.adadelta import Adadelta
from tests.reference.adagrad import Adagrad
from tests.reference.adam import Adam, AdamW
from tests.reference.common import Reference
from tests.reference.lion import Lion
from tests.reference.nadam import NAdam
from tests.reference.radam import RAdam
from tests.reference.rmsprop import RMSprop
from tests.reference.sgd import SGD
from tests.reference.yogi import Yogi

REFERENCES: dict[str, tuple[type[Reference], dict[str, Any]]] = {
    "sgd": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "nesterov": (SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (Adagrad, {}),
    "adadelta": (Adadelta, {}),
    "rmsprop": (RMSprop, {}),
    "adam": (Adam, {}),
    "amsgrad": (Adam, {"amsgrad": True}),
    "adamw": (AdamW, {}),
    "nadam": (NAdam, {}),
    "radam": (RAdam, {}),
    "adabelief": (AdaBelief, {}),
    "yogi": (Yogi, {}),
    "lion": (Lion, {}),
}

# SPEC.md's default learning rates, for building a reference exactly as the registry would.
DEFAULT_LEARNING_RATES: dict[type[Reference], float] = {
    SGD: 0.01,
    Adagrad: 0.01,
    Adadelta: 1.0,
    RMSprop: 0.001,
    Adam: 0.001,
    AdamW: 0.001,
    NAdam: 0.002,
    RAdam: 0.001,
    AdaBelief: 0.001,
    Yogi: 0.01,
    Lion: 1e-4,
}

__all__ = [
    "DEFAULT_LEARNING_RATES",
    "REFERENCES",
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
    "Reference",
    "Yogi",
]
