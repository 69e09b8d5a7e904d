"""Optimizer telemetry: cheap scalars recorded inside the compiled step.

An optimizer that records telemetry owns two non-trainable variables, created
with its own `add_variable` at `build` time (so they are saved, restored and
mapped through `stateless_apply` like any other optimizer state, and a traced
step never creates a variable): a float32 vector `values` and an int32
vector `counters`, read through these attributes of its `Telemetry`:

  * `gradient_norm`: global L2 norm of the gradients before clipping (after
    loss-scale unscaling and gradient-accumulation averaging: the gradient the
    optimizer is about to clip);
  * `clipped_gradient_norm`: the same after `clipnorm` / `global_clipnorm` /
    `clipvalue` clipping (equal to `gradient_norm` without clipping);
  * `max_gradient_norm`, `max_gradient_norm_step`: the largest pre-clip norm
    (a non-finite one wins) since a monitor last reset them, and the step
    (`iterations` after it, 1-based) it occurred at, so a spike between two
    reads is not missed;
  * `clipped_steps`, `recorded_steps`: step counters, the first counting the
    steps whose gradients clipping changed;
  * `update_norm`: global L2 norm of the weight change `θ_after − θ_before` of
    the last step (decoupled weight decay included);
  * `gradient_norms`, `update_norms`: the per-variable pre-clip gradient norms
    and update norms of the last step, in the order of the variables the
    optimizer was built with (0 for a variable that received no gradient).

Two variables, not one per quantity: every variable is state the compiled
step takes in and hands back, and on JAX each one it passes through
unchanged costs the step a copy; nine of them made a 26k-parameter MLP's
step 25% slower with recording off.

Recording costs an extra pass over gradients and updates, and an optimizer
step is memory-bound, so it is off by default: set the Python attribute
`optimizer.record_telemetry = True` *before* the step is traced (the monitors
in `keras_optzoo.callbacks` do this, and make Keras retrace `fit`'s step).
The update norms cost the most (a read of every weight change, a weight copy
in `Monitored`, and on torch the per-variable loop instead of the fused
step), so they have their own switch, the Python attribute
`optimizer.record_update_norms` (True when absent; the monitors set it to
False: `UpdateRatioMonitor` compares weight copies instead; they delete it again at the end of
training); with it False, `update_norm` and `update_norms` keep their last
values.
The gradients are reduced with one op per variable (their norms, and for
`clipvalue` their largest values); the bookkeeping after (the global norm,
the maximum and its step, the counters, the new vectors) is a few dozen
scalar ops. On TensorFlow they are graph ops, which its executor runs
inline for microseconds (as one nested XLA-compiled function they cost
more: launching it took 35-50 us of a 26k-parameter MLP's 1.2 ms step);
torch's `CompiledStep` records the whole telemetry inside its compiled
graph, its eager step does the bookkeeping in Python on the CPU
(`_HostScalars`); JAX's step is compiled whole anyway.

The second half of this module names the moments of every algorithm and
computes the effective per-parameter learning rate from them; the monitors
read those on the device every `every_n_steps`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import keras
from keras import ops

__all__ = [
    "Telemetry",
    "as_float32",
    "build",
    "clipping_configured",
    "effective_learning_rate_fn",
    "effective_learning_rates",
    "finish_step",
    "has_effective_learning_rate",
    "l2_norms",
    "moment_slots",
    "optimizer_indices",
    "record_gradients",
    "record_update",
    "recorded_vectors",
    "recording_updates",
    "take_gradients",
    "telemetry_owner",
    "unwrap",
]


class Telemetry:
    """The telemetry variables of one optimizer (see the module docstring).

    `values` holds `gradient_norm`, `clipped_gradient_norm`,
    `max_gradient_norm`, `update_norm`, then `gradient_norms` and
    `update_norms`; `counters` holds `max_gradient_norm_step`,
    `clipped_steps`, `recorded_steps`. The named attributes are tensors read
    from them (inside a traced function, from the traced state).

    `pending` holds the tensors of the step being traced; `finish_step`
    assigns them and clears it, so no tensor outlives its trace.
    """

    SCALARS = ("gradient_norm", "clipped_gradient_norm", "max_gradient_norm", "update_norm")
    COUNTERS = ("max_gradient_norm_step", "clipped_steps", "recorded_steps")

    def __init__(self, optimizer: keras.optimizers.Optimizer, num_variables: int) -> None:
        scalars = len(self.SCALARS)
        self.values = optimizer.add_variable(
            shape=(scalars + 2 * num_variables,), initializer="zeros", dtype="float32",
            name="telemetry_values",
        )
        self.counters = optimizer.add_variable(
            shape=(len(self.COUNTERS),), initializer="zeros", dtype="int32",
            name="telemetry_counters",
        )
        self.num_variables = num_variables
        self.pending: dict[str, Any] = {}

    @property
    def variables(self) -> list:
        return [self.values, self.counters]

    def __getattr__(self, name: str):
        # Only for names not found otherwise: the quantities in `values`/`counters`.
        if name not in _QUANTITIES:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return self._part(name, ops.convert_to_tensor(self.values), ops.convert_to_tensor(self.counters))

    def _part(self, name: str, values, counters):
        """Quantity `name`'s slice of the two vectors (tensors)."""
        if name in self.SCALARS:
            return values[self.SCALARS.index(name)]
        if name in self.COUNTERS:
            return counters[self.COUNTERS.index(name)]
        start = len(self.SCALARS) + (0 if name == "gradient_norms" else self.num_variables)
        return values[start : start + self.num_variables]

    def parts(self, values, counters) -> dict[str, Any]:
        """Every quantity, sliced from the tensors of the two vectors."""
        return {name: self._part(name, values, counters) for name in _QUANTITIES}

    def current(self, step_ops) -> dict[str, Any]:
        """Every quantity, read for the step (see `_step_ops`). On torch's
        eager step, views of the variables' own tensors, made once: a view
        is an op, at microseconds each."""
        xp, read, _ = step_ops
        values, counters = read(self.values), read(self.counters)
        if xp is ops or xp is _HostScalars:
            return self.parts(values, counters)
        cached = self.__dict__.get("_views")
        if cached is None or cached[0] is not values or cached[1] is not counters:
            cached = self._views = (values, counters, self.parts(values, counters))
        return cached[2]

    def packed(self, quantities: dict[str, Any], xp=ops) -> tuple[Any, Any]:
        """`(values, counters)`: every quantity (a dict as `parts` returns)
        packed into the two vectors, as new tensors (with `_HostScalars`,
        lists of Python numbers)."""
        scalars = [quantities[name] for name in self.SCALARS]
        counters = [quantities[name] for name in self.COUNTERS]
        if xp is _HostScalars:
            return [*scalars, *quantities["gradient_norms"], *quantities["update_norms"]], counters
        values = ops.concatenate([
            ops.stack([ops.cast(value, "float32") for value in scalars]),
            quantities["gradient_norms"],
            quantities["update_norms"],
        ])
        return values, ops.stack([ops.cast(value, "int32") for value in counters])

    def store(self, step_ops, current: dict[str, Any], new: dict[str, Any]) -> None:
        """Assign the quantities in `new`, keeping the others (`current`, as
        `current(step_ops)` returned them)."""
        xp, _, assign_all = step_ops
        if xp is not ops and xp is not _HostScalars:
            # Torch's eager step: `current` holds views of the variables' tensors.
            assign_all([(current[name], value) for name, value in new.items()])
            return
        values, counters = self.packed({**current, **new}, xp)
        assign_all([(self.values, values), (self.counters, counters)])

    def reset_max(self) -> None:
        """Zero `max_gradient_norm` and `max_gradient_norm_step` (on JAX the
        variables must be current: synced from `fit`'s state). In place where
        the backend can: an eager read and assign of both vectors through
        Keras costs 0.4 ms on TensorFlow."""
        norm_at = self.SCALARS.index("max_gradient_norm")
        step_at = self.COUNTERS.index("max_gradient_norm_step")
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            for variable, at, zero in ((self.values, norm_at, 0.0), (self.counters, step_at, 0)):
                if isinstance(variable.value, tf.distribute.DistributedValues):
                    # A distributed (e.g. mirrored) variable has no in-place scatter.
                    variable.assign(tf.tensor_scatter_nd_update(variable.value, [[at]], [zero]))
                else:
                    variable.value.scatter_nd_update([[at]], [zero])
        elif backend == "torch":
            import torch

            with torch.no_grad():
                self.values.value[norm_at] = 0.0
                self.counters.value[step_at] = 0
        else:
            values, counters = _jax_zeroed(norm_at, step_at)(self.values.value, self.counters.value)
            self.values.assign(values)
            self.counters.assign(counters)


