"""What the monitors cost: `fit` with the monitors at `every_n_steps=100` vs none.

Usage:
    KERAS_BACKEND=jax python benchmarks/monitor_overhead.py [--steps 2000] [--repeats 3] [--model large]

A digits-sized MLP (64-128-128-10, 26k parameters; with `--model large`
64-1024-512-10, 597k parameters; batch 32, synthetic data) is trained for `--steps` steps with no callbacks, with the three cheap
monitors (`GradientNormMonitor`, `UpdateRatioMonitor`, `LearningRateMonitor`,
which read the recorded telemetry), with all four (plus `MomentMonitor`,
which computes moment statistics and histograms on the device), and with all
but `UpdateRatioMonitor` (so the step records no update norms),
all writing TensorBoard files; for a keras_optzoo Adam and for keras core's
Adam (plain without monitors, wrapped in `Monitored` with them). Each run
starts from a model whose plain step is already compiled, as after a
previous `fit`.

Two numbers per run, each the median over `--repeats`:

  * steady ms/step: from step 150 to the end (the recorded step and the
    readings every 100 steps, after the one-time costs);
  * total s: the whole `fit`, which with monitors also pays once for tracing
    the step again with recording on and for compiling the statistics.

The overhead is the relative difference of the steady times. A markdown
table is printed and written to `benchmarks/results/monitor_overhead_<backend>.md`
(`..._<backend>_large.md` for the large model).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
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


# Which monitors run: none, the three that read the recorded telemetry and the
# learning rate (cheap reads), all four (MomentMonitor adds statistics and
# histograms of the moments), or all but UpdateRatioMonitor (the step then
# records no update norms: on torch the fused step stays on).
CONFIGS = ("none", "gradient+update+lr", "all four", "all but update")


def _monitors(config: str, log_dir: str) -> list[keras.callbacks.Callback]:
    if config == "none":
        return []
    monitors = [GradientNormMonitor(EVERY_N_STEPS, log_dir), LearningRateMonitor(EVERY_N_STEPS, log_dir)]
    if config != "all but update":
        monitors.append(UpdateRatioMonitor(EVERY_N_STEPS, log_dir))
    if config != "gradient+update+lr":
        monitors.append(MomentMonitor(EVERY_N_STEPS, log_dir))
    return monitors


def run_once(
    make_optimizer, config: str, x: np.ndarray, y: np.ndarray, hidden: tuple[int, int]
) -> tuple[float, float]:
    """(steady seconds per step, total seconds) of one `fit`."""
    model = _model(make_optimizer(), hidden)
    model.fit(x[: 4 * BATCH_SIZE], y[: 4 * BATCH_SIZE], batch_size=BATCH_SIZE, verbose=0)
    clock = _Clock()
    with tempfile.TemporaryDirectory() as log_dir:
        callbacks = [clock, *_monitors(config, log_dir)]
        start = time.perf_counter()
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
    steps = len(x) // BATCH_SIZE
    return (clock.end - clock.steady_start) / (steps - STEADY_FROM), clock.end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", choices=sorted(MODELS), default="small")
    args = parser.parse_args()
    hidden = MODELS[args.model]
    if args.steps < STEADY_FROM + 2 * EVERY_N_STEPS:
        raise ValueError(f"--steps must be >= {STEADY_FROM + 2 * EVERY_N_STEPS}, got {args.steps}")
    backend = keras.backend.backend()
    x, y = _data(args.steps)

    rows = []
    for name, (plain, monitored) in OPTIMIZERS.items():
        results: dict[str, list[tuple[float, float]]] = {c: [] for c in CONFIGS}
        for repeat in range(args.repeats):
            # Alternate the order, so drifting machine load hits every configuration alike.
            for config in CONFIGS if repeat % 2 == 0 else CONFIGS[::-1]:
                make = plain if config == "none" else monitored
                results[config].append(run_once(make, config, x, y, hidden))
        steady = {c: statistics.median(r[0] for r in results[c]) for c in CONFIGS}
        total = {c: statistics.median(r[1] for r in results[c]) for c in CONFIGS}
        for config in CONFIGS:
            overhead = 100.0 * (steady[config] / steady["none"] - 1.0)
            rows.append(
                f"| {name} | {config} | {1e3 * steady[config]:.3f} | "
                f"{'' if config == 'none' else f'{overhead:+.1f}%'} | {total[config]:.2f} |"
            )
            print(rows[-1], flush=True)

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    setup = (
        f"`fit` of a 64-{hidden[0]}-{hidden[1]}-10 MLP "
        f"({_model(keras.optimizers.SGD(), hidden).count_params():,} parameters), batch {BATCH_SIZE}, {args.steps} steps; monitors at "
        f"`every_n_steps={EVERY_N_STEPS}` with TensorBoard output vs no callbacks. Median of "
        f"{args.repeats} repeats; steady = ms/step from step {STEADY_FROM} to the end."
    )
    machine = (
        f"keras {keras.__version__}, backend {backend}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average at the end {load}."
    )
    header = "| optimizer | monitors | steady ms/step | overhead | total s |"
    table = "\n".join(
        [f"# Monitor overhead: {backend}", "", setup, "", machine, "", header, "|---|---|---|---|---|", *rows, ""]
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
