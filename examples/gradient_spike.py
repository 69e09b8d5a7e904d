"""Catch a gradient spike: a corrupt batch in the middle of training digits.

    python examples/gradient_spike.py                       # TensorFlow backend
    KERAS_BACKEND=jax python examples/gradient_spike.py     # or jax, torch
    tensorboard --logdir logs/gradient_spike

An MLP learns scikit-learn's digits with AdamW and a warmup-cosine schedule.
At one step (`--spike-step`, default 150) the batch arrives with its inputs
multiplied by 50, as a broken preprocessing step would deliver it. The
monitors read the optimizer every 10 steps; the spike falls between two
readings, yet `GradientNormMonitor` reports the step it happened at, because
the optimizer keeps the largest gradient norm since the last reading.

In TensorBoard: Scalars `optimizer/grad_norm_max` shows the spike,
`optimizer/grad_norm` the sampled norm, `optimizer/update_ratio/*` the
per-layer update sizes, `optimizer/learning_rate` the schedule; Text
`optimizer/alerts` the alert; Histograms the moments and the log10 effective
learning rate. Takes a few seconds.
"""

from __future__ import annotations

import argparse
import logging

import keras
import numpy as np
from sklearn.datasets import load_digits

import keras_optzoo as oz

BATCH_SIZE = 32


def batches(x: np.ndarray, y: np.ndarray, spike_step: int, spike_scale: float):
    """Batches in a fixed order, forever; the `spike_step`-th one is corrupt."""
    step = 0
    while True:
        for start in range(0, len(x) - BATCH_SIZE + 1, BATCH_SIZE):
            step += 1
            inputs = x[start : start + BATCH_SIZE]
            if step == spike_step:
                inputs = inputs * spike_scale
            yield inputs, y[start : start + BATCH_SIZE]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log_dir", nargs="?", default="logs/gradient_spike")
    parser.add_argument("--spike-step", type=int, default=150)
    parser.add_argument("--spike-scale", type=float, default=50.0)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    steps_per_epoch = len(x) // BATCH_SIZE
    total_steps = steps_per_epoch * args.epochs

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu", name="hidden_1"),
            keras.layers.Dense(64, activation="relu", name="hidden_2"),
            keras.layers.Dense(10, name="logits"),
        ],
        name="mlp",
    )
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total_steps - 30, warmup_target=3e-3, warmup_steps=30
    )
    model.compile(
        optimizer=oz.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    gradients = oz.callbacks.GradientNormMonitor(every_n_steps=10, log_dir=args.log_dir)
    monitors = [
        gradients,
        oz.callbacks.UpdateRatioMonitor(every_n_steps=10, log_dir=args.log_dir),
        oz.callbacks.MomentMonitor(every_n_steps=10, log_dir=args.log_dir),
        oz.callbacks.LearningRateMonitor(every_n_steps=10, log_dir=args.log_dir),
    ]
    model.fit(
        batches(x, y, args.spike_step, args.spike_scale),
        steps_per_epoch=steps_per_epoch,
        epochs=args.epochs,
        verbose=2,
        callbacks=monitors,
    )

    print(f"\nTensorBoard logs: {args.log_dir}   (tensorboard --logdir {args.log_dir})")
    print(f"Alerts ({len(gradients.alerts)}):")
    for alert in gradients.alerts:
        print(f"  step {alert.step} [{alert.kind}] {alert.message}")
    readings = dict(gradients.history["grad_norm"])
    print(f"Typical gradient norm: {np.median(list(readings.values())):.3g}")


if __name__ == "__main__":
    main()
