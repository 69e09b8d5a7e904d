"""One benchmark run on the active backend: sizes × algorithms × contenders.

For each size the same random parameters and gradients feed every contender;
the roofline is measured before and after the size's races, in the same
process. For each algorithm the correctness guard runs first (a few steps on
a small problem, through the very runner code that is timed), then every
contender is warmed up and timed. Where the device has room for all of an
algorithm's contenders at once their timed repeats are interleaved, so that a
burst of load on a shared machine lands on all of them rather than on one.
"""

from __future__ import annotations

import datetime
import gc
import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import keras
import numpy as np

from keras_optzoo.bench import algorithms, contenders, fit, machine, roofline
from keras_optzoo.bench.contenders import (
    Contender,
    device_arrays,
    median,
    time_steps,
    warm_up,
)

#: Seconds a timed repeat should last when `steps` is chosen automatically.
REPEAT_SECONDS = 0.1
MAX_AUTO_STEPS = 50
#: Slack on a contender's parameters + slots for the temporaries of a step.
MEMORY_SLACK = 2.0
#: Entries per tensor compared after timing, and the tolerance on their
#: displacement: looser than the guard's, since float32 rounding of weights of
#: size 1 accumulates over every timed step; a skipped tensor scores 1.
AFTER_TIMING_SAMPLE = 256
AFTER_TIMING_TOLERANCE = 1e-2
#: Below this many parameters freed state is small: skip the (slow, with
#: thousands of live JAX objects) cycle collection between contenders.
COLLECT_ABOVE = 10**6

# name -> (numerator, denominator); None means "the denominator's reference",
# i.e. our optimizer at that peer's convention.
RATIOS: dict[str, tuple[str | None, str]] = {
    "core/ours": ("keras_core", "ours"),
    "core/ours (no XLA)": ("keras_core_graph", "ours_graph"),
    "ours/optax": (None, "optax"),
    "ours/torch foreach": (None, "torch_foreach"),
    "ours/torch fused": (None, "torch_fused"),
}


@dataclass
class Settings:
    """What to run.

    Attributes:
        optimizers: registry names.
        sizes: `(parameters, tensors)` pairs.
        repeats: timed repeats per contender (the median is reported).
        warmup: untimed steps first (compilation happens in the first).
        steps: steps per timed repeat, or None to choose per contender so
            that a repeat lasts about `REPEAT_SECONDS`.
        fit: also time `model.fit` steps.
        fit_optimizers: the algorithms timed in `fit` (each with a keras core
            version to race).
        quick: tiny fit models (for tests).
        seed: seed of the parameters and gradients.
    """

    optimizers: list[str]
    sizes: list[tuple[int, int]]
    repeats: int = 5
    warmup: int = 2
    steps: int | None = None
    fit: bool = False
    quick: bool = False
    seed: int = 0
    fit_steps: int = field(default=20)
    fit_optimizers: list[str] = field(default_factory=lambda: ["adam"])


def tensor_sizes(parameters: int, tensors: int) -> list[int]:
    """`parameters` split into `tensors` 1-D tensors, as equal as possible."""
    base, extra = divmod(parameters, tensors)
    return [base + (1 if i < extra else 0) for i in range(tensors)]


def _random_arrays(sizes: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.standard_normal(size, dtype=np.float32) for size in sizes]


def _state_bytes(name: str, parameters: int) -> float:
    # Parameters plus slots: (bytes moved − gradient − the parameter's read and
    # write) / 2 + the parameter, from the 4·(3 + 2k) count.
    moved = algorithms.bytes_per_parameter(name)
    return parameters * (moved / 2 - 2)


def _steps_for(seconds: float) -> int:
    return int(min(MAX_AUTO_STEPS, max(1, math.ceil(REPEAT_SECONDS / max(seconds, 1e-9)))))


def _collect(parameters: int) -> None:
    if parameters >= COLLECT_ABOVE:
        gc.collect()


def _sample(runner: contenders.Runner) -> list[np.ndarray]:
    return [np.array(p.reshape(-1)[:AFTER_TIMING_SAMPLE]) for p in runner.params()]


