"""The benchmark's outputs: a JSON record and a markdown table per run, the
targets of issue 5 evaluated on them, and a summary across backends."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

#: Targets of issue 5 (benchmark figures, not timed tests).
CORE_SPEEDUP = 1.5
OPTAX_WITHIN = 1.1
OPTAX_ALGORITHMS = ("adam", "adamw", "lion", "adabelief")
TORCH_FUSED_WITHIN = 1.25
TORCH_ALGORITHMS = ("adam", "adamw")
TF_OVER_JAX_WITHIN = 1.25
ROOFLINE_FRACTION = 0.8
ROOFLINE_ALGORITHMS = ("adam", "adamw", "amsgrad", "nadam", "radam", "adabelief")
ROOFLINE_MIN_PARAMETERS = 100_000_000

# Column order of contenders in the step-time table.
CONTENDER_ORDER = (
    "ours", "ours_optax", "ours_torch", "keras_core", "ours_graph", "keras_core_graph",
    "optax", "torch_foreach", "torch_fused",
)


def size_label(parameters: int, tensors: int) -> str:
    """`100M / 100` style label."""
    for unit, scale in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if parameters >= scale:
            value = parameters / scale
            text = f"{value:.0f}" if value == int(value) else f"{value:.3g}"
            return f"{text}{unit} / {tensors}"
    return f"{parameters} / {tensors}"


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _gbps(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------


def _target(name: str, row: dict[str, Any] | None, value: float | None, threshold: float,
            met: bool | None, note: str = "") -> dict[str, Any]:
    return {
        "target": name,
        "algorithm": row["algorithm"] if row else None,
        "size": size_label(row["parameters"], row["tensors"]) if row else None,
        "value": value,
        "threshold": threshold,
        "met": met,
        "note": note,
    }


def _check_note(row: dict[str, Any], results: dict[str, Any], keys: tuple[str, ...]) -> str:
    checks = results["checks"].get(row["algorithm"], {})
    bad = [key for key in keys if key in checks and checks[key]["ok"] is False]
    bad += [f"{key} after timing" for key in keys
            if row["contenders"].get(key, {}).get("after_timing", {}).get("ok") is False]
    return f"correctness guard failed for {', '.join(bad)}" if bad else ""


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 5 that this run can decide, row by row.

    Returns:
        Dicts with `target`, `algorithm`, `size`, `value`, `threshold`, `met`
        (True, False, or None where the run cannot decide it) and `note`.
    """
    backend = results["backend"]
    accelerator = results["machine"].get("accelerator") or {}
    targets = []
    for row in results["rows"]:
        ratios = row["ratios"]
        if "keras_core" in row["contenders"]:
            value = ratios.get("core/ours")
            targets.append(_target(
                f"≥{CORE_SPEEDUP}x faster than keras core", row, value, CORE_SPEEDUP,
                None if value is None else value >= CORE_SPEEDUP,
                _check_note(row, results, ("keras_core",)),
            ))
        if backend == "jax" and row["algorithm"] in OPTAX_ALGORITHMS:
            value = ratios.get("ours/optax")
            targets.append(_target(
                f"within {OPTAX_WITHIN}x of optax", row, value, OPTAX_WITHIN,
                None if value is None else value <= OPTAX_WITHIN,
                _check_note(row, results, ("optax",)),
            ))
        if backend == "torch" and row["algorithm"] in TORCH_ALGORITHMS:
            value = ratios.get("ours/torch fused")
            status = row["contenders"].get("torch_fused", {}).get("status", "absent")
            targets.append(_target(
                f"within {TORCH_FUSED_WITHIN}x of torch fused", row, value, TORCH_FUSED_WITHIN,
                None if value is None else value <= TORCH_FUSED_WITHIN,
                _check_note(row, results, ("torch_fused",)) if value is not None
                else f"torch fused {status}",
            ))
        if (backend in ("jax", "torch") and row["algorithm"] in ROOFLINE_ALGORITHMS
                and row["parameters"] >= ROOFLINE_MIN_PARAMETERS):
            value = row["ours"]["roofline_fraction"]
            on_h100 = "h100" in str(accelerator.get("name", "")).lower()
            targets.append(_target(
                f"≥{ROOFLINE_FRACTION:.0%} of the in-place roofline (H100)", row, value,
                ROOFLINE_FRACTION,
                (value >= ROOFLINE_FRACTION) if on_h100 and value is not None else None,
                "" if on_h100 else "decided on an H100 only; figure for reference",
            ))
    for result in results.get("fit", []):
        value = result["core/ours"]
        targets.append({
            "target": "speed-up over keras core holds in model.fit",
            "algorithm": result.get("algorithm", "adam"),
            "size": f"fit: {result['model']}", "value": value, "threshold": 1.0,
            "met": value > 1.0, "note": "",
        })
    return targets


