"""`optzoo memory`: optimizer-state bytes measured on built optimizers."""

from __future__ import annotations

import csv
import io

import keras
import numpy as np
import pytest

import keras_optzoo
from keras_optzoo import memory
from keras_optzoo.cli import main
from tests.harness import to_numpy

# The known table (fp32 bytes per parameter) and the slots behind it.
KNOWN_FP32 = {
    "sgd": (0, ()),
    "momentum": (4, ("momentum",)),
    "nesterov": (4, ("momentum",)),
    "adagrad": (4, ("accumulator",)),
    "rmsprop": (4, ("velocity",)),
    "adam": (8, ("m", "v")),
    "adamw": (8, ("m", "v")),
    "amsgrad": (12, ("m", "v", "v_max")),
}


@pytest.mark.parametrize("name", sorted(KNOWN_FP32))
def test_fp32_bytes_per_parameter_reproduce_the_known_table(name):
    expected, slots = KNOWN_FP32[name]
    assert memory.bytes_per_parameter(name) == expected
    state = memory.probe_state(keras_optzoo.get(name))
    assert state["slots"] == slots
    assert state["slot_dtypes"] == (("float32",) if slots else ())


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("name", ["momentum", "adam", "amsgrad"])
def test_16_bit_slots_follow_the_variable_dtype(name, dtype):
    # The update computes in float32, but slots are created in the variable's
    # dtype by add_optimizer_variables: 2 bytes per slot per parameter.
    state = memory.probe_state(keras_optzoo.get(name), dtype)
    assert state["slot_dtypes"] == (dtype,)
    assert state["bytes_per_parameter"] == 2 * len(state["slots"])
    assert state["bytes_per_parameter"] == KNOWN_FP32[name][0] / 2


def test_measured_bytes_equal_the_slot_arrays_read_back():
    variables = [keras.Variable(np.ones((7, 9), "float32"), name="kernel"),
                 keras.Variable(np.ones((9,), "float32"), name="bias")]
    optimizer = keras_optzoo.get("amsgrad")
    state = memory.state_bytes(optimizer, variables)
    arrays = [to_numpy(slot) for v in variables for slot in optimizer.slots_for(v).values()]
    assert len(arrays) == 3 * len(variables)
    assert state["per_parameter_bytes"] == sum(a.nbytes for a in arrays) == 12 * 72
    assert state["parameters"] == 72
    # Every optimizer variable is counted exactly once.
    assert state["total_bytes"] == sum(to_numpy(v).nbytes for v in optimizer.variables)
    assert 0 < state["fixed_bytes"] < state["per_parameter_bytes"]


def test_ema_and_gradient_accumulation_are_per_parameter_state():
    assert memory.bytes_per_parameter("adam", use_ema=True) == 12
    assert memory.bytes_per_parameter("sgd", gradient_accumulation_steps=4) == 4


@pytest.mark.parametrize(
    "name, expected",
    [("sgd", 0), ("momentum", 4), ("nesterov", 4), ("adagrad", 4), ("rmsprop", 4),
     ("adam", 8), ("amsgrad", 12), ("adamw", 8), ("lion", 4)],
)
def test_keras_core_measured_the_same_way(name, expected):
    core = memory.keras_core_optimizer(name)
    assert type(core).__module__.startswith("keras")
    assert memory.probe_state(core)["bytes_per_parameter"] == expected


def test_keras_core_equivalent_is_none_where_keras_has_none():
    assert memory.keras_core_optimizer("adabelief") is None


def test_table_for_7e9_parameters():
    rows = {row.optimizer: row for row in memory.memory_table(7e9, "float32", "sgd,adam,amsgrad")}
    adam = rows["adam"]
    assert adam.state_bytes == 56_000_000_000
    assert adam.weights_bytes == adam.gradients_bytes == 28_000_000_000
    assert adam.total_bytes == 112_000_000_000 + adam.fixed_bytes
    assert adam.fixed_bytes < 1024
    assert adam.keras_core_bytes_per_parameter == 8
    assert rows["sgd"].state_bytes == 0
    assert rows["amsgrad"].state_bytes == 84_000_000_000
    assert memory.human_bytes(adam.state_bytes) == "52.15 GiB"
    half = {row.optimizer: row for row in memory.memory_table(7e9, "bfloat16", "adam")}
    assert half["adam"].state_bytes == 28_000_000_000
    assert half["adam"].weights_bytes == 14_000_000_000


