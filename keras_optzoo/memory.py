"""Optimizer-state accounting, measured on built optimizers (`optzoo memory`).

Nothing here comes from a hand-written table: each optimizer is built on a set
of variables and its own variables are weighed. Per-parameter state (slots,
EMA copies, gradient accumulators: every variable Keras created from a model
variable with `add_variable_from_reference`) is told apart from fixed state
(step counter, learning rate, telemetry scalars) by its name and shape. Bytes
per parameter come from a small probe of the requested dtype, so a 7e9
parameter estimate allocates a few hundred numbers.

    optzoo memory --params 7e9 --dtype bfloat16
    optzoo memory --model my_model.keras --optimizers sgd,adam,adam:amsgrad=True
"""

from __future__ import annotations

import argparse
import csv
import inspect
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DTYPES = ("float32", "bfloat16", "float16")
FORMATS = ("text", "md", "csv")
DEFAULT_OPTIMIZERS = "sgd,momentum,nesterov,adagrad,rmsprop,adam,adamw,amsgrad,lion"
DEFAULT_PARAMS = 7_000_000_000

# Registry name -> (keras core class name, arguments): the same algorithm in
# `keras.optimizers`, measured the same way for comparison.
KERAS_CORE_EQUIVALENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"momentum": 0.9}),
    "nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "adagrad": ("Adagrad", {}),
    "adadelta": ("Adadelta", {}),
    "rmsprop": ("RMSprop", {}),
    "adam": ("Adam", {}),
    "amsgrad": ("Adam", {"amsgrad": True}),
    "adamw": ("AdamW", {}),
    "nadam": ("Nadam", {}),
    "lion": ("Lion", {}),
    "lamb": ("Lamb", {}),
    "adafactor": ("Adafactor", {}),
}

# Probe shapes: no scalar among them, so a probe slot is never mistaken for
# a step counter; two shapes, so per-variable state shows up as such.
_PROBE_SHAPES = ((16, 24), (24,))


def dtype_size(dtype: str) -> int:
    """Bytes per element of a Keras dtype name (`"bfloat16"` -> 2)."""
    dtype = str(dtype)
    if dtype == "bool":
        return 1
    bits = re.search(r"\d+", dtype)
    if bits is None:
        raise ValueError(f"dtype must be a sized numeric dtype, got {dtype!r}")
    return int(bits.group()) // 8


def _variable_bytes(variable) -> int:
    return math.prod(variable.shape) * dtype_size(variable.dtype)


def _slot_name(optimizer_variable, references) -> str | None:
    """The slot name if `optimizer_variable` was created from one of
    `references` (name `<reference path with _>_<slot>`, same shape), else None."""
    best = None
    for reference in references:
        prefix = reference.path.replace("/", "_") + "_"
        if (
            optimizer_variable.name.startswith(prefix)
            and tuple(optimizer_variable.shape) == tuple(reference.shape)
            and (best is None or len(prefix) > len(best))
        ):
            best = prefix
    return None if best is None else optimizer_variable.name[len(best):]


def state_bytes(optimizer: Any, variables: Sequence[Any]) -> dict[str, Any]:
    """The bytes an optimizer holds for `variables`, measured on its variables.

    Args:
        optimizer: a Keras optimizer; built on `variables` here if it is not
            built yet.
        variables: the model variables it updates.

    Returns:
        A dict with
        `parameters` (elements in `variables`),
        `per_parameter_bytes` (state created per model variable, in its
        shape: slots, EMA copies, gradient accumulators),
        `fixed_bytes` (everything else: step counter, learning rate, scalars),
        `total_bytes`,
        `slots` (sorted slot names, e.g. `("m", "v")`),
        `slot_dtypes` (sorted dtypes of the per-parameter state).

    Example:
        >>> v = [keras.Variable(np.zeros((1000,), "float32"))]
        >>> state_bytes(keras_optzoo.get("adam"), v)["per_parameter_bytes"]
        8000
    """
    variables = list(variables)
    if not optimizer.built:
        optimizer.build(variables)
    per_parameter = fixed = 0
    slots, slot_dtypes = set(), set()
    for optimizer_variable in optimizer.variables:
        size = _variable_bytes(optimizer_variable)
        slot = _slot_name(optimizer_variable, variables)
        if slot is None:
            fixed += size
        else:
            per_parameter += size
            slots.add(slot)
            slot_dtypes.add(str(optimizer_variable.dtype))
    return {
        "parameters": sum(math.prod(v.shape) for v in variables),
        "per_parameter_bytes": per_parameter,
        "fixed_bytes": fixed,
        "total_bytes": per_parameter + fixed,
        "slots": tuple(sorted(slots)),
        "slot_dtypes": tuple(sorted(slot_dtypes)),
    }


