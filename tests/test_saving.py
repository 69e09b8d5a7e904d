"""Nothing lost: saving, loading, configs and the registry's `get`.

A compiled model saved mid-training and loaded without `custom_objects` must
restore every optimizer variable bit for bit, and then continue exactly the
trajectory of the model that never stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_optzoo as oz
from tests.helpers_training import (
    NAMES,
    assert_arrays_identical,
    make_model,
    make_optimizer,
    optimizer_state,
    regression_data,
    to_numpy,
    values,
)

# Not any optimizer's default, so a config that drops it is caught.
WEIGHT_DECAY = 0.02
BATCH = 16


def _fit(model: keras.Model, x: np.ndarray, y: np.ndarray) -> None:
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)


def _save_and_load(model: keras.Model, tmp_path: Path) -> keras.Model:
    path = tmp_path / "m.keras"
    model.save(path)
    # No custom_objects: registration under "keras_optzoo" must be enough.
    return keras.saving.load_model(path)


def _state_paths(optimizer: keras.optimizers.Optimizer) -> set[str]:
    return {variable.path.split("/")[-1] for variable in optimizer.variables}


@pytest.mark.parametrize("name", NAMES)
def test_saved_model_restores_optimizer_state_and_resumes_bit_exact(
    name: str, tmp_path: Path
) -> None:
    x, y = regression_data(num_samples=128)
    first, second = (x[:64], y[:64]), (x[64:], y[64:])
    model = make_model()
    optimizer = make_optimizer(name, weight_decay=WEIGHT_DECAY)
    model.compile(optimizer=optimizer, loss="mse")
    _fit(model, *first)
    assert int(to_numpy(optimizer.iterations)) == 4

    loaded = _save_and_load(model, tmp_path)
    restored = loaded.optimizer
    assert type(restored) is type(optimizer)
    assert restored.get_config() == optimizer.get_config()
    assert restored.get_config()["weight_decay"] == WEIGHT_DECAY
    assert_arrays_identical(
        values(loaded.weights), values(model.weights), "model weights"
    )
    assert_arrays_identical(
        optimizer_state(restored), optimizer_state(optimizer), "optimizer state"
    )
    assert {"iteration", "skipped_steps"} <= _state_paths(restored)
    if name == "nadam":
        # The scalar momentum product is state too, and it has moved off 1.
        assert "mu_product" in _state_paths(restored)
        assert to_numpy(restored.mu_product) != 1.0

    saved_weights = values(model.weights)
    _fit(model, *second)
    _fit(loaded, *second)
    assert int(to_numpy(restored.iterations)) == 8
    assert_arrays_identical(
        values(loaded.weights), values(model.weights), "weights after resuming"
    )
    assert_arrays_identical(
        optimizer_state(restored),
        optimizer_state(optimizer),
        "optimizer state after resuming",
    )
    # The comparison can fail: the resumed steps moved the weights.
    assert not np.array_equal(values(model.weights)[0], saved_weights[0])


def test_saved_model_keeps_the_skip_policy_and_its_count(tmp_path: Path) -> None:
    x, y = regression_data(num_samples=64)
    y = y.copy()
    y[20] = np.nan  # the second of four batches is skipped
    model = make_model()
    model.compile(optimizer=make_optimizer("adam", nonfinite="skip"), loss="mse")
    _fit(model, x, y)
    loaded = _save_and_load(model, tmp_path)
    assert loaded.optimizer.nonfinite == "skip"
    assert int(to_numpy(loaded.optimizer.skipped_steps)) == 1
    assert int(to_numpy(loaded.optimizer.iterations)) == 3
    assert_arrays_identical(
        optimizer_state(loaded.optimizer),
        optimizer_state(model.optimizer),
        "optimizer state",
    )


def test_saved_model_with_a_schedule_resumes_on_the_schedule(tmp_path: Path) -> None:
    x, y = regression_data(num_samples=128)
    schedule = keras.optimizers.schedules.ExponentialDecay(
        0.02, decay_steps=2, decay_rate=0.5
    )
    model = make_model()
    model.compile(optimizer=make_optimizer("adam", learning_rate=schedule), loss="mse")
    _fit(model, x[:64], y[:64])
    loaded = _save_and_load(model, tmp_path)
    restored_schedule = loaded.optimizer.get_config()["learning_rate"]
    assert restored_schedule == model.optimizer.get_config()["learning_rate"]
    _fit(model, x[64:], y[64:])
    _fit(loaded, x[64:], y[64:])
    assert_arrays_identical(
        values(loaded.weights), values(model.weights), "weights after resuming"
    )


def _config_kwargs(name: str) -> dict:
    """Non-default Keras and policy arguments that every optimizer accepts."""
    return {
        "weight_decay": WEIGHT_DECAY,
        "global_clipnorm": 2.5,
        "use_ema": True,
        "ema_momentum": 0.95,
        "ema_overwrite_frequency": 7,
        "loss_scale_factor": 8.0,
        "gradient_accumulation_steps": 3,
        "nonfinite": "skip",
        "name": f"my_{name}",
    }


@pytest.mark.parametrize("name", NAMES)
def test_get_config_from_config_round_trip(name: str) -> None:
    optimizer = make_optimizer(name, **_config_kwargs(name))
    config = optimizer.get_config()
    json.dumps(config)  # a config must be plain data
    for key, value in _config_kwargs(name).items():
        assert config[key] == value, key
    _, preset = oz.optimizers.entry(name)
    for key, value in preset.items():
        assert config[key] == value, f"registry preset {key} lost"
    clone = type(optimizer).from_config(config)
    assert type(clone) is type(optimizer)
    assert clone.get_config() == config


@pytest.mark.parametrize("name", NAMES)
def test_keras_serialize_deserialize_round_trip(name: str) -> None:
    optimizer = make_optimizer(name, **_config_kwargs(name))
    serialized = keras.optimizers.serialize(optimizer)
    json.dumps(serialized)
    assert serialized["registered_name"] == f"keras_optzoo>{type(optimizer).__name__}"
    clone = keras.optimizers.deserialize(serialized)
    assert type(clone) is type(optimizer)
    assert clone.get_config() == optimizer.get_config()
    # Our `get` takes the same dict.
    assert oz.get(serialized).get_config() == optimizer.get_config()


def test_serialize_round_trips_a_schedule() -> None:
    schedule = keras.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=5, decay_rate=0.3
    )
    optimizer = oz.get("adabelief", learning_rate=schedule)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(clone.get_config()["learning_rate"], dict)
    assert clone.get_config() == optimizer.get_config()
    for step in (0, 5, 17):
        assert float(clone._learning_rate(step)) == float(schedule(step))


# -- keras_optzoo.get -----------------------------------------------------------


def test_get_by_name_applies_presets_and_overrides() -> None:
    nesterov = oz.get("nesterov")
    assert isinstance(nesterov, oz.optimizers.SGD)
    assert (nesterov.momentum, nesterov.nesterov) == (0.9, True)
    momentum = oz.get("momentum", momentum=0.5, learning_rate=0.3)
    assert momentum.momentum == 0.5
    np.testing.assert_allclose(float(to_numpy(momentum.learning_rate)), 0.3)
    assert isinstance(oz.get("ADAM"), oz.optimizers.Adam)
    assert oz.optimizers.get is oz.get


@pytest.mark.parametrize("name", NAMES)
def test_get_accepts_every_registered_name(name: str) -> None:
    cls, preset = oz.optimizers.entry(name)
    optimizer = oz.get(name)
    assert type(optimizer) is cls
    for key, value in preset.items():
        assert getattr(optimizer, key) == value


def test_get_by_config_dict() -> None:
    config = keras.optimizers.serialize(oz.get("yogi", learning_rate=0.3, beta_1=0.7))
    optimizer = oz.get(config)
    assert isinstance(optimizer, oz.optimizers.Yogi)
    assert optimizer.beta_1 == 0.7
    overridden = oz.get(config, beta_1=0.5)
    assert overridden.beta_1 == 0.5
    np.testing.assert_allclose(float(to_numpy(overridden.learning_rate)), 0.3)
    with pytest.raises(ValueError, match="class_name"):
        oz.get({"learning_rate": 0.1})


def test_get_by_class_and_instance() -> None:
    optimizer = oz.get(oz.optimizers.Lion, learning_rate=0.003)
    assert isinstance(optimizer, oz.optimizers.Lion)
    np.testing.assert_allclose(float(to_numpy(optimizer.learning_rate)), 0.003)
    assert oz.get(optimizer) is optimizer
    # Wrappers take any Keras optimizer, keras core's included.
    core = keras.optimizers.Adam()
    assert oz.get(core) is core
    assert isinstance(oz.get(keras.optimizers.SGD), keras.optimizers.SGD)
    with pytest.raises(ValueError, match="instance"):
        oz.get(optimizer, learning_rate=0.1)


def test_get_unknown_name_lists_the_registered_names() -> None:
    with pytest.raises(ValueError) as error:
        oz.get("adamx")
    message = str(error.value)
    assert "'adamx'" in message
    for name in NAMES:
        assert name in message
    with pytest.raises(ValueError, match="identifier"):
        oz.get(3.0)
