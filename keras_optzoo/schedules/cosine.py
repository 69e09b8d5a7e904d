"""Cosine annealing: a single decay, warm restarts (SGDR), and warmup + cosine."""

from __future__ import annotations

from keras import ops

from keras_optzoo.optimizers.base import validate_non_negative, validate_range
from keras_optzoo.schedules.base import (
    ZooSchedule,
    cosine_interpolate,
    floor_divide,
    register_schedule,
    validate_steps,
)
from keras_optzoo.schedules.warmup import Warmup


@register_schedule
class CosineDecay(ZooSchedule):
    """Half a cosine from `initial_learning_rate` down to a floor, then the floor.

        η(t) = η₀·[(1 − α)·(1 + cos(π·min(t, T)/T))/2 + α]

    `η(0) = η₀` (the first update), `η(T) = α·η₀`, and every step past `T`
    stays at the floor `α·η₀`. Equals `optax.cosine_decay_schedule(η₀, T, α)`,
    `keras.optimizers.schedules.CosineDecay(η₀, T, α)` and, for `t ≤ T`,
    torch's `CosineAnnealingLR(T_max=T, eta_min=α·η₀)` (whose closed form
    keeps following the cosine back up past `T`).

    Args:
        initial_learning_rate: `η₀ >= 0`.
        decay_steps: `T`, integer >= 1.
        alpha: the floor as a fraction of `η₀`, in [0, 1]. Defaults to 0.0.

    Example:
    ```python
    schedule = oz.schedules.CosineDecay(0.1, decay_steps=10_000, alpha=0.01)
    ```

    References:
        Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent with
        Warm Restarts", ICLR, Eq. 5 (one period, no restart).
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0):
        self.initial_learning_rate = float(
            validate_non_negative("initial_learning_rate", initial_learning_rate)
        )
        self.decay_steps = validate_steps("decay_steps", decay_steps, 1)
        self.alpha = float(validate_range("alpha", alpha, 0.0, 1.0))

    def evaluate(self, step):
        fraction = ops.minimum(step, self.decay_steps) / self.decay_steps
        floor = self.alpha * self.initial_learning_rate
        return cosine_interpolate(self.initial_learning_rate, floor, fraction)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
        }


@register_schedule
class CosineDecayRestarts(ZooSchedule):
    """SGDR: cosine annealing restarted with longer periods and lower peaks.

    Cycle `i = 0, 1, …` lasts `Tᵢ = T₀·t_mulⁱ` steps, starts at step
    `Sᵢ = T₀·(t_mulⁱ − 1)/(t_mul − 1)` (`T₀·i` when `t_mul = 1`) and peaks at
    `m_mulⁱ·η₀`:

        η(t) = η₀·[(1 − α)·m_mulⁱ·(1 + cos(π·(t − Sᵢ)/Tᵢ))/2 + α]   for Sᵢ ≤ t < Sᵢ₊₁

    Step 0 and every restart step `Sᵢ` use the cycle's peak; the step before
    a restart is one step short of the floor `α·η₀`. The floor is not scaled
    by `m_mul`, as in Keras. With `m_mul = 1` and an integer `t_mul` this is
    torch's `CosineAnnealingWarmRestarts(T_0=T₀, T_mult=t_mul,
    eta_min=α·η₀)`; it also equals `keras.optimizers.schedules.
    CosineDecayRestarts`, but the cycle index here is corrected against the
    exact cycle starts, so float32 rounding of the logarithm cannot put a
    restart step into the previous cycle.

    Args:
        initial_learning_rate: `η₀ >= 0`.
        first_decay_steps: `T₀`, integer >= 1.
        t_mul: period multiplier, >= 1. Defaults to 2.0.
        m_mul: peak multiplier per restart, in [0, 1]. Defaults to 1.0.
        alpha: the floor as a fraction of `η₀`, in [0, 1]. Defaults to 0.0.

    Example:
    ```python
    # Periods 10, 20, 40, ... epochs' worth of steps, each peak 0.8x the last.
    schedule = oz.schedules.CosineDecayRestarts(0.1, 10 * steps_per_epoch, m_mul=0.8)
    ```

    References:
        Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent with
        Warm Restarts", ICLR, Eq. 5.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: int,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
    ):
        self.initial_learning_rate = float(
            validate_non_negative("initial_learning_rate", initial_learning_rate)
        )
        self.first_decay_steps = validate_steps("first_decay_steps", first_decay_steps, 1)
        self.t_mul = float(validate_range("t_mul", t_mul, 1.0))
        self.m_mul = float(validate_range("m_mul", m_mul, 0.0, 1.0))
        self.alpha = float(validate_range("alpha", alpha, 0.0, 1.0))

    def _cycle_start(self, cycle):
        if self.t_mul == 1.0:
            return self.first_decay_steps * cycle
        return self.first_decay_steps * (ops.power(self.t_mul, cycle) - 1.0) / (self.t_mul - 1.0)

    def _cycle(self, step):
        if self.t_mul == 1.0:
            return floor_divide(step, float(self.first_decay_steps))
        cycles = ops.log1p(step * (self.t_mul - 1.0) / self.first_decay_steps)
        cycle = ops.floor(cycles / ops.log(self.t_mul))
        cycle = ops.where(self._cycle_start(cycle + 1.0) <= step, cycle + 1.0, cycle)
        return ops.where(self._cycle_start(cycle) > step, cycle - 1.0, cycle)

    def evaluate(self, step):
        cycle = self._cycle(step)
        period = self.first_decay_steps * ops.power(self.t_mul, cycle)
        fraction = (step - self._cycle_start(cycle)) / period
        peak = ops.power(self.m_mul, cycle)
        decayed = (1.0 - self.alpha) * cosine_interpolate(peak, 0.0, fraction) + self.alpha
        return self.initial_learning_rate * decayed

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self.t_mul,
            "m_mul": self.m_mul,
            "alpha": self.alpha,
        }


@register_schedule
class WarmupCosine(ZooSchedule):
    """Linear warmup to a peak, then a cosine decay to a floor.

        η(t) = η₀ + (η_peak − η₀)·t/W                                  t < W
        η(t) = η_peak·[(1 − α)·(1 + cos(π·min(t − W, T)/T))/2 + α]      t ≥ W

    This is `Warmup(CosineDecay(η_peak, T, α), W, η₀)`: step 0 uses `η₀`,
    step `W` the peak, step `W + T` and later the floor `α·η_peak`. `T`
    counts the decay steps after the warmup, as in Keras's `CosineDecay`
    with `warmup_steps`; `optax.warmup_cosine_decay_schedule(η₀, η_peak, W,
    decay_steps=W + T, end_value=α·η_peak)` counts the warmup inside its
    `decay_steps` and is otherwise the same.

    Args:
        peak_learning_rate: `η_peak >= 0`.
        warmup_steps: `W`, integer >= 0.
        decay_steps: `T`, integer >= 1.
        alpha: the floor as a fraction of `η_peak`, in [0, 1]. Defaults to 0.0.
        initial_learning_rate: `η₀ >= 0`. Defaults to 0.0.

    Example:
    ```python
    schedule = oz.schedules.WarmupCosine(1e-3, warmup_steps=500, decay_steps=9500)
    ```

    References:
        Goyal et al., 2017, "Accurate, Large Minibatch SGD", Sec. 2.2;
        Loshchilov & Hutter, 2017, "SGDR", ICLR, Eq. 5.
    """

    def __init__(
        self,
        peak_learning_rate: float,
        warmup_steps: int,
        decay_steps: int,
        alpha: float = 0.0,
        initial_learning_rate: float = 0.0,
    ):
        self.peak_learning_rate = float(validate_non_negative("peak_learning_rate", peak_learning_rate))
        self.warmup_steps = validate_steps("warmup_steps", warmup_steps)
        self.decay_steps = validate_steps("decay_steps", decay_steps, 1)
        self.alpha = float(validate_range("alpha", alpha, 0.0, 1.0))
        self.initial_learning_rate = float(
            validate_non_negative("initial_learning_rate", initial_learning_rate)
        )
        self._schedule = Warmup(
            CosineDecay(self.peak_learning_rate, self.decay_steps, self.alpha),
            self.warmup_steps,
            self.initial_learning_rate,
        )

    def evaluate(self, step):
        return self._schedule.evaluate(step)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "initial_learning_rate": self.initial_learning_rate,
        }
