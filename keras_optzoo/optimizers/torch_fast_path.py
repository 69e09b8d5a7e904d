"""The torch fast paths: fewer passes over memory, fewer kernel launches.

TensorFlow and JAX compile the whole train step with XLA, so an algorithm's
`update` already runs as a few fused loops there. Keras runs the optimizer
eagerly on torch, one variable at a time: each `keras.ops` call in `update` is
a separate kernel launch and a separate pass over memory with a fresh
temporary, about fifteen of each per variable for Adam, where the algorithm
needs one pass (28 bytes per fp32 parameter). keras core works around it with
hand-written `_foreach` versions of its own optimizers; torch.optim adds
hand-written fused kernels.

The first two executors here run the same pure function as the
per-variable loop (`ZooOptimizer.new_values`: weight decay, the algorithm's
`update`, the skip policy), so no algorithm file knows about them; the third
is a multi-tensor form of one algorithm, as torch.optim keeps beside its
single-tensor loop:

* `CompiledStep` (large models, or `fused=True`): `torch.compile` traces
  `new_values` over every variable of the step and writes variables and slots
  in place, so Inductor emits one loop per variable that reads each input once.
  Compiling costs seconds to a minute, once per optimizer (and again if the
  variables change shape). What depends only on the step, the learning rate
  and constants (bias corrections and the like) is split off and computed
  once per step first (`hoist_step_scalars`), not once per element. Once
  compiled, a step with the same layout and hyperparameters calls the graph
  directly (`_DirectCall`), past Dynamo's per-call entry.
* `ConcatenatedStep` (models of small tensors under `fused=None`, elementwise
  algorithms): the gradients of each (dtype, weight-decay) group are
  concatenated into one flat tensor and `new_values` runs once per group, on
  weights and slots that live in one flat buffer each (the variables hold
  views of them). A small model's step is bound by kernel launches, not memory, and
  this cuts them from about fifteen per variable to about fifteen per step.
* `InPlaceStep` (`fused=None`, float32 on the CPU, an algorithm in
  `IN_PLACE_UPDATES`: SGD, with momentum only below the compiling size):
  the update as in-place `_foreach` ops, as keras core runs it. SGD does one
  to three multiply-adds per element, less than either executor above costs
  per step; checked against the float64 references and the per-variable loop.
"""

from __future__ import annotations

import itertools
import math
import re
import types
import warnings

import keras
import torch
from keras import ops
from keras.src.backend.common.stateless_scope import in_stateless_scope
from keras.src.backend.common.variables import get_autocast_scope
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
from torch.fx.passes.split_module import split_module

from keras_optzoo.optimizers import telemetry
from keras_optzoo.optimizers.base import has_small_tensors
from keras_optzoo.optimizers.sgd import SGD

# From this many parameters on, compiling pays for itself within a few
# thousand steps. The eager per-variable loop allocates a fresh tensor per op,
# and above ~128 KB each allocation is page-faulted in anew (glibc maps and
# trims large blocks): on a 2-core CPU it ran Adam on a 600k-parameter MLP in
# 7.1 ms where keras core's in-place foreach takes 1.2 ms and the compiled
# step 0.6 ms (compiling takes 5-7 s once).
AUTO_COMPILE_MIN_PARAMETERS = 1 << 17


def choose_executor(optimizer, trainable_variables):
    """The executor for this optimizer and model, or None for the per-variable loop."""
    if optimizer.fused is False:
        return None
    parameters = sum(math.prod(v.shape) for v in trainable_variables)
    if optimizer.fused is None and InPlaceStep.applies(optimizer, trainable_variables, parameters):
        return InPlaceStep(optimizer)
    if optimizer.fused or parameters >= AUTO_COMPILE_MIN_PARAMETERS:
        return CompiledStep(optimizer)
    # Concatenating copies every tensor twice more (in and out), which pays
    # only while kernel launches, not memory traffic, bound the step.
    if optimizer.elementwise_update and has_small_tensors(trainable_variables):
        return ConcatenatedStep(optimizer)
    return None


def _compute_dtype(dtype):
    # As `ZooOptimizer.update_step`: 16-bit weights are updated in float32.
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _step_inputs(optimizer, learning_rate, read):
    """Learning rate and step as float32 0-d tensors (`read`: the caller's
    `_reader()`). Torch ops, not `keras.ops` casts, which cost tens of
    microseconds a step; copies, never the variables' own tensors, which the
    step goes on to write."""
    learning_rate = read(learning_rate).to(torch.float32, copy=True)
    # `iterations` is a tensor, not the variable, under gradient accumulation.
    # One op: an integer tensor plus a Python float is a float tensor.
    step = torch.add(read(optimizer.iterations), 1.0)
    return learning_rate, step, optimizer._step_is_finite


