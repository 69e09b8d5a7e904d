"""Step time of keras_optzoo optimizers against keras core's same algorithm.

Usage: KERAS_BACKEND=jax python benchmarks/base_overhead.py [--params 10e6] [--tensors 20]

Times `optimizer.apply` on the backend's compiled path (XLA via tf.function on
TensorFlow, jax.jit of stateless_apply on JAX, eager on torch) and prints the
median of repeated runs after warm-up. The full benchmark with optax and
torch.optim peers is `optzoo bench` (planned); this script answers only
"does the shared base cost anything against keras core?".
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import numpy as np

import keras_optzoo as oz

PAIRS = {
    "sgd-momentum": (lambda: oz.get("momentum"), lambda: keras.optimizers.SGD(momentum=0.9)),
    "adam": (lambda: oz.get("adam", epsilon_hat=True), lambda: keras.optimizers.Adam()),
    "adamw": (lambda: oz.get("adamw", epsilon_hat=True), lambda: keras.optimizers.AdamW(weight_decay=0.01)),
    "rmsprop": (lambda: oz.get("rmsprop", epsilon_inside_sqrt=True), lambda: keras.optimizers.RMSprop()),
    "lion": (lambda: oz.get("lion"), lambda: keras.optimizers.Lion()),
}


def make_step(optimizer, variables):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        apply = tf.function(lambda grads: optimizer.apply(grads, variables), jit_compile=True)
        return apply, lambda: float(variables[0].numpy()[0])
    if backend == "jax":
        import jax

        step = jax.jit(optimizer.stateless_apply, donate_argnums=(0, 2))
        state = {"opt": [v.value for v in optimizer.variables], "params": [v.value for v in variables]}

        def apply(grads):
            state["params"], state["opt"] = step(state["opt"], grads, state["params"])

        return apply, lambda: state["params"][0].block_until_ready()
    return (lambda grads: optimizer.apply(grads, variables)), lambda: float(variables[0].value[0])


def time_optimizer(optimizer, shapes, repeats: int) -> float:
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.standard_normal(s).astype("float32")) for s in shapes]
    grads = [keras.ops.convert_to_tensor(rng.standard_normal(s).astype("float32")) for s in shapes]
    optimizer.build(variables)
    apply, sync = make_step(optimizer, variables)
    for _ in range(3):
        apply(grads)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(5):
            apply(grads)
        sync()
        times.append((time.perf_counter() - start) / 5)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=float, default=10e6)
    parser.add_argument("--tensors", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    per_tensor = int(args.params) // args.tensors
    shapes = [(per_tensor,)] * args.tensors
    print(f"backend={keras.backend.backend()} params={int(args.params):,} tensors={args.tensors}")
    print("| algorithm | keras_optzoo ms | keras core ms | core/zoo |\n|---|---|---|---|")
    for name, (ours, core) in PAIRS.items():
        t_ours = time_optimizer(ours(), shapes, args.repeats)
        t_core = time_optimizer(core(), shapes, args.repeats)
        print(f"| {name} | {t_ours * 1e3:.2f} | {t_core * 1e3:.2f} | {t_core / t_ours:.2f} |", flush=True)


if __name__ == "__main__":
    main()