def _time_race(
    race: list[Contender],
    params: list[np.ndarray],
    grads: list[Any],
    settings: Settings,
    interleave: bool,
) -> dict[str, dict[str, Any]]:
    """Warm up and time every contender; failures become the contender's status.

    Every contender runs the same number of steps: `warmup`, one probe step
    (which, when `settings.steps` is None, sizes the repeats from our
    optimizer's time), then `repeats × steps`. So after timing all stand at the
    same step, and the first `AFTER_TIMING_SAMPLE` entries of every tensor are
    compared with those of the contender's reference: a fast path that skipped
    a tensor, or a peer that did no work, shows here at full size.
    """
    results: dict[str, dict[str, Any]] = {
        c.key: {"samples_ms": [], "status": "ok"} for c in race
    }
    live: dict[str, contenders.Runner] = {}
    samples: dict[str, list[np.ndarray]] = {}
    shared = {"steps": settings.steps}
    parameters = sum(p.size for p in params)

    def start(contender: Contender) -> None:
        try:
            runner = contender.make(params)
            warm_up(runner, grads, settings.warmup)
            (probe,) = time_steps(runner, grads, repeats=1, steps=1)
            if shared["steps"] is None and contender.key == "ours":
                shared["steps"] = _steps_for(probe)
            live[contender.key] = runner
            results[contender.key]["steps_per_repeat"] = shared["steps"] or _steps_for(probe)
        except NotImplementedError as error:
            results[contender.key]["status"] = f"n/a: {error}"
        except Exception as error:  # noqa: BLE001 - one failing peer must not stop the run
            results[contender.key]["status"] = f"n/a: {type(error).__name__}: {error}"

    def time_once(key: str) -> None:
        try:
            steps = results[key]["steps_per_repeat"]
            (seconds,) = time_steps(live[key], grads, repeats=1, steps=steps)
            results[key]["samples_ms"].append(1e3 * seconds)
        except Exception as error:  # noqa: BLE001
            results[key]["status"] = f"error: {type(error).__name__}: {error}"
            del live[key]

    def finish(key: str) -> None:
        if key in live:
            results[key]["steps_total"] = (
                max(1, settings.warmup) + 1 + settings.repeats * results[key]["steps_per_repeat"]
            )
            samples[key] = _sample(live.pop(key))

    if interleave:
        for contender in race:
            start(contender)
        for _ in range(settings.repeats):
            for key in list(live):
                time_once(key)
        for contender in race:
            finish(contender.key)
    else:
        for contender in race:
            start(contender)
            for _ in range(settings.repeats):
                if contender.key in live:
                    time_once(contender.key)
            finish(contender.key)
            _collect(parameters)
    _collect(parameters)
    initial = [p.reshape(-1)[:AFTER_TIMING_SAMPLE] for p in params]
    for contender in race:
        result = results[contender.key]
        result["ms"] = median(result["samples_ms"]) if result["samples_ms"] and result[
            "status"] == "ok" else None
        reference = contender.reference
        if reference is None or contender.key not in samples or reference not in samples:
            continue
        if result["steps_total"] != results[reference].get("steps_total"):
            continue
        error = contenders.displacement_error(initial, samples[contender.key], samples[reference])
        result["after_timing"] = {"error": error, "ok": error <= AFTER_TIMING_TOLERANCE}
    return results


def _ratios(race: list[Contender], timed: dict[str, dict[str, Any]]) -> dict[str, float]:
    by_key = {c.key: c for c in race}
    ratios = {}
    for name, (numerator, denominator) in RATIOS.items():
        if denominator not in by_key:
            continue
        numerator = numerator or by_key[denominator].reference
        if numerator not in timed:
            continue
        top, bottom = timed[numerator]["ms"], timed[denominator]["ms"]
        if top is not None and bottom is not None:
            ratios[name] = top / bottom
    return ratios


def _throughput(ms: float | None, bytes_per_step: int, roofline_gbps: float) -> dict[str, Any]:
    if ms is None:
        return {"gbps": None, "roofline_fraction": None}
    gbps = bytes_per_step / (ms * 1e-3) / 1e9
    return {"gbps": gbps, "roofline_fraction": gbps / roofline_gbps}


def _measure_roofline(parameters: int, settings: Settings) -> float:
    runner = roofline.InPlaceIncrement(parameters)
    warm_up(runner, None, settings.warmup)
    (probe,) = time_steps(runner, None, repeats=1, steps=1)
    steps = settings.steps or _steps_for(probe)
    seconds = median(time_steps(runner, None, settings.repeats, steps))
    del runner
    _collect(parameters)
    return runner_bytes(parameters) / seconds / 1e9


def runner_bytes(parameters: int) -> int:
    """Bytes one roofline pass moves over `parameters` fp32 elements."""
    return 2 * 4 * parameters