def _compiled_body(optimizer, grads, variables, slot_lists, slot_names, decays, learning_rate, step, keep,
                   recording):
    for index, (gradient, variable) in enumerate(zip(grads, variables)):
        compute_dtype = _compute_dtype(variable.dtype)
        slots = {name: slot_list[index] for name, slot_list in zip(slot_names, slot_lists)}
        new_theta, new_slots = optimizer.new_values(
            gradient.to(compute_dtype),
            variable.to(compute_dtype),
            {name: slot.to(compute_dtype) for name, slot in slots.items()},
            learning_rate.to(compute_dtype),
            step.to(compute_dtype),
            decays[index],
            keep,
        )
        for name, value in new_slots.items():
            slots[name].copy_(value)
        variable.copy_(new_theta)
    if recording is not None:
        # The gradient telemetry (`_recording_inputs`), in the same graph:
        # Inductor reads each gradient for its norm in a loop of its own
        # kernel, where eagerly the norms and their bookkeeping are two
        # dozen ops.
        pre_clip_grads, noted_step, values, counters, indices = recording
        noted = {"grads": pre_clip_grads or grads, "clipped_grads": grads, "clipping": optimizer,
                 "step": noted_step}
        new_values, new_counters = telemetry.recorded_vectors(optimizer, noted, values, counters, indices)
        values.copy_(new_values)
        counters.copy_(new_counters)


def _recording_inputs(optimizer, indices: tuple[int, ...], read):
    """`(note, inputs)`: the optimizer's note of this step's gradients, taken
    over (`telemetry.take_gradients`), and what `_compiled_body` records the
    gradient telemetry from, `(pre-clip gradients, or [] when the optimizer
    does not clip, the step, the telemetry's two vectors, the variables'
    `indices` in the optimizer)`; `(None, None)` when the step records none."""
    noted = telemetry.take_gradients(optimizer) if optimizer.record_telemetry else None
    if noted is None:
        return None, None
    state = optimizer._telemetry
    pre_clip = [_tensor(g) for g in noted["grads"]] if telemetry.clipping_configured(optimizer) else []
    step = noted["step"]
    if not isinstance(step, torch.Tensor):
        # Noted as a Python int for the host bookkeeping (`telemetry._host_step_ops`).
        step = torch.tensor(step)
    return noted, (pre_clip, step, read(state.values), read(state.counters), indices)


def _is_scalar_tensor(node) -> bool:
    value = node.meta.get("example_value")
    return isinstance(value, torch.Tensor) and value.dim() == 0


def _is_in_place(node) -> bool:
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return name.endswith("_") and not name.endswith("__")


# Arithmetic that costs about a cycle per vector inside a loop: cheaper to
# repeat per element than to pay for a second compiled function per step.
_CHEAP_SCALAR_OPS = frozenset(
    {"add", "sub", "mul", "neg", "truediv", "div", "eq", "ne", "lt", "le", "gt", "ge",
     "to", "float", "type", "clone", "where", "rsub", "radd", "rmul"}
)


def _is_cheap(node) -> bool:
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return name.strip("_") in _CHEAP_SCALAR_OPS


class _CompileOnFirstCall(torch.nn.Module):
    """Inductor-compile a graph module with the inputs of its first call."""

    def __init__(self, graph_module) -> None:
        super().__init__()
        self.graph_module = graph_module
        self.compiled = None

    def forward(self, *args):
        if self.compiled is None:
            from torch._inductor.compile_fx import compile_fx

            self.compiled = compile_fx(self.graph_module, list(args))
        return self.compiled(*args)


