"""Run peer implementations over an open-loop problem, and map our kwargs to theirs.

Each ``run_*`` adapter takes ``params0`` (list of float64 arrays) and ``grads`` (``grads[t][i]``
is tensor i's gradient at step t + 1) and returns the parameter trajectory: after every step,
the list of parameters as float64 NumPy arrays.

Each ``*_peer`` mapping takes one of our optimizer class names (SPEC.md) and our keyword
arguments (SPEC.md names, ``learning_rate`` and ``weight_decay`` included; omitted ones take
SPEC.md's defaults, not the peer's) and returns the peer's configuration at the matching
convention, or raises ``NoMatchingPeer`` when the peer cannot compute that convention exactly
(a constant learning rate assumed throughout). Where a peer is exact only for some values, the
mapping accepts only those values; the reasons are in the messages and in
tests/test_reference_sanity.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np

from tests.harness import run_zoo
from tests.reference import DEFAULT_LEARNING_RATES, AdamW

Params = list[np.ndarray]
Trajectory = list[Params]


class NoMatchingPeer(ValueError):
    """The peer has no exact equivalent of this configuration."""


def _spec_kwargs(algorithm: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    classes = {cls.__name__: cls for cls in DEFAULT_LEARNING_RATES}
    cls = classes[algorithm]
    default_weight_decay = 0.01 if cls is AdamW else 0.0
    full = {"learning_rate": DEFAULT_LEARNING_RATES[cls], "weight_decay": default_weight_decay, **cls.defaults}
    unknown = set(kwargs) - set(full)
    if unknown:
        raise TypeError(f"{algorithm} got unknown arguments {sorted(unknown)}")
    full.update(kwargs)
    full["weight_decay"] = float(full["weight_decay"] or 0.0)
    return full


def _require(condition: bool, peer: str, reason: str) -> None:
    if not condition:
        raise NoMatchingPeer(f"{peer}: {reason}")


# --------------------------------------------------------------------------------------------
# Adapters


def _run_torch_class(optimizer_class: type, kwargs: dict[str, Any], params0: Params, grads: list[Params], dtype: Any) -> Trajectory:
    import torch

    # torch keeps scalar state (NAdam's mu_product, step counters) in the default dtype:
    # left at float32 it costs NAdam ~3e-6 relative error against float64.
    previous_default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        tensors = [torch.tensor(np.asarray(p), dtype=dtype, requires_grad=True) for p in params0]
        optimizer = optimizer_class(tensors, **kwargs)
        trajectory = []
        for step_grads in grads:
            for tensor, g in zip(tensors, step_grads, strict=True):
                tensor.grad = torch.tensor(np.asarray(g), dtype=dtype)
            optimizer.step()
            trajectory.append([t.detach().numpy().astype(np.float64) for t in tensors])
    finally:
        torch.set_default_dtype(previous_default)
    return trajectory


def run_torch(
    optimizer_name: str, torch_kwargs: dict[str, Any], params0: Params, grads: list[Params], dtype: Any = None
) -> Trajectory:
    """Run ``torch.optim.<optimizer_name>(**torch_kwargs)``; dtype defaults to torch.float64."""
    import torch

    optimizer_class = getattr(torch.optim, optimizer_name)
    return _run_torch_class(optimizer_class, torch_kwargs, params0, grads, dtype or torch.float64)


def run_pytorch_optimizer(
    name: str, kwargs: dict[str, Any], params0: Params, grads: list[Params], dtype: Any = None
) -> Trajectory:
    """Run ``pytorch_optimizer.<name>(**kwargs)``; dtype defaults to torch.float64."""
    import pytorch_optimizer
    import torch

    return _run_torch_class(getattr(pytorch_optimizer, name), kwargs, params0, grads, dtype or torch.float64)


def run_optax(transform_factory: Callable[[], Any], params0: Params, grads: list[Params]) -> Trajectory:
    """Run the optax transformation ``transform_factory()`` in float64.

    64-bit mode is switched on only inside this call, so the rest of the session keeps JAX's
    float32 default; the factory is called inside it so hyperparameters are not truncated.
    """
    import jax
    import jax.numpy as jnp
    import optax

    with jax.enable_x64(True):
        transform = transform_factory()

        # One compiled step: op-by-op dispatch costs seconds per 150-step run.
        @jax.jit
        def step(params: Any, state: Any, g: Any) -> tuple[Any, Any]:
            updates, state = transform.update(g, state, params)
            return optax.apply_updates(params, updates), state

        params = [jnp.asarray(p, dtype=jnp.float64) for p in params0]
        state = transform.init(params)
        trajectory = []
        for step_grads in grads:
            params, state = step(params, state, [jnp.asarray(x, dtype=jnp.float64) for x in step_grads])
            trajectory.append([np.asarray(p, dtype=np.float64) for p in params])
    return trajectory


def run_keras_core(
    optimizer: Any, params0: Params, grads: list[Params], dtype: str = "float32", compiled: bool = False
) -> Trajectory:
    """Run a fresh Keras optimizer on the active KERAS_BACKEND.

    Eagerly through ``optimizer.apply(grads, variables)``; with ``compiled=True`` the step is
    compiled the way Keras's trainers do it: ``jax.jit`` of ``stateless_apply`` on JAX,
    ``tf.function(jit_compile=True)`` on TensorFlow (torch stays eager). float64 works on every backend (on JAX by
    enabling 64-bit mode inside this call), but Keras keeps the learning rate in a float32
    variable, and its torch backend computes the decay factor 1 - wd*lr in float32: for float64
    comparisons use a learning rate and weight decay that float32 holds exactly (powers of two).
    """
    import keras

    backend = keras.backend.backend()
    context: Any = contextlib.nullcontext()
    if dtype == "float64" and backend == "jax":
        import jax

        context = jax.enable_x64(True)
    with context:
        trajectory = run_zoo(optimizer, params0, grads, compiled=compiled, dtype=dtype, record_slots=False)
    return [record["params"] for record in trajectory]


# --------------------------------------------------------------------------------------------
# Mappings from our kwargs to the peers'


def torch_peer(algorithm: str, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(torch.optim class name, kwargs)`` computing exactly ``algorithm(**kwargs)``."""
    k = _spec_kwargs(algorithm, kwargs)
    peer = f"torch.optim ({algorithm})"
    lr, wd = k["learning_rate"], k["weight_decay"]
    if algorithm in ("SGD", "Adagrad", "Adadelta", "RMSprop"):
        _require(wd == 0, peer, "its weight_decay is coupled L2, not decoupled decay")
    if algorithm == "SGD":
        # v = -lr*b holds for a constant lr only if the first buffer is undamped in both forms.
        _require(not k["lr_inside_velocity"] or k["momentum"] == 0 or k["dampening"] == 0, peer,
                 "lr_inside_velocity=True with dampening > 0 starts the buffer differently")
        return "SGD", {"lr": lr, "momentum": k["momentum"], "dampening": k["dampening"], "nesterov": k["nesterov"]}
    if algorithm == "Adagrad":
        _require(not k["epsilon_inside_sqrt"], peer, "eps is added outside the square root")
        return "Adagrad", {"lr": lr, "lr_decay": 0.0, "eps": k["epsilon"],
                           "initial_accumulator_value": k["initial_accumulator_value"]}
    if algorithm == "Adadelta":
        return "Adadelta", {"lr": lr, "rho": k["rho"], "eps": k["epsilon"]}
    if algorithm == "RMSprop":
        _require(not k["epsilon_inside_sqrt"], peer, "eps is added outside the square root")
        return "RMSprop", {"lr": lr, "alpha": k["rho"], "eps": k["epsilon"], "momentum": k["momentum"],
                           "centered": k["centered"]}
    betas = (k.get("beta_1"), k.get("beta_2"))
    if algorithm in ("Adam", "AdamW"):
        _require(not k["epsilon_hat"], peer, "eps is added to the debiased root (epsilon_hat=False only)")
        _require(not (k["amsgrad"] and k["debias_before_max"]), peer, "AMSGrad takes the max before debiasing")
        common = {"lr": lr, "betas": betas, "eps": k["epsilon"], "amsgrad": k["amsgrad"], "weight_decay": wd}
        if algorithm == "AdamW":
            return "AdamW", common
        return "Adam", {**common, "decoupled_weight_decay": True}
    if algorithm == "NAdam":
        return "NAdam", {"lr": lr, "betas": betas, "eps": k["epsilon"], "momentum_decay": k["momentum_decay"],
                         "weight_decay": wd, "decoupled_weight_decay": True}
    if algorithm == "RAdam":
        _require(k["rectification_threshold"] == 5.0, peer, "the threshold is fixed at 5")
        _require(k["epsilon"] == 0, peer, "eps sits on the raw root sqrt(v), not sqrt(v_hat): exact only for eps=0")
        return "RAdam", {"lr": lr, "betas": betas, "eps": 0.0, "weight_decay": wd, "decoupled_weight_decay": True}
    raise NoMatchingPeer(f"torch.optim has no {algorithm}")


