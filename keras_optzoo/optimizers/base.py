"""The machinery every keras_optzoo optimizer shares.

An algorithm file declares its slots and writes its update as a pure function of
tensors; `ZooOptimizer` owns everything else: slot creation through Keras's
`add_optimizer_variables` (so slots follow shape, dtype and layout of their model
variable and are saved with the optimizer), hyperparameter validation, decoupled
weight decay, the non-finite-gradient policy, and `get_config` plumbing.

Keeping the math pure (`update(...)` returns new values, the base assigns them)
is what lets one executor run it per variable today and a fused executor run it
over many tensors later without touching the algorithm files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import keras
from keras import ops

from keras_optzoo.optimizers import telemetry

NONFINITE_POLICIES = ("apply", "skip")


# ---------------------------------------------------------------------------
# Validation: one line per argument in each optimizer's constructor.
# ---------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_range(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Raise `ValueError` unless `value` is a finite number in the interval."""
    left = "[" if low_inclusive and math.isfinite(low) else "("
    right = "]" if high_inclusive and math.isfinite(high) else ")"
    interval = f"{left}{low:g}, {high:g}{right}"
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    too_low = value < low or (value == low and not low_inclusive)
    too_high = value > high or (value == high and not high_inclusive)
    if too_low or too_high:
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def validate_beta(name: str, value: Any) -> float:
    """A decay rate of a moving average: `[0, 1)`."""
    return validate_range(name, value, 0.0, 1.0, high_inclusive=False)


def validate_positive(name: str, value: Any) -> float:
    return validate_range(name, value, 0.0, math.inf, low_inclusive=False)


def validate_non_negative(name: str, value: Any) -> float:
    return validate_range(name, value, 0.0, math.inf)


def validate_choice(name: str, value: Any, choices: tuple) -> Any:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def validate_learning_rate(value: Any) -> Any:
    """A float >= 0, or a schedule/callable (checked by Keras when called)."""
    if callable(value):
        return value
    if _is_number(value):
        validate_non_negative("learning_rate", value)
        return float(value)
    raise ValueError(
        "learning_rate must be a float >= 0, a LearningRateSchedule or a "
        f"callable, got {value!r}"
    )


def _validate_keras_arguments(kwargs: Mapping[str, Any]) -> None:
    """Range checks for the Keras base arguments that Keras itself lets through."""
    if kwargs.get("weight_decay") is not None:
        validate_non_negative("weight_decay", kwargs["weight_decay"])
    for name in ("clipnorm", "clipvalue", "global_clipnorm"):
        if kwargs.get(name) is not None:
            validate_positive(name, kwargs[name])
    if kwargs.get("use_ema"):
        validate_range("ema_momentum", kwargs.get("ema_momentum", 0.99), 0.0, 1.0)
    if kwargs.get("loss_scale_factor") is not None:
        validate_positive("loss_scale_factor", kwargs["loss_scale_factor"])
    steps = kwargs.get("gradient_accumulation_steps")
    if steps is not None and (not isinstance(steps, int) or steps < 2):
        raise ValueError(
            f"gradient_accumulation_steps must be an integer >= 2, got {steps!r}"
        )


# ---------------------------------------------------------------------------
# Shared math: the pieces several algorithms name in their equations.
# ---------------------------------------------------------------------------


def ema(average, value, decay):
    """Exponential moving average: `decay * average + (1 - decay) * value`."""
    return average + (value - average) * (1.0 - decay)


def debias(moment, decay, step):
    """Bias-corrected moment `moment / (1 - decay**step)` (Kingma & Ba, 2015)."""
    return moment / (1.0 - ops.power(decay, step))


# ---------------------------------------------------------------------------
# The base optimizer.
# ---------------------------------------------------------------------------


