"""keras_optzoo: a zoo of verified optimizers for Keras 3 (TensorFlow, JAX, PyTorch)."""

from keras_optzoo import callbacks, optimizers, schedules
from keras_optzoo.optimizers.registry import get

__version__ = "0.1.0"

__all__ = ["__version__", "callbacks", "get", "optimizers", "schedules"]
