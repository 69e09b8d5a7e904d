"""The TensorBoard event writer: files read back by our reader and by TensorBoard's.

TensorBoard's own `EventAccumulator` is the independent reader; it verifies
every record's checksums. Where TensorFlow is already loaded (conftest's
`keras.utils.set_random_seed` loads it whenever it is installed) it reads in
process, through TensorFlow's C++ record reader; otherwise it runs in a
subprocess rather than import TensorFlow here. The TensorFlow-hidden test
reads through TensorBoard's pure-Python reader.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2

from keras_optzoo.callbacks import EventWriter, get_writer, read_events
from keras_optzoo.callbacks.tensorboard import (
    _equal_width_counts,
    _frame,
    _records,
    crc32c,
    masked_crc32c,
)
from tests.harness import BACKEND

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HIDE_TENSORFLOW = "import sys; sys.modules['tensorflow'] = None\n"


def _accumulate(log_dir):
    """What TensorBoard's `EventAccumulator` reads from `log_dir`, as plain data.

    Self-contained: its source also runs in a subprocess.
    """
    from tensorboard.backend.event_processing import event_accumulator as ea

    accumulator = ea.EventAccumulator(
        log_dir, size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.TENSORS: 0}
    )
    accumulator.Reload()
    tags = accumulator.Tags()
    histogram_fields = ("min", "max", "num", "sum", "sum_squares", "bucket_limit", "bucket")
    return {
        "scalars": {
            tag: [[e.step, e.value] for e in accumulator.Scalars(tag)] for tag in tags["scalars"]
        },
        "histograms": {
            tag: [
                [e.step, {f: getattr(e.histogram_value, f) for f in histogram_fields}]
                for e in accumulator.Histograms(tag)
            ]
            for tag in tags["histograms"]
        },
        "texts": {
            tag: [[e.step, e.tensor_proto.string_val[0].decode("utf-8")] for e in accumulator.Tensors(tag)]
            for tag in tags["tensors"]
        },
        "plugins": {
            tag: accumulator.SummaryMetadata(tag).plugin_data.plugin_name
            for kind in ("histograms", "tensors")
            for tag in tags[kind]
        },
    }


def _run_python(code: str, env: dict | None = None) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        check=False,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def tensorboard_view(log_dir) -> dict:
    if isinstance(sys.modules.get("tensorflow"), type(sys)):
        return _accumulate(str(log_dir))
    code = (
        HIDE_TENSORFLOW
        + "import json\n"
        + inspect.getsource(_accumulate)
        + f"print(json.dumps(_accumulate({str(log_dir)!r})))\n"
    )
    return _run_python(code)


def as_lists(view: dict) -> dict:
    """`read_events` output with tuples as lists, to compare with JSON data."""
    return {
        kind: {tag: [[step, value] for step, value in series] for tag, series in tags.items()}
        for kind, tags in view.items()
    }


# ---------------------------------------------------------------------------
# TFRecord framing.
# ---------------------------------------------------------------------------


def test_crc32c_matches_published_check_values():
    # The CRC-32C catalogue check value and RFC 3720 (iSCSI) B.4 vectors.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E


def test_records_are_byte_identical_to_tensorboards_record_writer():
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import (
        masked_crc32c as theirs,
    )
    from tensorboard.summary.writer.record_writer import RecordWriter

    payloads = [b"", b"x", bytes(range(256)) * 5]
    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    for payload in payloads:
        writer.write(payload)
        assert masked_crc32c(payload) == theirs(payload)
    assert b"".join(_frame(p) for p in payloads) == buffer.getvalue()


# ---------------------------------------------------------------------------
# Values round-trip, checked by both readers.
# ---------------------------------------------------------------------------


def test_scalars_histograms_and_text_read_back_by_both_readers(tmp_path):
    rng = np.random.default_rng(0)
    weights = rng.normal(size=1000) * 3.0 + 1.0
    with EventWriter(tmp_path) as writer:
        for step in (0, 5, 10):
            writer.scalar("loss", 1.0 / (step + 1), step)
        writer.scalar("lr", 0.5, 3)
        writer.histogram("weights", weights, step=7, bins=12)
        writer.text("notes", "step **7**: déjà vu ✓", step=7)

    expected_loss = [(s, float(np.float32(1.0 / (s + 1)))) for s in (0, 5, 10)]
    ours = read_events(tmp_path)
    assert ours["scalars"] == {"loss": expected_loss, "lr": [(3, 0.5)]}
    assert ours["texts"] == {"notes": [(7, "step **7**: déjà vu ✓")]}
    [(step, histogram)] = ours["histograms"]["weights"]
    counts, edges = np.histogram(weights, bins=12)
    assert step == 7
    assert histogram["bucket"] == counts.tolist()
    assert sum(histogram["bucket"]) == histogram["num"] == 1000
    np.testing.assert_allclose(histogram["bucket_limit"], edges[1:], rtol=0, atol=1e-12)
    assert histogram["bucket_limit"][-1] == histogram["max"] == weights.max()
    assert histogram["min"] == weights.min()
    np.testing.assert_allclose(histogram["sum"], weights.sum(), rtol=1e-12)
    np.testing.assert_allclose(histogram["sum_squares"], np.sum(weights**2), rtol=1e-12)

    theirs = tensorboard_view(tmp_path)
    assert theirs["plugins"] == {"weights": "histograms", "notes": "text"}
    del theirs["plugins"]
    assert theirs == as_lists(ours)


def test_scalars_of_one_step_in_one_event_read_back_as_separate_scalars(tmp_path):
    with EventWriter(tmp_path / "one_event") as one_event:
        one_event.scalars({"a": 1.5, "b/layer": np.float32(2.0), "c": 1e-3}, step=4)
        one_event.scalars({"a": 0.5}, step=8)
        one_event.scalars({}, step=9)
    with EventWriter(tmp_path / "separate") as writer:
        writer.scalar("a", 1.5, 4)
        writer.scalar("b/layer", 2.0, 4)
        writer.scalar("c", 1e-3, 4)
        writer.scalar("a", 0.5, 8)
    summaries = [event_pb2.Event.FromString(r) for r in _records(one_event.path)]
    assert [len(e.summary.value) for e in summaries if e.HasField("summary")] == [3, 1]
    ours = read_events(tmp_path / "one_event")
    assert ours == read_events(tmp_path / "separate")
    assert ours["scalars"]["c"] == [(4, float(np.float32(1e-3)))]
    assert tensorboard_view(tmp_path / "one_event") == tensorboard_view(tmp_path / "separate")


def test_tensorboard_ui_migration_keeps_every_count(tmp_path):
    """The dashboards see `histo` through `data_compat`: buckets must survive it."""
    from tensorboard import data_compat
    from tensorboard.util import tensor_util

    values = np.concatenate([np.zeros(10), np.linspace(-2.0, 5.0, 91)])
    with EventWriter(tmp_path) as writer:
        writer.histogram("h", values, step=1, bins=7)
    events = [event_pb2.Event.FromString(r) for r in _records(writer.path)]
    [value] = [v for e in events if e.HasField("summary") for v in e.summary.value]
    migrated = data_compat.migrate_value(value)
    assert migrated.metadata.plugin_data.plugin_name == "histograms"
    buckets = tensor_util.make_ndarray(migrated.tensor)
    assert buckets[:, 2].sum() == 101
    assert buckets[0, 0] == -2.0 and buckets[-1, 1] == 5.0


def test_scalars_are_sorted_by_step_and_keep_write_order_within_a_step(tmp_path):
    with EventWriter(tmp_path) as writer:
        for step, value in [(3, 3.0), (1, 1.0), (3, 4.0), (2, 2.0)]:
            writer.scalar("x", value, step)
    assert read_events(tmp_path)["scalars"]["x"] == [(1, 1.0), (2, 2.0), (3, 3.0), (3, 4.0)]


def test_histogram_of_a_constant_and_of_non_finite_values(tmp_path):
    with EventWriter(tmp_path) as writer:
        writer.histogram("constant", np.full(5, 2.5), step=0)
        writer.histogram("with_nan", [1.0, np.nan, 3.0, np.inf, -np.inf], step=0, bins=2)
        writer.histogram("all_nan", [np.nan], step=0)
    histograms = {tag: series[0][1] for tag, series in read_events(tmp_path)["histograms"].items()}
    assert histograms["constant"]["bucket"] == [5.0]
    assert histograms["constant"]["bucket_limit"] == [2.5]
    # Non-finite entries are left out: only 1.0 and 3.0 are counted.
    assert histograms["with_nan"]["num"] == 2
    assert histograms["with_nan"]["bucket"] == [1.0, 1.0]
    assert histograms["with_nan"]["bucket_limit"] == [2.0, 3.0]
    assert histograms["with_nan"]["sum"] == 4.0
    assert histograms["all_nan"]["num"] == 0
    assert histograms["all_nan"]["bucket"] == []


def test_histogram_buckets_are_numpys_with_values_on_the_edges():
    rng = np.random.default_rng(0)
    cases = [
        rng.lognormal(-3.0, 3.0, size=4096),
        np.arange(61) * 0.1,  # every 2nd value on an edge of 30 buckets, in rounding's way
        rng.integers(0, 7, size=50).astype(np.float64),
    ]
    for values in cases:
        for bins in (1, 2, 7, 30):
            low, high = values.min(), values.max()
            np.testing.assert_array_equal(
                _equal_width_counts(values, bins, low, high),
                np.histogram(values, bins, range=(low, high))[0],
            )


def test_histogram_of_a_sample_scales_counts_and_sums(tmp_path):
    values = np.random.default_rng(2).lognormal(-8.0, 3.0, size=500)
    values[[3, 70]] = [np.inf, np.nan]
    with EventWriter(tmp_path) as writer:
        writer.histogram("plain", values, step=0)
        writer.histogram("sample", values, step=0, scale=7.5)
        writer.histogram("constant", np.full(4, 2.5), step=0, scale=3.0)
    histograms = {tag: series[0][1] for tag, series in read_events(tmp_path)["histograms"].items()}
    plain, sample = histograms["plain"], histograms["sample"]
    assert plain["num"] == 498 and sample["num"] == 498 * 7.5
    np.testing.assert_array_equal(sample["bucket"], np.asarray(plain["bucket"]) * 7.5)
    for key in ("sum", "sum_squares"):
        np.testing.assert_allclose(sample[key], plain[key] * 7.5, rtol=1e-12, err_msg=key)
    for key in ("min", "max", "bucket_limit"):
        assert sample[key] == plain[key]
    assert histograms["constant"]["bucket"] == [12.0]


def test_backend_tensors_and_variables_are_converted(tmp_path):
    variable = keras.Variable(np.arange(6.0).reshape(2, 3), dtype="float32")
    with EventWriter(tmp_path) as writer:
        writer.scalar("tensor", keras.ops.convert_to_tensor(0.25), keras.ops.convert_to_tensor(4))
        writer.scalar("numpy", np.float64(0.75), np.int64(5))
        writer.scalar("variable_norm", keras.ops.norm(variable), 6)
        writer.histogram("variable", variable, 6, bins=3)
        if BACKEND == "torch":
            import torch

            writer.histogram("requires_grad", torch.ones(4, requires_grad=True) * 2, 6)
    events = read_events(tmp_path)
    assert events["scalars"]["tensor"] == [(4, 0.25)]
    assert events["scalars"]["numpy"] == [(5, 0.75)]
    assert events["scalars"]["variable_norm"] == [(6, float(np.float32(np.sqrt(55.0))))]
    histogram = events["histograms"]["variable"][0][1]
    assert histogram["bucket"] == [2.0, 2.0, 2.0]
    assert histogram["sum"] == 15.0
    if BACKEND == "torch":
        assert events["histograms"]["requires_grad"][0][1]["sum"] == 8.0


def test_writes_and_reads_with_tensorflow_hidden(tmp_path):
    # The TensorFlow backend needs TensorFlow; JAX stands in for it there.
    backend = "jax" if BACKEND == "tensorflow" else BACKEND
    code = HIDE_TENSORFLOW + textwrap.dedent(
        f"""
        import json, sys, types
        import keras
        from keras_optzoo.callbacks import EventWriter, read_events
        log_dir = {str(tmp_path)!r}
        with EventWriter(log_dir) as writer:
            writer.scalar("loss", keras.ops.convert_to_tensor(0.125), 2)
            writer.histogram("w", keras.ops.arange(10.0), 2, bins=5)
            writer.text("t", "no tf", 2)
        loaded = [m for m, v in sys.modules.items()
                  if m.split(".")[0] == "tensorflow" and isinstance(v, types.ModuleType)]
        """
    ) + inspect.getsource(_accumulate) + textwrap.dedent(
        """
        view = _accumulate(log_dir)
        print(json.dumps({"backend": keras.backend.backend(), "loaded": loaded,
                          "ours": read_events(log_dir), "theirs": view}))
        """
    )
    result = _run_python(code, env={"KERAS_BACKEND": backend})
    assert result["backend"] == backend
    assert result["loaded"] == []
    ours = result["ours"]
    assert ours["scalars"] == {"loss": [[2, 0.125]]}
    assert ours["texts"] == {"t": [[2, "no tf"]]}
    assert ours["histograms"]["w"][0][1]["bucket"] == [2.0] * 5
    theirs = result["theirs"]
    assert theirs.pop("plugins") == {"w": "histograms", "t": "text"}
    assert theirs == ours


# ---------------------------------------------------------------------------
# Files, sharing and errors.
# ---------------------------------------------------------------------------


def test_get_writer_shares_one_writer_per_directory(tmp_path):
    first = get_writer(tmp_path / "run")
    assert get_writer(str(tmp_path / "run" / ".." / "run")) is first
    first.scalar("a", 1.0, 0)
    get_writer(tmp_path / "run").scalar("b", 2.0, 0)
    first.close()
    assert len(list((tmp_path / "run").iterdir())) == 1
    replacement = get_writer(tmp_path / "run")
    assert replacement is not first and not replacement.closed
    replacement.scalar("a", 3.0, 1)
    replacement.close()
    assert len(list((tmp_path / "run").iterdir())) == 2
    assert read_events(tmp_path / "run")["scalars"] == {"a": [(0, 1.0), (1, 3.0)], "b": [(0, 2.0)]}


def test_flush_makes_events_visible_before_close(tmp_path):
    writer = EventWriter(tmp_path)
    writer.scalar("x", 1.0, 0)
    assert read_events(tmp_path)["scalars"] == {}
    writer.flush()
    assert read_events(tmp_path)["scalars"] == {"x": [(0, 1.0)]}
    writer.close()


def test_a_removed_file_is_started_again_well_formed(tmp_path):
    with EventWriter(tmp_path) as writer:
        writer.scalar("x", 1.0, 0)
        writer.flush()
        os.remove(writer.path)
        writer.scalar("x", 2.0, 1)
    first = event_pb2.Event.FromString(next(_records(writer.path)))
    assert first.file_version == "brain.Event:2"
    assert read_events(tmp_path)["scalars"] == {"x": [(1, 2.0)]}


def test_recursive_reading_prefixes_subdirectory_tags(tmp_path):
    with EventWriter(tmp_path) as top, EventWriter(tmp_path / "train") as train:
        top.scalar("loss", 1.0, 0)
        train.scalar("loss", 2.0, 0)
    assert read_events(tmp_path)["scalars"] == {"loss": [(0, 1.0)]}
    assert read_events(tmp_path, recursive=True)["scalars"] == {
        "loss": [(0, 1.0)],
        "train/loss": [(0, 2.0)],
    }


def test_corrupt_record_raises_and_truncated_tail_is_ignored(tmp_path):
    with EventWriter(tmp_path) as writer:
        writer.scalar("x", 1.0, 0)
        writer.scalar("x", 2.0, 1)
    path = writer.path
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:-3])
    assert read_events(tmp_path)["scalars"] == {"x": [(0, 1.0)]}
    corrupted = bytearray(data)
    corrupted[-6] ^= 0xFF
    with open(path, "wb") as handle:
        handle.write(bytes(corrupted))
    with pytest.raises(ValueError, match="corrupt TFRecord payload"):
        read_events(tmp_path)


def test_bad_arguments_raise(tmp_path):
    writer = EventWriter(tmp_path)
    for bins in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=f"bins must be an integer >= 1, got {bins!r}"):
            writer.histogram("h", [1.0], 0, bins=bins)
    for scale in (0, -1.0, np.inf, np.nan, True, "2"):
        with pytest.raises(ValueError, match="scale must be a finite number > 0"):
            writer.histogram("h", [1.0], 0, scale=scale)
    with pytest.raises(ValueError, match="exactly one element"):
        writer.scalar("s", [1.0, 2.0], 0)
    with pytest.raises(ValueError, match="step must be an integer"):
        writer.scalar("s", 1.0, 1.5)
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.scalar("s", 1.0, 0)