@functools.cache
def _jax_zeroed(norm_at: int, step_at: int):
    """`(values, counters) -> the same with the maximum and its step zeroed`,
    jitted: one dispatch, where a NumPy round trip of both cost 0.1 ms."""
    import jax

    return jax.jit(lambda values, counters: (values.at[norm_at].set(0.0), counters.at[step_at].set(0)))


_QUANTITIES = (*Telemetry.SCALARS, *Telemetry.COUNTERS, "gradient_norms", "update_norms")


# ---------------------------------------------------------------------------
# Recording: called from the optimizer's step (ZooOptimizer and Monitored).
# ---------------------------------------------------------------------------


def build(optimizer: keras.optimizers.Optimizer, var_list: list) -> Telemetry:
    """Create `optimizer`'s telemetry variables for `var_list`, whatever
    `record_telemetry` says, so that switching recording on never creates a
    variable inside a traced step."""
    optimizer._telemetry = Telemetry(optimizer, len(var_list))
    return optimizer._telemetry


def recording_updates(optimizer: keras.optimizers.Optimizer) -> bool:
    """Whether `optimizer`'s step, as traced now, records the update norms."""
    return bool(optimizer.record_telemetry) and getattr(optimizer, "record_update_norms", True)


_TORCH_FLOAT32 = object()
if keras.backend.backend() == "torch":
    import torch as _torch

    _TORCH_FLOAT32 = _torch.float32


