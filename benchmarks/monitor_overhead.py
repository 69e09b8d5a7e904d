"""What the monitors cost: `fit` with the monitors at `every_n_steps=100` vs none.

Usage:
    KERAS_BACKEND=jax python benchmarks/monitor_overhead.py [--steps 2000] [--repeats 5] [--model large]

A digits-sized MLP (64-128-128-10, 26k parameters; with `--model large`
64-1024-512-10, 597k parameters; batch 32, synthetic data) is trained for
`--steps` steps with no callbacks, with the three cheap monitors
(`GradientNormMonitor`, `UpdateRatioMonitor`, `LearningRateMonitor`), with
all four (plus `MomentMonitor`, which computes moment statistics and
histograms on the device), and with all four at an `every_n_steps` never
reached (the per-step gradient-norm recording alone), all writing
TensorBoard files; for a keras_optzoo Adam and for keras core's Adam (plain
without monitors, wrapped in `Monitored` with them). Each run starts from a
model whose plain step is already compiled, as after a previous `fit`.

Two numbers per configuration, each the fastest of `--repeats` interleaved
runs (other load on a shared machine only ever slows a run down):

  * steady ms/step: from step 150 to the end (the recorded step and the
    readings every 100 steps, after the one-time costs);
  * total s: the whole `fit`, which with monitors also pays once for tracing
    the step again with recording on and for compiling the statistics.

The overhead is the relative difference of the steady times. A third
number isolates what the readings cost: the wall time spent in them
(`UpdateRatioMonitor`'s weight copy the step before included, and on JAX the
state sync they force) after the first round (which compiles the
statistics), per step, and as a share of the plain step, after the steps
still queued have finished; it is measured directly, so it does not drown in
the machine's noise the way a difference of two runs does. A markdown
table is printed and written to `benchmarks/results/monitor_overhead_<backend>.md`
(`..._<backend>_large.md` for the large model).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

import keras_optzoo as oz
from keras_optzoo.callbacks import (
    GradientNormMonitor,
    LearningRateMonitor,
    MomentMonitor,
    Monitored,
    UpdateRatioMonitor,
)

BATCH_SIZE = 32
STEADY_FROM = 150
EVERY_N_STEPS = 100

OPTIMIZERS = {
    "keras_optzoo Adam": (lambda: oz.optimizers.Adam(1e-3), lambda: oz.optimizers.Adam(1e-3)),
    "keras core Adam (Monitored)": (
        lambda: keras.optimizers.Adam(1e-3),
        lambda: Monitored(keras.optimizers.Adam(1e-3)),
    ),
}


class _ReadingClock:
    """Wall time spent in the monitors' readings (`_maybe_measure` calls that
    measure, and `UpdateRatioMonitor`'s weight copy before the step ahead of
    each), which a run's end-to-end difference only shows through the noise.
    On JAX it includes the state sync a reading forces."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.copy_seconds: list[float] = []
        self._originals = None

    def __enter__(self):
        from keras_optzoo.callbacks import monitors

        measure = monitors.OptimizerMonitor._maybe_measure
        copy = monitors.UpdateRatioMonitor._copy_weights
        self._originals = (measure, copy)
        clock = self

        def timed_measure(monitor, completed_steps):
            if not monitor._reading_due(completed_steps):
                return measure(monitor, completed_steps)
            _drain(monitor)
            start = time.perf_counter()
            measure(monitor, completed_steps)
            clock.seconds.append(time.perf_counter() - start)

        def timed_copy(monitor):
            _drain(monitor)
            start = time.perf_counter()
            copy(monitor)
            clock.copy_seconds.append(time.perf_counter() - start)

        monitors.OptimizerMonitor._maybe_measure = timed_measure
        monitors.UpdateRatioMonitor._copy_weights = timed_copy
        return self

    def __exit__(self, *exc_info):
        from keras_optzoo.callbacks import monitors

        monitors.OptimizerMonitor._maybe_measure, monitors.UpdateRatioMonitor._copy_weights = self._originals


def _drain(monitor) -> None:
    """Wait for the steps still queued (JAX dispatches asynchronously), outside
    the clock: they would run with or without the monitor. On JAX without
    syncing the state into the variables, which the reading itself must pay."""
    state = getattr(monitor._model, "_jax_state", None)
    if state:
        import jax

        # A Keras `TrackedDict` is no pytree: `block_until_ready` would
        # return at once on it.
        jax.block_until_ready([a for arrays in state.values() if arrays for a in arrays])
    else:
        keras.ops.convert_to_numpy(monitor._model.optimizer.iterations)


class _Clock(keras.callbacks.Callback):
    """Wall time at the start of step `STEADY_FROM` and at the end of training.

    Only `on_train_batch_begin`: a batch-end hook would make Keras convert the
    logs on the main thread every step, which is the cost being measured.
    """

    def __init__(self) -> None:
        super().__init__()
        self.steady_start = None
        self.end = None
        self._step = 0

    def on_train_batch_begin(self, batch, logs=None):
        if self._step == STEADY_FROM:
            self.steady_start = time.perf_counter()
        self._step += 1

    def on_train_end(self, logs=None):
        self.end = time.perf_counter()


