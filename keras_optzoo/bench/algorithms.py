"""Which implementation of each algorithm races which, at which convention.

Every algorithm gets one set of hyperparameters, spelled out for every
contender (no contender runs on its library's defaults), and a pairing per peer
library. A pairing names the keras_optzoo arguments under which our optimizer
computes exactly the peer's update (the convention switches documented in each
optimizer's docstring and proven in tests/test_peers.py), so that the
benchmark's correctness guard can hold the two to the same trajectory. A
convention changes where an epsilon sits or how a constant is scheduled, never
how many tensors are read or written, so the step cost is the same.

Bytes moved per fp32 parameter and optimizer step (read + write), counted from
the algorithm, not measured:

| algorithm | reads                  | writes        | bytes |
|-----------|------------------------|---------------|-------|
| sgd       | θ, g                   | θ             | 12    |
| momentum  | θ, g, velocity         | θ, velocity   | 20    |
| nesterov  | θ, g, velocity         | θ, velocity   | 20    |
| adagrad   | θ, g, G                | θ, G          | 20    |
| rmsprop   | θ, g, v                | θ, v          | 20    |
| lion      | θ, g, m                | θ, m          | 20    |
| adam      | θ, g, m, v             | θ, m, v       | 28    |
| adamw     | θ, g, m, v             | θ, m, v       | 28    |
| nadam     | θ, g, m, v             | θ, m, v       | 28    |
| radam     | θ, g, m, v             | θ, m, v       | 28    |
| adabelief | θ, g, m, s             | θ, m, s       | 28    |
| adadelta  | θ, g, E[g²], E[Δθ²]    | θ, E[g²], E[Δθ²] | 28 |
| yogi      | θ, g, m, v             | θ, m, v       | 28    |
| amsgrad   | θ, g, m, v, v_max      | θ, m, v, v_max | 36   |

i.e. `4·(3 + 2k)` bytes for `k` slots per parameter: the parameter, the
gradient and every slot are read once, and the parameter and every slot
written once. Weight decay adds no traffic (θ is read anyway). A registered
name missing from the table is counted with this formula from its slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BYTES_PER_PARAMETER: dict[str, int] = {
    "sgd": 12,
    "momentum": 20,
    "nesterov": 20,
    "adagrad": 20,
    "rmsprop": 20,
    "lion": 20,
    "adam": 28,
    "adamw": 28,
    "nadam": 28,
    "radam": 28,
    "adabelief": 28,
    "adadelta": 28,
    "yogi": 28,
    "amsgrad": 36,
}

#: The algorithms keras core also has, plus AdaBelief: the default race.
DEFAULT_OPTIMIZERS = (
    "momentum",
    "adam",
    "adamw",
    "adagrad",
    "rmsprop",
    "adadelta",
    "nadam",
    "lion",
    "adabelief",
)


@dataclass(frozen=True)
class PeerCall:
    """A peer implementation as a call: `optax.adam(0.001, b1=0.9, ...)`.

    `build()` returns a Keras optimizer for keras core, an optax
    `GradientTransformation` for optax, and `(class_name, kwargs)` for
    torch.optim, whose optimizers need their parameters at construction.
    """

    library: str
    function: str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        if self.library == "torch.optim":
            return self.function, dict(self.kwargs)
        if self.library == "keras.optimizers":
            import keras

            return getattr(keras.optimizers, self.function)(*self.args, **self.kwargs)
        import optax

        return getattr(optax, self.function)(*self.args, **self.kwargs)

    def __str__(self) -> str:
        arguments = [repr(a) for a in self.args]
        arguments += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.library}.{self.function}({', '.join(arguments)})"


@dataclass(frozen=True)
class Pairing:
    """Our optimizer's convention that matches one peer, and the peer itself.

    Attributes:
        ours: keras_optzoo arguments added to the algorithm's hyperparameters.
        peer: the peer's call, every hyperparameter spelled out.
        convention: one line saying what the pairing fixes, for the report.
        exact: False when no convention of ours computes the peer's update;
            the race still runs (the cost is comparable) but the correctness
            guard's disagreement is expected and the report says why.
    """

    ours: dict[str, Any]
    peer: PeerCall
    convention: str
    exact: bool = True


@dataclass(frozen=True)
class Algorithm:
    """One registry name and its pairings with keras core, optax and torch.optim."""

    name: str
    hyperparameters: dict[str, Any]
    keras_core: Pairing | None = None
    optax: Pairing | None = None
    torch: Pairing | None = None
    pairings: dict[str, Pairing] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pairings = {"keras_core": self.keras_core, "optax": self.optax, "torch": self.torch}
        object.__setattr__(
            self, "pairings", {k: v for k, v in pairings.items() if v is not None}
        )

    def ours_kwargs(self, peer: str | None = None) -> dict[str, Any]:
        """Our arguments: the primary convention (keras core's where keras
        core has the algorithm, else the first peer's), or `peer`'s."""
        if peer is None:
            primary = next(iter(self.pairings.values()), None)
            return {**self.hyperparameters, **(primary.ours if primary else {})}
        return {**self.hyperparameters, **self.pairings[peer].ours}


def _keras(class_name: str, **kwargs: Any) -> PeerCall:
    return PeerCall("keras.optimizers", class_name, (), kwargs)


def _optax(function_name: str, *args: Any, **kwargs: Any) -> PeerCall:
    return PeerCall("optax", function_name, args, kwargs)


def _torch(class_name: str, **kwargs: Any) -> PeerCall:
    return PeerCall("torch.optim", class_name, (), kwargs)


_ADAM = {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}
_ADAM_KERAS = {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}
_ADAM_OPTAX = {"b1": 0.9, "b2": 0.999, "eps": 1e-8}
_ADAM_TORCH = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}
_EPSILON_HAT = "ε added to the un-debiased √v (ours epsilon_hat=True)"
_EPSILON_PAPER = "ε added to the debiased √v̂ (ours epsilon_hat=False, the paper's)"
_CONSTANT_LR = "velocity conventions coincide at a constant learning rate"

ALGORITHMS: dict[str, Algorithm] = {
    algorithm.name: algorithm
    for algorithm in (
        Algorithm(
            "sgd",
            {"learning_rate": 0.01},
            keras_core=Pairing({}, _keras("SGD", learning_rate=0.01), "θ ← θ − η·g"),
            optax=Pairing({}, _optax("sgd", 0.01), "θ ← θ − η·g"),
            torch=Pairing({}, _torch("SGD", lr=0.01), "θ ← θ − η·g"),
        ),
        Algorithm(
            "momentum",
            {"learning_rate": 0.01, "momentum": 0.9},
            keras_core=Pairing(
                {}, _keras("SGD", learning_rate=0.01, momentum=0.9), "lr inside the velocity, as ours"
            ),
            optax=Pairing({}, _optax("sgd", 0.01, momentum=0.9), _CONSTANT_LR),
            torch=Pairing({}, _torch("SGD", lr=0.01, momentum=0.9), _CONSTANT_LR),
        ),
        Algorithm(
            "nesterov",
            {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True},
            keras_core=Pairing(
                {},
                _keras("SGD", learning_rate=0.01, momentum=0.9, nesterov=True),
                "lr inside the velocity, as ours",
            ),
            optax=Pairing({}, _optax("sgd", 0.01, momentum=0.9, nesterov=True), _CONSTANT_LR),
            torch=Pairing({}, _torch("SGD", lr=0.01, momentum=0.9, nesterov=True), _CONSTANT_LR),
        ),
        Algorithm(
            "adam",
            _ADAM,
            keras_core=Pairing({"epsilon_hat": True}, _keras("Adam", **_ADAM_KERAS), _EPSILON_HAT),
            optax=Pairing({}, _optax("adam", 1e-3, **_ADAM_OPTAX), _EPSILON_PAPER),
            torch=Pairing({}, _torch("Adam", **_ADAM_TORCH), _EPSILON_PAPER),
        ),
        Algorithm(
            "amsgrad",
            _ADAM,
            keras_core=Pairing(
                {"epsilon_hat": True},
                _keras("Adam", **_ADAM_KERAS, amsgrad=True),
                _EPSILON_HAT + ", max before debiasing",
            ),
            optax=Pairing(
                {"debias_before_max": True},
                _optax("amsgrad", 1e-3, **_ADAM_OPTAX),
                _EPSILON_PAPER + ", max after debiasing (ours debias_before_max=True)",
            ),
            torch=Pairing(
                {}, _torch("Adam", **_ADAM_TORCH, amsgrad=True), _EPSILON_PAPER + ", max before debiasing"
            ),
        ),
        Algorithm(
            "adamw",
            {**_ADAM, "weight_decay": 0.01},
            keras_core=Pairing(
                {"epsilon_hat": True}, _keras("AdamW", **_ADAM_KERAS, weight_decay=0.01), _EPSILON_HAT
            ),
            optax=Pairing({}, _optax("adamw", 1e-3, **_ADAM_OPTAX, weight_decay=0.01), _EPSILON_PAPER),
            torch=Pairing({}, _torch("AdamW", **_ADAM_TORCH, weight_decay=0.01), _EPSILON_PAPER),
        ),
        Algorithm(
            "adagrad",
            {"learning_rate": 0.01, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
            keras_core=Pairing(
                {"epsilon_inside_sqrt": True},
                _keras("Adagrad", learning_rate=0.01, initial_accumulator_value=0.1, epsilon=1e-7),
                "ε inside the root (ours epsilon_inside_sqrt=True)",
            ),
            optax=Pairing(
                {"epsilon_inside_sqrt": True},
                _optax("adagrad", 0.01, initial_accumulator_value=0.1, eps=1e-7),
                "ε inside the root (ours epsilon_inside_sqrt=True)",
            ),
            torch=Pairing(
                {},
                _torch("Adagrad", lr=0.01, initial_accumulator_value=0.1, eps=1e-7),
                "ε outside the root (ours epsilon_inside_sqrt=False, the paper's)",
            ),
        ),
        Algorithm(
            "rmsprop",
            {"learning_rate": 1e-3, "rho": 0.9, "epsilon": 1e-7},
            keras_core=Pairing(
                {"epsilon_inside_sqrt": True},
                _keras("RMSprop", learning_rate=1e-3, rho=0.9, epsilon=1e-7),
                "ε inside the root (ours epsilon_inside_sqrt=True)",
            ),
            optax=Pairing(
                {"epsilon_inside_sqrt": True},
                _optax("rmsprop", 1e-3, decay=0.9, eps=1e-7, eps_in_sqrt=True),
                "ε inside the root (ours epsilon_inside_sqrt=True)",
            ),
            torch=Pairing(
                {},
                _torch("RMSprop", lr=1e-3, alpha=0.9, eps=1e-7),
                "ε outside the root (ours epsilon_inside_sqrt=False)",
            ),
        ),
        Algorithm(
            "adadelta",
            {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-6},
            keras_core=Pairing(
                {}, _keras("Adadelta", learning_rate=1.0, rho=0.95, epsilon=1e-6), "Zeiler's, η scaling Δθ"
            ),
            optax=Pairing({}, _optax("adadelta", 1.0, rho=0.95, eps=1e-6), "Zeiler's, η scaling Δθ"),
            torch=Pairing({}, _torch("Adadelta", lr=1.0, rho=0.95, eps=1e-6), "Zeiler's, η scaling Δθ"),
        ),
        Algorithm(
            "nadam",
            _ADAM,
            keras_core=Pairing(
                {"momentum_decay": 1.0},
                _keras("Nadam", **_ADAM_KERAS),
                "μ_t = β₁(1 − ½·0.96^t) (ours momentum_decay=1)",
            ),
            optax=Pairing(
                {"momentum_decay": 0.004},
                _optax("nadam", 1e-3, **_ADAM_OPTAX),
                "optax.nadam is Adam with a Nesterov step and no momentum schedule: "
                "same traffic, different math",
                exact=False,
            ),
            torch=Pairing(
                {"momentum_decay": 0.004},
                _torch("NAdam", **_ADAM_TORCH, momentum_decay=0.004),
                "μ_t = β₁(1 − ½·0.96^(0.004·t)) (ours momentum_decay=0.004)",
            ),
        ),
        Algorithm(
            "radam",
            _ADAM,
            optax=Pairing(
                {}, _optax("radam", 1e-3, **_ADAM_OPTAX, threshold=5.0), "rectification threshold 5"
            ),
        ),
        Algorithm(
            "lion",
            {"learning_rate": 1e-4, "beta_1": 0.9, "beta_2": 0.99},
            keras_core=Pairing(
                {}, _keras("Lion", learning_rate=1e-4, beta_1=0.9, beta_2=0.99), "Chen et al., Alg. 2"
            ),
            optax=Pairing(
                {}, _optax("lion", 1e-4, b1=0.9, b2=0.99, weight_decay=0.0), "Chen et al., Alg. 2"
            ),
        ),
        Algorithm(
            "adabelief",
            {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-16},
            optax=Pairing(
                {},
                _optax("adabelief", 1e-3, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16),
                "ε in s and beside √ŝ (optax eps=eps_root=ε)",
            ),
        ),
        Algorithm(
            "yogi",
            {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-3,
             "initial_accumulator_value": 1e-6},
            optax=Pairing(
                {"bias_correction": True},
                _optax("yogi", 0.01, b1=0.9, b2=0.999, eps=1e-3),
                "bias-corrected, m and v start at 1e-6 (ours bias_correction=True)",
            ),
        ),
    )
}


def algorithm(name: str) -> Algorithm:
    """The benchmark's entry for a registry name; names it does not know race
    alone, at their registry defaults."""
    return ALGORITHMS.get(name, Algorithm(name, {}))


def slot_count(name: str, kwargs: dict[str, Any] | None = None) -> int:
    """Slots per parameter of our optimizer `name`, counted from a built one."""
    import keras
    import numpy as np

    from keras_optzoo.optimizers import get

    optimizer = get(name, **(kwargs if kwargs is not None else algorithm(name).ours_kwargs()))
    # Two-dimensional: no optimizer-wide vector (the telemetry's) has its shape.
    variable = keras.Variable(np.zeros((3, 5), dtype="float32"))
    optimizer.build([variable])
    return sum(
        1 for slot in optimizer.variables if tuple(slot.shape) == tuple(variable.shape)
    )


def bytes_per_parameter(name: str, itemsize: int = 4) -> int:
    """Bytes an optimizer step moves per parameter of `itemsize` bytes.

    Args:
        name: a registry name.
        itemsize: bytes per element of parameters, gradients and slots.

    Returns:
        The documented count for known algorithms (scaled from fp32), else
        `itemsize·(3 + 2·slots)`.

    Example:
        >>> bytes_per_parameter("adam")
        28
    """
    if name in BYTES_PER_PARAMETER:
        return BYTES_PER_PARAMETER[name] * itemsize // 4
    return itemsize * (3 + 2 * slot_count(name))
