"""The torch fast paths run the same math as the per-variable loop.

`fused=None` on a small model concatenates variables into one flat tensor per
(dtype, weight-decay) group; it must give bit-identical weights and slots to
`fused=False`. The compiled path (`fused=True`) is checked against the float64
references in `test_reference.py` (its "compiled" cases on torch) and in
`test_nonfinite.py`.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_optzoo as oz
from tests.harness import BACKEND, to_numpy
from tests.optimizer_table import Case, cases

pytestmark = pytest.mark.skipif(BACKEND != "torch", reason="torch-only executors")

# Mixed shapes, one bfloat16 variable and one excluded from weight decay, so
# that the concatenation forms several groups.
SHAPES = [(7, 5), (5,), (3, 2, 4), (6,)]
DTYPES = ["float32", "float32", "float32", "bfloat16"]


def run(case: Case, fused: bool | None, steps: int = 25):
    kwargs = {**case.kwargs, "fused": fused}
    kwargs.setdefault("weight_decay", 0.05)
    optimizer = oz.get(case.name, **kwargs)
    rng = np.random.default_rng(0)
    variables = [
        keras.Variable(rng.standard_normal(shape).astype("float32"), dtype=dtype, name=f"w{i}")
        for i, (shape, dtype) in enumerate(zip(SHAPES, DTYPES))
    ]
    optimizer.exclude_from_weight_decay(var_list=[variables[1]])
    for _ in range(steps):
        grads = [
            keras.ops.convert_to_tensor(
                (rng.standard_normal(v.shape) * 10 ** rng.uniform(-3, 2)).astype("float32"),
                dtype=v.dtype,
            )
            for v in variables
        ]
        optimizer.apply(grads, variables)
    state = [to_numpy(v).astype(np.float64) for v in variables]
    state += [to_numpy(v).astype(np.float64) for v in optimizer.variables]
    return state, optimizer


@pytest.mark.parametrize("case", cases())
def test_concatenated_step_is_bit_identical_to_per_variable_loop(case: Case):
    fast, optimizer = run(case, fused=None)
    assert type(optimizer._fused_step).__name__ == "ConcatenatedStep"
    plain, plain_optimizer = run(case, fused=False)
    assert plain_optimizer._fused_step is None
    for index, (a, b) in enumerate(zip(fast, plain)):
        np.testing.assert_array_equal(a, b, err_msg=f"{case.id}: state {index} differs")


def test_auto_compiles_large_models_only():
    from keras_optzoo.optimizers import torch_fast_path

    small = [keras.Variable(np.zeros((10, 10), "float32"))]
    mid = [keras.Variable(np.zeros((256, 200), "float32"))] * 2
    large = [keras.Variable(np.zeros((256, 256), "float32"))] * 2
    choose = torch_fast_path.choose_executor
    assert isinstance(choose(oz.get("adam"), small), torch_fast_path.ConcatenatedStep)
    assert choose(oz.get("adam"), mid) is None
    assert isinstance(choose(oz.get("adam"), large), torch_fast_path.CompiledStep)
    assert isinstance(choose(oz.get("adam", fused=True), small), torch_fast_path.CompiledStep)
    assert choose(oz.get("adam", fused=False), large) is None


def test_fused_must_be_a_bool_or_none():
    with pytest.raises(ValueError, match=r"fused must be one of \(None, True, False\), got 'yes'"):
        oz.get("adam", fused="yes")


def test_step_scalars_are_computed_once_not_per_element():
    """What depends only on 0-d tensors (step, constants) leaves the per-element
    graph: `1 - 0.9**t` must not be recomputed inside the loop over `x`."""
    import torch

    from keras_optzoo.optimizers import torch_fast_path

    compiled_graphs = []

    def capture(graph_module, example_inputs):
        compiled = torch_fast_path.hoist_step_scalars(graph_module, example_inputs)
        compiled_graphs.append(compiled)
        return compiled

    def debiased(x, step):
        return x / (1.0 - torch.pow(torch.tensor(0.9), step)) + x.abs().sum()

    x, step = torch.linspace(-1.0, 1.0, 1000), torch.tensor(3.0)
    result = torch.compile(debiased, backend=capture, fullgraph=True)(x, step)
    torch.testing.assert_close(result, debiased(x, step), rtol=1e-6, atol=0)

    (split,) = compiled_graphs

    def targets(module):
        return {getattr(node.target, "__name__", str(node.target)) for node in module.graph_module.graph.nodes}

    assert "pow" in targets(split.submod_0)
    assert "pow" not in targets(split.submod_1)
    # A reduction of a full tensor is 0-d but stays with the loops.
    assert "sum" in str(targets(split.submod_1))


def test_cheap_step_scalars_stay_in_one_compiled_function():
    """`lr * (1 - τ)` costs a multiply per vector inside the loop, less than a
    second compiled function costs per step: no split without a `pow` or the like."""
    import torch

    from keras_optzoo.optimizers import torch_fast_path

    compiled_graphs = []

    def capture(graph_module, example_inputs):
        compiled = torch_fast_path.hoist_step_scalars(graph_module, example_inputs)
        compiled_graphs.append(compiled)
        return compiled

    def momentum(x, velocity, lr):
        return x + (0.9 * velocity - lr * (1.0 - 0.1) * x)

    x, velocity, lr = torch.linspace(-1.0, 1.0, 1000), torch.ones(1000), torch.tensor(0.01)
    result = torch.compile(momentum, backend=capture, fullgraph=True)(x, velocity, lr)
    torch.testing.assert_close(result, momentum(x, velocity, lr), rtol=1e-6, atol=0)
    (compiled,) = compiled_graphs
    assert not hasattr(compiled, "submod_0")


def _adam_after_state_writes(fused: bool | None):
    """Adam for 4 steps, a write to every `m` slot and to a weight, 4 more
    steps; then a slot and a weight given new tensors outright, and a weight
    given new `.data`, each followed by 4 more steps."""
    import torch

    optimizer = oz.get("adam", learning_rate=0.05, fused=fused)
    rng = np.random.default_rng(1)
    variables = [keras.Variable(rng.standard_normal(shape).astype("float32")) for shape in SHAPES]

    def steps(count):
        for _ in range(count):
            optimizer.apply([keras.ops.convert_to_tensor(rng.standard_normal(v.shape).astype("float32"))
                             for v in variables], variables)

    steps(4)
    for slot in optimizer._slots["m"]:
        slot.assign(rng.standard_normal(slot.shape).astype("float32"))
    variables[0].assign(rng.standard_normal(SHAPES[0]).astype("float32"))
    steps(4)
    first_v = optimizer._slots["v"][0]
    first_v._value = torch.nn.Parameter(first_v._value.detach().clone() * 2.0, requires_grad=False)
    steps(4)
    variables[1]._value = torch.nn.Parameter(variables[1]._value.detach().clone() * 2.0)
    steps(4)
    variables[2]._value.data = variables[2]._value.detach().clone() * 2.0
    steps(4)
    return [to_numpy(v) for v in variables] + [to_numpy(v) for v in optimizer.variables]


def test_state_writes_reach_the_concatenated_step():
    """The concatenated step keeps a group's weights and slots as views of
    one flat buffer each. An `assign` (as loading a checkpoint does) must
    write through to it, and a weight or slot given a new tensor (or a weight
    new `.data`) must be taken up, not overwritten from a stale buffer: the
    result equals the per-variable loop's, bit for bit."""
    fast = _adam_after_state_writes(fused=None)
    plain = _adam_after_state_writes(fused=False)
    for index, (a, b) in enumerate(zip(fast, plain)):
        np.testing.assert_array_equal(a, b, err_msg=f"state {index} differs")


