"""Closed-form learning-rate schedules in plain `math`, one function per schedule.

Written from the papers' definitions (and, for the one-cycle policy, from the
phase table in torch's `OneCycleLR` documentation), not from keras_optzoo's
code: loops where the library uses logarithms (SGDR's cycle index), Smith's
`cycle`/`x` formulas for the triangle wave, Vaswani's `d_model` form for the
inverse square root. Every function takes the 0-based step `t` that Keras
passes (`optimizer.iterations`) and returns a Python float.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Schedule = Callable[[int], float]


def constant(value: float) -> Schedule:
    return lambda t: value


def warmup(
    t: int, inner: Schedule, warmup_steps: int, initial: float = 0.0, kind: str = "linear"
) -> float:
    """Goyal et al. (2017) gradual warmup to `inner(0)`, then `inner` shifted by W."""
    if t >= warmup_steps:
        return inner(t - warmup_steps)
    target = inner(0)
    if kind == "linear":
        return initial + (target - initial) * t / warmup_steps
    # Geometric: the same ratio every step, initial at 0 and target at W.
    ratio_per_step = (target / initial) ** (1.0 / warmup_steps)
    return initial * ratio_per_step**t


def join(t: int, schedules: Sequence[Schedule], boundaries: Sequence[int]) -> float:
    """optax.join_schedules: the last schedule whose boundary is <= t, restarted there."""
    start, active = 0, schedules[0]
    for boundary, schedule in zip(boundaries, schedules[1:]):
        if t >= boundary:
            start, active = boundary, schedule
    return active(t - start)


def cosine_decay(t: int, initial: float, decay_steps: int, alpha: float = 0.0) -> float:
    """Loshchilov & Hutter (2017) Eq. 5 for one period, floor alpha·initial."""
    t = min(t, decay_steps)
    eta_min = alpha * initial
    return eta_min + 0.5 * (initial - eta_min) * (1.0 + math.cos(math.pi * t / decay_steps))


def sgdr(
    t: int, initial: float, first_decay_steps: int, t_mul: float, m_mul: float, alpha: float
) -> float:
    """SGDR (Loshchilov & Hutter 2017, Eq. 5): walk the cycles until t falls in one."""
    start, period, cycle = 0.0, float(first_decay_steps), 0
    while t >= start + period:
        start += period
        period *= t_mul
        cycle += 1
    t_cur = t - start
    eta_min = alpha * initial
    # Restart i shrinks the amplitude above the floor by m_mul^i; the floor stays.
    amplitude = m_mul**cycle * (initial - eta_min)
    return eta_min + 0.5 * amplitude * (1.0 + math.cos(math.pi * t_cur / period))


def step_decay(t: int, initial: float, step_size: int, gamma: float) -> float:
    return initial * gamma ** (t // step_size)


def multistep_decay(t: int, initial: float, milestones: Sequence[int], gamma: float) -> float:
    return initial * gamma ** sum(1 for m in milestones if t >= m)


def exponential_decay(
    t: int, initial: float, decay_steps: int, decay_rate: float, staircase: bool = False
) -> float:
    exponent = t // decay_steps if staircase else t / decay_steps
    return initial * decay_rate**exponent


def one_cycle(
    t: int,
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal: str = "cos",
    three_phase: bool = False,
) -> float:
    """Smith & Topin's one cycle with the phase table of torch's OneCycleLR docs."""
    initial = max_lr / div_factor
    minimum = initial / final_div_factor
    if three_phase:
        phases = [
            (pct_start * total_steps - 1, initial, max_lr),
            (2 * pct_start * total_steps - 2, max_lr, initial),
            (total_steps - 1, initial, minimum),
        ]
    else:
        phases = [(pct_start * total_steps - 1, initial, max_lr), (total_steps - 1, max_lr, minimum)]
    t = min(t, total_steps - 1)
    begin = 0.0
    for index, (end, start_lr, end_lr) in enumerate(phases):
        if t <= end or index == len(phases) - 1:
            fraction = (t - begin) / (end - begin)
            if anneal == "cos":
                return end_lr + (start_lr - end_lr) / 2.0 * (math.cos(math.pi * fraction) + 1.0)
            return start_lr + (end_lr - start_lr) * fraction
        begin = end
    raise AssertionError("unreachable")


def warmup_stable_decay(
    t: int,
    peak: float,
    warmup_steps: int,
    stable_steps: int,
    decay_steps: int,
    alpha: float = 0.0,
    initial: float = 0.0,
    shape: str = "linear",
) -> float:
    """Hu et al. (2024) WSD; cooldown shapes of Hägele et al. (2024)."""
    if t < warmup_steps:
        return initial + (peak - initial) * t / warmup_steps
    if t < warmup_steps + stable_steps:
        return peak
    progress = min((t - warmup_steps - stable_steps) / decay_steps, 1.0)
    floor = alpha * peak
    if shape == "linear":
        return peak - (peak - floor) * progress
    if shape == "cosine":
        return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return floor + (peak - floor) * (1.0 - math.sqrt(progress))


def noam(t: int, d_model: float, warmup_steps: int, factor: float = 1.0) -> float:
    """Vaswani et al. (2017) Eq. 3; their step_num is 1 at the first update."""
    step_num = t + 1
    return factor * d_model**-0.5 * min(step_num**-0.5, step_num * warmup_steps**-1.5)


def triangular(
    t: int, base_lr: float, max_lr: float, step_size: int, mode: str = "triangular", gamma: float = 1.0
) -> float:
    """Smith (2017), Sec. 3.1, with the triangular2 / exp_range scalings."""
    cycle = math.floor(1 + t / (2 * step_size))
    x = abs(t / step_size - 2 * cycle + 1)
    scale = {"triangular": 1.0, "triangular2": 1.0 / 2 ** (cycle - 1), "exp_range": gamma**t}[mode]
    return base_lr + (max_lr - base_lr) * max(0.0, 1.0 - x) * scale