def _probe_variables(dtype: str) -> list:
    import keras
    import numpy as np

    return [
        keras.Variable(np.zeros(shape, "float32"), dtype=dtype, name=f"probe{i}")
        for i, shape in enumerate(_PROBE_SHAPES)
    ]


def _check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return dtype


def probe_state(optimizer: Any, dtype: str = "float32") -> dict[str, Any]:
    """`state_bytes` of an unbuilt optimizer on small probe variables of `dtype`,
    with `bytes_per_parameter` added."""
    state = state_bytes(optimizer, _probe_variables(_check_dtype(dtype)))
    state["bytes_per_parameter"] = state["per_parameter_bytes"] / state["parameters"]
    return state


def bytes_per_parameter(name: str, dtype: str = "float32", **hyperparameters: Any) -> float:
    """Optimizer-state bytes per model parameter, measured on a built optimizer.

    Args:
        name: a registry name (`"adam"`, `"momentum"`, ...).
        dtype: the model variables' dtype, one of `DTYPES`.
        **hyperparameters: constructor arguments (`amsgrad=True`, ...).

    Returns:
        Bytes of per-parameter state divided by the parameter count: 8.0 for
        Adam in float32 (two slots of 4 bytes).

    Example:
        >>> bytes_per_parameter("adam", "bfloat16")
        4.0

    References:
        Rajbhandari et al., 2020, "ZeRO: Memory Optimizations Toward Training
        Trillion Parameter Models", Section 3.1 (the per-parameter accounting).
    """
    import keras_optzoo

    return probe_state(keras_optzoo.get(name, **hyperparameters), dtype)["bytes_per_parameter"]


def keras_core_optimizer(name: str, **hyperparameters: Any) -> Any | None:
    """keras core's optimizer for a registry name, or None where it has none.

    Hyperparameters that keras core's constructor does not take are dropped
    (they are convention switches of ours that do not change the state).
    """
    import keras

    if name not in KERAS_CORE_EQUIVALENTS:
        return None
    class_name, preset = KERAS_CORE_EQUIVALENTS[name]
    cls = getattr(keras.optimizers, class_name, None)
    if cls is None:
        return None
    accepted = inspect.signature(cls.__init__).parameters
    arguments = {**preset, **{k: v for k, v in hyperparameters.items() if k in accepted}}
    return cls(**arguments)


@dataclass
class MemoryRow:
    """One optimizer's state cost.

    Attributes:
        optimizer: the spec's label.
        slots: the per-parameter state names, e.g. `("m", "v")`.
        slot_dtypes: their dtypes.
        bytes_per_parameter: measured per-parameter state bytes / parameters.
        keras_core_bytes_per_parameter: the same for keras core's optimizer
            of that name; None where keras core has none.
        parameters: the model's trainable parameter count.
        state_bytes: per-parameter state for `parameters`.
        fixed_bytes: the optimizer's other state (counters, scalars), as
            measured on the probe or model.
        weights_bytes: the model's weights.
        gradients_bytes: one gradient per trainable parameter.
    """

    optimizer: str
    slots: tuple[str, ...]
    slot_dtypes: tuple[str, ...]
    bytes_per_parameter: float
    keras_core_bytes_per_parameter: float | None
    parameters: int
    state_bytes: int
    fixed_bytes: int
    weights_bytes: int
    gradients_bytes: int

    @property
    def total_bytes(self) -> int:
        """Weights + gradients + optimizer state."""
        return self.weights_bytes + self.gradients_bytes + self.state_bytes + self.fixed_bytes


def _specs(optimizers: str | Sequence[Any]):
    from keras_optzoo.compare.specs import OptimizerSpec, parse_optimizer_specs

    if isinstance(optimizers, str):
        return parse_optimizer_specs(optimizers)
    return [s if isinstance(s, OptimizerSpec) else parse_optimizer_specs(s)[0] for s in optimizers]


