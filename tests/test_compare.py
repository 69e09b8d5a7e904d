"""`optzoo compare` end to end, through `keras_optzoo.cli.main`.

Every task runs a few steps and its report files are read back: the CSV's
columns and finite numbers, optimizer state bytes against the closed form
(SGD 0, momentum 4P, Adam 8P bytes for P float32 parameters), the TensorBoard
events against the recorded losses. The recorded per-step losses are checked
against a replica written here from scratch: the seed's initial weights, the
batch order built from the documented rule (a fresh permutation per pass) and
the loss of each batch at the weights before its step. Every bad input must
exit with status 2, naming the problem, before anything is trained or written.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_optzoo import cli
from keras_optzoo.callbacks.tensorboard import read_events
from keras_optzoo.compare import command, report, runner, tasks

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _compare(out: Path, *args: str) -> None:
    assert cli.main(["compare", "--quiet", "--out", str(out), *args]) == 0


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _history(out: Path, label: str, seed: int = 0) -> list[dict[str, str]]:
    return [
        row for row in _read_csv(out / report.HISTORY_CSV)
        if row["optimizer"] == label and int(row["seed"]) == seed
    ]


# The known state sizes: none for SGD, one float32 slot (velocity) for
# momentum, two (m, v) for Adam. All three on the cheapest task; Adam alone on
# the others, whose traced train steps are what the suite's time goes to.
STATE_BYTES_PER_PARAMETER = {"sgd": 0, "momentum": 4, "adam": 8}


@pytest.mark.parametrize("task_name", tasks.names())
def test_every_task_reports_one_finite_row_per_optimizer(tmp_path: Path, task_name: str) -> None:
    task = tasks.get(task_name)
    labels = ["sgd", "momentum", "adam"] if task_name == "digits-mlp" else ["adam"]
    _compare(tmp_path, "--task", task_name, "--optimizers", ",".join(labels), "--steps", "3")

    metric = task.metric_name
    rows = _read_csv(tmp_path / report.RESULTS_CSV)
    assert list(rows[0]) == report.csv_columns(metric)
    assert [row["optimizer"] for row in rows] == labels
    parameters = task.build_model().count_params()
    numeric = ["learning_rate", "train_loss", f"test_{metric}", "ms_per_step", "target_loss"]
    for row in rows:
        for column in numeric:
            assert math.isfinite(float(row[column])), (row["optimizer"], column, row[column])
        assert row["train_loss_std"] == row[f"test_{metric}_std"] == ""  # one seed
        assert int(row["steps"]) == 3 and int(row["seeds"]) == 1
        assert int(row["parameters"]) == parameters
    assert [int(row["state_bytes"]) for row in rows] == [
        STATE_BYTES_PER_PARAMETER[label] * parameters for label in labels
    ]

    markdown = (tmp_path / report.RESULTS_MD).read_text()
    assert all(f"| `{label}` |" in markdown for label in labels)
    assert (tmp_path / report.CURVES_PNG).read_bytes()[:8] == PNG_SIGNATURE

    for row in rows:
        label = row["optimizer"]
        history = _history(tmp_path, label)
        losses = [float(h["batch_loss"]) for h in history[1:]]
        assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
        scalars = read_events(tmp_path / "tensorboard" / runner.label_directory(label))["scalars"]
        # TensorBoard stores float32; the losses were float32 to begin with.
        assert scalars["train/batch_loss"] == list(zip([1, 2, 3], losses))
        assert scalars["train/loss"] == [(3, float(np.float32(row["train_loss"])))]
        assert scalars[f"test/{metric}"][-1] == (3, float(np.float32(row[f"test_{metric}"])))


def _replica_batch_losses(seed: int, batch_size: int, steps: int) -> np.ndarray:
    """Per-step batch losses of plain SGD (lr 0.1) on digits-mlp, built from scratch."""
    task = tasks.get("digits-mlp")
    data = task.load_data()
    keras.utils.set_random_seed(seed)
    model = task.build_model()
    n = len(data.x_train)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n) for _ in range(math.ceil(steps * batch_size / n))])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    losses = []
    for step in range(steps):
        rows = order[step * batch_size : (step + 1) * batch_size]
        logits = np.asarray(keras.ops.convert_to_numpy(model(data.x_train[rows])), np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        losses.append(-log_probabilities[np.arange(len(rows)), data.y_train[rows]].mean())
        model.train_on_batch(data.x_train[rows], data.y_train[rows])
    return np.asarray(losses)


def test_identical_starts_and_batches_and_per_batch_losses(tmp_path: Path) -> None:
    # Batches of 512 make 3 steps per epoch: 2 epochs are two fit() calls.
    labels = ["sgd", "sgd:momentum=0.0"]
    _compare(tmp_path, "--optimizers", ",".join(labels), "--epochs", "2",
             "--batch-size", "512", "--seeds", "0,1")

    rows = _read_csv(tmp_path / report.RESULTS_CSV)
    assert [row["optimizer"] for row in rows] == labels
    for row in rows:
        assert int(row["seeds"]) == 2 and int(row["steps"]) == 6
        assert math.isfinite(float(row["train_loss_std"]))
        assert json.loads(row["hyperparameters"])["learning_rate"] == 0.1

    for seed in (0, 1):
        a, b = (_history(tmp_path, label, seed) for label in labels)
        # Same optimizer under two labels: bit-identical records.
        for column in ("batch_loss", "test_loss", "test_accuracy"):
            assert [r[column] for r in a] == [r[column] for r in b]
        recorded = np.asarray([float(r["batch_loss"]) for r in a[1:]])
        # Each step's own batch loss, not Keras's running mean of the epoch.
        np.testing.assert_allclose(recorded, _replica_batch_losses(seed, 512, 6), rtol=2e-5)
        for label in labels:
            run_dir = tmp_path / "tensorboard" / runner.label_directory(label) / f"seed_{seed}"
            assert [v for _, v in read_events(run_dir)["scalars"]["train/batch_loss"]] == (
                recorded.tolist()
            )
    seed_0, seed_1 = (_history(tmp_path, "sgd", seed) for seed in (0, 1))
    assert seed_0[1]["batch_loss"] != seed_1[1]["batch_loss"]


def _expected_learning_rate(schedule: str, peak: float, step: int, total: int) -> float:
    if schedule == "constant":
        return peak
    if schedule == "cosine":
        return peak * (1 + math.cos(math.pi * min(step, total) / total)) / 2
    if schedule == "warmup-cosine":
        warmup = max(1, round(0.05 * total))
        if step < warmup:
            return peak * step / warmup
        decay = total - warmup
        return peak * (1 + math.cos(math.pi * min(step - warmup, decay) / decay)) / 2
    return peak * 0.1 ** sum(step >= m for m in (total // 2, 3 * total // 4))


@pytest.mark.parametrize("schedule", runner.SCHEDULES)
def test_schedules_match_their_closed_form(schedule: str) -> None:
    learning_rate = runner.learning_rate_schedule(schedule, 0.01, 40)
    for step in [0, 1, 2, 3, 19, 20, 21, 29, 30, 31, 39, 40]:
        value = learning_rate if schedule == "constant" else runner.scalar(learning_rate(step))
        expected = _expected_learning_rate(schedule, 0.01, step, 40)
        assert value == pytest.approx(expected, rel=1e-5, abs=1e-9), (step, value, expected)


def test_schedule_drives_the_optimizer_in_training(tmp_path: Path) -> None:
    label = "adam:learning_rate=0.01"
    _compare(tmp_path, "--optimizers", label, "--steps", "10", "--batch-size", "512",
             "--schedule", "warmup-cosine")
    # The value logged is the optimizer's own learning rate after each step.
    logged = [(int(r["step"]), float(r["learning_rate"])) for r in _history(tmp_path, label)
              if r["learning_rate"]]
    assert [step for step, _ in logged] == [0, 3, 6, 9, 10]
    for step, value in logged:
        expected = _expected_learning_rate("warmup-cosine", 0.01, step, 10)
        assert value == pytest.approx(expected, rel=1e-5, abs=1e-9), (step, value, expected)
    row = _read_csv(tmp_path / report.RESULTS_CSV)[0]
    assert (row["schedule"], float(row["learning_rate"])) == ("warmup-cosine", 0.01)


@pytest.fixture
def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(runner, "compare", fail)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--optimizers", "adam,adamx"], "unknown optimizer 'adamx'; registered names are: adabelief"),
        (["--task", "mnist"], "unknown task 'mnist'; tasks are: digits-mlp"),
        (["--optimizers", "adam:beta_1=1.5"], "beta_1 must be in [0, 1), got 1.5"),
        (["--optimizers", "sgd:learning_rate=-1"], "learning_rate must be in [0, inf), got -1"),
        (["--optimizers", "adam:bogus=1"], "bogus"),
        (["--optimizers", "adam:learning_rate"], "expected key=value"),
        (["--optimizers", "adam,adam"], "adam given more than once"),
        (["--seeds", "0,x"], "--seeds: must be comma-separated integers"),
        (["--steps", "0"], "--steps: must be an integer >= 1, got '0'"),
        (["--schedule", "linear"], "invalid choice: 'linear'"),
    ],
)
def test_bad_input_exits_2_before_training(
    tmp_path: Path, capsys, no_training, args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compare", "--out", str(out), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_out_exits_2_before_training(tmp_path: Path, capsys, no_training) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for out, message in [
        (blocker, "exists and is not a directory"),
        (blocker / "results", "is not a directory"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["compare", "--out", str(out)])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["a_file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any permission bits")
def test_read_only_out_exits_2(tmp_path: Path, capsys, no_training) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["compare", "--out", str(locked / "results")])
    finally:
        locked.chmod(0o700)
    assert exit_info.value.code == 2
    assert "is not writable" in capsys.readouterr().err


def test_backend_relaunch_forwards_every_option() -> None:
    argv = ["compare", "--optimizers", "adam:learning_rate=0.0003,sgd", "--task", "digits-cnn",
            "--epochs", "3", "--steps", "7", "--batch-size", "16", "--seeds", "1,2",
            "--schedule", "cosine", "--target-loss", "0.5", "--backend", "jax",
            "--out", "somewhere", "--quiet"]
    parser = cli.build_parser("compare")
    args = parser.parse_args(argv)
    assert all(value not in (None, False) for value in vars(args).values()), vars(args)
    assert parser.parse_args(command.forwarded_argv(args)) == args
