"""`optzoo bench`: the files it writes, the numbers in them, its guard and its CLI.

One `--quick` run per backend (module fixture) feeds most tests; no test asserts
on a timing, only on how timings are turned into ratios, throughputs, tables
and target verdicts.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from keras_optzoo import cli
from keras_optzoo.bench import algorithms, command, contenders, report, suite
from keras_optzoo.bench.roofline import InPlaceIncrement
from keras_optzoo.optimizers import names as registered_names
from tests.harness import BACKEND

# The optimizers of the quick run, chosen to cover every kind of row per
# backend: a peer convention that differs from keras core's (adam), one that
# is the same (lion on JAX), a torch.optim class without a fused version
# (rmsprop) and an algorithm torch.optim lacks (lion on torch).
QUICK_OPTIMIZERS = {"jax": "adam,lion", "torch": "adam,rmsprop,lion", "tensorflow": "adam"}
EXPECTED_CONTENDERS = {
    "jax": {
        "adam": {"ours", "keras_core", "ours_optax", "optax"},
        "lion": {"ours", "keras_core", "optax"},
    },
    "torch": {
        "adam": {"ours", "keras_core", "ours_torch", "torch_foreach", "torch_fused"},
        "rmsprop": {"ours", "keras_core", "ours_torch", "torch_foreach", "torch_fused"},
        "lion": {"ours", "keras_core"},
    },
    "tensorflow": {"adam": {"ours", "keras_core", "ours_graph", "keras_core_graph"}},
}
NOT_AVAILABLE = {("torch", "rmsprop", "torch_fused")}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = cli.main(["bench", "--quick", "--fit", "--optimizers", QUICK_OPTIMIZERS[BACKEND],
                     "--out", str(out)])
    assert code == 0
    (record,) = out.glob(f"bench_{BACKEND}_*.json")
    (markdown,) = out.glob(f"bench_{BACKEND}_*.md")
    return json.loads(record.read_text()), markdown.read_text(), out


def _markdown_table(markdown: str, first_header: str) -> list[dict[str, str]]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))))
    return rows


def test_quick_run_writes_a_row_per_optimizer_with_every_contender(quick_run):
    results, markdown, _ = quick_run
    assert results["backend"] == BACKEND
    expected = EXPECTED_CONTENDERS[BACKEND]
    assert [row["algorithm"] for row in results["rows"]] == list(expected)
    for row in results["rows"]:
        assert set(row["contenders"]) == expected[row["algorithm"]]
        for key, entry in row["contenders"].items():
            if (BACKEND, row["algorithm"], key) in NOT_AVAILABLE:
                assert entry["status"].startswith("n/a") and entry["ms"] is None
            else:
                assert entry["status"] == "ok" and entry["ms"] > 0
    table = _markdown_table(markdown, "optimizer")
    assert [r["optimizer"] for r in table] == list(expected)
    assert "## Targets" in markdown and "## Correctness guard" in markdown


def test_ratios_and_throughput_follow_from_the_times_in_the_same_row(quick_run):
    results, markdown, _ = quick_run
    table = {r["optimizer"]: r for r in _markdown_table(markdown, "optimizer")}
    checked = 0
    for row in results["rows"]:
        timed = row["contenders"]
        for name, (numerator, denominator) in suite.RATIOS.items():
            if denominator not in timed or timed[denominator]["ms"] is None:
                assert name not in row["ratios"]
                continue
            numerator = numerator or timed[denominator]["reference"]
            expected = timed[numerator]["ms"] / timed[denominator]["ms"]
            assert row["ratios"][name] == pytest.approx(expected, rel=1e-12)
            # The markdown shows the same ratio, and its ms columns are the right ones.
            cells = table[row["algorithm"]]
            shown = float(cells[name])
            assert shown == pytest.approx(expected, abs=0.006)
            labels = {key: f"{timed[key]['label']} ms" for key in (numerator, denominator)}
            from_cells = float(cells[labels[numerator]]) / float(cells[labels[denominator]])
            assert shown == pytest.approx(from_cells, rel=0.012, abs=0.006)
            checked += 1
        ours_ms = timed["ours"]["ms"]
        gbps = row["bytes_per_step"] / (ours_ms * 1e-3) / 1e9
        assert row["ours"]["gbps"] == pytest.approx(gbps)
        assert row["ours"]["roofline_fraction"] == pytest.approx(gbps / row["roofline_gbps"])
        assert row["roofline_gbps"] == max(row["roofline_samples_gbps"])
        peers = [k for k, v in timed.items() if not k.startswith("ours")
                 and not k.endswith("_graph") and v["ms"] is not None]
        assert row["best_peer"]["key"] == min(peers, key=lambda k: timed[k]["ms"])
    assert checked >= len(results["rows"])


def test_bytes_per_step_is_the_documented_table(quick_run):
    results, _, _ = quick_run
    for row in results["rows"]:
        documented = algorithms.BYTES_PER_PARAMETER[row["algorithm"]]
        assert row["bytes_per_parameter"] == documented
        assert row["bytes_per_step"] == documented * row["parameters"]
    # The module docstring's table and the dict agree.
    rows = re.findall(r"^\| (\w+)\s+\|.*\| (\d+)\s*\|$", algorithms.__doc__, re.MULTILINE)
    assert {name: int(b) for name, b in rows} == algorithms.BYTES_PER_PARAMETER


@pytest.mark.parametrize("name", sorted(set(algorithms.BYTES_PER_PARAMETER) | set(registered_names())))
def test_bytes_per_parameter_counts_parameter_gradient_and_slots(name):
    # Read θ, g and every slot once; write θ and every slot once; 4 bytes each.
    assert algorithms.bytes_per_parameter(name) == 4 * (3 + 2 * algorithms.slot_count(name))


def test_correctness_guard_passes_for_every_exact_pairing(quick_run):
    results, _, _ = quick_run
    for name, checks in results["checks"].items():
        row = next(r for r in results["rows"] if r["algorithm"] == name)
        references = {k for k, v in row["contenders"].items() if v["reference"]}
        assert set(checks) == references
        for key, result in checks.items():
            if (BACKEND, name, key) in NOT_AVAILABLE:
                assert result["ok"] is None and result["failed"].startswith("n/a")
            else:
                assert result["ok"], (name, key, result)
                assert result["error"] <= contenders.CHECK_TOLERANCE
    # After timing, at the timed size, every contender stood at the same step.
    for row in results["rows"]:
        for key, entry in row["contenders"].items():
            if entry["reference"] is None or entry["status"] != "ok":
                assert "after_timing" not in entry
                continue
            assert entry["steps_total"] == row["contenders"]["ours"]["steps_total"] == 3
            assert entry["after_timing"]["ok"], (row["algorithm"], key, entry["after_timing"])


def test_correctness_guard_flags_a_peer_one_percent_off():
    import keras

    from keras_optzoo.optimizers import get

    def adam(learning_rate):
        return lambda params: contenders.KerasRunner(
            keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8), params)

    race = [
        contenders.Contender("ours", "ours", "", lambda params: contenders.KerasRunner(
            get("adam", learning_rate=1e-3, epsilon=1e-8, epsilon_hat=True), params)),
        contenders.Contender("same", "same", "", adam(1e-3), reference="ours"),
        contenders.Contender("off", "off", "", adam(1.01e-3), reference="ours"),
    ]
    checks = contenders.check(race)
    assert checks["same"]["ok"] and checks["same"]["error"] < 1e-5
    assert not checks["off"]["ok"]
    assert checks["off"]["error"] == pytest.approx(0.01, rel=0.05)


class _SkipsLastTensor:
    """A runner that updates every tensor but the last: a broken fast path."""

    def __init__(self, runner, last):
        self.runner, self.last = runner, last

    def step(self, grads):
        self.runner.step(grads[:-1])

    def sync(self):
        self.runner.sync()

    def params(self):
        return [*self.runner.params(), self.last]


def test_after_timing_comparison_flags_a_skipped_tensor():
    from keras_optzoo.optimizers import get

    def ours(params):
        return contenders.KerasRunner(get("lion", learning_rate=1e-3), params)

    race = [
        contenders.Contender("ours", "ours", "", ours),
        contenders.Contender("same", "same", "", ours, reference="ours"),
        contenders.Contender("lazy", "lazy", "", lambda params: _SkipsLastTensor(
            ours(params[:-1]), params[-1].copy()), reference="ours"),
    ]
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(64).astype("float32") for _ in range(3)]
    grads = contenders.device_arrays([rng.standard_normal(64).astype("float32")
                                      for _ in range(3)])
    settings = suite.Settings(["lion"], [(192, 3)], repeats=2, warmup=1, steps=2)
    timed = suite._time_race(race, params, grads, settings, interleave=False)
    assert timed["same"]["steps_total"] == timed["lazy"]["steps_total"] == 1 + 1 + 2 * 2
    assert timed["same"]["after_timing"] == {"error": 0.0, "ok": True}
    # Lion moves every entry by exactly lr per step: the skipped tensor's error is 1.
    assert not timed["lazy"]["after_timing"]["ok"]
    assert timed["lazy"]["after_timing"]["error"] == pytest.approx(1.0, rel=1e-3)


def test_fit_benchmark_reports_both_optimizers(quick_run):
    results, markdown, _ = quick_run
    (fit,) = results["fit"]
    assert fit["algorithm"] == "adam"
    assert set(fit["ms"]) == {"ours", "keras_core"}
    for key, samples in fit["samples_ms"].items():
        assert len(samples) == fit["steps"]
        assert fit["ms"][key] == pytest.approx(float(np.median(samples)))
    assert fit["core/ours"] == pytest.approx(fit["ms"]["keras_core"] / fit["ms"]["ours"])
    (shown,) = _markdown_table(markdown, "model")
    assert float(shown["core/ours"]) == pytest.approx(fit["core/ours"], abs=0.006)


def test_fit_races_each_algorithm_against_keras_core_at_its_convention():
    from keras_optzoo.bench import fit

    made = {key: make() for key, make in fit._optimizers("momentum").items()}
    assert type(made["ours"]).__module__.startswith("keras_optzoo")
    for optimizer in made.values():
        assert float(optimizer.learning_rate) == pytest.approx(0.01)
        assert optimizer.momentum == 0.9
    result = fit.time_fit(fit.QUICK_FIT_MODELS[0], warmup=1, steps=2, algorithm="momentum")
    assert result["algorithm"] == "momentum"
    assert [len(samples) for samples in result["samples_ms"].values()] == [2, 2]


def test_targets_are_judged_on_the_reported_ratios(quick_run):
    results, markdown, _ = quick_run
    targets = results["targets"]
    core = [t for t in targets if "keras core" in t["target"] and "fit" not in t["target"]]
    assert len(core) == sum("keras_core" in row["contenders"] for row in results["rows"])
    for target in core:
        row = next(r for r in results["rows"] if r["algorithm"] == target["algorithm"])
        assert target["value"] == row["ratios"]["core/ours"]
        assert target["met"] == (target["value"] >= report.CORE_SPEEDUP)
    if BACKEND == "jax":
        optax_targets = [t for t in targets if "optax" in t["target"]]
        assert [t["algorithm"] for t in optax_targets] == ["adam", "lion"]
        for target in optax_targets:
            row = next(r for r in results["rows"] if r["algorithm"] == target["algorithm"])
            assert target["value"] == row["ratios"]["ours/optax"]
            assert target["met"] == (target["value"] <= report.OPTAX_WITHIN)
    if BACKEND == "torch":
        (fused,) = [t for t in targets if "torch fused" in t["target"]]
        assert fused["met"] == (fused["value"] <= report.TORCH_FUSED_WITHIN)
    shown = _markdown_table(markdown, "target")
    assert len(shown) == len(targets)


def test_roofline_pass_updates_every_element_in_place():
    runner = InPlaceIncrement(1000)
    for _ in range(3):
        runner.step()
    runner.sync()
    (values,) = runner.params()
    np.testing.assert_array_equal(values, np.full(1000, 3.0, dtype="float32"))
    assert runner.bytes_per_pass == 8000


@pytest.mark.parametrize("parameters, tensors", [(10, 3), (20_000, 4), (10**7 + 7, 20)])
def test_tensor_sizes_split_all_parameters_evenly(parameters, tensors):
    sizes = suite.tensor_sizes(parameters, tensors)
    assert len(sizes) == tensors and sum(sizes) == parameters
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("text, value", [
    ("10M", 10**7), ("1e8", 10**8), ("1B", 10**9), ("250k", 250_000), ("1.5M", 1_500_000),
    ("1000", 1000), ("2G", 2 * 10**9),
])
def test_parse_count(text, value):
    assert command.parse_count(text) == value


@pytest.mark.parametrize("argv, message", [
    (["--params", "abc"], "--params: params must be a whole number >= 1"),
    (["--params", "1.5"], "--params: params must be a whole number >= 1"),
    (["--optimizers", "adam,nosuch"], "unknown optimizer 'nosuch'"),
    (["--params", "10M,100M", "--tensors", "20"], "one count per --params entry"),
    (["--params", "10", "--tensors", "20"], "exceeds --params"),
    (["--repeats", "0"], "--repeats: must be an integer >= 1"),
    (["--fit", "--fit-optimizers", "adabelief"], "'adabelief' has no keras core version"),
])
def test_bad_arguments_exit_2(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", *argv, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_summary_without_results_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--summary", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no bench_*.json" in capsys.readouterr().err


def _fake_run(backend: str, ours_ms: float, created: str, cpu: str = "cpu X") -> dict:
    row = {
        "algorithm": "adam", "parameters": 10**7, "tensors": 20,
        "contenders": {"ours": {"ms": ours_ms}}, "ratios": {"core/ours": 2.0},
    }
    return {
        "tool": "optzoo bench", "backend": backend, "device": "cpu", "created": created,
        "machine": {"cpu": cpu, "load_average": [1.0, 1.0, 1.0]}, "rows": [row],
        "targets": [{"target": "≥1.5x faster than keras core", "algorithm": "adam",
                     "size": "10M / 20", "value": 2.0, "threshold": 1.5, "met": True,
                     "note": ""}],
    }


def test_summary_takes_the_latest_run_per_backend_and_judges_tf_against_jax(tmp_path):
    runs = {
        "bench_jax_cpu_a.json": _fake_run("jax", 10.0, "2026-01-02T00:00:00"),
        "bench_jax_cpu_b.json": _fake_run("jax", 99.0, "2026-01-01T00:00:00"),
        "bench_tensorflow_cpu_a.json": _fake_run("tensorflow", 13.0, "2026-01-02T00:00:00"),
    }
    for name, run in runs.items():
        (tmp_path / name).write_text(json.dumps(run))
    assert cli.main(["bench", "--summary", "--out", str(tmp_path)]) == 0
    (summary,) = tmp_path.glob("summary_cpu_*.md")
    text = summary.read_text()
    (row,) = _markdown_table(text, "optimizer")
    assert row["ours jax ms"] == "10" and row["ours tensorflow ms"] == "13"
    assert row["TF-XLA / JAX"] == "1.30"
    targets = _markdown_table(text, "target")
    (tf_target,) = [t for t in targets if t["target"].startswith("TF with XLA")]
    assert tf_target["status"] == "**not met**"
    assert {t["target"] for t in targets} >= {"jax: ≥1.5x faster than keras core",
                                              "tensorflow: ≥1.5x faster than keras core"}
