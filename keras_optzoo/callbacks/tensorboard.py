"""TensorBoard event files written and read with the `tensorboard` package alone.

Keras's own `TensorBoard` callback writes through `tf.summary`, so on JAX and
Torch it needs TensorFlow installed. This writer builds the `Event` protocol
buffers from `tensorboard.compat.proto` and frames them as TFRecords itself
(length, masked CRC-32C of the length, payload, masked CRC-32C of the payload),
which is all an events file is. It never imports TensorFlow, and it does not
import Keras unless it is handed a backend tensor to convert.

What is written, and how TensorBoard shows it:
  * scalars: `Summary.Value.simple_value` (a float32: values are rounded to
    float32, as `tf.summary.scalar` does), the Scalars dashboard;
  * histograms: `Summary.Value.histo` (`HistogramProto`, with `min`, `max`,
    `num`, `sum`, `sum_squares` and `bins` equal-width buckets), tagged with
    the histogram plugin's metadata; TensorBoard shows it in the Histograms and
    Distributions dashboards;
  * text: a string tensor tagged with the text plugin's metadata, the Text
    dashboard (rendered as Markdown).

Example:

```python
import numpy as np
from keras_optzoo.callbacks import get_writer, read_events

writer = get_writer("logs/run1")
writer.scalar("loss", 0.25, step=10)
writer.histogram("weights/dense", np.random.randn(1000), step=10)
writer.text("config", "lr = 1e-3", step=0)
writer.flush()
read_events("logs/run1")["scalars"]["loss"]      # [(10, 0.25)]
```
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import socket
import struct
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import google_crc32c
import numpy as np
from tensorboard.compat.proto import (
    event_pb2,
    summary_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.text import metadata as text_metadata

if TYPE_CHECKING:
    from typing import Self

__all__ = ["EventWriter", "get_writer", "read_events"]

# Pending events are written to disk at least this often (seconds), so a
# running TensorBoard sees progress without a flush per event.
FLUSH_SECONDS = 10.0


# ---------------------------------------------------------------------------
# TFRecord framing.
# ---------------------------------------------------------------------------


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`, as TFRecord uses. `google_crc32c`'s C
    implementation: a reading's records would take a millisecond in pure Python."""
    return google_crc32c.value(data)


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C that TFRecord stores (rotate right 15, add a constant)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _frame(payload: bytes) -> bytes:
    header = struct.pack("<Q", len(payload))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + payload
        + struct.pack("<I", masked_crc32c(payload))
    )


def _records(path: str):
    """Payloads of the TFRecords in `path`; a truncated last record (a writer
    still running) is ignored, a checksum mismatch raises `ValueError`."""
    with open(path, "rb") as handle:
        data = handle.read()
    offset = 0
    while offset + 12 <= len(data):
        header = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[offset + 8 : offset + 12])
        if header_crc != masked_crc32c(header):
            raise ValueError(f"corrupt TFRecord length at byte {offset} of {path}")
        end = offset + 12 + length + 4
        if end > len(data):
            return
        payload = data[offset + 12 : offset + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[end - 4 : end])
        if payload_crc != masked_crc32c(payload):
            raise ValueError(f"corrupt TFRecord payload at byte {offset} of {path}")
        yield payload
        offset = end


# ---------------------------------------------------------------------------
# Values from any backend.
# ---------------------------------------------------------------------------


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, (np.ndarray, np.generic, int, float, list, tuple)):
        return np.asarray(value)
    # A backend tensor or Variable: only now is Keras worth importing.
    import keras

    if isinstance(value, keras.Variable):
        value = value.value
    return np.asarray(keras.ops.convert_to_numpy(value))


def _to_float(value: Any) -> float:
    if type(value) is float:
        return value  # What the monitors pass: 10x faster than through NumPy.
    array = _to_numpy(value)
    if array.size != 1:
        raise ValueError(f"scalar value must have exactly one element, got shape {array.shape}")
    return float(array.reshape(()))


def _to_step(step: Any) -> int:
    if isinstance(step, (int, np.integer)) and not isinstance(step, bool):
        return int(step)
    array = _to_numpy(step)
    if array.size != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"step must be an integer, got {step!r}")
    return int(array.reshape(()))


