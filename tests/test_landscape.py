"""`optzoo landscape`: test functions, trajectories, goal counting, the
textbook behaviours the pictures claim, the written files and the CLI."""

from __future__ import annotations

import csv
import functools

import keras
import numpy as np
import pytest
from PIL import Image

import keras_optzoo
from keras_optzoo.cli import main
from keras_optzoo.compare import landscape
from keras_optzoo.compare.functions import SURFACES, get_surface
from keras_optzoo.compare.specs import (
    OptimizerSpec,
    parse_optimizer_spec,
    parse_optimizer_specs,
)
from tests.harness import to_numpy

MINIMUM_SURFACES = [name for name, s in SURFACES.items() if s.goal == "minimum"]


@functools.cache
def default_run(surface: str, spec: str, steps: int) -> landscape.LandscapeRun:
    """A run at the surface's own learning rate (the table under test)."""
    return landscape.run_one(parse_optimizer_spec(spec), get_surface(surface), steps)


def sign_changes(values: np.ndarray) -> int:
    return int(np.sum(np.sign(values[1:]) != np.sign(values[:-1])))


# -- the functions --------------------------------------------------------------


@pytest.mark.parametrize(
    "name, point", [("rosenbrock", (1.0, 1.0)), ("beale", (3.0, 0.5)),
                    ("ravine", (0.0, 0.0)), ("rastrigin", (0.0, 0.0))],
)
def test_known_minimum_has_value_zero_and_zero_gradient(name, point):
    surface = get_surface(name)
    assert surface.minima == (point,)
    assert surface.minimum_value == 0.0
    assert surface.value(*point, np) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(surface.gradient(*point, np), (0.0, 0.0), atol=1e-12)


@pytest.mark.parametrize("name", MINIMUM_SURFACES)
def test_no_grid_point_lies_below_the_minimum(name):
    surface = get_surface(name)
    (x0, x1), (y0, y1) = surface.bounds
    x, y = np.meshgrid(np.linspace(x0, x1, 301), np.linspace(y0, y1, 301))
    assert np.min(surface.value(x, y, np)) >= surface.minimum_value - 1e-12


def test_saddle_point_is_stationary_and_not_a_minimum():
    surface = get_surface("saddle")
    np.testing.assert_allclose(surface.gradient(0.0, 0.0, np), (0.0, 0.0))
    assert surface.value(0.0, 0.1, np) < surface.value(0.0, 0.0, np) < surface.value(0.1, 0.0, np)


@pytest.mark.parametrize("name", sorted(SURFACES))
def test_analytic_gradient_matches_central_differences(name):
    surface = get_surface(name)
    (x0, x1), (y0, y1) = surface.bounds
    rng = np.random.default_rng(0)
    x, y = rng.uniform(x0, x1, 50), rng.uniform(y0, y1, 50)
    h = 1e-6
    numeric_x = (surface.value(x + h, y, np) - surface.value(x - h, y, np)) / (2 * h)
    numeric_y = (surface.value(x, y + h, np) - surface.value(x, y - h, np)) / (2 * h)
    gx, gy = surface.gradient(x, y, np)
    scale = 1.0 + np.abs(gx) + np.abs(gy)
    np.testing.assert_array_less(np.abs(gx - numeric_x) / scale, 1e-5)
    np.testing.assert_array_less(np.abs(gy - numeric_y) / scale, 1e-5)


@pytest.mark.parametrize("name", sorted(SURFACES))
def test_keras_ops_gradient_matches_numpy(name):
    surface = get_surface(name)
    points = np.asarray([surface.start, (0.3, -0.7), (1.7, 0.2)], dtype="float32")
    for point in points:
        expected = np.asarray(surface.gradient(*point.astype(np.float64), np))
        actual = to_numpy(landscape._gradient(surface, keras.ops.convert_to_tensor(point)))
        np.testing.assert_allclose(actual, expected, rtol=2e-5, atol=1e-4)


def test_unknown_function_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown function 'himmelblau'.*rosenbrock"):
        get_surface("himmelblau")


# -- trajectories and goals -----------------------------------------------------


def test_sgd_path_on_ravine_is_the_closed_form():
    # On a diagonal quadratic SGD multiplies each coordinate by (1 - lr*h)
    # every step: checks the compiled loop records every step, in order.
    surface = get_surface("ravine")
    lr, steps = 0.05, 40
    path = landscape.trajectory(keras_optzoo.get("sgd", learning_rate=lr), surface, steps)
    t = np.arange(steps + 1)[:, None]
    curvature = np.asarray([0.1, 10.0])
    expected = np.asarray(surface.start) * (1.0 - lr * curvature) ** t
    assert path.shape == (steps + 1, 2)
    np.testing.assert_allclose(path, expected, rtol=1e-5, atol=1e-7)


