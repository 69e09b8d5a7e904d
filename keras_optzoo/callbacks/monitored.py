"""`Monitored`: telemetry for any Keras optimizer, keras core's included."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_optzoo.optimizers import telemetry


@keras.saving.register_keras_serializable(package="keras_optzoo")
class Monitored(keras.optimizers.Optimizer):
    """Wrap any Keras optimizer so that the monitors can read its telemetry.

    keras_optzoo optimizers record telemetry natively; keras core's (and any
    other `keras.optimizers.Optimizer`) do it through this wrapper, which is
    modelled on keras's `LossScaleOptimizer`: the wrapped optimizer does the
    update exactly as unwrapped (same trajectory, bit for bit), and the wrapper
    owns only the telemetry variables (see `keras_optzoo.optimizers.telemetry`)
    next to it. Its `variables`, `learning_rate` and `iterations` are the wrapped
    optimizer's; it saves and restores with the model.

    While a monitor has switched recording on (`record_telemetry = True`), each
    step also computes the gradient norms before and after the wrapped
    optimizer's clipping (one extra read of the gradients) and, only while the
    update norms are recorded too (`optimizer.record_update_norms`, see
    `keras_optzoo.optimizers.telemetry`; no monitor asks for them), keeps a
    copy of the weights to measure the update `θ_after − θ_before` (one extra
    read of the weights and one weight-sized buffer). With recording off the
    wrapper adds nothing.

    With `gradient_accumulation_steps` on the wrapped optimizer, the recorded
    gradient norms are those of each micro-batch as passed to `apply`, and the
    update norms are zero on the steps that only accumulate.

    Args:
        optimizer: The `keras.optimizers.Optimizer` instance to wrap.
        name: The wrapper's name. Defaults to `"monitored_<optimizer name>"`.

    Example:

    ```python
    model.compile(optimizer=oz.callbacks.Monitored(keras.optimizers.Adam(1e-3)),
                  loss="mse")
    model.fit(x, y, callbacks=[oz.callbacks.GradientNormMonitor(log_dir="logs")])
    ```
    """

    def __init__(self, optimizer: keras.optimizers.Optimizer, name: str | None = None, **kwargs: Any) -> None:
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError(
                f"optimizer must be a keras.optimizers.Optimizer instance, got {optimizer!r}"
            )
        if kwargs:
            raise ValueError(
                f"Monitored takes no optimizer arguments (set them on the wrapped "
                f"optimizer), got {sorted(kwargs)}"
            )
        super().__init__(learning_rate=0.0, name=name or f"monitored_{optimizer.name}")
        self.inner_optimizer = optimizer
        self.record_telemetry = False

    def build(self, var_list):
        if self.built:
            return
        self.inner_optimizer.build(var_list)
        super().build(var_list)
        telemetry.build(self, var_list)

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
        if not self.record_telemetry:
            self.inner_optimizer.apply(grads, trainable_variables)
            return
        variables = self._trainable_variables if trainable_variables is None else list(trainable_variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        scale = self.inner_optimizer.loss_scale_factor
        unscaled = [g if scale is None else g / scale for g, _ in pairs]
        clipped = self.inner_optimizer._clip_gradients(unscaled)
        telemetry.record_gradients(self, unscaled, clipped, clipping=self.inner_optimizer)
        if not telemetry.recording_updates(self):
            self.inner_optimizer.apply(grads, trainable_variables)
            telemetry.finish_step(self, [v for _, v in pairs])
            return
        # A copy: torch updates the weights in place, TF reads lazily.
        before = [ops.copy(ops.convert_to_tensor(v)) for _, v in pairs]
        self.inner_optimizer.apply(grads, trainable_variables)
        for (_, variable), old in zip(pairs, before):
            new = ops.convert_to_tensor(variable)
            telemetry.record_update(
                self, variable, ops.cast(new, "float32") - ops.cast(old, "float32")
            )
        telemetry.finish_step(self, [v for _, v in pairs])

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None) -> Monitored:
        config = dict(config)
        optimizer = keras.saving.deserialize_keras_object(
            config.pop("optimizer"), custom_objects=custom_objects
        )
        return cls(optimizer, **config)