def as_float32(gradient):
    """`gradient` (a tensor or Variable) as a dense float32 tensor (cast only
    when it is not one)."""
    if isinstance(gradient, keras.Variable):
        gradient = gradient.value
    if getattr(gradient, "dtype", None) is _TORCH_FLOAT32:
        return gradient  # Keras's dtype lookup costs more than the norm.
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)
    if keras.backend.standardize_dtype(gradient.dtype) == "float32":
        return gradient
    return ops.cast(gradient, "float32")


def l2_norms(tensors: list):
    """The L2 norm of each (float32) tensor, as one float32 vector, by the
    cheapest ops each backend has for it (see the comments)."""
    if not tensors:
        return ops.zeros((0,), "float32")
    if keras.backend.backend() == "torch":
        import torch

        from keras_optzoo.optimizers.base import has_small_tensors

        if torch.compiler.is_compiling():
            # Inside a compiled step, by rows first: Inductor's CPU code for
            # a whole-tensor sum is a cascaded (pairwise) sum, twice the time
            # of the BLAS dots; by rows it is as fast, in the loop nest of
            # the update that reads the same gradient.
            rows = [t.reshape(-1, t.shape[-1]) if t.dim() > 1 else t.reshape(1, -1) for t in tensors]
            return torch.sqrt(torch.stack([torch.sum(torch.sum(torch.square(r), dim=1)) for r in rows]))
        if tensors[0].device.type == "cpu" and not has_small_tensors(tensors):
            # Sums of squares by BLAS `dot`: inside `fit` on a 2-core CPU,
            # `_foreach_norm` over the 0.6M-parameter MLP's fresh gradients
            # once cost 9-12% of the step, the dots 1% (timed again with
            # `fused=False`, the two tied: 150-160 us). On small tensors the
            # one op wins (26k-parameter MLP inside `fit`: 31 against 46 us).
            flat = [t.reshape(-1) for t in tensors]
            return torch.sqrt(torch.stack([torch.dot(f, f) for f in flat]))
        # One launch (on an accelerator, one kernel), not two per tensor.
        return torch.stack(torch._foreach_norm(list(tensors)))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # One op per tensor (`l2_loss` is sum(t²)/2), not two: TensorFlow's
        # graph executor pays per op, and the small step is mostly that cost.
        return ops.sqrt(2.0 * tf.stack([tf.nn.l2_loss(t) for t in tensors]))
    return ops.sqrt(ops.stack([ops.sum(ops.square(t)) for t in tensors]))


def _was_clipped(xp, clipping, norm, norms, largest):
    """Whether Keras's clipping of this optimizer changes the gradients
    (`xp`: the step's op namespace, see `_step_ops`; `largest`: each
    gradient's largest absolute value, for `clipvalue`), or None without
    clipping.

    Decided from the norms, not by comparing before and after: Keras's global
    clipping multiplies by `c·min(1/‖g‖, 1/c)`, which is not exactly 1 in
    float32 even when nothing is clipped.
    """
    if clipping.global_clipnorm:
        return xp.greater(norm, clipping.global_clipnorm)
    if clipping.clipnorm:
        return xp.any(xp.greater(norms, clipping.clipnorm))
    if clipping.clipvalue:
        return xp.any(xp.greater(largest, clipping.clipvalue))
    return None


def _global_norm(xp, norms):
    if xp is not ops:
        return xp.linalg.vector_norm(norms)  # torch: one kernel, not three
    return ops.sqrt(ops.sum(ops.square(norms)))


def clipping_configured(clipping) -> bool:
    """Whether `clipping` (an optimizer) clips: without it Keras hands the
    step the very gradients it was given."""
    return bool(clipping.global_clipnorm or clipping.clipnorm or clipping.clipvalue)


