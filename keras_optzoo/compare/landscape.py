"""`optzoo landscape`: optimizer trajectories on 2-D test functions.

Every chosen optimizer starts from the same point of each function and runs
for `--steps` steps on a `keras.Variable` of shape (2,), fed the function's
analytic gradient. The real optimizer does the update (`optimizer.apply`, or
`stateless_apply` on JAX), so the paths are those of the code users train
with. The whole run is one compiled loop on TensorFlow and JAX; Torch runs it
eagerly.

Outputs in `--out`: `landscape_<function>.png` (contours and every path),
`landscape.csv` and `landscape.md` (steps to the minimum, final point and
value per function and optimizer).

With the default learning rates (`functions.SURFACES`) the pictures show the
textbook behaviours, and `tests/test_landscape.py` checks each in numbers:
plain SGD zig-zags across the ravine (its step is near the stability limit
of the steep direction), heavy-ball momentum overshoots the minimum along the
valley and keeps oscillating across it, Nesterov momentum damps both,
Adagrad's effective step only shrinks (it leaves the saddle last), Adam and
RMSprop leave the saddle several times faster than SGD because their step does
not scale with the tiny gradient there, and on Rastrigin every method stops in
the local minimum next to the start.
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keras_optzoo.cli import positive_float, positive_int
from keras_optzoo.compare.functions import SURFACES, Surface, get_surface
from keras_optzoo.compare.specs import OptimizerSpec, parse_optimizer_specs

DEFAULT_OPTIMIZERS = "sgd,momentum,nesterov,adagrad,rmsprop,adam"
DEFAULT_STEPS = 1500
CSV_FIELDS = (
    "function",
    "optimizer",
    "hyperparameters",
    "status",
    "steps",
    "final_x",
    "final_y",
    "final_value",
)


@dataclass
class LandscapeRun:
    """One optimizer's run on one function.

    Attributes:
        function: the surface's name.
        optimizer: the spec's label (`"adam"`, `"adam:beta_1=0.8"`).
        hyperparameters: the arguments the optimizer was built with,
            learning rate included.
        path: `(n + 1, 2)` float64 points, the start first. Ends early at the
            escape step of an escape goal or before the first non-finite point.
        status: `"reached"`, `"escaped"`, `"not reached"` or `"diverged"`.
        steps: the step count at which the goal was met (for a minimum: from
            then on the path stays within the tolerance), else None.
        final_value: f at the path's last point.
    """

    function: str
    optimizer: str
    hyperparameters: dict[str, Any]
    path: np.ndarray
    status: str
    steps: int | None
    final_value: float

    @property
    def final_point(self) -> tuple[float, float]:
        return float(self.path[-1, 0]), float(self.path[-1, 1])


# -- running an optimizer ------------------------------------------------------


def trajectory(
    optimizer: Any,
    surface: Surface,
    steps: int,
    start: tuple[float, float] | None = None,
) -> np.ndarray:
    """The points an optimizer visits on a surface.

    Args:
        optimizer: an unbuilt Keras optimizer (keras_optzoo's or keras core's).
        surface: the function, from `keras_optzoo.compare.functions`.
        steps: the number of optimizer steps, >= 1.
        start: the first point; defaults to `surface.start`.

    Returns:
        A `(steps + 1, 2)` float64 array: the start, then the point after each
        step (float32 arithmetic, as the optimizer runs it). Points past a
        divergence are inf or NaN.

    Example:
        >>> path = trajectory(keras_optzoo.get("adam", learning_rate=0.05),
        ...                   get_surface("rosenbrock"), steps=300)
    """
    import keras

    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    start = surface.start if start is None else start
    variable = keras.Variable(np.asarray(start, dtype="float32"), name="point")
    optimizer.build([variable])
    run = {"tensorflow": _run_tensorflow, "jax": _run_jax}.get(
        keras.backend.backend(), _run_eager
    )
    points = np.asarray(run(optimizer, variable, surface, steps), dtype=np.float64)
    return np.concatenate([np.asarray([start], dtype=np.float64), points])


def _gradient(surface: Surface, point):
    from keras import ops

    gx, gy = surface.gradient(point[0], point[1], ops)
    return ops.stack([gx, gy])


def _run_tensorflow(optimizer, variable, surface, steps):
    import tensorflow as tf

    @tf.function
    def run():
        points = tf.TensorArray(tf.float32, size=steps)
        for i in tf.range(steps):
            optimizer.apply([_gradient(surface, variable.value)], [variable])
            points = points.write(i, variable.value)
        return points.stack()

    return run().numpy()


def _run_jax(optimizer, variable, surface, steps):
    import jax

    def body(i, carry):
        optimizer_values, point, points = carry
        (point,), optimizer_values = optimizer.stateless_apply(
            optimizer_values, [_gradient(surface, point)], [point]
        )
        return optimizer_values, point, points.at[i].set(point)

    @jax.jit
    def run(optimizer_values, point):
        points = jax.numpy.zeros((steps, 2), point.dtype)
        return jax.lax.fori_loop(0, steps, body, (optimizer_values, point, points))[2]

    return run([v.value for v in optimizer.variables], variable.value)


def _run_eager(optimizer, variable, surface, steps):
    import torch
    from keras import ops

    points = []
    # The gradient is analytic: no autograd graph is needed.
    with torch.no_grad():
        for _ in range(steps):
            optimizer.apply([_gradient(surface, variable.value)], [variable])
            points.append(ops.convert_to_numpy(variable.value))
    return np.stack(points)


def steps_to_goal(path: np.ndarray, surface: Surface, tolerance: float | None = None) -> int | None:
    """The step at which a path meets its surface's goal, or None.

    Args:
        path: `(n + 1, 2)` points, `path[t]` after `t` steps.
        surface: the function it ran on.
        tolerance: overrides `surface.tolerance` for a minimum goal.

    Returns:
        For a minimum: the first step `t` such that `path[t:]` all lie within
        the tolerance of a minimizer (a path that passes through and leaves
        does not count). For an escape: the first step with
        `|y| > escape_radius`. None when the goal is not met.
    """
    finite = np.all(np.isfinite(path), axis=1)
    if surface.goal == "escape":
        met = finite & (np.abs(path[:, 1]) > surface.escape_radius)
        hits = np.flatnonzero(met)
        return int(hits[0]) if hits.size else None
    tolerance = surface.tolerance if tolerance is None else tolerance
    distance = np.min(
        [np.hypot(path[:, 0] - mx, path[:, 1] - my) for mx, my in surface.minima], axis=0
    )
    within = finite & (distance <= tolerance)
    if not within[-1]:
        return None
    outside = np.flatnonzero(~within)
    return int(outside[-1] + 1) if outside.size else 0


def build_optimizer(spec: OptimizerSpec, surface: Surface) -> tuple[Any, dict[str, Any]]:
    """The optimizer a spec names, at the surface's learning rate unless the
    spec gives one.

    Returns:
        `(optimizer, hyperparameters)`, the latter with the learning rate.

    Raises:
        ValueError: for invalid or unknown hyperparameters.
    """
    import keras_optzoo

    hyperparameters = {"learning_rate": surface.learning_rate(spec.name), **spec.hyperparameters}
    try:
        optimizer = keras_optzoo.get(spec.name, **hyperparameters)
    except (TypeError, ValueError) as error:
        raise ValueError(f"optimizer spec {spec.label!r}: {error}") from None
    return optimizer, hyperparameters


def run_one(
    spec: OptimizerSpec,
    surface: Surface,
    steps: int = DEFAULT_STEPS,
    tolerance: float | None = None,
) -> LandscapeRun:
    """Run one optimizer spec on one surface and judge the path.

    Args:
        spec: the optimizer; a learning rate in it overrides the surface's.
        surface: the function.
        steps: optimizer steps, >= 1.
        tolerance: overrides `surface.tolerance` for a minimum goal.

    Returns:
        A `LandscapeRun`.

    Example:
        >>> run = run_one(parse_optimizer_spec("adam:beta_2=0.9"), get_surface("rosenbrock"))
        >>> run.status, run.steps
    """
    optimizer, hyperparameters = build_optimizer(spec, surface)
    path = trajectory(optimizer, surface, steps)
    bad = np.flatnonzero(~np.all(np.isfinite(path), axis=1))
    goal_step = steps_to_goal(path, surface, tolerance)
    if surface.goal == "escape" and goal_step is not None:
        # Past the escape the function falls without bound; the rest of the
        # path says nothing more.
        path, status = path[: goal_step + 1], "escaped"
    elif bad.size:
        path, status = path[: bad[0]], "diverged"
    else:
        status = "reached" if goal_step is not None else "not reached"
    final_value = float(surface.value(path[-1, 0], path[-1, 1], np))
    return LandscapeRun(
        function=surface.name,
        optimizer=spec.label,
        hyperparameters=hyperparameters,
        path=path,
        status=status,
        steps=goal_step,
        final_value=final_value,
    )


def run_landscape(
    specs: Sequence[OptimizerSpec],
    surfaces: Sequence[Surface],
    steps: int = DEFAULT_STEPS,
    out: str | Path | None = None,
    tolerance: float | None = None,
) -> list[LandscapeRun]:
    """Every spec on every surface; optionally write the pictures and tables.

    Args:
        specs: optimizers, e.g. from `parse_optimizer_specs("sgd,adam")`.
        surfaces: functions, e.g. `[get_surface("rosenbrock")]`.
        steps: optimizer steps per run, >= 1.
        out: a directory for `landscape_<function>.png`, `landscape.csv` and
            `landscape.md`; nothing is written when None.
        tolerance: overrides each surface's tolerance for its minimum.

    Returns:
        The runs, surface by surface, in the order of `specs`.

    Example:
        >>> runs = run_landscape(parse_optimizer_specs("sgd,adam"),
        ...                      [get_surface("saddle")], steps=400, out="landscape")
    """
    # Every optimizer is built and the directory made before the first run,
    # so that bad input fails at once rather than after minutes of runs.
    for surface in surfaces:
        for spec in specs:
            build_optimizer(spec, surface)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
    runs = [run_one(spec, surface, steps, tolerance) for surface in surfaces for spec in specs]
    if out is not None:
        for surface in surfaces:
            plot_surface(surface, [r for r in runs if r.function == surface.name],
                         out / f"landscape_{surface.name}.png")
        write_csv(runs, out / "landscape.csv")
        (out / "landscape.md").write_text(markdown_table(runs), encoding="utf-8")
    return runs


# -- reports ------------------------------------------------------------------


def _format_hyperparameters(hyperparameters: dict[str, Any]) -> str:
    return " ".join(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
                    for key, value in hyperparameters.items())


def _outcome(run: LandscapeRun) -> str:
    if run.status in ("reached", "escaped"):
        return f"{run.status} in {run.steps} steps"
    if run.status == "not reached":
        return f"not reached, f = {run.final_value:.2g}"
    return f"diverged after {len(run.path) - 1} steps"


def _rows(runs: Sequence[LandscapeRun]) -> list[dict[str, str]]:
    return [
        {
            "function": run.function,
            "optimizer": run.optimizer,
            "hyperparameters": _format_hyperparameters(run.hyperparameters),
            "status": run.status,
            "steps": "" if run.steps is None else str(run.steps),
            "final_x": f"{run.final_point[0]:.6g}",
            "final_y": f"{run.final_point[1]:.6g}",
            "final_value": f"{run.final_value:.6g}",
        }
        for run in runs
    ]


def write_csv(runs: Sequence[LandscapeRun], path: str | Path) -> None:
    """Write `CSV_FIELDS` per run; `steps` is empty where the goal was not met."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(_rows(runs))