class ZooOptimizer(keras.optimizers.Optimizer):
    """Base class of keras_optzoo optimizers.

    A subclass implements:
      * `slot_initial_values()`: `{slot_name: initial_value}` for this config;
      * `update(gradient, variable, slots, learning_rate, step)`: a pure
        function returning `(new_variable, {slot_name: new_value})`;
      * `get_config()`: its hyperparameters on top of `super().get_config()`;
      * optionally `update_global_state(step)`, run once per optimizer step
        before the per-variable updates (e.g. NAdam's momentum product).

    The base adds to the Keras arguments:
      nonfinite: `"apply"` (default, as Keras: the update is applied whatever
        the gradients hold, so a NaN shows up in the loss) or `"skip"` (a step
        whose gradients contain a NaN or inf changes no weight, slot or step
        counter and increments `skipped_steps`).
      fused: the torch backend's fast paths (`torch_fast_path`). `None`
        (default): SGD's in-place `_foreach` form for float32 weights on
        the CPU (with momentum, under 2**17 parameters); else a
        `torch.compile`d step for models of at least 2**17
        parameters (compiling takes seconds to a minute on the first step),
        one eager pass over all variables concatenated for smaller models
        of small tensors (under 2**15 elements on average), else the loop.
        `True`: always compiled. `False`: the plain per-variable loop. On
        TensorFlow, `None`/`True` run the updates of a graph-mode step as one
        XLA-compiled function (`_run_xla`) and `False` keeps the loop; JAX
        compiles the whole step already and ignores it.

    Weight decay is decoupled (Loshchilov & Hutter, 2019) and follows Keras
    exactly, `θ ← θ·(1 − η·λ)` before the algorithm's update, but is fused into
    the same per-variable update instead of a separate pass over the weights.
    """

    def __init__(
        self,
        learning_rate: Any,
        *,
        nonfinite: str = "apply",
        fused: bool | None = None,
        **kwargs: Any,
    ) -> None:
        learning_rate = validate_learning_rate(learning_rate)
        _validate_keras_arguments(kwargs)
        validate_choice("nonfinite", nonfinite, NONFINITE_POLICIES)
        validate_choice("fused", fused, (None, True, False))
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.nonfinite = nonfinite
        self.fused = fused
        self._fused_step = None
        with keras.name_scope(self.name, caller=self):
            # Assigning a Variable attribute tracks it as optimizer state.
            self._skipped_steps = keras.Variable(
                0, name="skipped_steps", dtype="int32", trainable=False
            )
        self._step_is_finite = None
        self._skipped_before_apply = None

    # -- what subclasses provide ------------------------------------------

    # Slot names of the moments the monitors report (None: the algorithm keeps none).
    first_moment_slot: str | None = None
    second_moment_slot: str | None = None
    # False for an update that needs a variable's shape (layer-wise norms,
    # preconditioner matrices): the torch fast path may then not run it over
    # several variables concatenated into one flat tensor.
    elementwise_update: bool = True
    # Monitors switch this on; the step records `telemetry` while it is True.
    record_telemetry: bool = False

    def slot_initial_values(self) -> dict[str, float]:
        return {}

    def update(self, gradient, variable, slots, learning_rate, step):
        raise NotImplementedError

    def update_global_state(self, step) -> None:
        """Per-step state shared by all variables; assign it with `self.assign_global`
        so that the skip policy holds it on a skipped step."""

    # -- slots --------------------------------------------------------------

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._slots: dict[str, list] = {}
        for name, initial_value in self.slot_initial_values().items():
            initializer = keras.initializers.Constant(initial_value)
            self._slots[name] = self.add_optimizer_variables(
                var_list, name, initializer=initializer
            )
        telemetry.build(self, var_list)

    def slots_for(self, variable) -> dict[str, Any]:
        """The slot variables belonging to one model variable."""
        index = self._get_variable_index(variable)
        return {name: slots[index] for name, slots in self._slots.items()}

    @property
    def skipped_steps(self):
        """Steps skipped by the `nonfinite="skip"` policy."""
        return self._skipped_steps

    # -- the step -----------------------------------------------------------

    def _apply_weight_decay(self, variables):
        # Decay is fused into `update_step`; Keras's separate pass would both
        # cost another read/write of every weight and escape the skip policy.
        return

    def _clip_gradients(self, grads):
        clipped = super()._clip_gradients(grads)
        if self.record_telemetry:
            telemetry.record_gradients(self, grads, clipped)
        return clipped

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if self.nonfinite == "skip":
            self._step_is_finite = ops.all(
                ops.stack([ops.all(ops.isfinite(g)) for g in grads])
            )
        if type(self).update_global_state is not ZooOptimizer.update_global_state:
            # Only then: on torch's eager step each op here costs microseconds.
            self.update_global_state(ops.cast(self.iterations + 1, "float32"))
        if not (
            self._run_fused(grads, trainable_variables, learning_rate)
            or self._run_xla(grads, trainable_variables, learning_rate)
        ):
            super()._backend_update_step(grads, trainable_variables, learning_rate)
        if self.record_telemetry:
            telemetry.finish_step(self, trainable_variables)
        if self.nonfinite == "skip":
            skipped = ops.cast(ops.logical_not(self._step_is_finite), "int32")
            self._skipped_steps.assign_add(skipped)
            # A skipped step must not advance the step counter that bias
            # corrections read; `apply` adds the Keras increment afterwards.
            per_update = self.gradient_accumulation_steps or 1
            self._iterations.assign_sub(
                ops.cast(skipped, self._iterations.dtype) * per_update
            )

    def _run_xla(self, grads, trainable_variables, learning_rate) -> bool:
        """TensorFlow's fast path: inside a `tf.function` that is not
        XLA-compiled (Keras's `fit` without `jit_compile`), the per-variable
        updates run as one XLA-compiled function, so each variable's pure
        `update` becomes a few fused loops instead of one kernel and one
        temporary per op. Eager steps, distribution strategies (Keras merges
        their updates itself), `fused=False` and update-norm telemetry keep
        the per-variable loop."""
        if keras.backend.backend() != "tensorflow" or self.fused is False:
            return False
        import tensorflow as tf

        if tf.executing_eagerly() or tf.distribute.has_strategy():
            return False
        if has_small_tensors(trainable_variables):
            # Launching an XLA cluster costs more than it saves on tiny tensors.
            return False
        if telemetry.recording_updates(self):
            return False

        def update_all(grads, learning_rate):
            for gradient, variable in zip(grads, trainable_variables):
                self.update_step(gradient, variable, learning_rate)

        compiled = tf.function(update_all, jit_compile=True, autograph=False)
        compiled([_densify(g) for g in grads], ops.cast(learning_rate, "float32"))
        return True

    def _run_fused(self, grads, trainable_variables, learning_rate) -> bool:
        """The torch fast paths (`torch_fast_path`); False when the step is
        left to the per-variable loop: other backends (XLA already fuses
        there), `fused=False`, update-norm telemetry (recorded per variable), or a failed
        compile."""
        if keras.backend.backend() != "torch" or self.fused is False:
            return False
        if telemetry.recording_updates(self):
            return False
        from keras_optzoo.optimizers import torch_fast_path

        if self._fused_step is None:
            self._fused_step = torch_fast_path.choose_executor(self, trainable_variables) or False
        return bool(self._fused_step) and self._fused_step(grads, trainable_variables, learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        gradient = _densify(gradient)
        dtype = variable.dtype
        # 16-bit weights are updated in float32: a bfloat16 step counter stops
        # counting at 256, and moments lose most of their bits.
        compute_dtype = "float32" if dtype in ("float16", "bfloat16") else dtype
        learning_rate = ops.cast(learning_rate, compute_dtype)
        gradient = ops.cast(gradient, compute_dtype)
        step = ops.cast(self.iterations + 1, compute_dtype)
        slot_variables = self.slots_for(variable)
        # Plain tensors, not Variables: JAX refuses Variables inside `where`.
        theta = ops.cast(ops.convert_to_tensor(variable), compute_dtype)
        slots = {
            name: ops.cast(ops.convert_to_tensor(slot), compute_dtype)
            for name, slot in slot_variables.items()
        }

        new_theta, new_slots = self.new_values(
            gradient, theta, slots, learning_rate, step, self._decays(variable), self._step_is_finite
        )
        if telemetry.recording_updates(self):  # before the assignments: `theta` may alias the variable
            telemetry.record_update(self, variable, new_theta - theta)
        for name, value in new_slots.items():
            self.assign(slot_variables[name], ops.cast(value, slot_variables[name].dtype))
        self.assign(variable, ops.cast(new_theta, dtype))

    def new_values(self, gradient, theta, slots, learning_rate, step, decays, keep=None):
        """One variable's new value and slots, in its compute dtype: decoupled
        weight decay, the algorithm's `update`, and the skip policy's hold.

        Pure, so the per-variable loop and the compiled multi-tensor step
        (`fused`) run exactly the same math.
        """
        decayed = theta
        if decays:
            weight_decay = ops.cast(self.weight_decay, keras.backend.standardize_dtype(theta.dtype))
            decayed = theta * (1.0 - learning_rate * weight_decay)
        new_theta, new_slots = self.update(gradient, decayed, slots, learning_rate, step)
        if keep is not None:
            new_theta = ops.where(keep, new_theta, theta)
            new_slots = {
                name: ops.where(keep, value, slots[name]) for name, value in new_slots.items()
            }
        return new_theta, new_slots

    def _decays(self, variable) -> bool:
        return bool(self.weight_decay) and self._use_weight_decay(self._model_variable(variable))

    def assign_global(self, variable, value) -> None:
        """Assign per-step global state, honouring the skip policy."""
        if self._step_is_finite is not None:
            value = ops.where(self._step_is_finite, value, ops.convert_to_tensor(variable))
        self.assign(variable, value)

    def _backend_apply_gradients(self, grads, trainable_variables):
        if self.nonfinite == "skip" and self.use_ema:
            # Read outside the accumulation `cond`, compared after it: a step
            # was skipped iff the counter moved.
            self._skipped_before_apply = _read(self._skipped_steps)
        super()._backend_apply_gradients(grads, trainable_variables)
        # Trace-local: never let a tensor of this step leak into the next.
        self._step_is_finite = None
        self._skipped_before_apply = None

    def _overwrite_model_variables_with_average_value(self, trainable_variables):
        if keras.backend.backend() != "jax":
            return super()._overwrite_model_variables_with_average_value(trainable_variables)
        # keras core hands the EMA's own array to the weight on JAX; the next
        # jitted step donates that buffer and the EMA is deleted with it.
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                variable.assign(_read(average))

    def _update_model_variables_moving_average(self, trainable_variables):
        if self.nonfinite != "skip":
            return super()._update_model_variables_moving_average(trainable_variables)
        averages = [a for a in self._model_variables_moving_average if a is not None]
        before = [_read(a) for a in averages]
        super()._update_model_variables_moving_average(trainable_variables)
        finite = ops.equal(_read(self._skipped_steps), self._skipped_before_apply)
        for average, value in zip(averages, before):
            self.assign(average, ops.where(finite, ops.convert_to_tensor(average), value))

    def _model_variable(self, variable):
        return self._trainable_variables[self._get_variable_index(variable)]

    # -- config -------------------------------------------------------------

    def set_hyperparameters(self, **values: Any) -> None:
        """Store the algorithm's (validated) hyperparameters as attributes and
        in `get_config`, so an algorithm file never writes its own config."""
        for name, value in values.items():
            setattr(self, name, value)
        self._hyperparameter_names = (
            getattr(self, "_hyperparameter_names", ()) + tuple(values)
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["nonfinite"] = self.nonfinite
        config["fused"] = self.fused
        for name in getattr(self, "_hyperparameter_names", ()):
            config[name] = getattr(self, name)
        return config


# Below this mean number of elements per variable, a step is bound by kernel
# launches rather than memory traffic (about 30 µs of traffic per tensor on a
# CPU core): the fast paths then choose differently.
SMALL_TENSOR_MEAN_SIZE = 1 << 15


def has_small_tensors(variables) -> bool:
    """Whether `variables` hold fewer than `SMALL_TENSOR_MEAN_SIZE` elements on average."""
    return sum(math.prod(v.shape) for v in variables) < SMALL_TENSOR_MEAN_SIZE * len(variables)


def _read(variable):
    """A snapshot of a variable's value (TensorFlow's conversion can alias it)."""
    return ops.copy(ops.convert_to_tensor(variable))


def _densify(gradient):
    """Turn TensorFlow `IndexedSlices` (embedding gradients) into a dense tensor.

    Dense application matches torch.optim and optax (moments of rows absent
    from the batch still decay), and it is never lossy.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(gradient, tf.IndexedSlices):
            return tf.convert_to_tensor(gradient)
    return gradient


def register(*names: str, **defaults_by_name: dict) -> Callable[[type], type]:
    """Class decorator: Keras-serializable under `keras_optzoo` + registry names.

    `register("adam", amsgrad={"amsgrad": True})` registers `adam` with no
    preset and `amsgrad` presetting `amsgrad=True`.
    """
    from keras_optzoo.optimizers import registry

    def decorate(cls: type) -> type:
        cls = keras.saving.register_keras_serializable(package="keras_optzoo")(cls)
        for name in names:
            registry.add(name, cls, {})
        for name, preset in defaults_by_name.items():
            registry.add(name, cls, preset)
        return cls

    return decorate
