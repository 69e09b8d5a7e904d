"""Run a Keras optimizer over a fixed gradient sequence and record its trajectory.

The same (params0, grads) feed our optimizers, the float64 references in
`tests/reference` and the peer adapters in `tests/peers.py`, so any two
trajectories can be compared step by step.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

BACKEND = keras.backend.backend()


def to_numpy(value) -> np.ndarray:
    """A Variable's or tensor's value as NumPy, in its own dtype."""
    if isinstance(value, keras.Variable):
        value = value.value
    return np.asarray(keras.ops.convert_to_numpy(value))


def as_float64(value) -> np.ndarray:
    return to_numpy(value).astype(np.float64)


def slot_values(optimizer, variables) -> dict[str, list[np.ndarray]]:
    """Every slot of every variable, as float64 arrays keyed by slot name."""
    slots: dict[str, list[np.ndarray]] = {}
    for variable in variables:
        for name, slot in optimizer.slots_for(variable).items():
            slots.setdefault(name, []).append(as_float64(slot))
    return slots


def compiled_apply(optimizer, variables):
    """`optimizer.apply` through the backend's compiler, as `fit` runs it.

    TensorFlow: an XLA-compiled `tf.function`. JAX: a jitted `stateless_apply`
    whose results are written back (JAX's `fit` updates state this way). Torch
    has no separate compiled path in Keras, so it runs eagerly. The optimizer
    is built first: variables cannot be created inside a traced function.
    """
    optimizer.build(variables)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        step = tf.function(lambda grads: optimizer.apply(grads, variables), jit_compile=True)
        return lambda grads: step([keras.ops.convert_to_tensor(g) for g in grads])
    if backend == "jax":
        import jax

        stateless = jax.jit(optimizer.stateless_apply)

        def apply(grads):
            values, optimizer_values = stateless(
                [v.value for v in optimizer.variables],
                [keras.ops.convert_to_tensor(g) for g in grads],
                [v.value for v in variables],
            )
            for variable, value in zip(variables, values):
                variable.assign(value)
            for variable, value in zip(optimizer.variables, optimizer_values):
                variable.assign(value)

        return apply
    return lambda grads: optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)


def run_zoo(
    optimizer,
    params0: list[np.ndarray],
    grads: list[list[np.ndarray]],
    compiled: bool = False,
    dtype: str = "float32",
    record_slots: bool = True,
) -> list[dict[str, Any]]:
    """Trajectory of any Keras `optimizer`: after each step, params (and, for
    keras_optzoo optimizers, slots) as float64."""
    variables = [
        keras.Variable(np.asarray(p, dtype=dtype), dtype=dtype, name=f"param{i}")
        for i, p in enumerate(params0)
    ]
    optimizer.build(variables)
    apply = compiled_apply(optimizer, variables) if compiled else (
        lambda g: optimizer.apply(g, variables)
    )
    trajectory = []
    for step_grads in grads:
        apply([keras.ops.convert_to_tensor(np.asarray(g, dtype=dtype)) for g in step_grads])
        trajectory.append({
            "params": [as_float64(v) for v in variables],
            "slots": slot_values(optimizer, variables) if record_slots else {},
        })
    return trajectory


def max_relative_error(actual: np.ndarray, expected: np.ndarray, floor: float) -> float:
    """max |a − e| / max(|e|, floor): relative where values are large, absolute near 0."""
    scale = np.maximum(np.abs(expected), floor)
    return float(np.max(np.abs(actual - expected) / scale))