def optax_peer(algorithm: str, kwargs: dict[str, Any]) -> Callable[[], Any]:
    """A factory of the optax transformation computing exactly ``algorithm(**kwargs)``.

    Built as ``chain(preconditioner, add_decayed_weights(wd), scale_by_learning_rate(lr))``:
    decay added after the preconditioner and scaled by lr is theta*(1 - lr*wd) - lr*u, our
    decoupled decay, whenever u does not depend on theta (true of every algorithm here).
    """
    import optax

    k = _spec_kwargs(algorithm, kwargs)
    peer = f"optax ({algorithm})"
    if algorithm == "SGD":
        _require(k["momentum"] == 0 or k["dampening"] == 0, peer, "optax.trace has no dampening")
    elif algorithm == "Adagrad":
        _require(k["epsilon_inside_sqrt"], peer, "scale_by_rss adds eps inside the square root")
    elif algorithm in ("Adam", "AdamW"):
        _require(not k["epsilon_hat"], peer, "eps is added to the debiased root (epsilon_hat=False only)")
        _require(not k["amsgrad"] or k["debias_before_max"], peer, "scale_by_amsgrad debiases before the max")
    elif algorithm == "Yogi":
        _require(k["bias_correction"], peer, "scale_by_yogi bias-corrects m and v and starts m at v0")
    elif algorithm == "NAdam":
        raise NoMatchingPeer(f"{peer}: optax.nadam is Adam(nesterov=True), without the momentum schedule")

    def preconditioner() -> Any:
        if algorithm == "SGD":
            # Either velocity convention: with a constant lr and no dampening they coincide.
            if k["momentum"] == 0:
                return optax.identity()
            return optax.trace(decay=k["momentum"], nesterov=k["nesterov"])
        if algorithm == "Adagrad":
            return optax.scale_by_rss(initial_accumulator_value=k["initial_accumulator_value"], eps=k["epsilon"])
        if algorithm == "Adadelta":
            return optax.scale_by_adadelta(rho=k["rho"], eps=k["epsilon"])
        if algorithm == "RMSprop":
            scale = optax.scale_by_stddev if k["centered"] else optax.scale_by_rms
            rms = scale(decay=k["rho"], eps=k["epsilon"], eps_in_sqrt=k["epsilon_inside_sqrt"])
            # optax.rmsprop applies lr before the momentum trace; for a constant lr that is ours.
            return optax.chain(rms, optax.trace(decay=k["momentum"])) if k["momentum"] > 0 else rms
        if algorithm in ("Adam", "AdamW"):
            scale = optax.scale_by_amsgrad if k["amsgrad"] else optax.scale_by_adam
            return scale(b1=k["beta_1"], b2=k["beta_2"], eps=k["epsilon"])
        if algorithm == "RAdam":
            return optax.scale_by_radam(
                b1=k["beta_1"], b2=k["beta_2"], eps=k["epsilon"], threshold=k["rectification_threshold"]
            )
        if algorithm == "AdaBelief":
            return optax.scale_by_belief(b1=k["beta_1"], b2=k["beta_2"], eps=k["epsilon"], eps_root=k["epsilon"])
        if algorithm == "Yogi":
            return optax.scale_by_yogi(
                b1=k["beta_1"], b2=k["beta_2"], eps=k["epsilon"],
                initial_accumulator_value=k["initial_accumulator_value"],
            )
        return optax.scale_by_lion(b1=k["beta_1"], b2=k["beta_2"])

    def factory() -> Any:
        parts = [preconditioner()]
        if k["weight_decay"]:
            parts.append(optax.add_decayed_weights(k["weight_decay"]))
        parts.append(optax.scale_by_learning_rate(k["learning_rate"]))
        return optax.chain(*parts)

    return factory


