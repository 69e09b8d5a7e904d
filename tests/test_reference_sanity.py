"""Test the tests: the float64 references are right, and a comparison against them can fail.

(a) Each reference matches float64 peers (torch.optim, optax, pytorch_optimizer, keras core run
    in float64) at the matching convention over 150 steps of the open-loop problem, with
    non-default hyperparameters and every variant flag; where a peer departs from the paper,
    the departure is asserted exactly: the peer's own formula, replayed from the reference's
    slots, must reproduce the peer, and the gap to the paper form is bounded below.
(b) Each registered reference is far from plain SGD and from sign-SGD on the same inputs.
(c) Every variant flag changes the trajectory.

Nothing here imports keras_optzoo.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from tests import peers
from tests.problems import make_problem
from tests.reference import (
    DEFAULT_LEARNING_RATES,
    REFERENCES,
    SGD,
    AdaBelief,
    Adadelta,
    Adagrad,
    Adam,
    AdamW,
    Lion,
    NAdam,
    RAdam,
    Reference,
    RMSprop,
    Yogi,
)
from tests.reference.common import bias_correction

STEPS = 150
PEER_RTOL = 1e-10


@functools.cache
def problem() -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    return make_problem(seed=0, steps=STEPS)


def reference_run(cls: type[Reference], kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    params0, grads = problem()
    return cls(**kwargs).run(params0, grads)


def params_of(run: list[dict[str, Any]]) -> list[list[np.ndarray]]:
    return [step["params"] for step in run]


def max_relative_error(actual: list[list[np.ndarray]], expected: list[list[np.ndarray]]) -> float:
    """Worst |actual - expected| / max(|expected|, 1e-3) over every step, tensor and entry."""
    assert len(actual) == len(expected)
    return max(
        float(np.max(np.abs(a - e) / np.maximum(np.abs(e), 1e-3)))
        for step_a, step_e in zip(actual, expected, strict=True)
        for a, e in zip(step_a, step_e, strict=True)
    )


def distance(a: list[list[np.ndarray]], b: list[list[np.ndarray]]) -> float:
    """How far apart two trajectories get, relative to how far ``b`` travels from the start."""
    params0, _ = problem()
    gap = max(float(np.max(np.abs(x - y))) for sa, sb in zip(a, b, strict=True) for x, y in zip(sa, sb, strict=True))
    travel = max(float(np.max(np.abs(y - p))) for sb in b for y, p in zip(sb, params0, strict=True))
    return gap / travel


def replay(updates: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """Parameters after each step when ``updates[t][i]`` is subtracted from tensor i at step t+1."""
    params = [p.copy() for p in problem()[0]]
    trajectory = []
    for step_updates in updates:
        params = [p - u for p, u in zip(params, step_updates, strict=True)]
        trajectory.append(params)
    return trajectory


# --------------------------------------------------------------------------------------------
# (a) references against peers at the matching convention

ADAM_HP = {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}
# Keras keeps lr in a float32 variable, and its torch backend computes 1 - wd*lr in float32:
# powers of two survive both exactly.
KERAS_LR = 2.0**-7
KERAS_WD = 2.0**-3

PEER_CASES: list[tuple[str, type[Reference], dict[str, Any], str]] = [
    ("sgd", SGD, {"learning_rate": 0.003}, "torch"),
    ("sgd-momentum-dampening", SGD, {"learning_rate": 0.003, "momentum": 0.8, "dampening": 0.3, "lr_inside_velocity": False}, "torch"),
    ("sgd-nesterov-torch-form", SGD, {"learning_rate": 0.003, "momentum": 0.8, "nesterov": True, "lr_inside_velocity": False}, "torch"),
    ("sgd-momentum-lr-inside", SGD, {"learning_rate": 0.003, "momentum": 0.8}, "torch"),
    ("sgd-nesterov-lr-inside", SGD, {"learning_rate": 0.003, "momentum": 0.8, "nesterov": True}, "torch"),
    ("sgd-nesterov-lr-inside-wd", SGD, {"learning_rate": KERAS_LR, "momentum": 0.8, "nesterov": True, "weight_decay": KERAS_WD}, "keras"),
    ("adagrad", Adagrad, {"learning_rate": 0.05, "initial_accumulator_value": 0.2, "epsilon": 1e-3}, "torch"),
    ("adagrad-eps-inside-wd", Adagrad, {"learning_rate": 2.0**-5, "initial_accumulator_value": 0.2, "epsilon": 1e-3, "epsilon_inside_sqrt": True, "weight_decay": KERAS_WD}, "keras"),
    ("adadelta", Adadelta, {"learning_rate": 0.5, "rho": 0.8, "epsilon": 1e-4}, "torch"),
    ("rmsprop", RMSprop, {"learning_rate": 0.002, "rho": 0.8, "epsilon": 1e-4}, "torch"),
    ("rmsprop-centered", RMSprop, {"learning_rate": 0.002, "rho": 0.8, "epsilon": 1e-4, "centered": True}, "torch"),
    ("rmsprop-momentum", RMSprop, {"learning_rate": 0.002, "rho": 0.8, "epsilon": 1e-4, "momentum": 0.7}, "torch"),
    ("rmsprop-centered-momentum", RMSprop, {"learning_rate": 0.002, "rho": 0.8, "epsilon": 1e-4, "momentum": 0.7, "centered": True}, "torch"),
    ("rmsprop-eps-inside-centered-momentum-wd", RMSprop, {"learning_rate": KERAS_LR, "rho": 0.8, "epsilon": 1e-4, "momentum": 0.7, "centered": True, "epsilon_inside_sqrt": True, "weight_decay": KERAS_WD}, "keras"),
    ("adam-wd", Adam, {**ADAM_HP, "weight_decay": 0.1}, "torch"),
    ("amsgrad", Adam, {**ADAM_HP, "amsgrad": True}, "torch"),
    ("amsgrad-debias-before-max", Adam, {**ADAM_HP, "amsgrad": True, "debias_before_max": True, "weight_decay": 0.1}, "optax"),
    ("adam-epsilon-hat", Adam, {**ADAM_HP, "learning_rate": KERAS_LR, "epsilon": 1e-3, "epsilon_hat": True}, "keras"),
    ("amsgrad-epsilon-hat", Adam, {**ADAM_HP, "learning_rate": KERAS_LR, "epsilon": 1e-3, "epsilon_hat": True, "amsgrad": True}, "keras"),
    ("adamw", AdamW, {**ADAM_HP, "weight_decay": 0.1}, "torch"),
    ("adamw-amsgrad", AdamW, {**ADAM_HP, "weight_decay": 0.1, "amsgrad": True}, "torch"),
    ("nadam-wd", NAdam, {**ADAM_HP, "beta_1": 0.85, "momentum_decay": 0.01, "weight_decay": 0.05}, "torch"),
    ("nadam-keras-schedule", NAdam, {**ADAM_HP, "learning_rate": KERAS_LR, "momentum_decay": 1.0, "weight_decay": KERAS_WD}, "keras"),
    ("radam-threshold-wd", RAdam, {**ADAM_HP, "rectification_threshold": 6.0, "weight_decay": 0.05}, "optax"),
    ("radam-no-eps", RAdam, {**ADAM_HP, "epsilon": 0.0, "weight_decay": 0.05}, "torch"),
    ("radam-no-eps-threshold", RAdam, {**ADAM_HP, "epsilon": 0.0, "rectification_threshold": 6.0, "weight_decay": 0.05}, "pytorch_optimizer"),
    ("adabelief-wd", AdaBelief, {**ADAM_HP, "epsilon": 1e-8, "weight_decay": 0.05}, "pytorch_optimizer"),
    ("adabelief", AdaBelief, {**ADAM_HP, "epsilon": 1e-8}, "optax"),
    ("lion-wd", Lion, {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95, "weight_decay": 0.5}, "pytorch_optimizer"),
]


def run_peer(peer: str, algorithm: str, kwargs: dict[str, Any]) -> list[list[np.ndarray]]:
    params0, grads = problem()
    if peer == "torch":
        return peers.run_torch(*peers.torch_peer(algorithm, kwargs), params0, grads)
    if peer == "pytorch_optimizer":
        return peers.run_pytorch_optimizer(*peers.pytorch_optimizer_peer(algorithm, kwargs), params0, grads)
    if peer == "optax":
        return peers.run_optax(peers.optax_peer(algorithm, kwargs), params0, grads)
    return peers.run_keras_core(peers.keras_core_peer(algorithm, kwargs), params0, grads, dtype="float64", compiled=True)


@pytest.mark.parametrize(
    ("cls", "kwargs", "peer"), [case[1:] for case in PEER_CASES], ids=[f"{c[0]}-{c[3]}" for c in PEER_CASES]
)
def test_reference_matches_float64_peer(cls: type[Reference], kwargs: dict[str, Any], peer: str) -> None:
    if peer == "keras":
        import keras

        if keras.backend.backend() == "tensorflow":
            pytest.skip("Keras's TF backend rounds part of float64 optimizer math through float32 "
                        "(Adam: ~5e-8 relative after one step); JAX and torch are exact")
    expected = run_peer(peer, cls.__name__, kwargs)
    assert max_relative_error(params_of(reference_run(cls, kwargs)), expected) < PEER_RTOL


def test_keras_core_adapter_runs_in_float32_on_the_active_backend() -> None:
    params0, grads = problem()
    kwargs = {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95}
    # Eager dispatch is slow; a few steps prove the adapter works.
    ours = params_of(Lion(**kwargs).run(params0, grads[:5]))
    theirs = peers.run_keras_core(peers.keras_core_peer("Lion", kwargs), params0, grads[:5])
    assert max_relative_error(theirs, ours) < 1e-5


def test_every_peer_mapping_rejects_what_it_cannot_compute() -> None:
    rejected = [
        (peers.torch_peer, "SGD", {"momentum": 0.9, "dampening": 0.5}),
        (peers.torch_peer, "Adam", {"epsilon_hat": True}),
        (peers.torch_peer, "Adam", {"amsgrad": True, "debias_before_max": True}),
        (peers.torch_peer, "RMSprop", {"weight_decay": 0.1}),
        (peers.torch_peer, "RAdam", {}),
        (peers.optax_peer, "Adam", {"amsgrad": True}),
        (peers.optax_peer, "Yogi", {}),
        (peers.optax_peer, "NAdam", {}),
        (peers.pytorch_optimizer_peer, "Yogi", {}),
        (peers.keras_core_peer, "Adam", {}),
        (peers.keras_core_peer, "NAdam", {}),
    ]
    for mapping, algorithm, kwargs in rejected:
        with pytest.raises(peers.NoMatchingPeer):
            mapping(algorithm, kwargs)


# Documented departures of peers from the paper (SPEC.md) form.


def test_torch_radam_puts_eps_on_the_raw_root() -> None:
    """torch.optim.RAdam divides by sqrt(v) + eps and multiplies by sqrt(1 - b2^t); Alg. 2 (and
    optax) divide by sqrt(v_hat) + eps. Same slots, different step whenever eps > 0."""
    # The gap scales with eps*(1 - sqrt(1 - b2^t))/sqrt(v): a slow b2 and a large eps expose it.
    kwargs = {**ADAM_HP, "beta_2": 0.999, "epsilon": 0.1}
    b1, b2, lr, eps = kwargs["beta_1"], kwargs["beta_2"], kwargs["learning_rate"], kwargs["epsilon"]
    run = reference_run(RAdam, kwargs)
    rho_inf = 2 / (1 - b2) - 1
    updates = []
    for t, step in enumerate(run, start=1):
        rho_t = rho_inf - 2 * t * b2**t / bias_correction(b2, t)
        step_updates = []
        for m, v in zip(step["slots"]["m"], step["slots"]["v"], strict=True):
            m_hat = m / bias_correction(b1, t)
            if rho_t > 5.0:
                r_t = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                m_hat = r_t * m_hat * np.sqrt(bias_correction(b2, t)) / (np.sqrt(v) + eps)
            step_updates.append(lr * m_hat)
        updates.append(step_updates)
    params0, grads = problem()
    torch_kwargs = {"lr": lr, "betas": (b1, b2), "eps": eps}
    torch_run = peers.run_torch("RAdam", torch_kwargs, params0, grads)
    assert max_relative_error(torch_run, replay(updates)) < PEER_RTOL
    assert distance(torch_run, params_of(run)) > 1e-3


@pytest.mark.parametrize("peer", ["optax", "pytorch_optimizer"])
def test_peer_yogi_bias_corrects_and_starts_m_at_the_accumulator(peer: str) -> None:
    """Both peers compute lr*(m'/(1-b1^t))/(sqrt(v/(1-b2^t)) + eps) with m'_0 = v_0, where Alg. 2
    has lr*m/(sqrt(v) + eps) with m_0 = 0. v is the same; m' = m + v_0*b1^t."""
    kwargs = {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3, "initial_accumulator_value": 1e-2}
    b1, b2, lr, eps, v0 = (kwargs[k] for k in ("beta_1", "beta_2", "learning_rate", "epsilon", "initial_accumulator_value"))
    run = reference_run(Yogi, kwargs)
    updates = [
        [
            lr * ((m + v0 * b1**t) / bias_correction(b1, t)) / (np.sqrt(v / bias_correction(b2, t)) + eps)
            for m, v in zip(step["slots"]["m"], step["slots"]["v"], strict=True)
        ]
        for t, step in enumerate(run, start=1)
    ]
    params0, grads = problem()
    if peer == "optax":
        import optax

        theirs = peers.run_optax(
            lambda: optax.chain(
                optax.scale_by_yogi(b1=b1, b2=b2, eps=eps, initial_accumulator_value=v0),
                optax.scale_by_learning_rate(lr),
            ),
            params0,
            grads,
        )
    else:
        yogi_kwargs = {"lr": lr, "betas": (b1, b2), "eps": eps, "initial_accumulator": v0}
        theirs = peers.run_pytorch_optimizer("Yogi", yogi_kwargs, params0, grads)
    assert max_relative_error(theirs, replay(updates)) < PEER_RTOL
    assert distance(theirs, params_of(run)) > 1e-1


def test_torch_sgd_differs_from_lr_inside_velocity_by_its_undamped_first_buffer() -> None:
    """With dampening tau, torch seeds b_1 = g_1 while v_1 = -lr*(1-tau)*g_1; afterwards both obey
    the same recursion, so theta_ref - theta_torch = lr*tau*g_1*(1 - mu^t)/(1 - mu) exactly."""
    lr, mu, tau = 0.003, 0.8, 0.3
    params0, grads = problem()
    ours = params_of(reference_run(SGD, {"learning_rate": lr, "momentum": mu, "dampening": tau}))
    theirs = peers.run_torch("SGD", {"lr": lr, "momentum": mu, "dampening": tau}, params0, grads)
    predicted = [
        [p + lr * tau * g1 * (1 - mu**t) / (1 - mu) for p, g1 in zip(step, grads[0], strict=True)]
        for t, step in enumerate(theirs, start=1)
    ]
    assert max_relative_error(ours, predicted) < PEER_RTOL
    assert distance(ours, theirs) > 1e-2


def test_keras_nadam_schedule_is_momentum_decay_one_not_dozats() -> None:
    """keras.optimizers.Nadam uses mu_t = b1*(1 - 0.5*0.96^t), torch and Dozat 0.96^(t/250).

    The peer case nadam-keras-schedule shows Keras equals momentum_decay=1; this shows that is
    far from the paper's momentum_decay=0.004 at Keras's own defaults.
    """
    kwargs = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
    keras_form = params_of(reference_run(NAdam, {**kwargs, "momentum_decay": 1.0}))
    assert distance(keras_form, params_of(reference_run(NAdam, kwargs))) > 1e-1


# --------------------------------------------------------------------------------------------
# (b) a comparison against each reference can fail


def sgd_like(learning_rate: float, direction: Any) -> list[list[np.ndarray]]:
    _, grads = problem()
    return replay([[learning_rate * direction(g) for g in step] for step in grads])


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_reference_is_far_from_sgd_and_sign_sgd(name: str) -> None:
    cls, preset = REFERENCES[name]
    lr = DEFAULT_LEARNING_RATES[cls]
    ours = params_of(reference_run(cls, {"learning_rate": lr, **preset}))
    if name != "sgd":
        assert distance(sgd_like(lr, lambda g: g), ours) > 0.1
    assert distance(sgd_like(lr, np.sign), ours) > 0.1


# --------------------------------------------------------------------------------------------
# (c) every variant flag changes the trajectory

VARIANTS: list[tuple[str, type[Reference], dict[str, Any], dict[str, Any]]] = [
    ("sgd-momentum", SGD, {"learning_rate": 0.003}, {"momentum": 0.8}),
    ("sgd-dampening", SGD, {"learning_rate": 0.003, "momentum": 0.8}, {"dampening": 0.3}),
    ("sgd-nesterov", SGD, {"learning_rate": 0.003, "momentum": 0.8}, {"nesterov": True}),
    ("sgd-lr-inside-velocity", SGD, {"learning_rate": 0.003, "momentum": 0.8, "dampening": 0.3, "lr_inside_velocity": False}, {"lr_inside_velocity": True}),
    ("sgd-weight-decay", SGD, {"learning_rate": 0.003}, {"weight_decay": 0.5}),
    ("adagrad-epsilon-inside-sqrt", Adagrad, {"learning_rate": 0.05, "epsilon": 1e-2}, {"epsilon_inside_sqrt": True}),
    ("adagrad-initial-accumulator", Adagrad, {"learning_rate": 0.05}, {"initial_accumulator_value": 1.0}),
    ("adadelta-weight-decay", Adadelta, {"learning_rate": 0.5}, {"weight_decay": 0.5}),
    ("rmsprop-centered", RMSprop, {"learning_rate": 0.002}, {"centered": True}),
    ("rmsprop-momentum", RMSprop, {"learning_rate": 0.002}, {"momentum": 0.7}),
    ("rmsprop-epsilon-inside-sqrt", RMSprop, {"learning_rate": 0.002, "epsilon": 1e-3}, {"epsilon_inside_sqrt": True}),
    # A short second-moment memory lets v fall below its running max, so the max binds.
    ("adam-amsgrad", Adam, {"learning_rate": 0.01, "beta_2": 0.9}, {"amsgrad": True}),
    ("adam-debias-before-max", Adam, {"learning_rate": 0.01, "amsgrad": True}, {"debias_before_max": True}),
    ("adam-epsilon-hat", Adam, {"learning_rate": 0.01, "epsilon": 1e-3}, {"epsilon_hat": True}),
    ("adamw-weight-decay", AdamW, {"learning_rate": 0.01, "weight_decay": 0.0}, {"weight_decay": 0.5}),
    ("nadam-momentum-decay", NAdam, {"learning_rate": 0.01}, {"momentum_decay": 0.1}),
    ("radam-rectification-threshold", RAdam, {"learning_rate": 0.01}, {"rectification_threshold": 50.0}),
    ("adabelief-weight-decay", AdaBelief, {"learning_rate": 0.01}, {"weight_decay": 0.5}),
    ("yogi-initial-accumulator", Yogi, {"learning_rate": 0.01}, {"initial_accumulator_value": 1.0}),
    ("lion-weight-decay", Lion, {"learning_rate": 0.01}, {"weight_decay": 0.5}),
]


@pytest.mark.parametrize(("cls", "base", "flag"), [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_variant_flag_changes_trajectory(cls: type[Reference], base: dict[str, Any], flag: dict[str, Any]) -> None:
    assert distance(params_of(reference_run(cls, {**base, **flag})), params_of(reference_run(cls, base))) > 1e-2


def test_velocity_conventions_agree_without_dampening() -> None:
    """For a constant lr and no dampening, v = -lr*b: the flag may only matter with dampening."""
    for nesterov in (False, True):
        base = {"learning_rate": 0.003, "momentum": 0.8, "nesterov": nesterov}
        inside = reference_run(SGD, {**base, "lr_inside_velocity": True})
        outside = reference_run(SGD, {**base, "lr_inside_velocity": False})
        assert max_relative_error(params_of(inside), params_of(outside)) < PEER_RTOL


@pytest.mark.parametrize(
    ("cls", "kwargs", "slots"),
    [
        (SGD, {}, set()),
        (SGD, {"momentum": 0.9}, {"momentum"}),
        (Adagrad, {}, {"accumulator"}),
        (Adadelta, {}, {"accumulated_grad", "accumulated_delta"}),
        (RMSprop, {}, {"velocity"}),
        (RMSprop, {"centered": True, "momentum": 0.5}, {"velocity", "average_gradient", "momentum"}),
        (Adam, {}, {"m", "v"}),
        (Adam, {"amsgrad": True}, {"m", "v", "v_max"}),
        (AdamW, {"amsgrad": True}, {"m", "v", "v_max"}),
        (NAdam, {}, {"m", "v"}),
        (RAdam, {}, {"m", "v"}),
        (AdaBelief, {}, {"m", "s"}),
        (Yogi, {}, {"m", "v"}),
        (Lion, {}, {"m"}),
    ],
)
def test_slot_names_follow_spec(cls: type[Reference], kwargs: dict[str, Any], slots: set[str]) -> None:
    reference = cls(learning_rate=0.01, **kwargs)
    assert set(reference.init_slots(np.zeros(3))) == slots
    params0, grads = problem()
    trajectory = reference.run(params0[:1], [step[:1] for step in grads[:2]])
    assert set(trajectory[-1]["slots"]) == slots