def record_gradients(optimizer, grads: list, clipped_grads: list, clipping=None) -> None:
    """Note one step's gradients before and after clipping; `finish_step`
    records their norms.

    Only noted here: torch's `CompiledStep` takes the note
    (`take_gradients`) and records the norms inside its compiled graph, one
    native loop nest where eagerly they are two dozen ops (inside `fit`,
    0.12 against 0.27 ms on a 600k-parameter MLP). TensorFlow's XLA update
    function does not: XLA:CPU's reductions are slow (the six norms of
    that MLP: 0.35-0.46 ms against 0.19 ms as `l2_loss` graph ops), and there
    the recording made the step slower (+16% against +6% in `fit`).

    Args:
        optimizer: The recording optimizer (it owns the telemetry).
        grads: The gradients before clipping, one per updated variable.
        clipped_grads: The same gradients after the optimizer's clipping (the
            gradients the step uses).
        clipping: The optimizer whose `clipnorm`/`global_clipnorm`/`clipvalue`
            produced `clipped_grads`. Defaults to `optimizer`.
    """
    clipping = optimizer if clipping is None else clipping
    step_ops = _step_ops(optimizer)
    optimizer._telemetry.pending = {
        "grads": list(grads),
        "clipped_grads": list(clipped_grads),
        "clipping": clipping,
        # Read before the step increments it: the 1-based number of this step.
        "step": step_ops[1](optimizer.iterations) + 1,
        "update_squares": {},
        "step_ops": step_ops,
    }


def take_gradients(optimizer) -> dict[str, Any] | None:
    """The gradients `record_gradients` noted for this step, taken over (the
    optimizer's note is cleared) by a compiled update that records them
    itself, or None when nothing is noted. Only a step that records no
    update norms is compiled, so the note holds no update norms."""
    pending = optimizer._telemetry.pending
    if "grads" not in pending:
        return None
    optimizer._telemetry.pending = {}
    return pending


def _gradient_reductions(pending: dict[str, Any]) -> dict[str, Any]:
    """What the telemetry needs of the step's gradients themselves (the
    step `pending`, as `record_gradients` notes it, describes): each
    gradient's norm before and (with clipping) after clipping, and for
    `clipvalue` its largest absolute value."""
    clipping = pending["clipping"]
    grads = [as_float32(g) for g in pending["grads"]]
    reductions = {"norms": l2_norms(grads)}
    if clipping_configured(clipping):
        reductions["clipped_norms"] = l2_norms([as_float32(g) for g in pending["clipped_grads"]])
    if clipping.clipvalue and not (clipping.global_clipnorm or clipping.clipnorm):
        if keras.backend.backend() == "torch":
            # Torch's own ops, eager (a `keras.ops` call costs several times
            # more) and inside `CompiledStep`'s graph (Dynamo cannot trace
            # `keras.ops.max`: an `isinstance` on its argument).
            import torch

            reductions["largest"] = torch.stack([torch.amax(torch.abs(g)) for g in grads])
        else:
            reductions["largest"] = ops.stack([ops.max(ops.abs(g)) for g in grads])
    return reductions


def _new_quantities(xp, clipping, reductions, step, update_squares, current: dict[str, Any],
                    indices: tuple[int, ...] | None, size: int) -> dict[str, Any]:
    """The quantities a step changes, from the `current` ones: those of its
    gradients from their `reductions` (`_gradient_reductions`, or None), the
    update norms from `update_squares` (a vector over all variables, or None)."""
    new = {}
    if reductions is not None:
        norms = reductions["norms"]
        norm = _global_norm(xp, norms)
        previous = current["max_gradient_norm"]
        # `isfinite`, not the cheaper `not norm < inf`: TensorFlow's graph
        # optimizer rewrites `logical_not(less)` as `greater_equal`, false for NaN.
        new_max = xp.logical_or(xp.greater(norm, previous), xp.logical_not(xp.isfinite(norm)))
        if xp is ops:
            step = ops.cast(step, "int32")
        new.update(
            gradient_norm=norm,
            clipped_gradient_norm=(
                _global_norm(xp, reductions["clipped_norms"]) if "clipped_norms" in reductions else norm
            ),
            gradient_norms=_in_build_order(norms, indices, size, xp),
            max_gradient_norm=xp.where(new_max, norm, previous),
            max_gradient_norm_step=xp.where(new_max, step, current["max_gradient_norm_step"]),
            recorded_steps=current["recorded_steps"] + 1,
        )
        was_clipped = _was_clipped(xp, clipping, norm, norms, reductions.get("largest"))
        if was_clipped is not None:
            clipped_steps = current["clipped_steps"]
            new["clipped_steps"] = xp.where(was_clipped, clipped_steps + 1, clipped_steps)
    if update_squares is not None:
        new.update(update_norm=ops.sqrt(ops.sum(update_squares)), update_norms=ops.sqrt(update_squares))
    return new


def record_update(optimizer, variable, delta) -> None:
    """Record ‖θ_after − θ_before‖ of one variable (`delta` is the difference)."""
    squares = ops.sum(ops.square(ops.cast(delta, "float32")))
    pending = optimizer._telemetry.pending.setdefault("update_squares", {})
    pending[optimizer._get_variable_index(variable)] = squares