def test_weights_stay_the_parameters_layers_hold():
    """A layer's weights keep their `Parameter` objects (the ones its
    `torch_params` and autograd use) while the concatenated step backs them
    with a flat buffer, and `fit` trains through them."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    model.compile(optimizer=oz.get("rmsprop", learning_rate=0.05), loss="mse")
    parameters = [variable.value for variable in model.trainable_variables]
    x = np.random.default_rng(0).standard_normal((64, 4)).astype("float32")
    y = x[:, :2] * 0.5
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert type(model.optimizer._fused_step).__name__ == "ConcatenatedStep"
    assert all(v.value is p for v, p in zip(model.trainable_variables, parameters))
    assert {id(p) for p in model.parameters()} == {id(p) for p in parameters}
    (group,) = model.optimizer._fused_step._plan[1]
    assert all(p.untyped_storage().data_ptr() == group.weight_buffer.untyped_storage().data_ptr()
               for p in parameters)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def _momentum_with_changes(fused: bool | None, direct_calls: list | None = None):
    """Momentum SGD (weight decay on) for 5 steps; 5 with non-contiguous
    gradients; 5 after `momentum` changes; 5 after a slot gets a new tensor."""
    import torch

    optimizer = oz.get("momentum", learning_rate=0.05, weight_decay=0.1, fused=fused)
    rng = np.random.default_rng(2)
    shapes = [(6, 4), (4,), (5, 3)]
    variables = [keras.Variable(rng.standard_normal(shape).astype("float32")) for shape in shapes]

    def steps(count, transposed=False):
        for _ in range(count):
            grads = []
            for v in variables:
                if transposed and len(v.shape) == 2:
                    grads.append(torch.tensor(rng.standard_normal(v.shape[::-1]), dtype=torch.float32).T)
                else:
                    grads.append(torch.tensor(rng.standard_normal(v.shape), dtype=torch.float32))
            optimizer.apply(grads, variables)
            if direct_calls is not None:
                direct_calls.append(bool(optimizer._fused_step._direct_calls))

    steps(5)
    steps(5, transposed=True)
    optimizer.momentum = 0.5
    steps(5)
    slot = optimizer._slots["momentum"][0]
    slot._value = torch.nn.Parameter(slot._value.detach().clone() * 2.0, requires_grad=False)
    steps(5)
    return [to_numpy(v) for v in variables] + [to_numpy(v) for v in optimizer.variables], optimizer


def test_compiled_step_called_directly_follows_every_change():
    """After its first step the compiled step calls its graph past Dynamo
    (`_DirectCall`). A change Dynamo would guard on (gradient strides, a
    hyperparameter set by hand) must go back through Dynamo and recompile,
    not fail over to the eager loop, and a slot's new tensor must be read:
    the trajectory matches the per-variable loop's."""
    import torch

    direct_calls = []
    compiled, optimizer = _momentum_with_changes(fused=True, direct_calls=direct_calls)
    plain, _ = _momentum_with_changes(fused=False)
    for index, (a, b) in enumerate(zip(compiled, plain)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"state {index} differs")
    step = optimizer._fused_step
    assert not step.failed and all(direct_calls)

    dynamo_entries = []
    original = step._compiled
    step._compiled = lambda *args: dynamo_entries.append(1) or original(*args)
    grads = [torch.ones(v.shape) for v in optimizer._trainable_variables]
    optimizer.apply(grads, optimizer._trainable_variables)
    assert not dynamo_entries  # the layout and hyperparameters compiled last: direct
    optimizer.momentum = 0.7
    optimizer.apply(grads, optimizer._trainable_variables)
    assert dynamo_entries == [1]
    # Back to a step compiled before (as `fit` without monitors after one
    # with them): direct again, not Dynamo's entry every step.
    optimizer.momentum = 0.5
    optimizer.apply(grads, optimizer._trainable_variables)
    optimizer.momentum = 0.7
    optimizer.apply(grads, optimizer._trainable_variables)
    assert dynamo_entries == [1]


