"""Bad input: every out-of-range hyperparameter raises ValueError at construction.

The walk is driven by each constructor's signature: every numeric argument must
have a rule below, so an optimizer that grows an argument without validation
fails `test_every_numeric_argument_has_a_rule`.
"""

from __future__ import annotations

import inspect
import math

import pytest

import keras_optzoo as oz

CLASSES = sorted({oz.optimizers.entry(n)[0] for n in oz.optimizers.names()}, key=lambda c: c.__name__)

# argument name -> out-of-range values
RULES: dict[str, list] = {
    "learning_rate": [-1e-3, math.nan, "fast"],
    "beta_1": [-0.1, 1.0, 1.5, math.nan],
    "beta_2": [-0.1, 1.0, 2.0, math.nan],
    "rho": [-0.1, 1.0, math.nan],
    "momentum": [-0.5, 1.0, math.inf],
    "dampening": [-0.1, 1.1],
    "epsilon": [0.0, -1e-8, math.inf],
    "initial_accumulator_value": [-1e-3, math.nan],
    "momentum_decay": [-1e-3],
    "rectification_threshold": [3.9, -1.0],
    "weight_decay": [-1e-4, math.nan],
}

# Keras base arguments whose ranges we check on top of Keras.
COMMON_INVALID = [
    ({"clipnorm": 0.0}, "clipnorm"),
    ({"global_clipnorm": -1.0}, "global_clipnorm"),
    ({"clipvalue": -1.0}, "clipvalue"),
    ({"use_ema": True, "ema_momentum": 1.5}, "ema_momentum"),
    ({"gradient_accumulation_steps": 1}, "gradient_accumulation_steps"),
    ({"loss_scale_factor": 0.0}, "loss_scale_factor"),
    ({"nonfinite": "ignore"}, "nonfinite"),
    ({"fused": "yes"}, "fused"),
]

SPECIAL_INVALID = [
    (oz.optimizers.SGD, {"nesterov": True}, "nesterov"),
    (oz.optimizers.SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "dampening"),
    (oz.optimizers.RAdam, {"beta_2": 0.5}, "beta_2"),
]

BOOLEAN_OR_NAME = {"name", "nesterov", "lr_inside_velocity", "epsilon_inside_sqrt", "centered",
                   "amsgrad", "debias_before_max", "epsilon_hat", "bias_correction"}


def _arguments(cls) -> list[str]:
    names = []
    for klass in cls.__mro__:
        if klass.__module__.startswith("keras_optzoo"):
            names += [p for p in inspect.signature(klass.__init__).parameters
                      if p not in ("self", "kwargs", "nonfinite", "fused")]
    return sorted(set(names))


def _cases():
    for cls in CLASSES:
        for argument in _arguments(cls):
            for value in RULES.get(argument, []):
                yield pytest.param(cls, {argument: value}, argument, id=f"{cls.__name__}-{argument}={value}")
        for kwargs, argument in COMMON_INVALID:
            yield pytest.param(cls, kwargs, argument, id=f"{cls.__name__}-{argument}")
    for cls, kwargs, argument in SPECIAL_INVALID:
        yield pytest.param(cls, kwargs, argument, id=f"{cls.__name__}-special-{argument}")


@pytest.mark.parametrize("cls, kwargs, argument", list(_cases()))
def test_out_of_range_argument_raises_naming_it(cls, kwargs, argument):
    with pytest.raises(ValueError) as error:
        cls(**kwargs)
    message = str(error.value)
    assert argument in message
    assert "got" in message or "Received" in message, message


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_numeric_argument_has_a_rule(cls):
    unchecked = [a for a in _arguments(cls) if a not in RULES and a not in BOOLEAN_OR_NAME]
    assert not unchecked, f"{cls.__name__} arguments without validation rules: {unchecked}"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_boundary_values_are_accepted(cls):
    arguments = _arguments(cls)
    kwargs = {"learning_rate": 0.0}
    for argument in ("beta_1", "rho", "momentum"):
        if argument in arguments:
            kwargs[argument] = 0.0
    cls(**kwargs)


def test_error_message_states_the_allowed_range():
    with pytest.raises(ValueError, match=r"beta_2 must be in \[0, 1\), got 1\.2"):
        oz.optimizers.Adam(beta_2=1.2)
    with pytest.raises(ValueError, match=r"learning_rate must be in \[0, inf\), got -1"):
        oz.optimizers.SGD(learning_rate=-1.0)


def test_unknown_name_lists_the_registry():
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'.*adabelief"):
        oz.get("adamax")