def _build(spec) -> Any:
    import keras_optzoo

    try:
        return keras_optzoo.get(spec.name, **spec.hyperparameters)
    except (TypeError, ValueError) as error:
        raise ValueError(f"optimizer spec {spec.label!r}: {error}") from None


def _check_params(params: Any) -> int:
    valid = (
        isinstance(params, (int, float))
        and not isinstance(params, bool)
        and math.isfinite(params)
        and params >= 1
        and float(params).is_integer()
    )
    if not valid:
        raise ValueError(f"params must be an integer >= 1, got {params!r}")
    return int(params)


def memory_table(
    params: int,
    dtype: str = "float32",
    optimizers: str | Sequence[Any] = DEFAULT_OPTIMIZERS,
) -> list[MemoryRow]:
    """State, weights and gradient bytes for a model of `params` parameters.

    Args:
        params: the parameter count (all trainable), an integer >= 1; `7e9`
            is accepted as a float with an integer value.
        dtype: the weights' dtype, one of `DTYPES`; gradients have the same.
        optimizers: a spec string (`"sgd,adam:amsgrad=True"`) or a list of
            specs or spec strings.

    Returns:
        One `MemoryRow` per optimizer. `state_bytes` is the measured bytes per
        parameter times `params`.

    Example:
        >>> [row.state_bytes for row in memory_table(7e9, "float32", "adam")]
        [56000000000]
    """
    params = _check_params(params)
    _check_dtype(dtype)
    specs = _specs(optimizers)
    optimizers_built = [_build(spec) for spec in specs]
    rows = []
    for spec, optimizer in zip(specs, optimizers_built):
        state = probe_state(optimizer, dtype)
        core = keras_core_optimizer(spec.name, **spec.hyperparameters)
        per_parameter = state["per_parameter_bytes"] * params // state["parameters"]
        rows.append(
            MemoryRow(
                optimizer=spec.label,
                slots=state["slots"],
                slot_dtypes=state["slot_dtypes"],
                bytes_per_parameter=state["bytes_per_parameter"],
                keras_core_bytes_per_parameter=(
                    None if core is None else probe_state(core, dtype)["bytes_per_parameter"]
                ),
                parameters=params,
                state_bytes=per_parameter,
                fixed_bytes=state["fixed_bytes"],
                weights_bytes=params * dtype_size(dtype),
                gradients_bytes=params * dtype_size(dtype),
            )
        )
    return rows


def model_memory_table(
    model: Any,
    optimizers: str | Sequence[Any] = DEFAULT_OPTIMIZERS,
) -> list[MemoryRow]:
    """State, weights and gradient bytes of a Keras model, per optimizer.

    Each optimizer is built on the model's trainable variables themselves
    (their shapes and dtypes, so factored or shape-dependent state is exact),
    measured, and released before the next.

    Args:
        model: a `keras.Model`, or the path of a `.keras` file (loaded with
            `compile=False`).
        optimizers: a spec string or a list of specs.

    Returns:
        One `MemoryRow` per optimizer; `parameters` counts trainable
        parameters, `weights_bytes` all weights (non-trainable included).
    """
    import keras

    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        path = str(model)
        if not path.endswith(".keras"):
            raise ValueError(f"model must be a .keras file, got {path!r}")
        model = keras.saving.load_model(path, compile=False)
    specs = _specs(optimizers)
    for spec in specs:
        _build(spec)
    trainable = list(model.trainable_variables)
    if not trainable:
        raise ValueError(f"model {model.name!r} has no trainable variables")
    gradients = sum(_variable_bytes(v) for v in trainable)
    weights = sum(_variable_bytes(v) for v in model.weights)
    rows = []
    for spec in specs:
        state = state_bytes(_build(spec), trainable)
        core = keras_core_optimizer(spec.name, **spec.hyperparameters)
        core_state = None if core is None else state_bytes(core, trainable)
        rows.append(
            MemoryRow(
                optimizer=spec.label,
                slots=state["slots"],
                slot_dtypes=state["slot_dtypes"],
                bytes_per_parameter=state["per_parameter_bytes"] / state["parameters"],
                keras_core_bytes_per_parameter=(
                    None
                    if core_state is None
                    else core_state["per_parameter_bytes"] / core_state["parameters"]
                ),
                parameters=state["parameters"],
                state_bytes=state["per_parameter_bytes"],
                fixed_bytes=state["fixed_bytes"],
                weights_bytes=weights,
                gradients_bytes=gradients,
            )
        )
    return rows


