"""Optimizer specifications on the command line: `name[:key=value[:key=value...]]`.

One syntax for every `optzoo` subcommand that takes a list of optimizers:

    --optimizers sgd,momentum:learning_rate=0.02,adam:learning_rate=0.1:beta_1=0.8

Commas separate optimizers, colons separate an optimizer's name from its
hyperparameters. Values are read as Python literals where they are one
(`0.1`, `3`, `True`, `None`), else kept as strings (`nonfinite=skip`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OptimizerSpec:
    """A registry name and the hyperparameters given with it.

    Attributes:
        name: the lowercase registry name (`"adam"`).
        hyperparameters: keyword arguments for `keras_optzoo.get(name, ...)`.
    """

    name: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The spec as written back in canonical form, e.g. `adam:beta_1=0.8`."""
        parts = [self.name] + [f"{key}={value}" for key, value in self.hyperparameters.items()]
        return ":".join(parts)


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_optimizer_spec(text: str) -> OptimizerSpec:
    """Parse one `name[:key=value...]` item.

    Args:
        text: one optimizer specification.

    Returns:
        An `OptimizerSpec`. The name is checked against the registry;
        hyperparameter values are checked when the optimizer is built.

    Raises:
        ValueError: for an empty or unknown name, a `key=value` part without
            `=` or with an invalid key, or a key given twice.

    Example:
        >>> parse_optimizer_spec("momentum:learning_rate=0.02")
        OptimizerSpec(name='momentum', hyperparameters={'learning_rate': 0.02})
    """
    from keras_optzoo.optimizers import registry

    name, *assignments = [part.strip() for part in text.strip().split(":")]
    name = name.lower()
    if not name:
        raise ValueError(f"optimizer spec {text!r} has no optimizer name")
    registry.entry(name)
    hyperparameters: dict[str, Any] = {}
    for assignment in assignments:
        key, separator, value = assignment.partition("=")
        key = key.strip()
        if not separator or not key.isidentifier():
            raise ValueError(
                f"optimizer spec {text!r}: expected key=value after ':', got {assignment!r}"
            )
        if key in hyperparameters:
            raise ValueError(f"optimizer spec {text!r} sets {key!r} twice")
        hyperparameters[key] = _parse_value(value.strip())
    return OptimizerSpec(name, hyperparameters)


def parse_optimizer_specs(text: str) -> list[OptimizerSpec]:
    """Parse a comma-separated list of optimizer specifications.

    Args:
        text: e.g. `"sgd,momentum:learning_rate=0.02,adam"`.

    Returns:
        The `OptimizerSpec`s in the order given.

    Raises:
        ValueError: for an empty list, any invalid item (see
            `parse_optimizer_spec`), or the same spec given twice.

    Example:
        >>> [spec.name for spec in parse_optimizer_specs("sgd, adam:learning_rate=0.1")]
        ['sgd', 'adam']
    """
    items = [item for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"optimizers: give at least one optimizer name, got {text!r}")
    specs = [parse_optimizer_spec(item) for item in items]
    labels = [spec.label for spec in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f"optimizers: {', '.join(duplicates)} given more than once")
    return specs