def hoist_step_scalars(graph_module, example_inputs):
    """A `torch.compile` backend: Inductor with step scalars computed once.

    Inductor inlines a 0-d computation into the loop of each tensor that uses
    it, so Adam's `1 - β₁ᵗ` costs a `pow` per vector of eight elements, which
    made the compiled Adam step 3.4x slower than torch's fused kernel. The
    graph is split in two: every node computed from 0-d tensors only (the
    step, the learning rate, constants) goes into a first, tiny compiled
    function whose results the per-element loops of the second read.
    """
    from torch._inductor.compile_fx import compile_fx

    scalars = set()
    for node in graph_module.graph.nodes:
        if not _is_scalar_tensor(node):
            continue
        if node.op == "placeholder" or (
            node.op in ("call_function", "call_method")
            and not _is_in_place(node)
            and all(argument in scalars for argument in node.all_input_nodes)
        ):
            scalars.add(node)
    if all(node.op == "placeholder" or _is_cheap(node) for node in scalars):
        return compile_fx(graph_module, example_inputs)
    split = split_module(graph_module, None, lambda node: 0 if node in scalars else 1)
    split.submod_0 = _CompileOnFirstCall(split.submod_0)
    split.submod_1 = _CompileOnFirstCall(split.submod_1)
    return split


_compiled_instances = itertools.count()
# Graphs kept for direct calls per `CompiledStep` (Dynamo's own cache keeps 8).
_MAX_DIRECT_CALLS = 8


class CompiledStep:
    """One optimizer step over all variables as a `torch.compile`d function."""

    def __init__(self, optimizer) -> None:
        self.optimizer = optimizer
        self.failed = False
        # `(graph, input sources)` of the latest compile, and the graphs to
        # call directly for steps that look like one they were compiled for,
        # by `_DirectCall.key`: several, as `fit` with monitors records the
        # telemetry and `fit` without does not.
        self._latest_compile: tuple | None = None
        self._direct_calls: dict[tuple, _DirectCall] = {}
        # Dynamo caches compiled graphs per code object and guards on the
        # optimizer instance; a private copy of the code keeps each optimizer
        # in its own cache instead of exhausting a shared recompile limit.
        name = f"_compiled_body_{next(_compiled_instances)}"
        code = _compiled_body.__code__.replace(co_name=name, co_qualname=name)
        self._compiled = torch.compile(
            types.FunctionType(code, _compiled_body.__globals__, name),
            fullgraph=True,
            # Specialize on every change: a recompile is rare (a new layout, a
            # hyperparameter set by hand), and a dynamic graph would make Dynamo
            # pass sizes and floats as inputs, `if momentum == 0` among them.
            dynamic=False,
            backend=self._backend,
        )

    def _backend(self, graph_module, example_inputs):
        compiled = hoist_step_scalars(graph_module, example_inputs)
        self._latest_compile = (compiled, _input_sources(graph_module))
        return compiled

    def __call__(self, grads, trainable_variables, learning_rate) -> bool:
        """Apply the step; False (nothing applied) if it cannot be compiled."""
        if self.failed:
            return False
        optimizer = self.optimizer
        read = _reader()
        slot_names = tuple(optimizer._slots)
        positions = telemetry.optimizer_indices(optimizer, trainable_variables)
        slot_lists = [[read(optimizer._slots[name][i]) for i in positions] for name in slot_names]
        variables = [read(variable) for variable in trainable_variables]
        decays = tuple(optimizer._decays(variable) for variable in trainable_variables)
        grads = [_tensor(g) for g in grads]
        learning_rate, step, keep = _step_inputs(optimizer, learning_rate, read)
        noted, recording = _recording_inputs(optimizer, positions, read)
        inputs = {"grads": grads, "variables": variables, "slot_lists": slot_lists,
                  "learning_rate": learning_rate, "step": step, "keep": keep, "recording": recording}
        key = _DirectCall.key(optimizer, inputs, decays)
        direct = self._direct_calls.get(key)
        if direct is not None:
            with torch.no_grad():
                direct(inputs)
            return True
        compiled_before = self._latest_compile
        try:
            with torch.no_grad():
                self._compiled(optimizer, grads, variables, slot_lists, slot_names, decays,
                               learning_rate, step, keep, recording)
        except Exception as error:  # noqa: BLE001 - any compiler failure means "run eagerly"
            # Compilation fails before any kernel runs, so nothing was written;
            # the eager step records the telemetry.
            if noted is not None:
                optimizer._telemetry.pending = noted
            self.failed = True
            warnings.warn(
                f"{type(optimizer).__name__}: torch.compile of the fused step failed "
                f"({type(error).__name__}: {error}); using the eager step.",
                RuntimeWarning,
                stacklevel=2,
            )
            return False
        if self._latest_compile is not compiled_before:  # Dynamo compiled this step's graph
            compiled, sources = self._latest_compile
            if sources is not None:
                if len(self._direct_calls) >= _MAX_DIRECT_CALLS:
                    self._direct_calls.pop(next(iter(self._direct_calls)))
                self._direct_calls[key] = _DirectCall(key, compiled, sources)
        return True