def pytorch_optimizer_peer(algorithm: str, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(pytorch_optimizer class name, kwargs)`` computing exactly ``algorithm(**kwargs)``."""
    k = _spec_kwargs(algorithm, kwargs)
    peer = f"pytorch_optimizer ({algorithm})"
    decay = {"weight_decay": k["weight_decay"], "weight_decouple": True, "fixed_decay": False}
    common = {"lr": k["learning_rate"], "betas": (k.get("beta_1"), k.get("beta_2")), **decay}
    if algorithm == "AdaBelief":
        # rectify/ams_bound would turn it into its RAdam/AMSBound variants.
        return "AdaBelief", {**common, "eps": k["epsilon"], "rectify": False, "ams_bound": False}
    if algorithm == "Lion":
        return "Lion", common
    if algorithm == "RAdam":
        _require(k["epsilon"] == 0, peer, "eps sits on the raw root sqrt(v), not sqrt(v_hat): exact only for eps=0")
        # Its default degenerated_to_sgd=False skips the update (and the decay) until rho_t
        # crosses the threshold; Alg. 2 takes an SGD-with-momentum step there.
        return "RAdam", {**common, "eps": 0.0, "n_sma_threshold": k["rectification_threshold"],
                         "degenerated_to_sgd": True}
    if algorithm == "Yogi":
        _require(k["bias_correction"], peer, "it bias-corrects m and v and starts m at v0")
        return "Yogi", {**common, "eps": k["epsilon"], "initial_accumulator": k["initial_accumulator_value"]}
    raise NoMatchingPeer(f"pytorch_optimizer is not used as a peer for {algorithm}")


def keras_core_peer(algorithm: str, kwargs: dict[str, Any]) -> Any:
    """A fresh ``keras.optimizers`` instance computing exactly ``algorithm(**kwargs)``."""
    import keras

    k = _spec_kwargs(algorithm, kwargs)
    peer = f"keras.optimizers ({algorithm})"
    base = {"learning_rate": k["learning_rate"], "weight_decay": k["weight_decay"] or None}
    if algorithm == "SGD":
        _require(k["lr_inside_velocity"] or k["momentum"] == 0, peer, "lr is kept inside the velocity")
        _require(k["dampening"] == 0, peer, "no dampening")
        return keras.optimizers.SGD(**base, momentum=k["momentum"], nesterov=k["nesterov"])
    if algorithm == "Adagrad":
        _require(k["epsilon_inside_sqrt"], peer, "eps is added inside the square root")
        return keras.optimizers.Adagrad(
            **base, initial_accumulator_value=k["initial_accumulator_value"], epsilon=k["epsilon"]
        )
    if algorithm == "Adadelta":
        return keras.optimizers.Adadelta(**base, rho=k["rho"], epsilon=k["epsilon"])
    if algorithm == "RMSprop":
        _require(k["epsilon_inside_sqrt"], peer, "eps is added inside the square root")
        return keras.optimizers.RMSprop(
            **base, rho=k["rho"], momentum=k["momentum"], epsilon=k["epsilon"], centered=k["centered"]
        )
    if algorithm in ("Adam", "AdamW"):
        _require(k["epsilon_hat"], peer, "eps is added to the un-debiased root (epsilon_hat=True only)")
        _require(not (k["amsgrad"] and k["debias_before_max"]), peer, "AMSGrad takes the max before debiasing")
        adam = {"beta_1": k["beta_1"], "beta_2": k["beta_2"], "epsilon": k["epsilon"], "amsgrad": k["amsgrad"]}
        if algorithm == "AdamW":
            return keras.optimizers.AdamW(**{**base, "weight_decay": k["weight_decay"]}, **adam)
        return keras.optimizers.Adam(**base, **adam)
    if algorithm == "NAdam":
        # Keras's schedule is mu_t = b1*(1 - 0.5*0.96^t): momentum_decay fixed at 1, not 0.004.
        _require(k["momentum_decay"] == 1.0, peer, "its momentum schedule is 0.96^t, i.e. momentum_decay=1")
        return keras.optimizers.Nadam(**base, beta_1=k["beta_1"], beta_2=k["beta_2"], epsilon=k["epsilon"])
    if algorithm == "Lion":
        return keras.optimizers.Lion(**base, beta_1=k["beta_1"], beta_2=k["beta_2"])
    raise NoMatchingPeer(f"keras.optimizers has no {algorithm}")
