"""The memory roofline an optimizer step is held against, measured in-process.

An optimizer step is an elementwise pass over parameters, gradients and slots,
so its ceiling is the rate at which the device streams memory. We measure it
with the simplest such pass over one buffer of as many fp32 elements as the
model has parameters: `x ← x + 1`, updated in place (donated on JAX, a variable
under XLA on TensorFlow, `add_` on torch), which reads and writes every byte
once: `2·4·N` bytes per pass. In place, like the optimizers, because a fresh
output buffer would be page-faulted in on every call on a CPU and understate
the bandwidth; `+ 1` rather than a copy because XLA may elide a copy or an
addition of zero. A fraction of roofline is then
`(bytes per step / step time) / (bytes per pass / pass time)`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_optzoo.bench.contenders import torch_device, torch_sync


class InPlaceIncrement:
    """Runner interface (`step`, `sync`, `params`) over one buffer of `size`
    float32 elements; `step` ignores its gradients."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.bytes_per_pass = 2 * 4 * size
        self.backend = keras.backend.backend()
        if self.backend == "jax":
            import jax
            import jax.numpy as jnp

            self._buffer = jnp.zeros((size,), dtype="float32")
            self._increment = jax.jit(lambda x: x + 1.0, donate_argnums=0)
        elif self.backend == "tensorflow":
            import tensorflow as tf

            self._buffer = tf.Variable(tf.zeros((size,), dtype="float32"))
            buffer = self._buffer

            def increment() -> None:
                buffer.assign(buffer + 1.0, read_value=False)

            self._increment = tf.function(increment, jit_compile=True)
        else:
            import torch

            self._buffer = torch.zeros((size,), dtype=torch.float32, device=torch_device())

    def step(self, grads: Any = None) -> None:
        if self.backend == "jax":
            self._buffer = self._increment(self._buffer)
        elif self.backend == "tensorflow":
            self._increment()
        else:
            self._buffer.add_(1.0)

    def sync(self) -> None:
        if self.backend == "jax":
            self._buffer.block_until_ready()
        elif self.backend == "tensorflow":
            self._buffer[:1].numpy()
        else:
            torch_sync()

    def params(self) -> list[np.ndarray]:
        return [np.asarray(keras.ops.convert_to_numpy(self._buffer))]