# A graph input's source as Dynamo names it: `L['grads'][3]`,
# `L['slot_lists'][1][3]`, `L['step']` (`L`: `_compiled_body`'s arguments).
_SOURCE = re.compile(r"L\['(grads|variables|slot_lists|learning_rate|step|keep|recording)'\]((?:\[\d+\])*)")


def _input_sources(graph_module) -> list[tuple[str, tuple[int, ...]]] | None:
    """Where each graph input comes from, as `(argument, indices)`; None if
    any input is something else (an optimizer attribute, a symbolic size)."""
    sources = []
    for node in graph_module.graph.nodes:
        if node.op != "placeholder":
            continue
        grapharg = node.meta.get("grapharg")
        match = _SOURCE.fullmatch(getattr(getattr(grapharg, "source", None), "name", ""))
        if match is None:
            return None
        sources.append((match[1], tuple(int(i) for i in re.findall(r"\d+", match[2]))))
    return sources


class _DirectCall:
    """The compiled graph called straight, past Dynamo's frame evaluation.

    Dynamo's entry (frame evaluation, guards, argument gathering) costs about
    50 us a call, a third of a momentum step on a 600k-parameter model and
    more inside `fit`, where its Python is no longer in cache. A step whose
    `key` (the hyperparameters the graph baked in, and every input tensor's
    dtype, shape, stride and device) equals the compiled one's calls the
    graph with the same inputs Dynamo would pass; any other step goes through
    Dynamo, which recompiles or picks another cached graph.
    """

    def __init__(self, key: tuple, compiled, sources: list[tuple[str, tuple[int, ...]]]) -> None:
        self.key = key
        self.compiled = compiled
        self.sources = sources

    @staticmethod
    def key(optimizer, inputs: dict, decays: tuple) -> tuple:
        hyperparameters = tuple(
            getattr(optimizer, name) for name in getattr(optimizer, "_hyperparameter_names", ())
        )
        tensors = [*inputs["grads"], *inputs["variables"], *itertools.chain(*inputs["slot_lists"]),
                   inputs["learning_rate"], inputs["step"]]
        if inputs["keep"] is not None:
            tensors.append(inputs["keep"])
        recording = inputs["recording"]
        if recording is not None:
            pre_clip_grads, noted_step, values, counters, indices = recording
            tensors += [*pre_clip_grads, noted_step, values, counters]
            # The clipping the graph tests for, and where each variable's norm goes.
            recording = (optimizer.clipnorm, optimizer.global_clipnorm, optimizer.clipvalue, indices)
        layout = tuple((t.dtype, t.shape, t.stride(), t.device) for t in tensors)
        return (hyperparameters, optimizer.weight_decay, decays, inputs["keep"] is None, recording, layout)

    def __call__(self, inputs: dict) -> None:
        arguments = []
        for name, indices in self.sources:
            value = inputs[name]
            for index in indices:
                value = value[index]
            arguments.append(value)
        self.compiled(*arguments)


def _sgd_in_place(optimizer, grads, weights, slots, learning_rate: float) -> None:
    """`SGD.update` (`lr_inside_velocity=True`) over lists of tensors, in
    place, as keras core's and torch.optim's multi-tensor SGD run it: no
    temporary, the learning rate as an `alpha` (multiply-adds may round once
    where the per-variable loop rounds twice).

        v ← μ·v − η·(1 − τ)·g;   θ ← θ + v   (plain)   θ ← θ + μ·v − η·g   (nesterov)
    """
    mu, tau = optimizer.momentum, optimizer.dampening
    if mu == 0:
        torch._foreach_add_(weights, grads, alpha=-learning_rate)
        return
    velocities = slots["momentum"]
    torch._foreach_mul_(velocities, mu)
    torch._foreach_add_(velocities, grads, alpha=-learning_rate * (1.0 - tau))
    if optimizer.nesterov:
        torch._foreach_add_(weights, velocities, alpha=mu)
        torch._foreach_add_(weights, grads, alpha=-learning_rate)
    else:
        torch._foreach_add_(weights, velocities)