# -- formatting ---------------------------------------------------------------


def human_bytes(count: float) -> str:
    """`56e9` -> `"52.15 GiB"` (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.2f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _bytes_per_parameter(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


HEADERS = (
    "optimizer",
    "slots",
    "slot dtype",
    "bytes/param",
    "keras core bytes/param",
    "state",
    "weights+grads+state",
)
CSV_FIELDS = (
    "optimizer",
    "slots",
    "slot_dtypes",
    "bytes_per_parameter",
    "keras_core_bytes_per_parameter",
    "parameters",
    "state_bytes",
    "fixed_bytes",
    "weights_bytes",
    "gradients_bytes",
    "total_bytes",
)


def _display_rows(rows: Sequence[MemoryRow]) -> list[tuple[str, ...]]:
    return [
        (
            row.optimizer,
            ", ".join(row.slots) or "-",
            ", ".join(row.slot_dtypes) or "-",
            _bytes_per_parameter(row.bytes_per_parameter),
            _bytes_per_parameter(row.keras_core_bytes_per_parameter),
            human_bytes(row.state_bytes),
            human_bytes(row.total_bytes),
        )
        for row in rows
    ]


def format_table(rows: Sequence[MemoryRow], fmt: str = "text") -> str:
    """The rows as aligned text, Markdown or CSV (CSV with exact byte counts).

    Args:
        rows: from `memory_table` or `model_memory_table`.
        fmt: one of `FORMATS`.

    Returns:
        The table, newline-terminated.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for row in rows:
            writer.writerow([
                row.optimizer,
                " ".join(row.slots),
                " ".join(row.slot_dtypes),
                f"{row.bytes_per_parameter:g}",
                "" if row.keras_core_bytes_per_parameter is None
                else f"{row.keras_core_bytes_per_parameter:g}",
                row.parameters,
                row.state_bytes,
                row.fixed_bytes,
                row.weights_bytes,
                row.gradients_bytes,
                row.total_bytes,
            ])
        return buffer.getvalue()
    table = _display_rows(rows)
    if fmt == "md":
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        lines += ["| " + " | ".join(cells) + " |" for cells in table]
        return "\n".join(lines) + "\n"
    widths = [max(len(cells[i]) for cells in [HEADERS, *table]) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()
             for cells in [HEADERS, *table]]
    return "\n".join(lines) + "\n"


# -- command line -------------------------------------------------------------

_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


def parse_count(text: str) -> int:
    """A parameter count: `7e9`, `7000000000`, `7B`, `350M`, `1.5k`, `1T`.

    Raises:
        ValueError: unless the text is a positive whole number of parameters.
    """
    cleaned = text.strip().replace("_", "").lower()
    scale = 1.0
    if cleaned and cleaned[-1] in _SUFFIXES:
        cleaned, scale = cleaned[:-1], _SUFFIXES[cleaned[-1]]
    try:
        value = float(cleaned) * scale
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1 and value.is_integer()):
        raise ValueError(
            f"params must be a whole number >= 1 such as 7e9, 7B or 350M, got {text!r}"
        )
    return int(value)


def _count_argument(text: str) -> int:
    try:
        return parse_count(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--params",
        type=_count_argument,
        default=None,
        help=f"parameter count, e.g. 7e9, 7B, 350M (default: {DEFAULT_PARAMS:.0e})",
    )
    source.add_argument("--model", default=None, help="a saved .keras model instead of --params")
    parser.add_argument("--dtype", choices=DTYPES, default="float32",
                        help="weight dtype for --params (default: %(default)s)")
    parser.add_argument(
        "--optimizers",
        default=DEFAULT_OPTIMIZERS,
        help="comma-separated registry names, each optionally with "
        "hyperparameters: name:key=value[:key=value] (default: %(default)s)",
    )
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="output format (default: %(default)s)")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        if args.model is not None:
            rows = model_memory_table(args.model, args.optimizers)
            header = f"model {args.model}: {rows[0].parameters:,} trainable parameters"
        else:
            params = DEFAULT_PARAMS if args.params is None else args.params
            rows = memory_table(params, args.dtype, args.optimizers)
            header = f"{params:,} parameters in {args.dtype}"
    except (ValueError, OSError) as error:
        parser.error(str(error))
    if args.format == "text":
        print(header)
    print(format_table(rows, args.format), end="")
    return 0