def optimizer_indices(optimizer, variables) -> tuple[int, ...]:
    """The optimizer's index of each of `variables`, which its slot lists
    and the telemetry's per-variable norms go by: Keras hands `apply` only
    the variables that have a gradient, a subset of those the optimizer
    was built with."""
    return tuple(optimizer._get_variable_index(variable) for variable in variables)


def _in_build_order(values, indices, size: int, xp=ops):
    """`values` (aligned with `indices`, a vector or a list of scalars) as a
    vector over all `size` variables, 0 where absent. In one op: no scatter
    when the step updates every variable in build order, the usual case.
    With `_HostScalars`, a list of floats (`values` itself in build order)."""
    if tuple(indices) == tuple(range(size)):
        return values if xp is _HostScalars or not isinstance(values, list) else ops.stack(values)
    if isinstance(values, list):
        by_index = dict(zip(indices, values))
    else:
        by_index = {index: values[position] for position, index in enumerate(indices)}
    if xp is _HostScalars:
        return [by_index.get(i, 0.0) for i in range(size)]
    zero = ops.zeros((), "float32")
    return ops.stack([by_index.get(i, zero) for i in range(size)]) if size else ops.zeros((0,))


def finish_step(optimizer, trainable_variables: list) -> None:
    """Record what `record_gradients` and `record_update` noted this step.

    Args:
        optimizer: The recording optimizer.
        trainable_variables: The variables of this step, aligned with the
            gradients given to `record_gradients`.
    """
    state = optimizer._telemetry
    pending, state.pending = state.pending, {}
    updates = pending.get("update_squares", {})
    if "grads" not in pending and not updates:
        return
    step_ops = pending.get("step_ops") or _step_ops(optimizer)
    xp = step_ops[0]
    size = state.num_variables
    reductions = indices = None
    if "grads" in pending:
        reductions = _gradient_reductions(pending)
        if xp is _HostScalars:
            reductions = {name: value.tolist() for name, value in reductions.items()}
        indices = optimizer_indices(optimizer, trainable_variables)
    squares = _in_build_order(list(updates.values()), list(updates), size) if updates else None
    clipping, step = pending.get("clipping"), pending.get("step")
    current = state.current(step_ops)
    state.store(step_ops, current, _new_quantities(xp, clipping, reductions, step, squares, current, indices, size))


def _new_vectors(state: Telemetry, clipping, values, counters, reductions, step, update_squares,
                 indices: tuple[int, ...] | None):
    """`(values, counters)` after a step, as new tensors, from the tensors
    of the two vectors before it (see `_new_quantities` for the rest): for
    a compiled function that writes or assigns them itself."""
    current = state.parts(values, counters)
    new = _new_quantities(ops, clipping, reductions, step, update_squares, current, indices, state.num_variables)
    return state.packed({**current, **new})


def recorded_vectors(optimizer, pending: dict[str, Any], values, counters, indices: tuple[int, ...]):
    """`_new_vectors` for the gradients `pending` notes (one
    `take_gradients` took, with the compiled graph's own tensors): torch's
    `CompiledStep` records with it inside its graph."""
    return _new_vectors(
        optimizer._telemetry, pending["clipping"], values, counters, _gradient_reductions(pending),
        pending["step"], None, indices,
    )


def _step_ops(optimizer):
    """`(xp, read, assign_all)` for the per-step bookkeeping: `keras.ops`,
    reads and `optimizer.assign`s, or on torch outside a stateless scope the
    same-named torch functions, the variables' own tensors and one
    `_foreach_copy_` (into variables or views of their tensors). There the
    step runs eagerly, and a `keras.ops` call on a scalar costs 5-15x the
    torch op: the bookkeeping took more than a small model's whole optimizer
    step. `read` takes a variable or a tensor
    (`iterations` is one under gradient accumulation)."""
    if keras.backend.backend() == "torch":
        from keras.src.backend.common.stateless_scope import in_stateless_scope

        if not in_stateless_scope():
            if optimizer._telemetry.values._value.is_cpu and not recording_updates(optimizer):
                return _host_step_ops()
            return _torch_step_ops()

    def assign_all(pairs: list) -> None:
        for variable, value in pairs:
            optimizer.assign(variable, value)

    return ops, _read_once, assign_all


def _read_once(variable):
    """`variable`'s value as a tensor. On TensorFlow `ops.convert_to_tensor`
    hands back the variable itself, and each slice of it is a read of its
    own: a graph op, ordered after the variable's other ops, nine of them
    for the step's bookkeeping."""
    if keras.backend.backend() == "tensorflow" and isinstance(variable, keras.Variable):
        import tensorflow as tf

        return tf.convert_to_tensor(variable.value)
    return ops.convert_to_tensor(variable)