def _histogram_proto(values: Any, bins: int, scale: float = 1.0) -> summary_pb2.HistogramProto:
    """`bins` equal-width buckets over [min, max] of the finite values, the
    counts, `num` and the sums multiplied by `scale`.

    Non-finite values are left out (a histogram of NaN has no buckets), so
    `num` counts the finite values.
    """
    array = np.asarray(_to_numpy(values), np.float64).ravel()
    finite = np.isfinite(array)
    if not finite.all():
        array = array[finite]
    if array.size == 0:
        return _bucketed_proto(np.zeros(bins), 0.0, 0.0, 0, 0.0, 0.0)
    low, high = float(array.min()), float(array.max())
    counts = _equal_width_counts(array, bins, low, high) * scale if low < high else None
    return _bucketed_proto(
        counts, low, high, array.size * scale, array.sum() * scale, np.dot(array, array) * scale
    )


def _equal_width_counts(array: np.ndarray, bins: int, low: float, high: float) -> np.ndarray:
    """`np.histogram(array, bins, range=(low, high))[0]` for values within
    [low, high] (low < high): each value's bucket looked up among the same
    edges (the last bucket holds `high` too), without `np.histogram`'s
    general-case checks, which cost more than the counting on the few
    thousand values of a monitor's sample."""
    edges = np.linspace(low, high, bins + 1)
    buckets = np.minimum(np.searchsorted(edges, array, side="right") - 1, bins - 1)
    return np.bincount(buckets, minlength=bins)


def _bucketed_proto(counts, low, high, num, total, sum_squares) -> summary_pb2.HistogramProto:
    """The proto of `counts` in equal-width buckets over [low, high]:
    `bucket_limit[i]` is bucket i's right edge, the last one is `max`; a
    constant input (`low == high`) gives one bucket, an empty one (`num` 0) none."""
    if not num:
        return summary_pb2.HistogramProto(min=0.0, max=0.0, num=0, sum=0.0, sum_squares=0.0)
    low, high = float(low), float(high)
    if low == high:
        counts, limits = np.array([float(num)]), np.array([high])
    else:
        counts = np.asarray(counts, np.float64).ravel()
        # The edges `np.histogram` uses.
        limits = np.linspace(low, high, counts.size + 1)[1:]
    return summary_pb2.HistogramProto(
        min=low,
        max=high,
        num=float(num),
        sum=float(total),
        sum_squares=float(sum_squares),
        bucket_limit=limits.tolist(),
        bucket=counts.tolist(),
    )


# ---------------------------------------------------------------------------
# The writer.
# ---------------------------------------------------------------------------

def _file_version_event() -> event_pb2.Event:
    return event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")


_file_counter = 0
_file_counter_lock = threading.Lock()
_open_writers: weakref.WeakSet = weakref.WeakSet()


def _next_file_number() -> int:
    global _file_counter
    with _file_counter_lock:
        _file_counter += 1
        return _file_counter


