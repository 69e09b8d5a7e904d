"""Learning-rate schedules: closed forms, peers, compilation, saving, validation.

Three kinds of evidence per schedule:
  * the `math` reference in `tests/schedule_reference.py`, at step 0, at every
    boundary ±1 and past the end (one scalar step at a time, as Keras calls a
    schedule) and over the whole run (one vector of steps);
  * optax and torch.optim.lr_scheduler over a whole run where they implement
    the same schedule (torch: the value after k `scheduler.step()` calls is
    ours at step k);
  * the compiled step (XLA on TensorFlow, `jax.jit` on JAX) equals eager,
    configs round-trip, and a saved model reloads its schedule.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_optzoo as oz
from keras_optzoo import schedules as sch
from tests import schedule_reference as ref
from tests.harness import BACKEND, to_numpy

# float32 evaluation against float64 closed forms: a few ulps relative, plus an
# absolute floor of 1e-6 of the run's largest rate for values near zero.
RTOL = 2e-6
ATOL_FRACTION = 1e-6
# Keras calls a schedule with `optimizer.iterations`; probe with its dtype.
STEP_DTYPE = oz.optimizers.SGD().iterations.dtype


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[], keras.optimizers.schedules.LearningRateSchedule]
    reference: Callable[[int], float]
    boundaries: tuple[int, ...]
    end: int


def _sgdr(*args):
    return partial(ref.sgdr, initial=args[0], first_decay_steps=args[1], t_mul=args[2],
                   m_mul=args[3], alpha=args[4])


CASES = [
    Case("warmup-linear-constant", lambda: sch.Warmup(0.5, 10),
         lambda t: ref.warmup(t, ref.constant(0.5), 10), (10,), 10),
    Case("warmup-linear-into-step-decay",
         lambda: sch.Warmup(sch.StepDecay(0.2, 7, 0.5), 5, initial_learning_rate=0.01),
         lambda t: ref.warmup(t, partial(ref.step_decay, initial=0.2, step_size=7, gamma=0.5), 5, 0.01),
         (5, 12, 19), 40),
    Case("warmup-exponential-into-cosine",
         lambda: sch.Warmup(sch.CosineDecay(0.3, 20, 0.1), 8, 0.003, kind="exponential"),
         lambda t: ref.warmup(t, partial(ref.cosine_decay, initial=0.3, decay_steps=20, alpha=0.1),
                              8, 0.003, "exponential"),
         (8, 28), 28),
    Case("join", lambda: sch.Join([0.1, sch.CosineDecay(0.1, 10), sch.ExponentialDecay(0.05, 5, 0.5)], [5, 20]),
         lambda t: ref.join(t, [ref.constant(0.1),
                                partial(ref.cosine_decay, initial=0.1, decay_steps=10),
                                partial(ref.exponential_decay, initial=0.05, decay_steps=5, decay_rate=0.5)],
                            [5, 20]),
         (5, 15, 20), 40),
    Case("cosine", lambda: sch.CosineDecay(0.1, 50, alpha=0.05),
         partial(ref.cosine_decay, initial=0.1, decay_steps=50, alpha=0.05), (50,), 50),
    Case("sgdr-t_mul2-m_mul0.7", lambda: sch.CosineDecayRestarts(0.1, 10, 2.0, 0.7, 0.05),
         _sgdr(0.1, 10, 2.0, 0.7, 0.05), (10, 30, 70, 150), 150),
    Case("sgdr-t_mul1", lambda: sch.CosineDecayRestarts(0.1, 9, 1.0, 1.0, 0.0),
         _sgdr(0.1, 9, 1.0, 1.0, 0.0), (9, 18, 27), 40),
    # Cycle starts 0, 4, 10, 19, 32.5: a restart between two steps.
    Case("sgdr-t_mul1.5", lambda: sch.CosineDecayRestarts(1.0, 4, 1.5, 0.9, 0.1),
         _sgdr(1.0, 4, 1.5, 0.9, 0.1), (4, 10, 19, 32, 33), 60),
    Case("warmup-cosine", lambda: sch.WarmupCosine(0.2, 10, 40, alpha=0.1, initial_learning_rate=0.02),
         lambda t: ref.warmup(t, partial(ref.cosine_decay, initial=0.2, decay_steps=40, alpha=0.1), 10, 0.02),
         (10, 50), 50),
    Case("step", lambda: sch.StepDecay(0.1, 7, 0.5),
         partial(ref.step_decay, initial=0.1, step_size=7, gamma=0.5), (7, 14, 21), 30),
    Case("multistep", lambda: sch.MultiStepDecay(0.1, [5, 12, 30], 0.3),
         partial(ref.multistep_decay, initial=0.1, milestones=[5, 12, 30], gamma=0.3), (5, 12, 30), 30),
    Case("exponential", lambda: sch.ExponentialDecay(0.1, 10, 0.5),
         partial(ref.exponential_decay, initial=0.1, decay_steps=10, decay_rate=0.5), (10, 20), 40),
    Case("exponential-staircase", lambda: sch.ExponentialDecay(0.1, 10, 0.5, staircase=True),
         partial(ref.exponential_decay, initial=0.1, decay_steps=10, decay_rate=0.5, staircase=True),
         (10, 20), 40),
    Case("one-cycle-cos", lambda: sch.OneCycle(0.5, 100),
         partial(ref.one_cycle, max_lr=0.5, total_steps=100), (29, 99), 99),
    # The peak at e1 = 8.9 falls between steps 8 and 9.
    Case("one-cycle-fractional-peak", lambda: sch.OneCycle(1.0, 33, div_factor=10.0, final_div_factor=100.0),
         partial(ref.one_cycle, max_lr=1.0, total_steps=33, div_factor=10.0, final_div_factor=100.0),
         (8, 9, 32), 32),
    Case("one-cycle-linear-three-phase",
         lambda: sch.OneCycle(0.5, 50, pct_start=0.25, anneal_strategy="linear", three_phase=True),
         partial(ref.one_cycle, max_lr=0.5, total_steps=50, pct_start=0.25, anneal="linear", three_phase=True),
         (11, 12, 23, 49), 49),
    Case("wsd-linear", lambda: sch.WarmupStableDecay(0.3, 10, 20, 15, alpha=0.1),
         partial(ref.warmup_stable_decay, peak=0.3, warmup_steps=10, stable_steps=20, decay_steps=15, alpha=0.1),
         (10, 30, 45), 45),
    Case("wsd-cosine", lambda: sch.WarmupStableDecay(0.3, 6, 4, 12, initial_learning_rate=0.03, decay_shape="cosine"),
         partial(ref.warmup_stable_decay, peak=0.3, warmup_steps=6, stable_steps=4, decay_steps=12,
                 initial=0.03, shape="cosine"),
         (6, 10, 22), 22),
    Case("wsd-1-sqrt-no-warmup", lambda: sch.WarmupStableDecay(0.3, 0, 0, 20, alpha=0.05, decay_shape="1-sqrt"),
         partial(ref.warmup_stable_decay, peak=0.3, warmup_steps=0, stable_steps=0, decay_steps=20,
                 alpha=0.05, shape="1-sqrt"),
         (20,), 20),
    # Vaswani's d_model = 64, W = 16: peak (64·16)^-0.5 at step W − 1.
    Case("inverse-sqrt", lambda: sch.InverseSqrtDecay((64 * 16) ** -0.5, 16),
         partial(ref.noam, d_model=64, warmup_steps=16), (15, 16, 63), 200),
    Case("triangular", lambda: sch.TriangularCyclical(0.01, 0.1, 5),
         partial(ref.triangular, base_lr=0.01, max_lr=0.1, step_size=5), (5, 10, 15, 20), 40),
    Case("triangular2", lambda: sch.TriangularCyclical(0.01, 0.1, 5, mode="triangular2"),
         partial(ref.triangular, base_lr=0.01, max_lr=0.1, step_size=5, mode="triangular2"),
         (5, 10, 15, 20), 40),
    Case("exp-range", lambda: sch.TriangularCyclical(0.01, 0.1, 5, mode="exp_range", gamma=0.97),
         partial(ref.triangular, base_lr=0.01, max_lr=0.1, step_size=5, mode="exp_range", gamma=0.97),
         (5, 10, 15, 20), 40),
]
CASE_PARAMS = [pytest.param(case, id=case.id) for case in CASES]


def _probe_steps(case: Case) -> list[int]:
    """Step 0, every boundary ±1, the end ±1 and far past it."""
    steps = {0, case.end + 1, case.end + 1000}
    for boundary in (*case.boundaries, case.end):
        steps.update((boundary - 1, boundary, boundary + 1))
    return sorted(s for s in steps if s >= 0)


# One vector length for every whole-run evaluation: eager JAX compiles each op
# once per shape, so a shared length keeps that cost to one compilation per op.
RUN_LENGTH = 256


def _run_values(schedule) -> np.ndarray:
    return _eager(schedule, np.arange(RUN_LENGTH))


def _assert_close(actual, expected, context: str) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    atol = ATOL_FRACTION * float(np.max(np.abs(expected)))
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected,
                               rtol=RTOL, atol=atol, err_msg=context)


def _eager(schedule, steps) -> np.ndarray:
    """Values over a vector of steps, passed as Keras passes `iterations` (int)."""
    return to_numpy(schedule(keras.ops.convert_to_tensor(np.asarray(steps), dtype=STEP_DTYPE)))


# -- the math reference -------------------------------------------------------


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_boundary_steps_match_the_closed_form(case: Case) -> None:
    schedule = case.make()
    steps = _probe_steps(case)
    actual = [float(to_numpy(schedule(keras.ops.convert_to_tensor(t, dtype=STEP_DTYPE)))) for t in steps]
    expected = [case.reference(t) for t in steps]
    _assert_close(actual, expected, f"{case.id} at steps {steps}")


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_whole_run_matches_the_closed_form(case: Case) -> None:
    assert case.end + 20 <= RUN_LENGTH
    expected = [case.reference(t) for t in range(RUN_LENGTH)]
    _assert_close(_run_values(case.make()), expected, case.id)


def test_reference_boundaries_are_where_the_rate_changes() -> None:
    """The probes are not decorative: each schedule moves at its boundaries,
    so an off-by-one in any of them breaks the comparison above."""
    for case in CASES:
        for boundary in case.boundaries:
            around = [case.reference(t) for t in (boundary - 1, boundary, boundary + 1) if t >= 0]
            assert len(set(around)) > 1, (case.id, boundary, around)


@pytest.mark.parametrize(
    "schedule, step, expected",
    [
        (sch.Warmup(0.5, 10), 0, 0.0),
        (sch.Warmup(0.5, 10), 9, 0.45),
        (sch.Warmup(0.5, 10), 10, 0.5),
        (sch.Warmup(sch.CosineDecay(1.0, 4), 2), 4, 0.5),
        (sch.Warmup(0.4, 4, 0.025, kind="exponential"), 2, 0.1),
        (sch.CosineDecay(2.0, 10, alpha=0.25), 5, 1.25),
        (sch.CosineDecayRestarts(1.0, 10, 2.0, 0.5), 30, 0.25),
        (sch.CosineDecayRestarts(1.0, 10, 2.0, 0.5), 20, 0.25),
        (sch.OneCycle(2.5, 100), 0, 0.1),
        (sch.OneCycle(2.5, 100), 29, 2.5),
        (sch.OneCycle(2.5, 100), 99, 1e-5),
        (sch.InverseSqrtDecay(1.0, 100), 99, 1.0),
        (sch.InverseSqrtDecay(1.0, 100), 399, 0.5),
        (sch.TriangularCyclical(0.0, 1.0, 4, mode="triangular2"), 12, 0.5),
        (sch.WarmupStableDecay(1.0, 2, 3, 4, decay_shape="1-sqrt"), 6, 0.5),
    ],
)
def test_hand_computed_values(schedule, step: int, expected: float) -> None:
    """A few values worked out by hand, independent of both implementations."""
    assert float(to_numpy(schedule(step))) == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_restart_steps_survive_float32_logarithms() -> None:
    """At large steps float32 log puts S_i − ε below the restart; the index
    correction must still give every restart step its peak."""
    schedule = sch.CosineDecayRestarts(1.0, 3, t_mul=2.0)
    starts = [3 * (2**i - 1) for i in range(1, 20)]  # up to ~1.6M steps
    values = _eager(schedule, starts)
    np.testing.assert_allclose(values, 1.0, rtol=1e-6)
    before = _eager(schedule, [s - 1 for s in starts])
    assert np.all(before < 0.5)


# -- peers ----------------------------------------------------------------------


def _optax(make: Callable, steps: int) -> np.ndarray:
    import jax
    import jax.numpy as jnp
    import optax

    # vmap: some optax schedules (the one-cycle) take one step at a time.
    return np.asarray(jax.jit(jax.vmap(make(optax)))(jnp.arange(steps)), dtype=np.float64)


def _torch(make: Callable, base_lr: float, steps: int) -> np.ndarray:
    """lr in effect for updates 0 … steps−1: read before each `scheduler.step()`."""
    import torch

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base_lr)
    with warnings.catch_warnings():
        # SequentialLR passes an epoch to step() internally, which torch deprecates.
        warnings.simplefilter("ignore", UserWarning)
        scheduler = make(torch.optim.lr_scheduler, optimizer)
        values = []
        for _ in range(steps):
            values.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
    return np.asarray(values, dtype=np.float64)


PEERS = [
    # optax ------------------------------------------------------------------
    ("optax-warmup_cosine_decay", lambda: sch.WarmupCosine(0.2, 10, 40, alpha=0.1, initial_learning_rate=0.02),
     lambda n: _optax(lambda o: o.warmup_cosine_decay_schedule(0.02, 0.2, 10, 50, end_value=0.02), n), 70),
    ("optax-warmup_constant", lambda: sch.Warmup(0.3, 12, 0.01),
     lambda n: _optax(lambda o: o.warmup_constant_schedule(0.01, 0.3, 12), n), 30),
    ("optax-linear_schedule", lambda: sch.Warmup(0.3, 12),
     lambda n: _optax(lambda o: o.linear_schedule(0.0, 0.3, 12), n), 30),
    ("optax-exponential-growth-warmup", lambda: sch.Warmup(0.3, 12, 0.003, kind="exponential"),
     lambda n: _optax(lambda o: o.exponential_decay(0.003, 12, 100.0, end_value=0.3), n), 30),
    ("optax-warmup_exponential_decay",
     lambda: sch.Warmup(sch.ExponentialDecay(0.2, 7, 0.6), 10, 0.02),
     lambda n: _optax(lambda o: o.warmup_exponential_decay_schedule(0.02, 0.2, 10, 7, 0.6), n), 60),
    ("optax-cosine_decay", lambda: sch.CosineDecay(0.1, 50, alpha=0.05),
     lambda n: _optax(lambda o: o.cosine_decay_schedule(0.1, 50, alpha=0.05), n), 70),
    # SGDR as optax composes it: a join of cosine decays with decaying peaks.
    ("optax-join-sgdr", lambda: sch.CosineDecayRestarts(0.1, 10, 2.0, 0.7, 0.05),
     lambda n: _optax(lambda o: o.join_schedules(
         [o.cosine_decay_schedule(0.1 * (0.7**i * 0.95 + 0.05), 10 * 2**i,
                                  alpha=0.05 / (0.7**i * 0.95 + 0.05)) for i in range(4)],
         [10, 30, 70]), n), 150),
    ("optax-exponential_decay", lambda: sch.ExponentialDecay(0.1, 10, 0.5),
     lambda n: _optax(lambda o: o.exponential_decay(0.1, 10, 0.5), n), 60),
    ("optax-exponential_decay-staircase", lambda: sch.ExponentialDecay(0.1, 10, 0.5, staircase=True),
     lambda n: _optax(lambda o: o.exponential_decay(0.1, 10, 0.5, staircase=True), n), 60),
    ("optax-staircase-step", lambda: sch.StepDecay(0.1, 7, 0.5),
     lambda n: _optax(lambda o: o.exponential_decay(0.1, 7, 0.5, staircase=True), n), 40),
    ("optax-piecewise_constant", lambda: sch.MultiStepDecay(0.1, [5, 12, 30], 0.3),
     lambda n: _optax(lambda o: o.piecewise_constant_schedule(0.1, {5: 0.3, 12: 0.3, 30: 0.3}), n), 40),
    # optax's peak sits at int(pct·T') and its end at T': T' = total_steps − 1 here.
    ("optax-cosine_onecycle", lambda: sch.OneCycle(0.5, 100),
     lambda n: _optax(lambda o: o.cosine_onecycle_schedule(99, 0.5), n), 110),
    ("optax-join-wsd", lambda: sch.WarmupStableDecay(0.3, 10, 20, 15, alpha=0.1),
     lambda n: _optax(lambda o: o.join_schedules(
         [o.linear_schedule(0.0, 0.3, 10), o.constant_schedule(0.3), o.linear_schedule(0.3, 0.03, 15)],
         [10, 30]), n), 60),
    ("optax-join-wsd-cosine", lambda: sch.WarmupStableDecay(0.3, 10, 20, 15, alpha=0.1, decay_shape="cosine"),
     lambda n: _optax(lambda o: o.join_schedules(
         [o.linear_schedule(0.0, 0.3, 10), o.constant_schedule(0.3), o.cosine_decay_schedule(0.3, 15, 0.1)],
         [10, 30]), n), 60),
    ("optax-join_schedules", lambda: sch.Join([0.1, sch.CosineDecay(0.1, 10), sch.ExponentialDecay(0.05, 5, 0.5)], [5, 20]),
     lambda n: _optax(lambda o: o.join_schedules(
         [o.constant_schedule(0.1), o.cosine_decay_schedule(0.1, 10), o.exponential_decay(0.05, 5, 0.5)],
         [5, 20]), n), 40),
    # torch.optim.lr_scheduler ------------------------------------------------
    ("torch-StepLR", lambda: sch.StepDecay(0.1, 7, 0.5),
     lambda n: _torch(lambda s, o: s.StepLR(o, 7, 0.5), 0.1, n), 40),
    ("torch-MultiStepLR", lambda: sch.MultiStepDecay(0.1, [5, 12, 30], 0.3),
     lambda n: _torch(lambda s, o: s.MultiStepLR(o, [5, 12, 30], 0.3), 0.1, n), 40),
    ("torch-ExponentialLR", lambda: sch.ExponentialDecay(0.1, 1, 0.95),
     lambda n: _torch(lambda s, o: s.ExponentialLR(o, 0.95), 0.1, n), 60),
    # torch's cosine rises again after T_max; compare within the decay.
    ("torch-CosineAnnealingLR", lambda: sch.CosineDecay(0.1, 50, alpha=0.05),
     lambda n: _torch(lambda s, o: s.CosineAnnealingLR(o, 50, eta_min=0.005), 0.1, n), 51),
    ("torch-CosineAnnealingWarmRestarts-T_mult1", lambda: sch.CosineDecayRestarts(0.1, 9, 1.0, alpha=0.1),
     lambda n: _torch(lambda s, o: s.CosineAnnealingWarmRestarts(o, 9, 1, eta_min=0.01), 0.1, n), 60),
    ("torch-CosineAnnealingWarmRestarts-T_mult2", lambda: sch.CosineDecayRestarts(0.1, 10, 2.0, alpha=0.1),
     lambda n: _torch(lambda s, o: s.CosineAnnealingWarmRestarts(o, 10, 2, eta_min=0.01), 0.1, n), 160),
    ("torch-OneCycleLR", lambda: sch.OneCycle(0.5, 100),
     lambda n: _torch(lambda s, o: s.OneCycleLR(o, 0.5, total_steps=100, cycle_momentum=False), 0.1, n), 100),
    ("torch-OneCycleLR-fractional-peak", lambda: sch.OneCycle(1.0, 33, div_factor=10.0, final_div_factor=100.0),
     lambda n: _torch(lambda s, o: s.OneCycleLR(o, 1.0, total_steps=33, div_factor=10.0,
                                                 final_div_factor=100.0, cycle_momentum=False), 0.1, n), 33),
    ("torch-OneCycleLR-linear-three_phase",
     lambda: sch.OneCycle(0.5, 50, pct_start=0.25, anneal_strategy="linear", three_phase=True),
     lambda n: _torch(lambda s, o: s.OneCycleLR(o, 0.5, total_steps=50, pct_start=0.25, anneal_strategy="linear",
                                                 three_phase=True, cycle_momentum=False), 0.1, n), 50),
    ("torch-CyclicLR-triangular", lambda: sch.TriangularCyclical(0.01, 0.1, 5),
     lambda n: _torch(lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=5, cycle_momentum=False), 0.01, n), 60),
    ("torch-CyclicLR-triangular2", lambda: sch.TriangularCyclical(0.01, 0.1, 5, mode="triangular2"),
     lambda n: _torch(lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=5, mode="triangular2",
                                               cycle_momentum=False), 0.01, n), 60),
    ("torch-CyclicLR-exp_range", lambda: sch.TriangularCyclical(0.01, 0.1, 5, mode="exp_range", gamma=0.97),
     lambda n: _torch(lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=5, mode="exp_range", gamma=0.97,
                                               cycle_momentum=False), 0.01, n), 60),
    ("torch-LinearLR", lambda: sch.Warmup(0.3, 12, 0.03),
     lambda n: _torch(lambda s, o: s.LinearLR(o, start_factor=0.1, total_iters=12), 0.3, n), 30),
    ("torch-SequentialLR-warmup-cosine", lambda: sch.WarmupCosine(0.2, 10, 40, alpha=0.1, initial_learning_rate=0.02),
     lambda n: _torch(lambda s, o: s.SequentialLR(o, [s.LinearLR(o, start_factor=0.1, total_iters=10),
                                                       s.CosineAnnealingLR(o, 40, eta_min=0.02)], [10]), 0.2, n), 51),
    ("torch-SequentialLR-wsd", lambda: sch.WarmupStableDecay(0.3, 10, 20, 15, alpha=0.1, initial_learning_rate=0.03),
     lambda n: _torch(lambda s, o: s.SequentialLR(o, [s.LinearLR(o, start_factor=0.1, total_iters=10),
                                                       s.ConstantLR(o, factor=1.0, total_iters=20),
                                                       s.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=15)],
                                                   [10, 30]), 0.3, n), 60),
]


@pytest.mark.peer
@pytest.mark.parametrize("make, peer_values, steps", [pytest.param(*row[1:], id=row[0]) for row in PEERS])
def test_whole_run_matches_peer(make: Callable, peer_values: Callable, steps: int) -> None:
    expected = peer_values(steps)
    _assert_close(_run_values(make())[:steps], expected, "vs peer")


# -- compiled evaluation ----------------------------------------------------------


def _compiled(schedule) -> Callable:
    if BACKEND == "tensorflow":
        import tensorflow as tf

        function = tf.function(schedule.__call__, jit_compile=True)
        return lambda t: function(tf.constant(t, tf.int64))
    import jax
    import jax.numpy as jnp

    function = jax.jit(schedule.__call__)
    return lambda t: function(jnp.asarray(t, jnp.int32))


@pytest.mark.skipif(BACKEND == "torch", reason="Keras's torch backend runs the train step eagerly")
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_compiled_step_equals_eager(case: Case) -> None:
    schedule = case.make()
    compiled = _compiled(schedule)
    steps = _probe_steps(case)
    actual = [float(to_numpy(compiled(t))) for t in steps]
    expected = [float(to_numpy(schedule(t))) for t in steps]
    _assert_close(actual, expected, f"{case.id}: compiled vs eager at steps {steps}")


# -- serialization -----------------------------------------------------------------


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_config_round_trips_through_keras_serialization(case: Case) -> None:
    schedule = case.make()
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(schedule)))
    assert config["registered_name"] == f"keras_optzoo>{type(schedule).__name__}"
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(schedule)
    assert clone.get_config() == schedule.get_config()
    np.testing.assert_array_equal(_run_values(clone), _run_values(schedule))


SAVED = [
    pytest.param(lambda: sch.Warmup(sch.CosineDecayRestarts(0.01, 4, 2.0, 0.5), 3), id="nested"),
    pytest.param(lambda: sch.Join([0.01, sch.MultiStepDecay(0.01, [2, 5])], [3]), id="join-with-constant"),
    pytest.param(lambda: sch.WarmupCosine(0.01, 2, 10), id="warmup-cosine"),
]


@pytest.mark.parametrize("make", SAVED)
def test_saved_model_reloads_its_schedule_without_custom_objects(make: Callable, tmp_path: Path) -> None:
    schedule = make()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=oz.optimizers.Adam(learning_rate=schedule), loss="mse")
    model.optimizer.build(model.trainable_variables)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    restored = loaded.optimizer._learning_rate
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    np.testing.assert_array_equal(_run_values(restored), _run_values(schedule))


def test_fit_reads_the_schedule_at_each_step_and_resumes_after_loading(tmp_path: Path) -> None:
    """Through `fit`'s compiled step: after k updates the optimizer's rate is
    schedule(k), and a reloaded model carries on from its saved step."""
    schedule = sch.Warmup(sch.CosineDecayRestarts(0.01, 4, 2.0, 0.5), 3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=oz.optimizers.SGD(learning_rate=schedule), loss="mse")
    x = np.random.default_rng(0).standard_normal((40, 3)).astype("float32")
    model.fit(x, x[:, :1], batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert int(to_numpy(model.optimizer.iterations)) == 5
    assert float(to_numpy(model.optimizer.learning_rate)) == pytest.approx(
        ref.warmup(5, _sgdr(0.01, 4, 2.0, 0.5, 0.0), 3), rel=1e-6)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert float(to_numpy(loaded.optimizer.learning_rate)) == float(to_numpy(model.optimizer.learning_rate))


# -- validation --------------------------------------------------------------------

CONSTRUCTORS: dict[type, dict] = {
    sch.Warmup: {"schedule": 0.1, "warmup_steps": 5},
    sch.Join: {"schedules": [0.1, 0.01], "boundaries": [5]},
    sch.CosineDecay: {"initial_learning_rate": 0.1, "decay_steps": 10},
    sch.CosineDecayRestarts: {"initial_learning_rate": 0.1, "first_decay_steps": 10},
    sch.WarmupCosine: {"peak_learning_rate": 0.1, "warmup_steps": 5, "decay_steps": 10},
    sch.StepDecay: {"initial_learning_rate": 0.1, "step_size": 10},
    sch.MultiStepDecay: {"initial_learning_rate": 0.1, "milestones": [5, 10]},
    sch.ExponentialDecay: {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5},
    sch.OneCycle: {"max_learning_rate": 0.1, "total_steps": 100},
    sch.WarmupStableDecay: {"peak_learning_rate": 0.1, "warmup_steps": 5, "stable_steps": 5, "decay_steps": 5},
    sch.InverseSqrtDecay: {"peak_learning_rate": 0.1, "warmup_steps": 10},
    sch.TriangularCyclical: {"base_learning_rate": 0.01, "max_learning_rate": 0.1, "step_size": 5},
}

BAD_LEARNING_RATES = [-0.1, math.nan, math.inf, "0.1"]
BAD_COUNTS = [-3, 2.5, True, "10"]

# argument -> out-of-range values, shared by every constructor that has it.
RULES: dict[str, list] = {
    "initial_learning_rate": BAD_LEARNING_RATES,
    "peak_learning_rate": BAD_LEARNING_RATES,
    "max_learning_rate": BAD_LEARNING_RATES,
    "base_learning_rate": BAD_LEARNING_RATES,
    "schedule": [-0.1, "cosine", None],
    "schedules": [[], [0.1, -0.01], "ab", [0.1, lambda t: 0.1]],
    "boundaries": [[], [5, 5], [-1], [2.5]],
    "milestones": [[], [10, 5], [0], 7],
    "warmup_steps": BAD_COUNTS,
    "stable_steps": BAD_COUNTS,
    "decay_steps": [0, *BAD_COUNTS],
    "first_decay_steps": [0, *BAD_COUNTS],
    "step_size": [0, *BAD_COUNTS],
    "total_steps": [1, *BAD_COUNTS],
    "alpha": [-0.1, 1.5, math.nan],
    "gamma": [-0.1, 1.5],
    "t_mul": [0.5, 0.0],
    "m_mul": [-0.5, 1.5],
    "decay_rate": [0.0, -0.5],
    "pct_start": [0.0, 1.0, 1.2],
    "div_factor": [0.0, -1.0],
    "final_div_factor": [0.0],
    "kind": ["cosine"],
    "mode": ["triangle"],
    "anneal_strategy": ["cosine"],
    "decay_shape": ["sqrt"],
    "staircase": ["yes"],
    "three_phase": [None],
}

SPECIAL = [
    (sch.Warmup, {"kind": "exponential"}, "initial_learning_rate"),
    (sch.Warmup, {"kind": "exponential", "initial_learning_rate": 0.01, "schedule": 0.0}, "schedule"),
    (sch.Join, {"schedules": [0.1, 0.01, 0.001], "boundaries": [5]}, "boundaries"),
    (sch.OneCycle, {"total_steps": 3, "pct_start": 0.3}, "pct_start"),
    (sch.OneCycle, {"three_phase": True, "pct_start": 0.6}, "pct_start"),
    (sch.TriangularCyclical, {"max_learning_rate": 0.001}, "max_learning_rate"),
]


def _arguments(cls: type) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def _stable_repr(value) -> str:
    # Without the address of a lambda, so that pytest-xdist workers agree on test ids.
    return re.sub(r" at 0x[0-9a-f]+", "", repr(value))


def _validation_cases():
    for cls, valid in CONSTRUCTORS.items():
        for argument in _arguments(cls):
            for value in RULES[argument]:
                yield pytest.param(cls, {**valid, argument: value}, argument,
                                   id=f"{cls.__name__}-{argument}={_stable_repr(value)}")
    for cls, kwargs, argument in SPECIAL:
        yield pytest.param(cls, {**CONSTRUCTORS[cls], **kwargs}, argument,
                           id=f"{cls.__name__}-special-{argument}")


@pytest.mark.parametrize("cls, kwargs, argument", list(_validation_cases()))
def test_bad_argument_raises_value_error_naming_it(cls: type, kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        cls(**kwargs)


def test_every_argument_has_a_validation_rule_and_valid_defaults_build() -> None:
    assert set(CONSTRUCTORS) == {getattr(sch, n) for n in sch.__all__
                                 if isinstance(getattr(sch, n), type) and getattr(sch, n) is not sch.ZooSchedule}
    for cls, valid in CONSTRUCTORS.items():
        cls(**valid)
        missing = [a for a in _arguments(cls) if a not in RULES]
        assert not missing, f"{cls.__name__}: no invalid values listed for {missing}"


def test_message_names_the_argument_value_and_range() -> None:
    with pytest.raises(ValueError, match=r"warmup_steps must be an integer >= 0, got -3"):
        sch.Warmup(0.1, -3)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        sch.CosineDecay(0.1, 10, alpha=1.5)


# -- batch-size scaling ------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"base_learning_rate": 0.1, "batch_size": 8192}, 3.2),  # Goyal et al.: 0.1 per 256
        ({"base_learning_rate": 0.1, "batch_size": 64}, 0.025),
        ({"base_learning_rate": 1e-3, "batch_size": 1024, "base_batch_size": 64, "rule": "sqrt"}, 4e-3),
        ({"base_learning_rate": 0.2, "batch_size": 256}, 0.2),
    ],
)
def test_scale_learning_rate(kwargs: dict, expected: float) -> None:
    assert sch.scale_learning_rate(**kwargs) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"base_learning_rate": -0.1, "batch_size": 64}, "base_learning_rate"),
        ({"base_learning_rate": 0.1, "batch_size": 0}, "batch_size"),
        ({"base_learning_rate": 0.1, "batch_size": 64.0}, "batch_size"),
        ({"base_learning_rate": 0.1, "batch_size": 64, "base_batch_size": -256}, "base_batch_size"),
        ({"base_learning_rate": 0.1, "batch_size": 64, "rule": "log"}, "rule"),
    ],
)
def test_scale_learning_rate_rejects_bad_input(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        sch.scale_learning_rate(**kwargs)
