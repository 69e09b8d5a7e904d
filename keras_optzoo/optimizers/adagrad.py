"""Adagrad: per-coordinate step sizes from the accumulated squared gradients."""

from __future__ import annotations

from keras import ops

from keras_optzoo.optimizers.base import (
    ZooOptimizer,
    register,
    validate_non_negative,
    validate_positive,
)


@register("adagrad")
class Adagrad(ZooOptimizer):
    """Adagrad (Duchi, Hazan & Singer, 2011).

        G ← G + g²
        θ ← θ − η·g / (√G + ε)          (epsilon_inside_sqrt=False: paper, torch.optim)
        θ ← θ − η·g / √(G + ε)          (epsilon_inside_sqrt=True: keras core)

    keras core's Adagrad is `epsilon_inside_sqrt=True, initial_accumulator_value=0.1,
    epsilon=1e-7`; torch.optim.Adagrad (with `lr_decay=0`) is the default form.

    Args:
        learning_rate: float >= 0 or a schedule. Defaults to 0.01.
        initial_accumulator_value: G's starting value, >= 0. Defaults to 0.
        epsilon: ε > 0, the paper's δ. Defaults to 1e-10.
        epsilon_inside_sqrt: where ε goes, see above. Defaults to False.
        **kwargs: Keras optimizer arguments and `nonfinite`.

    Slots: `accumulator` (G).

    References:
        Duchi, Hazan & Singer, 2011, "Adaptive Subgradient Methods for Online
        Learning and Stochastic Optimization", JMLR 12, Fig. 1 (diagonal form).
    """

    first_moment_slot, second_moment_slot = None, "accumulator"

    def __init__(
        self,
        learning_rate=0.01,
        initial_accumulator_value: float = 0.0,
        epsilon: float = 1e-10,
        epsilon_inside_sqrt: bool = False,
        name: str = "adagrad",
        **kwargs,
    ):
        validate_non_negative("initial_accumulator_value", initial_accumulator_value)
        validate_positive("epsilon", epsilon)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.set_hyperparameters(
            initial_accumulator_value=initial_accumulator_value,
            epsilon=epsilon,
            epsilon_inside_sqrt=bool(epsilon_inside_sqrt),
        )

    def slot_initial_values(self):
        return {"accumulator": self.initial_accumulator_value}

    def update(self, g, theta, slots, lr, t):
        G = slots["accumulator"] + g * g
        if self.epsilon_inside_sqrt:
            denominator = ops.sqrt(G + self.epsilon)
        else:
            denominator = ops.sqrt(G) + self.epsilon
        return theta - lr * g / denominator, {"accumulator": G}