class EventWriter:
    """Writes scalars, histograms and text to one new TensorBoard events file.

    Events are buffered and reach the disk on `flush()`, `close()`, every
    `FLUSH_SECONDS` seconds while writing, and at interpreter exit. The writer
    is thread-safe. Prefer `get_writer(log_dir)`, which shares one writer per
    directory in a process, so several monitors logging to the same directory
    append to one file.

    Args:
        log_dir: A local directory; it is created if missing. The file is named
            `events.out.tfevents.<time>.<host>.<pid>.<n>` as TensorFlow names it.

    Example:

    ```python
    with EventWriter("logs/run1") as writer:
        for step in range(100):
            writer.scalar("loss", loss_at(step), step)
    ```
    """

    def __init__(self, log_dir: str | os.PathLike) -> None:
        self.log_dir = os.fspath(log_dir)
        os.makedirs(self.log_dir, exist_ok=True)
        name = (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}"
            f".{os.getpid()}.{_next_file_number()}"
        )
        self.path = os.path.join(self.log_dir, name)
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self.closed = False
        # The first record declares the format, as every TF writer does. The
        # file is reopened to append at each flush rather than held open, so
        # long-lived shared writers hold no file descriptors.
        with open(self.path, "wb") as handle:
            handle.write(_frame(_file_version_event().SerializeToString()))
        self._pending: list[bytes] = []
        _open_writers.add(self)

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Log one scalar (stored as float32, like `tf.summary.scalar`).

        Args:
            tag: The series name, e.g. `"optimizer/grad_norm"`.
            value: A Python or NumPy number, or a one-element tensor of any backend.
            step: The global step (x axis).
        """
        summary_value = summary_pb2.Summary.Value(tag=tag, simple_value=_to_float(value))
        self._write_summary([summary_value], step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Log several scalars of one step as one event (one record to frame
        and checksum, not one per tag); TensorBoard shows each tag as `scalar`
        would.

        Args:
            values: `{tag: value}`, each value as `scalar` takes it.
            step: The global step.
        """
        if values:
            self._write_summary(
                [summary_pb2.Summary.Value(tag=tag, simple_value=_to_float(v)) for tag, v in values.items()],
                step,
            )

    def histogram(self, tag: str, values: Any, step: int, bins: int = 30, scale: float = 1.0) -> None:
        """Log the distribution of `values` in `bins` equal-width buckets.

        Args:
            tag: The series name.
            values: A NumPy array, anything `np.asarray` accepts, or a tensor or
                Variable of any backend; it is flattened. Non-finite entries are
                left out of the histogram.
            step: The global step.
            bins: The number of buckets, >= 1.
            scale: How many values each of `values` stands for, > 0 (a
                uniform sample of a larger set): the counts, the number of
                values and the sums are multiplied by it. Defaults to 1.
        """
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < math.inf:
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        self._write_histogram(tag, _histogram_proto(values, int(bins), float(scale)), step)

    def _write_histogram(self, tag: str, histo: summary_pb2.HistogramProto, step: int) -> None:
        summary_value = summary_pb2.Summary.Value(
            tag=tag,
            histo=histo,
            metadata=histogram_metadata.create_summary_metadata(display_name=tag, description=""),
        )
        self._write_summary([summary_value], step)

    def text(self, tag: str, text: str, step: int) -> None:
        """Log a string, shown (as Markdown) in TensorBoard's Text dashboard.

        Args:
            tag: The series name.
            text: The string.
            step: The global step.
        """
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
            string_val=[str(text).encode("utf-8")],
        )
        summary_value = summary_pb2.Summary.Value(
            tag=tag,
            tensor=tensor,
            metadata=text_metadata.create_summary_metadata(display_name=tag, description=""),
        )
        self._write_summary([summary_value], step)

    def flush(self) -> None:
        """Write every pending event to disk."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Flush; later writes raise `ValueError`."""
        with self._lock:
            if self.closed:
                return
            self._flush_locked()
            self.closed = True
        _open_writers.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<EventWriter {self.path!r} ({state})>"

    # -- internals ----------------------------------------------------------

    def _write_summary(self, summary_values: list, step: int) -> None:
        """One event of the `Summary.Value`s."""
        event = event_pb2.Event(
            wall_time=time.time(),
            step=_to_step(step),
            summary=summary_pb2.Summary(value=summary_values),
        )
        self._write(event)

    def _write(self, event: event_pb2.Event) -> None:
        record = _frame(event.SerializeToString())
        with self._lock:
            if self.closed:
                raise ValueError(f"EventWriter for {self.log_dir!r} is closed")
            self._pending.append(record)
            if time.monotonic() - self._last_flush >= FLUSH_SECONDS:
                self._flush_locked()

    def _flush_locked(self) -> None:
        if self._pending and not self.closed:
            if not os.path.exists(self.path):
                # Someone removed the file (e.g. to restart a run in the same
                # directory): start a well-formed one again.
                os.makedirs(self.log_dir, exist_ok=True)
                self._pending.insert(0, _frame(_file_version_event().SerializeToString()))
            with open(self.path, "ab") as handle:
                handle.write(b"".join(self._pending))
            self._pending.clear()
        self._last_flush = time.monotonic()


_shared_writers: dict[str, EventWriter] = {}
_shared_writers_lock = threading.Lock()


def get_writer(log_dir: str | os.PathLike) -> EventWriter:
    """The process-wide writer for `log_dir`, created on first use.

    Paths that resolve to the same directory share one writer (and one file);
    a writer that was closed is replaced by a new one (and a new file).

    Args:
        log_dir: A local directory.

    Returns:
        An open `EventWriter`.
    """
    key = os.path.realpath(os.fspath(log_dir))
    with _shared_writers_lock:
        writer = _shared_writers.get(key)
        if writer is None or writer.closed:
            writer = EventWriter(key)
            _shared_writers[key] = writer
        return writer


