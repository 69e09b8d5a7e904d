"""The one table the correctness tests loop over.

Each case names a registered optimizer, NON-default hyperparameters (weight decay
on where the algorithm allows it) and how close our float32 trajectory must stay
to the float64 reference. Every variant flag has a case in which it is on.
Adding an optimizer = one `tests/reference/<algo>.py` + rows here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass(frozen=True)
class Case:
    id: str
    name: str                      # registry name; its presets apply to both sides
    kwargs: dict[str, Any]         # passed to our optimizer and to the reference
    # max |ours − ref| / max(|ref|, floor) over all steps and tensors. Momentum
    # cases grow |θ| to ~100, where float32 rounding alone reaches 3e-4 by step
    # 150; run in float64 they agree with the reference to 3e-8, the float32
    # storage of the learning rate.
    rtol: float = 2e-4
    floor: float = 1e-2            # absolute scale below which errors count absolutely
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("sgd", "sgd", {"learning_rate": 0.03, "weight_decay": 0.01}),
    Case("momentum-dampening", "momentum", {"learning_rate": 0.02, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01}, rtol=5e-4),
    Case("momentum-torch-form", "momentum", {"learning_rate": 0.02, "momentum": 0.8, "dampening": 0.3, "lr_inside_velocity": False}),
    Case("nesterov", "nesterov", {"learning_rate": 0.01, "momentum": 0.85, "weight_decay": 0.02}, rtol=5e-4),
    Case("nesterov-torch-form", "nesterov", {"learning_rate": 0.01, "momentum": 0.85, "lr_inside_velocity": False}),
    Case("adagrad", "adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.2, "epsilon": 1e-6, "weight_decay": 0.01}),
    Case("adagrad-eps-inside", "adagrad", {"learning_rate": 0.05, "epsilon": 1e-3, "epsilon_inside_sqrt": True}),
    Case("adadelta", "adadelta", {"learning_rate": 0.5, "rho": 0.9, "epsilon": 1e-4, "weight_decay": 0.01}),
    Case("rmsprop", "rmsprop", {"learning_rate": 0.003, "rho": 0.8, "epsilon": 1e-4, "weight_decay": 0.01}),
    Case("rmsprop-centered-momentum", "rmsprop", {"learning_rate": 0.002, "rho": 0.85, "momentum": 0.7, "epsilon": 1e-3, "centered": True}),
    Case("rmsprop-eps-inside", "rmsprop", {"learning_rate": 0.003, "rho": 0.9, "momentum": 0.5, "epsilon": 1e-3, "epsilon_inside_sqrt": True}),
    Case("adam", "adam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-6, "weight_decay": 0.02}),
    Case("adam-epsilon-hat", "adam", {"learning_rate": 0.01, "beta_1": 0.85, "beta_2": 0.97, "epsilon": 1e-3, "epsilon_hat": True}),
    Case("amsgrad", "amsgrad", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-6, "weight_decay": 0.02}),
    Case("amsgrad-debias-before-max", "amsgrad", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-6, "debias_before_max": True}),
    Case("adamw", "adamw", {"learning_rate": 0.005, "beta_1": 0.85, "beta_2": 0.99, "epsilon": 1e-6, "weight_decay": 0.05}),
    Case("nadam", "nadam", {"learning_rate": 0.003, "beta_1": 0.85, "beta_2": 0.99, "epsilon": 1e-6, "momentum_decay": 0.01, "weight_decay": 0.01}),
    Case("radam", "radam", {"learning_rate": 0.01, "beta_1": 0.85, "beta_2": 0.98, "epsilon": 1e-6, "weight_decay": 0.01}),
    Case("radam-threshold", "radam", {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.95, "epsilon": 1e-6, "rectification_threshold": 12.0}),
    Case("adabelief", "adabelief", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-8, "weight_decay": 0.01}),
    Case("yogi", "yogi", {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3, "initial_accumulator_value": 1e-4, "weight_decay": 0.01}),
    Case("yogi-bias-correction", "yogi", {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3, "initial_accumulator_value": 1e-4, "bias_correction": True}),
    Case("lion", "lion", {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.95, "weight_decay": 0.1}),
]


def cases(ids: list[str] | None = None) -> list:
    """`CASES` as pytest params, optionally only some ids."""
    chosen = [c for c in CASES if ids is None or c.id in ids]
    return [pytest.param(c, id=c.id) for c in chosen]
