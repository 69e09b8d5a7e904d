"""Name -> optimizer lookup, the keras_optzoo counterpart of `keras.optimizers.get`."""

from __future__ import annotations

from typing import Any

import keras

# name -> (class, preset keyword arguments)
_REGISTRY: dict[str, tuple[type, dict[str, Any]]] = {}


def add(name: str, cls: type, preset: dict[str, Any]) -> None:
    if name in _REGISTRY and _REGISTRY[name][0] is not cls:
        raise ValueError(f"optimizer name {name!r} is already registered")
    _REGISTRY[name] = (cls, dict(preset))


def names() -> list[str]:
    """Every registered name, sorted."""
    return sorted(_REGISTRY)


def entry(name: str) -> tuple[type, dict[str, Any]]:
    """The class and preset arguments registered under `name`."""
    key = name.lower()
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown optimizer {name!r}; registered names are: {', '.join(names())}"
        )
    cls, preset = _REGISTRY[key]
    return cls, dict(preset)


def get(identifier: Any, **kwargs: Any) -> keras.optimizers.Optimizer:
    """Build an optimizer from a name, a config dict, a class or an instance.

    Args:
        identifier: a registered lowercase name (`"adabelief"`), a Keras
            serialized config (`{"class_name": ..., "config": ...}`), an
            optimizer class, or an optimizer instance (returned as is).
        **kwargs: constructor arguments; they override a name's presets.

    Returns:
        A `keras.optimizers.Optimizer`.

    Example:
        >>> opt = get("nesterov", learning_rate=0.05)   # SGD(momentum=0.9, nesterov=True)
    """
    if isinstance(identifier, keras.optimizers.Optimizer):
        if kwargs:
            raise ValueError(
                f"cannot apply arguments {sorted(kwargs)} to an optimizer instance"
            )
        return identifier
    if isinstance(identifier, str):
        cls, preset = entry(identifier)
        return cls(**{**preset, **kwargs})
    if isinstance(identifier, dict):
        config = dict(identifier)
        if "class_name" in config:
            optimizer = keras.saving.deserialize_keras_object(config)
            if kwargs:
                optimizer = optimizer.__class__.from_config(
                    {**optimizer.get_config(), **kwargs}
                )
            return optimizer
        raise ValueError(
            "a config dict needs 'class_name' and 'config' keys, got keys "
            f"{sorted(config)}"
        )
    if isinstance(identifier, type) and issubclass(
        identifier, keras.optimizers.Optimizer
    ):
        return identifier(**kwargs)
    raise ValueError(
        "identifier must be an optimizer name, config dict, class or instance, "
        f"got {identifier!r}"
    )