@atexit.register
def _flush_open_writers() -> None:
    for writer in list(_open_writers):
        # The directory may be gone (a temporary one); exit quietly then.
        with contextlib.suppress(OSError):
            writer.flush()


# ---------------------------------------------------------------------------
# Reading back.
# ---------------------------------------------------------------------------

_TENSOR_DTYPES = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
}


def _tensor_scalar(tensor: tensor_pb2.TensorProto) -> float | None:
    """The value of a one-element float tensor (how `tf.summary.scalar` v2 writes)."""
    if tensor.dtype not in _TENSOR_DTYPES:
        return None
    dtype, field = _TENSOR_DTYPES[tensor.dtype]
    if tensor.tensor_content:
        values = np.frombuffer(tensor.tensor_content, dtype=dtype)
    else:
        values = np.asarray(getattr(tensor, field), dtype=dtype)
    return float(values[0]) if values.size == 1 else None


def _event_files(log_dir: str, recursive: bool) -> list[tuple[str, str]]:
    """(tag prefix, path) of every events file, in TensorBoard's file order."""
    found = []
    for directory, subdirectories, files in os.walk(log_dir):
        subdirectories.sort()
        relative = os.path.relpath(directory, log_dir)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        found.extend(
            (prefix, os.path.join(directory, name))
            for name in sorted(files)
            if "tfevents" in name
        )
        if not recursive:
            break
    return found


def read_events(log_dir: str | os.PathLike, recursive: bool = False) -> dict[str, dict]:
    """Read back scalars, histograms and text from the events files in `log_dir`.

    Reads this package's files and those TensorFlow writes (`simple_value` or
    scalar-tensor scalars, `HistogramProto` histograms, text-plugin tensors).
    Every record's checksums are verified.

    Args:
        log_dir: The directory to read.
        recursive: Also read subdirectories; their tags are prefixed with the
            relative subdirectory path (`train/epoch_loss`), so runs in
            sibling directories do not mix.

    Returns:
        `{"scalars": {tag: [(step, value), ...]},
          "histograms": {tag: [(step, {"min", "max", "num", "sum",
                                       "sum_squares", "bucket_limit",
                                       "bucket"}), ...]},
          "texts": {tag: [(step, str), ...]}}`, each list sorted by step (stable,
        so events with equal steps keep the order they were written in).

    Raises:
        ValueError: if a record's checksum does not match (a corrupt file).
    """
    result: dict[str, dict] = {"scalars": {}, "histograms": {}, "texts": {}}
    for prefix, path in _event_files(os.fspath(log_dir), recursive):
        # TensorFlow writes a tag's plugin metadata with its first event only.
        plugin_of_tag: dict[str, str] = {}
        for payload in _records(path):
            event = event_pb2.Event.FromString(payload)
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                tag = prefix + value.tag
                kind = value.WhichOneof("value")
                if value.metadata.plugin_data.plugin_name:
                    plugin_of_tag.setdefault(value.tag, value.metadata.plugin_data.plugin_name)
                plugin = plugin_of_tag.get(value.tag)
                if kind == "simple_value":
                    entry = ("scalars", value.simple_value)
                elif kind == "histo":
                    entry = ("histograms", _histogram_dict(value.histo))
                elif kind == "tensor" and plugin == text_metadata.PLUGIN_NAME:
                    if not value.tensor.string_val:
                        continue
                    entry = ("texts", value.tensor.string_val[0].decode("utf-8"))
                elif kind == "tensor" and plugin == "scalars":
                    scalar = _tensor_scalar(value.tensor)
                    if scalar is None:
                        continue
                    entry = ("scalars", scalar)
                else:
                    continue
                result[entry[0]].setdefault(tag, []).append((int(event.step), entry[1]))
    for series in result.values():
        for tag in series:
            series[tag].sort(key=lambda item: item[0])
    return result


def _histogram_dict(histo: summary_pb2.HistogramProto) -> dict[str, Any]:
    return {
        "min": histo.min,
        "max": histo.max,
        "num": histo.num,
        "sum": histo.sum,
        "sum_squares": histo.sum_squares,
        "bucket_limit": list(histo.bucket_limit),
        "bucket": list(histo.bucket),
    }