def run(settings: Settings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark on the active backend.

    Args:
        settings: what to run.
        log: progress lines.

    Returns:
        The JSON-ready results (see `report.render` for their table).

    Example:
        >>> results = run(Settings(["adam"], [(10_000_000, 20)]))
        >>> results["rows"][0]["ratios"]["core/ours"]
    """
    backend = keras.backend.backend()
    description = machine.describe()
    started = datetime.datetime.now().astimezone()
    races = {name: contenders.contenders(algorithms.algorithm(name), backend)
             for name in settings.optimizers}
    log(f"backend {backend}, device {machine.device_slug(description)}; correctness guard")
    checks = {name: contenders.check(race) for name, race in races.items()}
    rows = []
    for parameters, tensors in settings.sizes:
        rng = np.random.default_rng(settings.seed)
        sizes = tensor_sizes(parameters, tensors)
        params = _random_arrays(sizes, rng)
        grads = device_arrays(_random_arrays(sizes, rng))
        roofline_before = _measure_roofline(parameters, settings)
        log(f"{parameters:,} parameters in {tensors} tensors: in-place pass "
            f"{roofline_before:.1f} GB/s")
        size_rows = []
        for name, race in races.items():
            free = machine.free_device_bytes()
            needed = MEMORY_SLACK * len(race) * _state_bytes(name, parameters)
            # Unknown free memory (TensorFlow on a GPU): one contender at a time.
            interleave = free is not None and needed < 0.5 * free
            timed = _time_race(race, params, grads, settings, interleave)
            summary = ", ".join(
                f"{c.key} {timed[c.key]['ms']:.3g} ms" if timed[c.key]["ms"] is not None
                else f"{c.key} {timed[c.key]['status']}" for c in race
            )
            log(f"  {name}: {summary}")
            size_rows.append((name, race, timed, interleave))
        roofline_after = _measure_roofline(parameters, settings)
        roofline_gbps = max(roofline_before, roofline_after)
        for name, race, timed, interleave in size_rows:
            moved = algorithms.bytes_per_parameter(name)
            bytes_per_step = moved * parameters
            peers = [c.key for c in race if not c.key.startswith("ours")
                     and not c.key.endswith("_graph") and timed[c.key]["ms"] is not None]
            best = min(peers, key=lambda key: timed[key]["ms"]) if peers else None
            rows.append({
                "algorithm": name,
                "parameters": parameters,
                "tensors": tensors,
                "bytes_per_parameter": moved,
                "bytes_per_step": bytes_per_step,
                "roofline_gbps": roofline_gbps,
                "roofline_samples_gbps": [roofline_before, roofline_after],
                "interleaved": interleave,
                "contenders": {
                    c.key: {
                        "label": c.label,
                        "config": c.config,
                        "reference": c.reference,
                        "exact": c.exact,
                        "note": c.note,
                        **timed[c.key],
                    }
                    for c in race
                },
                "ratios": _ratios(race, timed),
                "ours": _throughput(timed["ours"]["ms"], bytes_per_step, roofline_gbps),
                "best_peer": {
                    "key": best,
                    **_throughput(timed[best]["ms"] if best else None, bytes_per_step, roofline_gbps),
                },
            })
        del params, grads
        _collect(parameters)
    fit_results = []
    if settings.fit:
        models = fit.QUICK_FIT_MODELS if settings.quick else fit.FIT_MODELS
        fit_steps = 2 if settings.quick else settings.fit_steps
        for algorithm, spec in itertools.product(settings.fit_optimizers, models):
            result = fit.time_fit(spec, warmup=max(1, settings.warmup), steps=fit_steps,
                                  repeats=1 if settings.quick else 2, algorithm=algorithm)
            log(f"fit {algorithm} {spec.name}: ours {result['ms']['ours']:.3g} ms, keras core "
                f"{result['ms']['keras_core']:.3g} ms")
            fit_results.append(result)
    return {
        "tool": "optzoo bench",
        "schema": 1,
        "created": started.isoformat(timespec="seconds"),
        "backend": backend,
        "device": machine.device_slug(description),
        "machine": description,
        "settings": asdict(settings),
        "check_tolerance": contenders.CHECK_TOLERANCE,
        "after_timing_tolerance": AFTER_TIMING_TOLERANCE,
        "after_timing_sample": AFTER_TIMING_SAMPLE,
        "check_steps": contenders.CHECK_STEPS,
        "checks": checks,
        "rows": rows,
        "fit": fit_results,
    }