IN_PLACE_CASES = ["sgd", "momentum-dampening", "nesterov"]


@pytest.mark.parametrize("case", cases(IN_PLACE_CASES))
def test_sgd_in_place_matches_the_per_variable_loop(case: Case):
    """SGD's `_foreach` form (`InPlaceStep`) computes the pure update's
    values, weight decay and its exclusions included, up to multiply-adds
    rounding once: within a few float32 ulps after 25 steps."""
    from keras_optzoo.optimizers import torch_fast_path

    def run_float32(fused):
        kwargs = {**case.kwargs, "fused": fused, "weight_decay": 0.05}
        optimizer = oz.get(case.name, **kwargs)
        rng = np.random.default_rng(0)
        variables = [keras.Variable(rng.standard_normal(shape).astype("float32")) for shape in SHAPES]
        optimizer.exclude_from_weight_decay(var_list=[variables[1]])
        for _ in range(25):
            optimizer.apply([(rng.standard_normal(v.shape) * 10 ** rng.uniform(-3, 2)).astype("float32")
                             for v in variables], variables)
        return [to_numpy(v) for v in variables] + [to_numpy(v) for v in optimizer.variables], optimizer

    in_place, optimizer = run_float32(None)
    assert isinstance(optimizer._fused_step, torch_fast_path.InPlaceStep)
    plain, _ = run_float32(False)
    for index, (a, b) in enumerate(zip(in_place, plain)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{case.id}: state {index} differs")


def test_sgd_runs_in_place_only_where_its_form_holds():
    from keras_optzoo.optimizers import torch_fast_path

    float32 = [keras.Variable(np.zeros((10, 10), "float32"))]
    choose = torch_fast_path.choose_executor
    assert isinstance(choose(oz.get("momentum"), float32), torch_fast_path.InPlaceStep)
    large = [keras.Variable(np.zeros((256, 256), "float32"))] * 2
    assert isinstance(choose(oz.get("sgd"), large), torch_fast_path.InPlaceStep)
    # Momentum's three passes lose to the compiled step's one on a large model.
    assert isinstance(choose(oz.get("momentum"), large), torch_fast_path.CompiledStep)
    # The torch form's first step, the skip policy, 16-bit weights, `fused=True`.
    assert not isinstance(choose(oz.get("momentum", lr_inside_velocity=False), float32),
                          torch_fast_path.InPlaceStep)
    assert not isinstance(choose(oz.get("momentum", nonfinite="skip"), float32),
                          torch_fast_path.InPlaceStep)
    assert not isinstance(choose(oz.get("momentum"), [keras.Variable(np.zeros(10), dtype="bfloat16")]),
                          torch_fast_path.InPlaceStep)
    assert isinstance(choose(oz.get("momentum", fused=True), float32), torch_fast_path.CompiledStep)
    assert not isinstance(choose(oz.get("adam"), float32), torch_fast_path.InPlaceStep)


@pytest.mark.parametrize(
    "name, fused, executor",
    [("adam", None, "ConcatenatedStep"), ("adam", True, "CompiledStep"), ("momentum", None, "InPlaceStep")],
)
def test_a_step_on_some_variables_uses_their_own_slots(name, fused, executor):
    """Keras's `apply` drops the variables without a gradient (a head outside
    the loss), so a step may get a subset of the variables the optimizer was
    built with: each must be updated with its own slots. Two of the same
    shape, so slots taken by position would be silently wrong, not a crash."""
    kwargs = {"momentum": 0.9} if name == "momentum" else {}
    shapes = [(4, 3), (4, 3), (5,)]
    subsets = [[0, 1, 2], [1, 2], [2], [0, 1, 2], [1, 2]]

    def run_subsets(fused):
        optimizer = oz.get("sgd" if name == "momentum" else name, learning_rate=0.01, fused=fused, **kwargs)
        rng = np.random.default_rng(0)
        variables = [keras.Variable(rng.standard_normal(s).astype("float32"), name=f"w{i}") for i, s in enumerate(shapes)]
        optimizer.build(variables)
        for subset in subsets:
            grads = [rng.standard_normal(shapes[i]).astype("float32") for i in subset]
            optimizer.apply(grads, [variables[i] for i in subset])
        return [to_numpy(v) for v in variables] + [to_numpy(v) for v in optimizer.variables], optimizer

    fast, optimizer = run_subsets(fused)
    assert type(optimizer._fused_step).__name__ == executor
    assert not getattr(optimizer._fused_step, "failed", False), "a failed compile falls back to the loop"
    plain, _ = run_subsets(False)
    for index, (a, b) in enumerate(zip(fast, plain)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"state {index} differs")