@functools.cache
def _torch_step_ops():
    """`_step_ops` on torch's eager step, made once (it has no per-optimizer part)."""
    import torch

    from keras_optzoo.optimizers.torch_fast_path import _own_tensor

    def assign_all(pairs: list) -> None:
        # Without `no_grad` the variables would join the autograd
        # graph of the update norms (the weights are `Parameter`s).
        with torch.no_grad():
            torch._foreach_copy_([_own_tensor(t) for t, _ in pairs], [value for _, value in pairs])

    return torch, _own_tensor, assign_all


class _HostScalars:
    """`_new_quantities`' op namespace over Python floats and lists of them:
    torch's eager step on the CPU does its bookkeeping in Python. There the
    norms are in host memory already, so reading them (`tolist`) is no
    device sync, and a Python comparison costs nanoseconds where a torch op
    on a 0-d tensor costs microseconds. Inside `fit` of a 26k-parameter MLP
    the recording (norms included) took 140 us a step as torch ops, 95 us
    this way: 7% and 4.5% of the step."""

    isfinite = staticmethod(math.isfinite)
    any = staticmethod(any)

    @staticmethod
    def greater(x, y):
        return [value > y for value in x] if isinstance(x, list) else x > y

    @staticmethod
    def logical_or(x, y):
        return x or y

    @staticmethod
    def logical_not(x):
        return not x

    @staticmethod
    def where(condition, x, y):
        return x if condition else y

    class linalg:  # as `torch.linalg`, for `_global_norm`
        @staticmethod
        def vector_norm(values):
            return math.hypot(*values)


@functools.cache
def _host_step_ops():
    """`_step_ops` on torch's eager step on the CPU (see `_HostScalars`):
    reads as Python numbers, writes through NumPy views of the variables'
    own memory."""
    from keras_optzoo.optimizers.torch_fast_path import _own_tensor

    def read(value):
        return _own_tensor(value).tolist()

    def assign_all(pairs: list) -> None:
        for variable, value in pairs:
            _own_tensor(variable).numpy()[...] = value

    return _HostScalars, read, assign_all


# ---------------------------------------------------------------------------
# Finding the telemetry and the moments of any optimizer.
# ---------------------------------------------------------------------------


