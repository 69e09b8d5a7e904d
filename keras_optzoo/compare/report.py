"""The report of a comparison: `results.csv`, `results.md`, `curves.png`, `history.csv`.

One row per optimizer label, aggregated over seeds (mean, and the sample
standard deviation when there are two seeds or more). `history.csv` holds every
recorded point of every run, so the curves can be redrawn with any tool.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_optzoo.compare.runner import (
    TARGET_WINDOW,
    Comparison,
    RunResult,
    trailing_mean,
)

RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
CURVES_PNG = "curves.png"
HISTORY_CSV = "history.csv"


def csv_columns(metric_name: str) -> list[str]:
    """The columns of `results.csv` for a task whose test metric is `metric_name`."""
    return [
        "optimizer",
        "name",
        "hyperparameters",
        "schedule",
        "learning_rate",
        "seeds",
        "steps",
        "batch_size",
        "parameters",
        "train_loss",
        "train_loss_std",
        f"test_{metric_name}",
        f"test_{metric_name}_std",
        "target_loss",
        "steps_to_target",
        "target_reached",
        "ms_per_step",
        "state_bytes",
    ]


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), (float(array.std(ddof=1)) if array.size > 1 else None)


def summary_rows(comparison: Comparison) -> list[dict]:
    """One dict per optimizer label, keyed by `csv_columns`; None where empty."""
    metric = comparison.task.metric_name
    rows = []
    for spec in comparison.specs:
        runs = comparison.runs_for(spec.label)
        train_loss, train_loss_std = _mean_std([r.train_loss for r in runs])
        test_metric, test_metric_std = _mean_std([r.test_metric_final for r in runs])
        reached = [s for r in runs if (s := r.steps_to_target(comparison.target_loss)) is not None]
        rows.append(
            {
                "optimizer": spec.label,
                "name": spec.name,
                "hyperparameters": json.dumps(comparison.hyperparameters[spec.label], sort_keys=True),
                "schedule": comparison.schedule,
                "learning_rate": comparison.learning_rates[spec.label],
                "seeds": len(runs),
                "steps": comparison.total_steps,
                "batch_size": comparison.batch_size,
                "parameters": comparison.parameters,
                "train_loss": train_loss,
                "train_loss_std": train_loss_std,
                f"test_{metric}": test_metric,
                f"test_{metric}_std": test_metric_std,
                "target_loss": comparison.target_loss,
                "steps_to_target": float(np.mean(reached)) if reached else None,
                "target_reached": len(reached),
                "ms_per_step": float(np.median([r.ms_per_step for r in runs])),
                "state_bytes": runs[0].state_bytes,
            }
        )
    return rows


def write_csv(comparison: Comparison, path: str | os.PathLike) -> None:
    """Write `results.csv`: `csv_columns`, one row per optimizer label."""
    columns = csv_columns(comparison.task.metric_name)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in summary_rows(comparison):
            writer.writerow({key: "" if row[key] is None else row[key] for key in columns})


def write_history(comparison: Comparison, path: str | os.PathLike) -> None:
    """Write `history.csv`: one row per recorded step of every run.

    Columns: optimizer, seed, step, wall_time_s, batch_loss (steps >= 1),
    test_loss, test_<metric> and learning_rate (at evaluation steps only,
    step 0 included); a value that was not recorded at a step is empty.
    """
    metric = comparison.task.metric_name
    columns = ["optimizer", "seed", "step", "wall_time_s", "batch_loss", "test_loss",
               f"test_{metric}", "learning_rate"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for run in comparison.runs:
            evals = {int(s): i for i, s in enumerate(run.eval_steps)}
            for step in range(len(run.batch_loss) + 1):
                row = [run.label, run.seed, step]
                row.append(repr(float(run.wall_time[step - 1])) if step else "0.0")
                row.append(repr(float(run.batch_loss[step - 1])) if step else "")
                if step in evals:
                    i = evals[step]
                    row += [repr(float(run.test_loss[i])), repr(float(run.test_metric[i])),
                            repr(float(run.learning_rate[i]))]
                else:
                    row += ["", "", ""]
                writer.writerow(row)


def _spread(mean: float, std: float | None, digits: int = 4) -> str:
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def markdown_table(comparison: Comparison) -> str:
    """The summary table (Markdown), as printed at the end of `optzoo compare`."""
    metric = comparison.task.metric_name
    target = f"{comparison.target_loss:g}"
    header = ["optimizer", "learning rate", "final train loss", f"test {metric}",
              f"steps to loss ≤ {target}", "ms/step", "state bytes"]
    lines = [
        "| " + " | ".join(header) + " |",
        "| --- | " + " | ".join(["---:"] * (len(header) - 1)) + " |",
    ]
    seeds = len(comparison.seeds)
    for row in summary_rows(comparison):
        steps = "not reached" if row["steps_to_target"] is None else f"{row['steps_to_target']:.0f}"
        if seeds > 1:
            steps += f" ({row['target_reached']}/{seeds})"
        per_param = row["state_bytes"] / max(1, comparison.parameters)
        cells = [
            f"`{row['optimizer']}`",
            f"{row['learning_rate']:.3g}",
            _spread(row["train_loss"], row["train_loss_std"]),
            _spread(row[f"test_{metric}"], row[f"test_{metric}_std"]),
            steps,
            f"{row['ms_per_step']:.2f}",
            f"{row['state_bytes']:,} ({per_param:g}/param)",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe(comparison: Comparison) -> str:
    """One paragraph saying what ran: task, backend, steps, schedule, seeds."""
    epochs = comparison.total_steps / comparison.steps_per_epoch
    seeds = ", ".join(str(s) for s in comparison.seeds)
    return (
        f"Task `{comparison.task.name}`: {comparison.task.description} "
        f"({comparison.parameters:,} parameters). Backend {comparison.backend}; "
        f"{comparison.total_steps} steps of {comparison.batch_size} examples "
        f"({epochs:.3g} epochs); learning-rate schedule `{comparison.schedule}`; "
        f"seed{'s' if len(comparison.seeds) > 1 else ''} {seeds}. Every optimizer "
        "starts from the same weights and sees the same batches. Final train loss is "
        "over the whole training set; steps to target is the first step at which the "
        f"mean loss of the last {TARGET_WINDOW} batches is at or below the target; "
        "ms/step is the median after warm-up; state bytes count the optimizer's "
        "per-parameter slots."
    )


def markdown(comparison: Comparison) -> str:
    """The whole `results.md`."""
    return "\n\n".join(
        [f"# optzoo compare: {comparison.task.name}", describe(comparison),
         markdown_table(comparison), f"![curves]({CURVES_PNG})"]
    ) + "\n"


def _band(axis, x: np.ndarray, series: list[np.ndarray], label: str, color) -> None:
    stacked = np.stack(series)
    axis.plot(x, stacked.mean(axis=0), label=label, color=color, linewidth=1.2)
    if len(series) > 1:
        axis.fill_between(x, stacked.min(axis=0), stacked.max(axis=0), color=color,
                          alpha=0.2, linewidth=0)


def plot_curves(comparison: Comparison, path: str | os.PathLike, dpi: int = 80) -> None:
    """Write `curves.png`: training loss and test metric against steps and wall time.

    Lines are the mean over seeds; with several seeds a band spans their
    minimum and maximum. The training loss is the trailing mean of
    `TARGET_WINDOW` batch losses, on a log scale; the dashed line is the target.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    metric = comparison.task.metric_name
    figure = Figure(figsize=(11, 7.5), dpi=dpi)
    axes = figure.subplots(2, 2)
    colors = matplotlib.colormaps["tab10"].colors
    for i, spec in enumerate(comparison.specs):
        runs: list[RunResult] = comparison.runs_for(spec.label)
        color = colors[i % len(colors)]
        steps = runs[0].steps
        losses = [trailing_mean(r.batch_loss, TARGET_WINDOW) for r in runs]
        wall = np.mean([r.wall_time for r in runs], axis=0)
        _band(axes[0, 0], steps, losses, spec.label, color)
        _band(axes[0, 1], wall, losses, spec.label, color)
        eval_steps = runs[0].eval_steps
        eval_wall = np.mean([r.eval_wall_time for r in runs], axis=0)
        metrics = [r.test_metric for r in runs]
        _band(axes[1, 0], eval_steps, metrics, spec.label, color)
        _band(axes[1, 1], eval_wall, metrics, spec.label, color)
    for axis in axes[0]:
        axis.set_yscale("log")
        axis.axhline(comparison.target_loss, color="0.5", linestyle="--", linewidth=0.8)
        axis.set_ylabel(f"train loss (mean of last {TARGET_WINDOW} batches)")
    for axis in axes[1]:
        axis.set_ylabel(f"test {metric}")
        if not comparison.task.higher_is_better:
            axis.set_yscale("log")
    for axis in axes[:, 0]:
        axis.set_xlabel("step")
    for axis in axes[:, 1]:
        axis.set_xlabel("training wall time (s)")
    for axis in axes.flat:
        axis.grid(True, alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    figure.suptitle(
        f"{comparison.task.name}, backend {comparison.backend}, schedule "
        f"{comparison.schedule}, {len(comparison.seeds)} seed(s)"
    )
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.93, wspace=0.22, hspace=0.25)
    figure.savefig(path)


def write_report(comparison: Comparison, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write every report file into `out_dir` (created if missing).

    Returns:
        `{"csv", "markdown", "curves", "history"}` -> the path written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / RESULTS_CSV,
        "markdown": out / RESULTS_MD,
        "curves": out / CURVES_PNG,
        "history": out / HISTORY_CSV,
    }
    write_csv(comparison, paths["csv"])
    paths["markdown"].write_text(markdown(comparison))
    plot_curves(comparison, paths["curves"])
    write_history(comparison, paths["history"])
    return paths
