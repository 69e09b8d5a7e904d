"""Scale a learning rate tuned at one batch size to another."""

from __future__ import annotations

import math

from keras_optzoo.optimizers.base import validate_choice, validate_non_negative
from keras_optzoo.schedules.base import validate_steps

SCALING_RULES = ("linear", "sqrt")


def scale_learning_rate(
    base_learning_rate: float,
    batch_size: int,
    base_batch_size: int = 256,
    rule: str = "linear",
) -> float:
    """The learning rate for `batch_size`, given one tuned at `base_batch_size`.

        linear:  η = η_base·B/B_base            (Goyal et al., 2017)
        sqrt:    η = η_base·√(B/B_base)         (Krizhevsky, 2014; Hoffer et al., 2017)

    The linear rule keeps the expected update per epoch when the batch grows,
    and holds in practice together with a warmup (see `Warmup`) up to batch
    sizes of about 8k on ImageNet; the square-root rule keeps the variance of
    the update per sample constant and is the usual choice for adaptive
    optimizers.

    Args:
        base_learning_rate: `η_base >= 0`, tuned at `base_batch_size`.
        batch_size: `B`, the new batch size, integer >= 1.
        base_batch_size: `B_base`, integer >= 1. Defaults to 256.
        rule: `"linear"` (default) or `"sqrt"`.

    Returns:
        The scaled learning rate, a float.

    Example:
    ```python
    lr = oz.schedules.scale_learning_rate(0.1, batch_size=8192)   # 3.2
    ```

    References:
        Goyal et al., 2017, "Accurate, Large Minibatch SGD: Training ImageNet
        in 1 Hour", Sec. 2.1; Krizhevsky, 2014, "One weird trick for
        parallelizing convolutional neural networks", arXiv:1404.5997;
        Hoffer, Hubara & Soudry, 2017, "Train longer, generalize better:
        closing the generalization gap in large batch training of neural
        networks", NeurIPS.
    """
    validate_non_negative("base_learning_rate", base_learning_rate)
    validate_steps("batch_size", batch_size, 1)
    validate_steps("base_batch_size", base_batch_size, 1)
    validate_choice("rule", rule, SCALING_RULES)
    ratio = batch_size / base_batch_size
    return float(base_learning_rate * (ratio if rule == "linear" else math.sqrt(ratio)))