def _status(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "not decided"}[met]


# ---------------------------------------------------------------------------
# One run's markdown
# ---------------------------------------------------------------------------


def _machine_lines(results: dict[str, Any]) -> list[str]:
    machine = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    accelerator = machine.get("accelerator")
    lines = [
        (f"- backend: **{results['backend']}** ({machine.get('backend_version')}), "
        f"device: **{results['device']}**"),
        (f"- CPU: {machine['cpu']}, {machine['cores']} logical cores "
        f"({machine['usable_cores']} usable), {machine['memory_gib']} GiB; load average at "
        f"start {', '.join(f'{x:.2f}' for x in machine['load_average'] or [])}"),
    ]
    if accelerator:
        lines.append(f"- accelerator: {accelerator['name']}"
                     + (f" ({machine['nvidia_smi']})" if machine.get("nvidia_smi") else ""))
    if "torch_threads" in machine:
        lines.append(f"- torch intra-op threads: {machine['torch_threads']} (torch's default)")
    lines.append(f"- versions: {versions}; {machine['platform']}, Python {machine['python']}")
    return lines


def _present(rows: list[dict[str, Any]], order: tuple[str, ...]) -> list[str]:
    keys = {key for row in rows for key in row["contenders"]}
    return [key for key in order if key in keys]


def _label(rows: list[dict[str, Any]], key: str) -> str:
    for row in rows:
        if key in row["contenders"]:
            return row["contenders"][key]["label"]
    return key


def _contender_cell(row: dict[str, Any], key: str) -> str:
    contenders = row["contenders"]
    if key not in contenders:
        if key.startswith("ours_") and any(
            c.get("reference") == "ours" and k in ("optax", "torch_foreach", "torch_fused")
            for k, c in contenders.items()
        ):
            return "= ours"
        return "–"
    entry = contenders[key]
    return _ms(entry["ms"]) if entry["ms"] is not None else "n/a"


def _check_cell(row: dict[str, Any], results: dict[str, Any]) -> str:
    checks = results["checks"].get(row["algorithm"], {})
    after = {key: entry["after_timing"] for key, entry in row["contenders"].items()
             if "after_timing" in entry}
    bad = []
    for when, found in (("", checks), (" after timing", after)):
        for key, result in found.items():
            if result["ok"] is not False:
                continue
            exact = row["contenders"].get(key, {}).get("exact", True)
            error = "failed" if result["error"] is None else f"{result['error']:.1e}"
            bad.append(f"{key}{when} {error}" + ("" if exact else " (different math)"))
    return "ok" if not bad else "; ".join(bad)