class InPlaceStep:
    """The algorithm's update over lists of tensors with in-place `_foreach`
    ops, where the base holds one (`IN_PLACE_UPDATES`): SGD, whose whole
    update is one to three multiply-adds per element, so that a step's fixed
    cost (concatenating or calling a compiled graph, about 20 us) would
    otherwise exceed keras core's in-place step. Only float32 variables on
    the CPU, the default non-finite policy and an algorithm's plain form
    (see `applies`); elsewhere the other executors run. Decoupled weight
    decay is a `_foreach_mul_` by `1 − η·λ`, as `ZooOptimizer.new_values`.
    """

    failed = False

    def __init__(self, optimizer) -> None:
        self.optimizer = optimizer
        self.update = IN_PLACE_UPDATES[type(optimizer)][1]

    @staticmethod
    def applies(optimizer, trainable_variables, parameters: int) -> bool:
        entry = IN_PLACE_UPDATES.get(type(optimizer))
        return (
            entry is not None
            and entry[0](optimizer, parameters)
            and optimizer.nonfinite == "apply"
            and all(v.dtype == "float32" and v.value.device.type == "cpu" for v in trainable_variables)
        )

    def __call__(self, grads, trainable_variables, learning_rate) -> bool:
        """Apply the step; False (nothing applied) inside a stateless or
        autocast scope, under `torch.compile`, or for gradients that are not
        float32 (the per-variable loop casts them)."""
        if not _writes_own_tensors():
            return False
        grads = [_tensor(g) for g in grads]
        if any(g.dtype != torch.float32 for g in grads):
            return False
        optimizer = self.optimizer
        # A Python number: `alpha` takes no tensor. On the CPU only, where
        # reading it does not wait for a device.
        learning_rate = _own_tensor(learning_rate).to(torch.float32)
        weights = [variable._value for variable in trainable_variables]
        positions = telemetry.optimizer_indices(optimizer, trainable_variables)
        slots = {name: [slot_list[i]._value for i in positions] for name, slot_list in optimizer._slots.items()}
        with torch.no_grad():
            decaying = [w for w, v in zip(weights, trainable_variables) if optimizer._decays(v)]
            if decaying:
                weight_decay = torch.tensor(optimizer.weight_decay, dtype=torch.float32)
                torch._foreach_mul_(decaying, 1.0 - learning_rate * weight_decay)
            self.update(optimizer, grads, weights, slots, learning_rate.item())
        return True


class _Group:
    """Variables of one (dtype, weight-decay) group, with the weights and each
    slot held as views of one flat buffer (one per slot, one for the weights).

    A slot variable is given a `Parameter` view of its buffer outright. A
    weight keeps its `Parameter` (layers and `torch_params` hold that
    object, and autograd fills its `.grad`); only its `.data` is pointed into
    the buffer, as apex and DeepSpeed do for their flat parameters. Keras
    assigns with `copy_`, in place, so loading, resetting or any `assign`
    writes through to the buffers.
    """

    def __init__(self, optimizer, compute_dtype, decays, indices, trainable_variables) -> None:
        self.compute_dtype = compute_dtype
        self.decays = decays
        self.indices = indices
        variables = [trainable_variables[i] for i in indices]
        weights = [variable._value for variable in variables]
        self.weight_buffer = _flatten_dense_tensors([weight.detach() for weight in weights])
        for weight, part in zip(weights, _unflatten_dense_tensors(self.weight_buffer, weights)):
            weight.data = part
        self.weights = list(zip(variables, weights, [weight.data_ptr() for weight in weights]))
        self.slot_buffers = {}
        self.slot_views = []
        # `indices` are positions in `trainable_variables`; the slots go by the optimizer's.
        positions = telemetry.optimizer_indices(optimizer, variables)
        for name, slots in optimizer._slots.items():
            slot_variables = [slots[i] for i in positions]
            tensors = [slot._value.detach() for slot in slot_variables]
            buffer = _flatten_dense_tensors(tensors)
            for slot, part in zip(slot_variables, _unflatten_dense_tensors(buffer, tensors)):
                slot._value = torch.nn.Parameter(part, requires_grad=False)
                self.slot_views.append((slot, slot._value))
            self.slot_buffers[name] = buffer

    def is_current(self) -> bool:
        """False once anything has given a weight or a slot a new tensor (or
        a weight new `.data`): the buffers no longer back them."""
        return all(
            variable._value is weight and weight.data_ptr() == pointer
            for variable, weight, pointer in self.weights
        ) and all(slot._value is view for slot, view in self.slot_views)


