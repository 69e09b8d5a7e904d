"""Two-dimensional test functions for `optzoo landscape`.

Each function is written once over an array namespace `xp` (`numpy` or
`keras.ops`), with its analytic gradient: NumPy draws the contours and checks
the gradients in float64, `keras.ops` feeds the optimizers inside the compiled
loop on any backend. Each `Surface` also carries what the landscape needs to
judge a run (its minima or its escape criterion, a tolerance), a common start,
plot bounds, and learning rates chosen so that the textbook behaviours show.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

GOALS = ("minimum", "escape")


@dataclass(frozen=True)
class Surface:
    """A 2-D test function and how to run optimizers on it.

    Attributes:
        name: the `--functions` name.
        formula: the function as plain text, for plot titles.
        value: `(x, y, xp) -> f(x, y)`, with `xp` `numpy` or `keras.ops`.
        gradient: `(x, y, xp) -> (df/dx, df/dy)`.
        start: the point every optimizer starts from.
        bounds: `((x_min, x_max), (y_min, y_max))` of the plot.
        goal: `"minimum"` (reach one of `minima` and stay within `tolerance`)
            or `"escape"` (reach `|y| > escape_radius`; for a saddle).
        minima: the global minimizers, for `goal="minimum"`.
        minimum_value: f at the minimizers.
        tolerance: the distance to a minimizer that counts as reached.
        escape_radius: for `goal="escape"`.
        learning_rates: per registry name, the learning rate used unless the
            optimizer spec gives one.
        default_learning_rate: for names missing from `learning_rates`.
        log_levels: contour levels spaced logarithmically in f - min f.
    """

    name: str
    formula: str
    value: Callable[..., Any]
    gradient: Callable[..., tuple[Any, Any]]
    start: tuple[float, float]
    bounds: tuple[tuple[float, float], tuple[float, float]]
    goal: str = "minimum"
    minima: tuple[tuple[float, float], ...] = ()
    minimum_value: float | None = None
    tolerance: float = 1e-2
    escape_radius: float | None = None
    learning_rates: Mapping[str, float] = field(default_factory=dict)
    default_learning_rate: float = 1e-2
    log_levels: bool = False

    def __post_init__(self) -> None:
        if self.goal not in GOALS:
            raise ValueError(f"goal must be one of {GOALS}, got {self.goal!r}")
        if self.goal == "minimum" and not self.minima:
            raise ValueError(f"surface {self.name!r}: goal 'minimum' needs minima")
        if self.goal == "escape" and not self.escape_radius:
            raise ValueError(f"surface {self.name!r}: goal 'escape' needs escape_radius")
        object.__setattr__(self, "learning_rates", MappingProxyType(dict(self.learning_rates)))

    def learning_rate(self, optimizer_name: str) -> float:
        """The learning rate this surface uses for a registry name."""
        return self.learning_rates.get(optimizer_name, self.default_learning_rate)


# -- the functions ----------------------------------------------------------


def _rosenbrock(x, y, xp):
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def _rosenbrock_gradient(x, y, xp):
    ridge = y - x * x
    return -2.0 * (1.0 - x) - 400.0 * x * ridge, 200.0 * ridge


def _beale_terms(x, y):
    return (1.5 - x + x * y, 2.25 - x + x * y * y, 2.625 - x + x * y * y * y)


def _beale(x, y, xp):
    a, b, c = _beale_terms(x, y)
    return a * a + b * b + c * c


def _beale_gradient(x, y, xp):
    a, b, c = _beale_terms(x, y)
    dx = 2.0 * (a * (y - 1.0) + b * (y * y - 1.0) + c * (y * y * y - 1.0))
    dy = 2.0 * x * (a + 2.0 * b * y + 3.0 * c * y * y)
    return dx, dy


def _saddle(x, y, xp):
    return x * x - y * y


def _saddle_gradient(x, y, xp):
    return 2.0 * x, -2.0 * y


# The ravine's curvatures: 0.1 along the valley floor (x), 10 across it (y),
# a condition number of 100.
RAVINE_CURVATURES = (0.1, 10.0)


def _ravine(x, y, xp):
    return 0.5 * (RAVINE_CURVATURES[0] * x * x + RAVINE_CURVATURES[1] * y * y)


def _ravine_gradient(x, y, xp):
    return RAVINE_CURVATURES[0] * x, RAVINE_CURVATURES[1] * y


_TWO_PI = 2.0 * math.pi


def _rastrigin(x, y, xp):
    return (
        20.0
        + x * x - 10.0 * xp.cos(_TWO_PI * x)
        + y * y - 10.0 * xp.cos(_TWO_PI * y)
    )


def _rastrigin_gradient(x, y, xp):
    return (
        2.0 * x + 10.0 * _TWO_PI * xp.sin(_TWO_PI * x),
        2.0 * y + 10.0 * _TWO_PI * xp.sin(_TWO_PI * y),
    )


# Learning rates per registry name, chosen so that each picture shows the
# textbook behaviour (listed in `landscape`'s docstring); names missing
# from a table (adabelief, lion, ...) get Adam's rate. Momentum SGD keeps the
# rate inside the velocity, so its effective step is lr / (1 - 0.9), ten times
# plain SGD's at the same rate.
SURFACES: dict[str, Surface] = {
    surface.name: surface
    for surface in (
        Surface(
            name="rosenbrock",
            formula="(1 - x)² + 100 (y - x²)²",
            value=_rosenbrock,
            gradient=_rosenbrock_gradient,
            start=(-1.2, 1.0),
            bounds=((-2.0, 2.0), (-1.0, 3.0)),
            minima=((1.0, 1.0),),
            minimum_value=0.0,
            tolerance=1e-2,
            learning_rates={
                "sgd": 1e-3,
                "momentum": 1e-3,
                "nesterov": 1e-3,
                "adagrad": 0.3,
                "adadelta": 1.0,
                "rmsprop": 3e-3,
                "adam": 5e-2,
            },
            default_learning_rate=5e-2,
            log_levels=True,
        ),
        Surface(
            name="beale",
            formula="(1.5 - x + xy)² + (2.25 - x + xy²)² + (2.625 - x + xy³)²",
            value=_beale,
            gradient=_beale_gradient,
            start=(1.0, 1.5),
            bounds=((-1.0, 4.5), (-2.0, 2.5)),
            minima=((3.0, 0.5),),
            minimum_value=0.0,
            tolerance=1e-2,
            learning_rates={
                "sgd": 3e-2,
                "momentum": 3e-3,
                "nesterov": 3e-3,
                "adagrad": 0.3,
                "adadelta": 1.0,
                "rmsprop": 1e-2,
                "adam": 0.1,
            },
            default_learning_rate=0.1,
            log_levels=True,
        ),
        Surface(
            name="saddle",
            formula="x² - y²",
            value=_saddle,
            gradient=_saddle_gradient,
            start=(1.0, 1e-3),
            bounds=((-1.5, 1.5), (-1.5, 1.5)),
            goal="escape",
            escape_radius=1.0,
            learning_rates={
                "sgd": 1e-2,
                "momentum": 1e-3,
                "nesterov": 1e-3,
                "adagrad": 1e-2,
                "adadelta": 1.0,
                "rmsprop": 1e-2,
                "adam": 1e-2,
            },
            default_learning_rate=1e-2,
        ),
        Surface(
            name="ravine",
            formula="(0.1 x² + 10 y²) / 2",
            value=_ravine,
            gradient=_ravine_gradient,
            start=(-8.0, 1.0),
            bounds=((-9.0, 3.0), (-1.2, 1.2)),
            minima=((0.0, 0.0),),
            minimum_value=0.0,
            tolerance=1e-2,
            learning_rates={
                "sgd": 0.19,
                "momentum": 5e-2,
                "nesterov": 5e-2,
                "adagrad": 1.0,
                "adadelta": 1.0,
                "rmsprop": 1e-2,
                "adam": 0.1,
            },
            default_learning_rate=0.1,
            log_levels=True,
        ),
        Surface(
            name="rastrigin",
            formula="20 + x² - 10 cos 2πx + y² - 10 cos 2πy",
            value=_rastrigin,
            gradient=_rastrigin_gradient,
            start=(-3.2, 2.8),
            bounds=((-4.0, 1.0), (-1.0, 4.0)),
            minima=((0.0, 0.0),),
            minimum_value=0.0,
            tolerance=1e-2,
            learning_rates={
                "sgd": 1e-3,
                "momentum": 1e-3,
                "nesterov": 1e-3,
                "adagrad": 0.1,
                "adadelta": 1.0,
                "rmsprop": 1e-2,
                "adam": 0.1,
            },
            default_learning_rate=0.1,
        ),
    )
}


def get_surface(name: str) -> Surface:
    """The `Surface` registered under `name`.

    Args:
        name: one of `SURFACES` (`rosenbrock`, `beale`, `saddle`, `ravine`,
            `rastrigin`).

    Returns:
        The `Surface`.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    key = name.strip().lower()
    if key not in SURFACES:
        raise ValueError(
            f"unknown function {name!r}; known functions are: {', '.join(SURFACES)}"
        )
    return SURFACES[key]
