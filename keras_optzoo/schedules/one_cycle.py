"""The one-cycle policy (Smith & Topin), as torch's `OneCycleLR` anneals it."""

from __future__ import annotations

from keras import ops

from keras_optzoo.optimizers.base import (
    validate_choice,
    validate_non_negative,
    validate_positive,
    validate_range,
)
from keras_optzoo.schedules.base import (
    ZooSchedule,
    cosine_interpolate,
    register_schedule,
    validate_steps,
)

ANNEAL_STRATEGIES = ("cos", "linear")


def _linear_interpolate(start, end, fraction):
    return start + (end - start) * fraction


@register_schedule
class OneCycle(ZooSchedule):
    """One cycle up to `max_learning_rate` and down far below the start.

    With `η_max`, `η₀ = η_max/div_factor`, `η_min = η₀/final_div_factor`,
    `T = total_steps`, `p = pct_start`, and `anneal(a, b, f)` the cosine
    `b + (a − b)·(1 + cos(π·f))/2` (or linear `a + (b − a)·f`):

        e₁ = p·T − 1,  e₂ = T − 1
        η(t) = anneal(η₀,   η_max, t/e₁)                   t ≤ e₁
        η(t) = anneal(η_max, η_min, (t − e₁)/(e₂ − e₁))     e₁ < t

    and with `three_phase=True` (`e₂ = 2·p·T − 2`, `e₃ = T − 1`): up to `η_max`
    by `e₁`, back to `η₀` by `e₂`, down to `η_min` by `e₃`. Step 0 uses `η₀`,
    step `e₁` (when whole) `η_max`, step `T − 1` `η_min`, and steps past
    `T − 1` stay at `η_min` (torch raises there). This is torch's
    `OneCycleLR(max_lr, total_steps, pct_start, anneal_strategy, div_factor,
    final_div_factor, three_phase)` for the learning rate; its optional
    momentum cycling is not a learning-rate schedule and is not included.
    `optax.cosine_onecycle_schedule(T', η_max, …)` puts its peak at
    `int(p·T')` and its end at `T'`, i.e. equals this schedule with
    `total_steps = T' + 1` whenever `int(p·T') = p·(T' + 1) − 1`.

    Args:
        max_learning_rate: `η_max >= 0`.
        total_steps: `T`, integer >= 2.
        pct_start: fraction of the cycle spent rising, in (0, 1) (in (0, 0.5]
            with `three_phase`), with `pct_start·total_steps > 1`. Defaults to 0.3.
        div_factor: `η_max/η₀ > 0`. Defaults to 25.0.
        final_div_factor: `η₀/η_min > 0`. Defaults to 1e4.
        anneal_strategy: `"cos"` (default) or `"linear"`.
        three_phase: add the symmetric descent back to `η₀` before the final
            annihilation. Defaults to False.

    Example:
    ```python
    schedule = oz.schedules.OneCycle(0.1, total_steps=epochs * steps_per_epoch)
    ```

    References:
        Smith & Topin, 2019, "Super-Convergence: Very Fast Training of Neural
        Networks Using Large Learning Rates", Proc. SPIE 11006; Smith, 2018,
        "A disciplined approach to neural network hyper-parameters: Part 1",
        arXiv:1803.09820. Both anneal linearly; the cosine default follows
        fastai and torch's `OneCycleLR`.
    """

    def __init__(
        self,
        max_learning_rate: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        anneal_strategy: str = "cos",
        three_phase: bool = False,
    ):
        self.max_learning_rate = float(validate_non_negative("max_learning_rate", max_learning_rate))
        self.total_steps = validate_steps("total_steps", total_steps, 2)
        self.three_phase = bool(validate_choice("three_phase", three_phase, (False, True)))
        high = 0.5 if three_phase else 1.0
        self.pct_start = float(
            validate_range("pct_start", pct_start, 0.0, high, low_inclusive=False, high_inclusive=three_phase)
        )
        if self.pct_start * self.total_steps <= 1.0:
            # The rising phase would end at or before step 0 (torch divides by zero).
            raise ValueError(
                f"pct_start must be > 1/total_steps = {1.0 / self.total_steps:g}, got {pct_start!r}"
            )
        self.div_factor = float(validate_positive("div_factor", div_factor))
        self.final_div_factor = float(validate_positive("final_div_factor", final_div_factor))
        self.anneal_strategy = validate_choice("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES)

    def evaluate(self, step):
        anneal = cosine_interpolate if self.anneal_strategy == "cos" else _linear_interpolate
        peak = self.max_learning_rate
        start = peak / self.div_factor
        final = start / self.final_div_factor
        last = float(self.total_steps - 1)
        step = ops.minimum(step, last)
        rise_end = self.pct_start * self.total_steps - 1.0
        if self.three_phase:
            # Phase boundaries (end step, target) after the rise, as torch lists them.
            phases = [(2.0 * self.pct_start * self.total_steps - 2.0, start), (last, final)]
        else:
            phases = [(last, final)]
        value = anneal(start, peak, step / rise_end)
        begin, level = rise_end, peak
        for end, target in phases:
            annealed = anneal(level, target, (step - begin) / (end - begin))
            value = ops.where(step > begin, annealed, value)
            begin, level = end, target
        return value

    def get_config(self):
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "anneal_strategy": self.anneal_strategy,
            "three_phase": self.three_phase,
        }