def test_saved_keras_model(tmp_path):
    model = keras.Sequential([
        keras.Input((10,)),
        keras.layers.Dense(32),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(3),
    ])
    path = tmp_path / "model.keras"
    model.save(path)
    trainable = 10 * 32 + 32 + 2 * 32 + 32 * 3 + 3
    total = trainable + 2 * 32  # BatchNormalization's moving mean and variance
    assert model.count_params() == total
    rows = {r.optimizer: r for r in memory.model_memory_table(path, "sgd,adam,amsgrad")}
    for name, per_parameter in (("sgd", 0), ("adam", 8), ("amsgrad", 12)):
        row = rows[name]
        assert row.parameters == trainable
        assert row.state_bytes == per_parameter * trainable
        assert row.bytes_per_parameter == per_parameter
        assert row.weights_bytes == 4 * total
        assert row.gradients_bytes == 4 * trainable
    assert rows["adam"].slots == ("m", "v")
    assert rows["adam"].keras_core_bytes_per_parameter == 8


@pytest.mark.parametrize(
    "text, expected",
    [("7e9", 7_000_000_000), ("7000000000", 7_000_000_000), ("7B", 7_000_000_000),
     ("350M", 350_000_000), ("1.5k", 1500), ("1_000", 1000), ("2T", 2_000_000_000_000)],
)
def test_parse_count(text, expected):
    assert memory.parse_count(text) == expected


@pytest.mark.parametrize("text", ["-1", "0", "abc", "", "1.5", "inf", "nan", "7X"])
def test_parse_count_rejects(text):
    with pytest.raises(ValueError, match="params must be a whole number >= 1"):
        memory.parse_count(text)


@pytest.mark.parametrize("params", [-1, 0, 2.5, float("nan"), "7e9", True])
def test_memory_table_rejects_bad_params(params):
    with pytest.raises(ValueError, match="params must be an integer >= 1"):
        memory.memory_table(params, "float32", "adam")


def test_memory_table_rejects_bad_dtype():
    with pytest.raises(ValueError, match="dtype must be one of"):
        memory.memory_table(100, "int8", "adam")


def test_cli_csv_output(capsys):
    assert main(["memory", "--params", "7e9", "--optimizers", "sgd,adam", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["optimizer"] for r in rows] == ["sgd", "adam"]
    assert rows[1]["state_bytes"] == "56000000000"
    assert rows[1]["bytes_per_parameter"] == "8"
    assert rows[1]["slots"] == "m v"
    assert rows[0]["state_bytes"] == "0"


def test_cli_text_and_markdown(capsys):
    assert main(["memory", "--params", "1B", "--dtype", "bfloat16", "--optimizers", "adam"]) == 0
    text = capsys.readouterr().out
    assert "1,000,000,000 parameters in bfloat16" in text
    assert "bfloat16" in text.splitlines()[2] and "3.73 GiB" in text
    assert main(["memory", "--params", "1B", "--optimizers", "adam", "--format", "md"]) == 0
    assert "| adam | m, v | float32 | 8 | 8 | 7.45 GiB | 14.90 GiB |" in capsys.readouterr().out


def test_cli_model(tmp_path, capsys):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    model.save(tmp_path / "small.keras")
    assert main(["memory", "--model", str(tmp_path / "small.keras"),
                 "--optimizers", "adam", "--format", "csv"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["parameters"] == "25"
    assert row["state_bytes"] == "200"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--params", "-1"], "params must be a whole number >= 1"),
        (["--params", "abc"], "params must be a whole number >= 1"),
        (["--optimizers", "adamx"], "unknown optimizer 'adamx'"),
        (["--optimizers", "adam:bogus=1"], "adam:bogus=1"),
        (["--optimizers", "adam:beta_1=2"], "beta_1 must be in"),
        (["--dtype", "int8"], "invalid choice"),
        (["--model", "missing.keras"], "missing.keras"),
        (["--model", "model.h5"], "must be a .keras file"),
        (["--params", "7e9", "--model", "x.keras"], "not allowed with"),
    ],
)
def test_cli_rejects_bad_input_with_exit_code_2(arguments, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["memory", *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