def test_steps_to_goal_requires_staying_within_tolerance():
    surface = get_surface("ravine")
    passing_through = np.asarray([[1.0, 0.0], [0.001, 0.0], [0.5, 0.0]])
    assert landscape.steps_to_goal(passing_through, surface) is None
    staying = np.asarray([[1.0, 0.0], [0.001, 0.0], [0.5, 0.0], [0.005, 0.005], [0.0, 0.0]])
    assert landscape.steps_to_goal(staying, surface) == 3
    assert landscape.steps_to_goal(staying, surface, tolerance=1.5) == 0
    assert landscape.steps_to_goal(np.asarray([[1.0, 0.0], [np.nan, 0.0]]), surface) is None


def test_steps_to_goal_on_saddle_is_the_first_escape():
    surface = get_surface("saddle")
    path = np.asarray([[1.0, 0.001], [0.5, 0.5], [0.1, 1.2], [0.0, 0.9]])
    assert landscape.steps_to_goal(path, surface) == 2


def test_adam_reaches_the_rosenbrock_minimum():
    run = landscape.run_one(
        parse_optimizer_spec("adam:learning_rate=0.05:beta_2=0.9"), get_surface("rosenbrock"), 400
    )
    assert run.status == "reached"
    assert run.steps is not None and run.steps < 400
    assert np.hypot(run.path[-1, 0] - 1.0, run.path[-1, 1] - 1.0) <= 1e-2
    assert np.all(np.hypot(run.path[run.steps:, 0] - 1, run.path[run.steps:, 1] - 1) <= 1e-2)
    assert run.final_value < 1e-2


def test_divergence_is_reported_and_the_path_cut_before_it():
    run = landscape.run_one(OptimizerSpec("sgd", {"learning_rate": 0.1}),
                            get_surface("rosenbrock"), 100)
    assert run.status == "diverged"
    assert run.steps is None
    assert np.all(np.isfinite(run.path))
    assert len(run.path) < 101


# -- the textbook behaviours ----------------------------------------------------


def test_sgd_zigzags_across_the_ravine_and_adagrad_does_not():
    sgd = default_run("ravine", "sgd", 300).path
    adagrad = default_run("ravine", "adagrad", 300).path
    # Count crossings of the valley axis (y = 0) while still visibly off it.
    sgd_y = sgd[np.abs(sgd[:, 1]) > 1e-3, 1]
    adagrad_y = adagrad[np.abs(adagrad[:, 1]) > 1e-3, 1]
    assert sign_changes(sgd_y) >= 30
    assert sign_changes(adagrad_y) <= 2


def test_momentum_overshoots_along_the_ravine_more_than_nesterov():
    start_x = get_surface("ravine").start[0]
    momentum = default_run("ravine", "momentum", 300).path
    nesterov = default_run("ravine", "nesterov", 300).path
    sgd = default_run("ravine", "sgd", 300).path
    # Starting at x < 0, overshoot is how far past x = 0 the path goes.
    assert start_x < 0
    assert np.max(sgd[:, 0]) <= 0.0
    assert np.max(momentum[:, 0]) > np.max(nesterov[:, 0]) > 0.0
    assert np.max(momentum[:, 0]) > 1.3 * np.max(nesterov[:, 0])
    # Nesterov also damps the oscillation across the valley.
    assert np.max(np.abs(momentum[20:, 1])) > 10 * np.max(np.abs(nesterov[20:, 1]))


def test_adagrad_effective_learning_rate_only_decreases():
    # Per-coordinate rate |Δx| / |∂f/∂x| along x on the saddle, where the
    # gradient 2x is exact in float32. Adagrad's sum of squares only grows;
    # RMSprop's moving average forgets, so its rate recovers as x settles.
    surface = get_surface("saddle")

    def rate(name):
        path = default_run("saddle", name, 400).path
        gradient_x = np.asarray(surface.gradient(path[:-1, 0], path[:-1, 1], np))[0]
        return np.abs(np.diff(path[:, 0])) / np.abs(gradient_x)

    adagrad, rmsprop, sgd = rate("adagrad"), rate("rmsprop"), rate("sgd")
    assert len(adagrad) == 400
    assert np.all(np.diff(adagrad) < 1e-5 * adagrad[:-1])
    assert adagrad[-1] < adagrad[0] / 10
    assert rmsprop[-1] > 1.5 * np.min(rmsprop)
    np.testing.assert_allclose(sgd, surface.learning_rate("sgd"), rtol=1e-5)