def step_table(results: dict[str, Any]) -> list[str]:
    """The step-time table: one row per algorithm and size."""
    rows = results["rows"]
    keys = _present(rows, CONTENDER_ORDER)
    ratio_names = [name for name in
                   ("core/ours", "core/ours (no XLA)", "ours/optax", "ours/torch foreach",
                    "ours/torch fused") if any(name in row["ratios"] for row in rows)]
    header = (["optimizer", "params / tensors", "B/param"]
              + [f"{_label(rows, key)} ms" for key in keys] + ratio_names
              + ["ours GB/s", "ours % roof", "best peer", "peer GB/s", "peer % roof", "check"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        best = row["best_peer"]
        cells = [row["algorithm"], size_label(row["parameters"], row["tensors"]),
                 str(row["bytes_per_parameter"])]
        cells += [_contender_cell(row, key) for key in keys]
        cells += [_ratio(row["ratios"].get(name)) for name in ratio_names]
        cells += [_gbps(row["ours"]["gbps"]), _percent(row["ours"]["roofline_fraction"]),
                  row["contenders"][best["key"]]["label"] if best["key"] else "–",
                  _gbps(best["gbps"]), _percent(best["roofline_fraction"]),
                  _check_cell(row, results)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _roofline_lines(results: dict[str, Any]) -> list[str]:
    seen: dict[str, tuple[list[float], set[bool]]] = {}
    for row in results["rows"]:
        label = size_label(row["parameters"], row["tensors"])
        samples, interleaved = seen.setdefault(label, (row["roofline_samples_gbps"], set()))
        interleaved.add(row["interleaved"])
    lines = ["| params | in-place pass GB/s (before, after the races) | contenders' repeats |",
             "|---|---|---|"]
    for label, (samples, interleaved) in seen.items():
        mode = {frozenset({True}): "interleaved", frozenset({False}): "one contender at a time"}
        lines.append(f"| {label} | {', '.join(f'{x:.1f}' for x in samples)} | "
                     f"{mode.get(frozenset(interleaved), 'mixed')} |")
    return lines


def _convention_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    seen = set()
    for row in results["rows"]:
        if row["algorithm"] in seen:
            continue
        seen.add(row["algorithm"])
        lines.append(f"- **{row['algorithm']}**")
        for key in _present([row], CONTENDER_ORDER):
            entry = row["contenders"][key]
            note = f" — {entry['note']}" if entry["note"] else ""
            status = "" if entry["status"] == "ok" else f" [{entry['status']}]"
            lines.append(f"  - {entry['label']}: `{entry['config']}`{note}{status}")
    return lines


def _check_lines(results: dict[str, Any]) -> list[str]:
    lines = [
        (f"Before timing, every contender ran {results['check_steps']} steps on two small "
        "tensors (gradients of magnitude 1e-2..10 changing sign) through the same runner "
        "code that is timed; its displacement from the start must match that of ours at "
        f"its convention within {results['check_tolerance']:g} (relative to the largest "
        "displacement)."),
        "",
        "| optimizer | contender | vs | error | result |",
        "|---|---|---|---|---|",
    ]
    for name, checks in results["checks"].items():
        row = next((r for r in results["rows"] if r["algorithm"] == name), None)
        contenders = row["contenders"] if row else {}
        for key, result in checks.items():
            entry = contenders.get(key, {})
            reference = entry.get("reference", "ours")
            error = "–" if result["error"] is None else f"{result['error']:.1e}"
            if result["ok"]:
                verdict = "ok"
            elif result["ok"] is None:
                verdict = result["failed"]
            elif not entry.get("exact", True):
                verdict = "differs (expected: different math)"
            else:
                verdict = "**DISAGREES**" + (f": {result['failed']}" if result.get("failed") else "")
            lines.append(f"| {name} | {key} | {reference} | {error} | {verdict} |")
    if not any("after_timing" in entry for row in results["rows"]
               for entry in row["contenders"].values()):
        return lines
    lines += [
        "",
        ("After timing, every contender has run the same number of steps with the same "
         f"gradient; the first {results.get('after_timing_sample', 0)} entries of each tensor "
         "are compared the same way, at the timed size, within "
         f"{results.get('after_timing_tolerance', 0):g} (float32 rounding of weights of "
         "size 1 accumulates over the timed steps; a skipped tensor scores 1)."),
        "",
        "| optimizer | params / tensors | contender | vs | steps | error | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        for key, entry in row["contenders"].items():
            after = entry.get("after_timing")
            if after is None:
                continue
            if after["ok"]:
                verdict = "ok"
            elif not entry["exact"]:
                verdict = "differs (expected: different math)"
            else:
                verdict = "**DISAGREES**"
            lines.append(
                f"| {row['algorithm']} | {size_label(row['parameters'], row['tensors'])} | "
                f"{key} | {entry['reference']} | {entry['steps_total']} | "
                f"{after['error']:.1e} | {verdict} |"
            )
    return lines


def _fit_lines(results: dict[str, Any]) -> list[str]:
    lines = ["| model | optimizer | params | batch | timed steps | ours ms | keras core ms | core/ours |",
             "|---|---|---|---|---|---|---|---|"]
    for result in results["fit"]:
        lines.append(
            f"| {result['model']} | {result.get('algorithm', 'adam')} | "
            f"{result['parameters']:,} | {result['batch_size']} | "
            f"{len(result['samples_ms']['ours'])} | {_ms(result['ms']['ours'])} | "
            f"{_ms(result['ms']['keras_core'])} | {_ratio(result['core/ours'])} |"
        )
    return lines


def target_lines(targets: list[dict[str, Any]]) -> list[str]:
    lines = ["| target | optimizer | size | value | threshold | status | note |",
             "|---|---|---|---|---|---|---|"]
    for target in targets:
        value = target["value"]
        shown = "n/a" if value is None else (
            _percent(value) if "roofline" in target["target"] else f"{value:.2f}")
        threshold = (_percent(target["threshold"]) if "roofline" in target["target"]
                     else f"{target['threshold']:g}")
        lines.append(f"| {target['target']} | {target['algorithm']} | {target['size']} | "
                     f"{shown} | {threshold} | {_status(target['met'])} | {target['note']} |")
    return lines


def render(results: dict[str, Any]) -> str:
    """One run's markdown: machine, step-time table, roofline, conventions,
    correctness guard, fit table and targets."""
    settings = results["settings"]
    steps = settings["steps"] or "auto (≈0.1 s per repeat)"
    lines = [
        f"# optzoo bench: {results['backend']} on {results['device']}, {results['created']}",
        "",
        *_machine_lines(results),
        (f"- timing: median of {settings['repeats']} repeats of {steps} steps each after "
        f"{settings['warmup']} warm-up steps, synchronised with the device; fp32 parameters, "
        "gradients and slots; the same random parameters and gradients for every contender"),
        "",
        "## Step time",
        "",
        ("ms per optimizer step. `ours` runs the convention matching keras core (see "
        "Conventions); `ours (X conv.)` is ours at peer X's convention, the one its ratio "
        "uses (`= ours` where it is the same call). Ratios: core/ours > 1 and ours/peer < 1 "
        "mean ours is faster. GB/s counts the bytes the algorithm must move (B/param × "
        "params) per step; % roof divides it by the in-place pass below. Best peer: the "
        "fastest compiled non-keras_optzoo contender."),
        "",
        *step_table(results),
        "",
        "## Roofline",
        "",
        ("`x ← x + 1` in place over one fp32 buffer with as many elements as parameters "
        "(reads and writes 8 B per element), measured in this process; the larger of the "
        "two figures is used."),
        "",
        *_roofline_lines(results),
        "",
        "## Conventions",
        "",
        *_convention_lines(results),
        "",
        "## Correctness guard",
        "",
        *_check_lines(results),
    ]
    if results["fit"]:
        lines += ["", "## model.fit", "",
                  ("Median ms per `fit` step after warm-up (a callback stamping batch ends), "
                  "ours at keras core's convention, same weights and batches."),
                  "", *_fit_lines(results)]
    lines += ["", "## Targets", "", *target_lines(results["targets"]), ""]
    return "\n".join(lines)


def write(results: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write `bench_<backend>_<device>_<date>.{md,json}` under `out`.

    A run on the same backend, device and day replaces that day's files.

    Returns:
        The markdown and JSON paths.
    """
    results = {**results, "targets": evaluate_targets(results)}
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    date = results["created"][:10]
    stem = directory / f"bench_{results['backend']}_{results['device']}_{date}"
    markdown, record = stem.with_suffix(".md"), stem.with_suffix(".json")
    record.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    markdown.write_text(render(results), encoding="utf-8")
    return markdown, record


# ---------------------------------------------------------------------------
# Summary across backends
# ---------------------------------------------------------------------------


def latest_runs(out: str | Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest `bench_*.json` under `out` per (backend, device)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(Path(out).glob("bench_*.json")):
        results = json.loads(path.read_text(encoding="utf-8"))
        if results.get("tool") != "optzoo bench":
            continue
        key = (results["backend"], results["device"])
        if key not in latest or results["created"] > latest[key]["created"]:
            latest[key] = {**results, "path": str(path)}
    return latest


def summarize(out: str | Path) -> Path | None:
    """Combine the latest run of every backend under `out` into
    `summary_<device>_<date>.md` per device, with the TensorFlow-vs-JAX target.

    Returns:
        The path of the last summary written, or None when `out` holds no run.
    """
    runs = latest_runs(out)
    written = None
    for device in sorted({device for _, device in runs}):
        per_backend = {backend: r for (backend, d), r in runs.items() if d == device}
        written = _write_summary(Path(out), device, per_backend)
    return written


def _write_summary(out: Path, device: str, runs: dict[str, dict[str, Any]]) -> Path:
    backends = [b for b in ("jax", "tensorflow", "torch") if b in runs]
    times: dict[tuple[str, str], dict[str, float | None]] = {}
    for backend in backends:
        for row in runs[backend]["rows"]:
            key = (row["algorithm"], size_label(row["parameters"], row["tensors"]))
            times.setdefault(key, {})[backend] = row["contenders"]["ours"]["ms"]
            times[key][f"{backend}/core"] = row["ratios"].get("core/ours")
    cpus = {runs[b]["machine"]["cpu"] for b in backends}
    header = (["optimizer", "params / tensors"]
              + [f"ours {b} ms" for b in backends]
              + [f"core/ours {b}" for b in backends] + ["TF-XLA / JAX"])
    lines = [
        f"# optzoo bench summary: {device}",
        "",
        *[f"- {b}: `{Path(runs[b]['path']).name}` ({runs[b]['created']}, load average at "
          f"start {', '.join(f'{x:.2f}' for x in runs[b]['machine']['load_average'] or [])})"
          for b in backends],
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    targets = []
    for (name, size), entry in times.items():
        tf_ms, jax_ms = entry.get("tensorflow"), entry.get("jax")
        ratio = tf_ms / jax_ms if tf_ms is not None and jax_ms is not None else None
        cells = [name, size] + [_ms(entry.get(b)) for b in backends]
        cells += [_ratio(entry.get(f"{b}/core")) for b in backends] + [_ratio(ratio)]
        lines.append("| " + " | ".join(cells) + " |")
        if ratio is not None:
            targets.append({
                "target": f"TF with XLA within {TF_OVER_JAX_WITHIN}x of JAX", "algorithm": name,
                "size": size, "value": ratio, "threshold": TF_OVER_JAX_WITHIN,
                "met": ratio <= TF_OVER_JAX_WITHIN if len(cpus) == 1 else None,
                "note": "" if len(cpus) == 1 else "runs from different machines",
            })
    for backend in backends:
        targets += [{**t, "target": f"{backend}: {t['target']}"} for t in runs[backend]["targets"]]
    lines += ["", "## Targets", "", *target_lines(targets), ""]
    date = datetime.date.today().isoformat()
    path = out / f"summary_{device}_{date}.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