class ConcatenatedStep:
    """One eager `new_values` per (dtype, weight decay) group of variables.

    The weights and slots of a group live in one flat buffer each (the
    variables hold views of them), so each step concatenates only the
    gradients, and writes each buffer with one `copy_`: no per-tensor
    concatenation or split of weights or slots.
    """

    failed = False

    def __init__(self, optimizer) -> None:
        self.optimizer = optimizer
        self._plan: tuple[tuple, list[_Group]] | None = None

    def _groups(self, trainable_variables) -> list[_Group]:
        """The groups for these variables, worked out once: a small model's
        step is short enough that regrouping every step would show."""
        key = tuple(id(variable) for variable in trainable_variables)
        if self._plan is not None and self._plan[0] == key and all(
            group.is_current() for group in self._plan[1]
        ):
            return self._plan[1]
        optimizer = self.optimizer
        indices_by_group: dict[tuple, list[int]] = {}
        for index, variable in enumerate(trainable_variables):
            group = (variable.value.dtype, optimizer._decays(variable))
            indices_by_group.setdefault(group, []).append(index)
        groups = [
            _Group(optimizer, _compute_dtype(dtype), decays, indices, trainable_variables)
            for (dtype, decays), indices in indices_by_group.items()
        ]
        self._plan = (key, groups)
        return groups

    def __call__(self, grads, trainable_variables, learning_rate) -> bool:
        """Apply the step; False (nothing applied) inside a stateless or
        autocast scope, where variables do not read their own tensors, and
        under `torch.compile`, which fuses the per-variable loop itself."""
        if not _writes_own_tensors():
            return False
        optimizer = self.optimizer
        # Outside any scope (checked above): the variables' own tensors.
        learning_rate, step, keep = _step_inputs(optimizer, learning_rate, _own_tensor)
        with torch.no_grad():
            for group in self._groups(trainable_variables):
                compute_dtype = group.compute_dtype
                new_theta, new_slots = optimizer.new_values(
                    _flat([_tensor(grads[i]) for i in group.indices], compute_dtype),
                    _cast(group.weight_buffer, compute_dtype),
                    {name: _cast(buffer, compute_dtype) for name, buffer in group.slot_buffers.items()},
                    _cast(learning_rate, compute_dtype),
                    _cast(step, compute_dtype),
                    group.decays,
                    keep,
                )
                for name, value in new_slots.items():
                    group.slot_buffers[name].copy_(value)
                group.weight_buffer.copy_(new_theta)
        return True


def _flat(tensors: list, dtype):
    # One C++ call (as DDP's bucketing uses), not a reshape per tensor and a cat.
    return _cast(_flatten_dense_tensors(tensors), dtype)


def _cast(tensor, dtype):
    # `.to` returns the tensor itself when the dtype matches, but its argument
    # parsing alone costs microseconds, a few times a step.
    return tensor if tensor.dtype == dtype else tensor.to(dtype)


def _tensor(value):
    """A torch tensor for a tensor, a Keras variable or a number."""
    return value if isinstance(value, torch.Tensor) else ops.convert_to_tensor(value)


def _own_tensor(value):
    """`_tensor`, reading a Keras variable's own tensor: what `variable.value`
    returns outside stateless and autocast scopes, without the scope checks
    that cost microseconds a call."""
    return value._value if isinstance(value, keras.Variable) else _tensor(value)


def _writes_own_tensors() -> bool:
    """Whether an eager executor may read and write the variables' own
    tensors in place: not inside a stateless or autocast scope (where a
    variable's value is not its own tensor), nor under `torch.compile`,
    which fuses the per-variable loop itself."""
    return not (in_stateless_scope() or get_autocast_scope() is not None
                or torch.compiler.is_compiling())


def _reader():
    """`_own_tensor`, or inside a stateless or autocast scope (where a
    variable's value is not its own tensor) `_tensor`."""
    return _tensor if in_stateless_scope() or get_autocast_scope() is not None else _own_tensor


def _sgd_in_place_applies(optimizer, parameters: int) -> bool:
    # The torch form starts its buffer from the first gradient (a branch on
    # the step); it keeps the other executors. Plain SGD is one pass over
    # memory either way; momentum takes three `_foreach` passes against the
    # compiled step's one, which wins once memory, not launches, bounds the
    # step (10M parameters: 3.5 against 4.8 ms).
    return optimizer.lr_inside_velocity and (
        optimizer.momentum == 0 or parameters < AUTO_COMPILE_MIN_PARAMETERS
    )


#: `{optimizer class: (applies(optimizer, parameters), update(optimizer, grads, weights,
#: {slot name: tensors}, learning_rate))}`, the update writing weights and slots in place.
IN_PLACE_UPDATES = {SGD: (_sgd_in_place_applies, _sgd_in_place)}