def unwrap(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The innermost optimizer under wrappers with an `inner_optimizer`
    (`Monitored`, keras's `LossScaleOptimizer`): the one holding the slots."""
    while getattr(optimizer, "inner_optimizer", None) is not None:
        optimizer = optimizer.inner_optimizer
    return optimizer


def telemetry_owner(optimizer: keras.optimizers.Optimizer | None):
    """The optimizer that records telemetry for `optimizer`, or None.

    That is `optimizer` itself for keras_optzoo optimizers and `Monitored`, or
    the first one found inside a chain of wrappers (a keras_optzoo optimizer
    inside keras's `LossScaleOptimizer`, as mixed precision builds it).
    """
    while optimizer is not None:
        if hasattr(optimizer, "record_telemetry"):
            return optimizer
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return None


def _keras_core_slots() -> list[tuple[type, str | None, str | None]]:
    # (class, first-moment attribute, second-moment attribute) as keras core
    # names them (keras/src/optimizers/*.py, build()). Subclasses first.
    o = keras.optimizers
    return [
        (o.Adam, "_momentums", "_velocities"),  # AdamW is a subclass
        (o.Nadam, "_momentums", "_velocities"),
        (o.Adamax, "_m", "_u"),
        (o.Lamb, "_momentums", "_velocities"),
        (o.RMSprop, None, "_velocities"),
        (o.Adagrad, None, "_accumulators"),
        (o.Adadelta, None, "_accumulated_grads"),
        (o.SGD, "momentums", None),
        (o.Lion, "_momentums", None),
    ]


def moment_slots(optimizer: keras.optimizers.Optimizer) -> tuple[list | None, list | None]:
    """The first- and second-moment slot variables of `optimizer`.

    keras_optzoo optimizers declare them with the class attributes
    `first_moment_slot` / `second_moment_slot`; keras core's optimizers are
    looked up by class. Wrappers are unwrapped.

    Args:
        optimizer: A built optimizer.

    Returns:
        `(first, second)`: each a list of slot variables aligned with the
        optimizer's trainable variables, or None where the algorithm keeps no
        such moment (SGD without momentum keeps neither; Lion no second).
    """
    optimizer = unwrap(optimizer)
    if hasattr(optimizer, "slots_for"):
        slots = getattr(optimizer, "_slots", {})
        first = type(optimizer).first_moment_slot
        second = type(optimizer).second_moment_slot
        return slots.get(first) if first else None, slots.get(second) if second else None
    for cls, first, second in _keras_core_slots():
        if isinstance(optimizer, cls):
            first_slots = getattr(optimizer, first, None) if first else None
            second_slots = getattr(optimizer, second, None) if second else None
            return first_slots or None, second_slots or None
    return None, None


# ---------------------------------------------------------------------------
# Effective per-parameter learning rate: the one place this math lives.
# ---------------------------------------------------------------------------


def _value(variable):
    return ops.cast(ops.convert_to_tensor(variable), "float32")


def _debias(moment, decay: float, t):
    return moment / (1.0 - ops.power(decay, t))


def _zoo_adam(opt, slots, lr, t):
    v = slots["v_max"] if opt.amsgrad else slots["v"]
    debiased_max = opt.amsgrad and opt.debias_before_max
    if opt.epsilon_hat:
        correction = 1.0 - ops.power(opt.beta_2, t)
        v_raw = v * correction if debiased_max else v
        return lr * ops.sqrt(correction) / (ops.sqrt(v_raw) + opt.epsilon)
    v_hat = v if debiased_max else _debias(v, opt.beta_2, t)
    return lr / (ops.sqrt(v_hat) + opt.epsilon)


def _zoo_nadam(opt, slots, lr, t):
    return lr / (ops.sqrt(_debias(slots["v"], opt.beta_2, t)) + opt.epsilon)


def _zoo_radam(opt, slots, lr, t):
    b2 = opt.beta_2
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    b2_t = ops.power(b2, t)
    rho_t = rho_inf - 2.0 * t * b2_t / (1.0 - b2_t)
    rho_safe = ops.maximum(rho_t, 4.0 + 1e-3)
    r_t = ops.sqrt(
        (rho_safe - 4.0) * (rho_safe - 2.0) * rho_inf
        / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_safe)
    )
    adaptive = lr * r_t / (ops.sqrt(_debias(slots["v"], b2, t)) + opt.epsilon)
    return ops.where(rho_t > opt.rectification_threshold, adaptive, lr * ops.ones_like(adaptive))


def _zoo_adabelief(opt, slots, lr, t):
    return lr / (ops.sqrt(_debias(slots["s"], opt.beta_2, t)) + opt.epsilon)


def _zoo_yogi(opt, slots, lr, t):
    v = _debias(slots["v"], opt.beta_2, t) if opt.bias_correction else slots["v"]
    return lr / (ops.sqrt(v) + opt.epsilon)


def _divide_by_root(lr, s, epsilon: float, inside: bool):
    return lr / (ops.sqrt(s + epsilon) if inside else ops.sqrt(s) + epsilon)


def _zoo_rmsprop(opt, slots, lr, t):
    s = slots["velocity"]
    if opt.centered:
        s = s - ops.square(slots["average_gradient"])
    return _divide_by_root(lr, s, opt.epsilon, opt.epsilon_inside_sqrt)


def _zoo_adagrad(opt, slots, lr, t):
    return _divide_by_root(lr, slots["accumulator"], opt.epsilon, opt.epsilon_inside_sqrt)


def _adadelta(lr, accumulated_grad, accumulated_delta, epsilon: float):
    return lr * ops.sqrt(accumulated_delta + epsilon) / ops.sqrt(accumulated_grad + epsilon)


def _zoo_adadelta(opt, slots, lr, t):
    return _adadelta(lr, slots["accumulated_grad"], slots["accumulated_delta"], opt.epsilon)


def _core_slot(opt, attribute: str, index: int):
    return _value(getattr(opt, attribute)[index])


def _core_adam(opt, index, lr, t):
    v = _core_slot(opt, "_velocity_hats" if opt.amsgrad else "_velocities", index)
    return lr * ops.sqrt(1.0 - ops.power(opt.beta_2, t)) / (ops.sqrt(v) + opt.epsilon)


def _core_nadam(opt, index, lr, t):
    v = _core_slot(opt, "_velocities", index)
    return lr / (ops.sqrt(_debias(v, opt.beta_2, t)) + opt.epsilon)


def _core_adamax(opt, index, lr, t):
    return lr / (_core_slot(opt, "_u", index) + opt.epsilon)


def _core_rmsprop(opt, index, lr, t):
    s = _core_slot(opt, "_velocities", index)
    if opt.centered:
        s = s - ops.square(_core_slot(opt, "_average_gradients", index))
    return _divide_by_root(lr, s, opt.epsilon, inside=True)


def _core_adagrad(opt, index, lr, t):
    return _divide_by_root(lr, _core_slot(opt, "_accumulators", index), opt.epsilon, inside=True)


def _core_adadelta(opt, index, lr, t):
    return _adadelta(
        lr,
        _core_slot(opt, "_accumulated_grads", index),
        _core_slot(opt, "_accumulated_delta_vars", index),
        opt.epsilon,
    )


def _rule(optimizer) -> Callable | None:
    """The effective-learning-rate function of `optimizer`'s algorithm, taking
    `(optimizer, variable index, learning rate, step)`."""
    from keras_optzoo import optimizers as zoo

    def per_slots(fn):
        def rule(opt, index, lr, t):
            slots = {name: _value(values[index]) for name, values in opt._slots.items()}
            return fn(opt, slots, lr, t)

        return rule

    zoo_rules = [
        (zoo.Adam, _zoo_adam),  # AdamW is a subclass
        (zoo.NAdam, _zoo_nadam),
        (zoo.RAdam, _zoo_radam),
        (zoo.AdaBelief, _zoo_adabelief),
        (zoo.Yogi, _zoo_yogi),
        (zoo.RMSprop, _zoo_rmsprop),
        (zoo.Adagrad, _zoo_adagrad),
        (zoo.Adadelta, _zoo_adadelta),
    ]
    for cls, fn in zoo_rules:
        if isinstance(optimizer, cls):
            return per_slots(fn)
    o = keras.optimizers
    core_rules = [
        (o.Adam, _core_adam),  # AdamW is a subclass
        (o.Nadam, _core_nadam),
        (o.Adamax, _core_adamax),
        (o.RMSprop, _core_rmsprop),
        (o.Adagrad, _core_adagrad),
        (o.Adadelta, _core_adadelta),
    ]
    for cls, fn in core_rules:
        if isinstance(optimizer, cls):
            return fn
    return None


def has_effective_learning_rate(optimizer: keras.optimizers.Optimizer) -> bool:
    """Whether `effective_learning_rates` knows `optimizer`'s algorithm."""
    return _rule(unwrap(optimizer)) is not None


def effective_learning_rates(optimizer: keras.optimizers.Optimizer) -> list | None:
    """The per-parameter learning rate of an adaptive optimizer, on the device.

    The factor the algorithm applies to its direction, from the current state:
    `t = iterations` (the number of steps taken, at least 1) and `η` the
    current learning rate (a schedule is evaluated at `iterations`, i.e. the
    rate of the next step). With a constant rate, the last step's change is
    exactly `Δθ = −η_eff ⊙ direction`:

      * Adam, AdamW, NAdam, AdaBelief (keras_optzoo): `η / (√v̂ + ε)` with
        `v̂ = v / (1 − β₂ᵗ)` (AdaBelief: `s`; AMSGrad: `v_max`; with
        `epsilon_hat`: `η·√(1 − β₂ᵗ) / (√v + ε)`); direction `m̂` (NAdam: its
        Nesterov combination of `m` and `g`).
      * RAdam: `η·r_t / (√v̂ + ε)` once `ρ_t` passes the threshold, `η` before.
      * Yogi: `η / (√v + ε)` (`v̂` with `bias_correction`); direction `m`
        (`m̂` with `bias_correction`).
      * RMSprop: `η / (√s + ε)` or `η / √(s + ε)` (`epsilon_inside_sqrt`),
        `s = v − ḡ²` when centered; direction `g` (without momentum).
      * Adagrad: `η / (√G + ε)` or `η / √(G + ε)`; direction `g`.
      * Adadelta: `η·√(E[Δθ²] + ε) / √(E[g²] + ε)`; direction `g`.
      * keras core: Adam/AdamW `η·√(1 − β₂ᵗ) / (√v + ε)` (on `m̂`), Nadam
        `η / (√v̂ + ε)`, Adamax `η / (u + ε)` (on `m̂`), RMSprop
        `η / √(v [− ḡ²] + ε)`, Adagrad `η / √(G + ε)`, Adadelta as above.

    SGD and Lion scale every parameter by `η` alike, so they have none.

    Args:
        optimizer: A built optimizer (wrappers are unwrapped).

    Returns:
        A float32 tensor per trainable variable (its shape), or None when the
        algorithm has no per-parameter learning rate or is not known here.
    """
    per_variable = effective_learning_rate_fn(optimizer)
    if per_variable is None:
        return None
    return [per_variable(index) for index in range(len(unwrap(optimizer)._trainable_variables))]


def effective_learning_rate_fn(optimizer: keras.optimizers.Optimizer) -> Callable | None:
    """`effective_learning_rates` one variable at a time, for a caller that
    reduces each before computing the next (on an eager backend, holding
    one variable's worth of temporaries instead of the whole model's).

    Args:
        optimizer: A built optimizer (wrappers are unwrapped).

    Returns:
        A function `index -> tensor`: the effective learning rate of
        trainable variable `index` (its shape), from the learning rate and
        step read when this is called; or None as `effective_learning_rates`
        returns it.
    """
    optimizer = unwrap(optimizer)
    rule = _rule(optimizer)
    if rule is None or not optimizer.built:
        return None
    lr = ops.cast(optimizer.learning_rate, "float32")
    t = ops.cast(ops.maximum(optimizer.iterations, 1), "float32")
    return lambda index: rule(optimizer, index, lr, t)