def test_adaptive_methods_leave_the_saddle_first():
    escaped = {name: default_run("saddle", name, 400).steps for name in
               ("sgd", "adam", "rmsprop", "adagrad")}
    assert escaped["sgd"] is not None
    assert escaped["adam"] < escaped["sgd"] / 3
    assert escaped["rmsprop"] < escaped["sgd"] / 3
    # Adagrad's shrinking steps: still at the saddle when SGD has left.
    assert escaped["adagrad"] is None
    assert default_run("saddle", "adam", 400).status == "escaped"


# -- outputs and the command line -----------------------------------------------


def test_files_agree_with_the_runs(tmp_path):
    specs = parse_optimizer_specs("sgd,adam:learning_rate=0.05")
    surfaces = [get_surface("ravine"), get_surface("saddle")]
    runs = landscape.run_landscape(specs, surfaces, steps=400, out=tmp_path)
    with open(tmp_path / "landscape.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["function"], r["optimizer"]) for r in rows] == [
        ("ravine", "sgd"), ("ravine", "adam:learning_rate=0.05"),
        ("saddle", "sgd"), ("saddle", "adam:learning_rate=0.05"),
    ]
    for row, run in zip(rows, runs):
        assert row["status"] == run.status
        assert row["steps"] == ("" if run.steps is None else str(run.steps))
        assert float(row["final_x"]) == pytest.approx(run.path[-1, 0], rel=1e-5, abs=1e-12)
        assert float(row["final_value"]) == pytest.approx(run.final_value, rel=1e-5, abs=1e-12)
    assert rows[0]["hyperparameters"] == "learning_rate=0.19"
    assert rows[2]["status"] == "escaped" and int(rows[2]["steps"]) > int(rows[3]["steps"])
    markdown = (tmp_path / "landscape.md").read_text()
    assert f"escaped in {runs[2].steps} steps" in markdown
    for surface in surfaces:
        png = tmp_path / f"landscape_{surface.name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size < 150_000
        with Image.open(png) as image:
            image.verify()
            assert image.size == (640, 500)


def test_cli_writes_the_outputs(tmp_path, capsys):
    code = main(["landscape", "--functions", "beale", "--optimizers", "sgd,momentum",
                 "--steps", "30", "--out", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "landscape_beale.png").exists()
    assert "| beale | momentum |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--optimizers", "adamx"], "unknown optimizer 'adamx'"),
        (["--optimizers", "adam:beta_1=2"], "beta_1 must be in"),
        (["--optimizers", "adam:bogus=1"], "adam:bogus=1"),
        (["--functions", "himmelblau"], "unknown function 'himmelblau'"),
        (["--steps", "0"], "--steps: must be an integer >= 1"),
        (["--steps", "abc"], "--steps: must be an integer >= 1"),
        (["--tolerance", "-1"], "--tolerance: must be a finite number > 0"),
    ],
)
def test_cli_rejects_bad_input_with_exit_code_2(arguments, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["landscape", "--out", str(tmp_path), "--steps", "5", *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# -- optimizer specs ------------------------------------------------------------


def test_specs_parse_names_and_typed_values():
    specs = parse_optimizer_specs(" sgd, Momentum:learning_rate=0.02:nesterov=True,"
                                  "adam:nonfinite=skip:epsilon=1e-6 ")
    assert [s.name for s in specs] == ["sgd", "momentum", "adam"]
    assert specs[1].hyperparameters == {"learning_rate": 0.02, "nesterov": True}
    assert specs[2].hyperparameters == {"nonfinite": "skip", "epsilon": 1e-6}
    assert specs[1].label == "momentum:learning_rate=0.02:nesterov=True"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "at least one optimizer"),
        ("adamx", "unknown optimizer 'adamx'"),
        ("adam:learning_rate", "expected key=value"),
        ("adam:=3", "expected key=value"),
        ("adam:beta_1=0.8:beta_1=0.9", "sets 'beta_1' twice"),
        ("sgd,sgd", "given more than once"),
        (":learning_rate=1", "no optimizer name"),
    ],
)
def test_bad_specs_are_rejected(text, message):
    with pytest.raises(ValueError, match=message):
        parse_optimizer_specs(text)