def _data(steps: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps * BATCH_SIZE, 64)).astype("float32")
    teacher = rng.standard_normal((64, 10))
    return x, np.argmax(x @ teacher, axis=1).astype("int32")


# Hidden widths of the MLP per `--model`.
MODELS = {"small": (128, 128), "large": (1024, 512)}


def _model(optimizer, hidden: tuple[int, int]) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hidden[0], activation="relu"),
            keras.layers.Dense(hidden[1], activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


# Which monitors run: none; the three cheap ones (GradientNormMonitor reads
# the recorded gradient norms, UpdateRatioMonitor compares weight copies,
# LearningRateMonitor reads the rate); all four (MomentMonitor adds
# statistics and histograms of the moments); all four with no reading during
# the run (what the per-step recording alone costs).
CONFIGS = ("none", "gradient+update+lr", "all four", "all four, no reading")


def _monitors(config: str, log_dir: str) -> list[keras.callbacks.Callback]:
    if config == "none":
        return []
    every = 10**9 if config == "all four, no reading" else EVERY_N_STEPS
    monitors = [
        GradientNormMonitor(every, log_dir),
        LearningRateMonitor(every, log_dir),
        UpdateRatioMonitor(every, log_dir),
    ]
    if config != "gradient+update+lr":
        monitors.append(MomentMonitor(every, log_dir))
    return monitors


def run_once(
    make_optimizer, config: str, x: np.ndarray, y: np.ndarray, hidden: tuple[int, int]
) -> tuple[float, float, float]:
    """(steady seconds per step, total seconds, reading seconds per step) of one `fit`."""
    model = _model(make_optimizer(), hidden)
    model.fit(x[: 4 * BATCH_SIZE], y[: 4 * BATCH_SIZE], batch_size=BATCH_SIZE, verbose=0)
    clock = _Clock()
    with tempfile.TemporaryDirectory() as log_dir, _ReadingClock() as readings:
        callbacks = [clock, *_monitors(config, log_dir)]
        start = time.perf_counter()
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
    steps = len(x) // BATCH_SIZE
    # Readings after the first round (which compiles the statistics), per step.
    later = readings.seconds[len(_monitors(config, log_dir)):] + readings.copy_seconds[1:]
    per_step = sum(later) / max(1, steps - EVERY_N_STEPS)
    return (clock.end - clock.steady_start) / (steps - STEADY_FROM), clock.end - start, per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", choices=sorted(MODELS), default="small")
    args = parser.parse_args()
    hidden = MODELS[args.model]
    if args.steps < STEADY_FROM + 2 * EVERY_N_STEPS:
        raise ValueError(f"--steps must be >= {STEADY_FROM + 2 * EVERY_N_STEPS}, got {args.steps}")
    backend = keras.backend.backend()
    x, y = _data(args.steps)

    rows = []
    for name, (plain, monitored) in OPTIMIZERS.items():
        results: dict[str, list[tuple[float, float, float]]] = {c: [] for c in CONFIGS}
        for repeat in range(args.repeats):
            # Alternate the order, so drifting machine load hits every configuration alike.
            for config in CONFIGS if repeat % 2 == 0 else CONFIGS[::-1]:
                make = plain if config == "none" else monitored
                results[config].append(run_once(make, config, x, y, hidden))
        # The fastest repeat: on a shared machine other load only ever slows a run down.
        steady = {c: min(r[0] for r in results[c]) for c in CONFIGS}
        total = {c: min(r[1] for r in results[c]) for c in CONFIGS}
        reading = {c: min(r[2] for r in results[c]) for c in CONFIGS}
        for config in CONFIGS:
            overhead = 100.0 * (steady[config] / steady["none"] - 1.0)
            share = 100.0 * reading[config] / steady["none"]
            rows.append(
                f"| {name} | {config} | {1e3 * steady[config]:.3f} | "
                f"{'' if config == 'none' else f'{overhead:+.1f}%'} | "
                f"{'' if config == 'none' else f'{1e3 * reading[config]:.3f} ({share:.1f}%)'} | "
                f"{total[config]:.2f} |"
            )
            print(rows[-1], flush=True)

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    setup = (
        f"`fit` of a 64-{hidden[0]}-{hidden[1]}-10 MLP "
        f"({_model(keras.optimizers.SGD(), hidden).count_params():,} parameters), batch {BATCH_SIZE}, {args.steps} steps; monitors at "
        f"`every_n_steps={EVERY_N_STEPS}` with TensorBoard output vs no callbacks. Fastest of "
        f"{args.repeats} interleaved repeats; steady = ms/step from step {STEADY_FROM} to the end."
    )
    machine = (
        f"keras {keras.__version__}, backend {backend}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average at the end {load}."
    )
    header = (
        "| optimizer | monitors | steady ms/step | overhead | readings ms/step "
        "(% of plain step) | total s |"
    )
    table = "\n".join(
        [f"# Monitor overhead: {backend}", "", setup, "", machine, "", header, "|---|---|---|---|---|---|", *rows, ""]
    )
    print()
    print(table)
    suffix = "" if args.model == "small" else f"_{args.model}"
    out = Path(__file__).parent / "results" / f"monitor_overhead_{backend}{suffix}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(table)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