def markdown_table(runs: Sequence[LandscapeRun]) -> str:
    """The runs as a Markdown table (one row per function and optimizer)."""
    lines = [
        "| function | optimizer | hyperparameters | outcome | final point | final value |",
        "|---|---|---|---|---|---|",
    ]
    for run, row in zip(runs, _rows(runs)):
        lines.append(
            f"| {row['function']} | {row['optimizer']} | {row['hyperparameters']} | "
            f"{_outcome(run)} | ({row['final_x']}, {row['final_y']}) | {row['final_value']} |"
        )
    return "\n".join(lines) + "\n"


def plot_surface(surface: Surface, runs: Sequence[LandscapeRun], path: str | Path) -> None:
    """Contours of `surface` with every run's path, written as a PNG.

    Args:
        surface: the function.
        runs: its runs; each path gets its own colour, an end marker and a
            legend entry with its outcome.
        path: the PNG file to write.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure
    from PIL import Image

    (x_min, x_max), (y_min, y_max) = surface.bounds
    x, y = np.meshgrid(np.linspace(x_min, x_max, 300), np.linspace(y_min, y_max, 300))
    z = surface.value(x, y, np)
    figure = Figure(figsize=(6.4, 5.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if surface.log_levels:
        # Log-spaced levels show the floor of a valley as well as its walls.
        height = z - surface.minimum_value
        low = max(float(np.min(height[height > 0])), 1e-4 * float(np.max(height)))
        levels = np.geomspace(low, float(np.max(height)), 25)
        axes.contour(x, y, height, levels=levels, norm=LogNorm(), cmap="Greys_r",
                     linewidths=0.6, alpha=0.7)
    else:
        axes.contour(x, y, z, levels=15, cmap="Greys_r", linewidths=0.6, alpha=0.7)
    colours = [f"C{i}" for i in range(10)]
    for index, run in enumerate(runs):
        colour = colours[index % len(colours)]
        axes.plot(run.path[:, 0], run.path[:, 1], "-", color=colour, linewidth=1.2,
                  label=f"{run.optimizer}: {_outcome(run)}")
        axes.plot(*run.path[-1], "o", color=colour, markersize=5)
    axes.plot(*surface.start, "k^", markersize=8, label="start")
    for minimum in surface.minima:
        axes.plot(*minimum, "r*", markersize=10, zorder=1.5)
    if surface.goal == "escape":
        for sign in (1, -1):
            axes.axhline(sign * surface.escape_radius, color="r", linestyle="--", linewidth=0.8)
    axes.set_xlim(x_min, x_max)
    axes.set_ylim(y_min, y_max)
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_title(f"{surface.name}: {surface.formula}", fontsize=10)
    axes.legend(fontsize=7, loc="best", framealpha=0.8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    # A 256-colour palette keeps line art intact at a third of the size, so
    # the pictures can live in the repository.
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256).save(path, optimize=True)


# -- command line -------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--optimizers",
        default=DEFAULT_OPTIMIZERS,
        help="comma-separated registry names, each optionally with "
        "hyperparameters: name:key=value[:key=value] (default: %(default)s)",
    )
    parser.add_argument(
        "--functions",
        default=",".join(SURFACES),
        help="comma-separated test functions (default: %(default)s)",
    )
    parser.add_argument("--steps", type=positive_int, default=DEFAULT_STEPS,
                        help="optimizer steps per run (default: %(default)s)")
    parser.add_argument("--tolerance", type=positive_float, default=None,
                        help="distance to the minimum that counts as reached "
                        "(default: each function's own, 0.01)")
    parser.add_argument("--out", default="optzoo_results/landscape",
                        help="output directory (default: %(default)s)")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        specs = parse_optimizer_specs(args.optimizers)
        names = [name for name in args.functions.split(",") if name.strip()]
        if not names:
            raise ValueError(f"functions: give at least one function, got {args.functions!r}")
        surfaces = [get_surface(name) for name in names]
        runs = run_landscape(specs, surfaces, args.steps, args.out, args.tolerance)
    except (ValueError, OSError) as error:
        parser.error(str(error))
    print(markdown_table(runs), end="")
    print(f"wrote {len(surfaces)} PNG files, landscape.csv and landscape.md to {args.out}")
    return 0
