"""Peer parity: our float32 trajectories against torch.optim, optax,
pytorch_optimizer (float64) and keras core (same backend, float32), each at the
convention where it computes the same update (mappings in `tests/peers.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import keras_optzoo as oz
from tests import peers
from tests.harness import max_relative_error, run_zoo
from tests.problems import make_problem

STEPS = 120


@dataclass(frozen=True)
class PeerCase:
    peer: str                    # torch | optax | pytorch_optimizer | keras
    name: str                    # our registry name
    kwargs: dict[str, Any]       # ours
    peer_overrides: dict[str, Any] = field(default_factory=dict)  # what the peer mapping sees instead
    rtol: float = 2e-4

    @property
    def id(self) -> str:
        flags = "-".join(f"{k}={v}" for k, v in self.kwargs.items() if k != "learning_rate")
        return f"{self.peer}-{self.name}-{flags}"


ADAM_KW = {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-6}

CASES = [
    # torch.optim
    PeerCase("torch", "sgd", {"learning_rate": 0.03}),
    PeerCase("torch", "momentum", {"learning_rate": 0.02, "momentum": 0.8, "dampening": 0.3, "lr_inside_velocity": False}, rtol=5e-4),
    PeerCase("torch", "nesterov", {"learning_rate": 0.01, "momentum": 0.85, "lr_inside_velocity": False}, rtol=5e-4),
    PeerCase("torch", "nesterov", {"learning_rate": 0.01, "momentum": 0.85}, rtol=5e-4),
    PeerCase("torch", "adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.2, "epsilon": 1e-6}),
    PeerCase("torch", "adadelta", {"learning_rate": 0.5, "rho": 0.9, "epsilon": 1e-4}),
    PeerCase("torch", "rmsprop", {"learning_rate": 0.003, "rho": 0.8, "epsilon": 1e-4}),
    PeerCase("torch", "rmsprop", {"learning_rate": 0.002, "rho": 0.85, "momentum": 0.7, "epsilon": 1e-3, "centered": True}),
    PeerCase("torch", "adam", {**ADAM_KW, "weight_decay": 0.02}),
    PeerCase("torch", "amsgrad", {**ADAM_KW, "weight_decay": 0.02}),
    PeerCase("torch", "adamw", {"learning_rate": 0.005, "beta_1": 0.85, "beta_2": 0.99, "epsilon": 1e-6, "weight_decay": 0.05}),
    PeerCase("torch", "nadam", {"learning_rate": 0.003, "beta_1": 0.85, "beta_2": 0.99, "epsilon": 1e-6, "momentum_decay": 0.01, "weight_decay": 0.01}),
    # torch puts eps on the raw √v: identical only as eps -> 0.
    PeerCase("torch", "radam", {"learning_rate": 0.01, "beta_1": 0.85, "beta_2": 0.98, "epsilon": 1e-12, "weight_decay": 0.01}, {"epsilon": 0.0}),
    # optax
    PeerCase("optax", "adabelief", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-8, "weight_decay": 0.01}),
    PeerCase("optax", "yogi", {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3, "initial_accumulator_value": 1e-4, "bias_correction": True}),
    PeerCase("optax", "lion", {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.95, "weight_decay": 0.1}),
    PeerCase("optax", "radam", {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.95, "epsilon": 1e-6, "rectification_threshold": 12.0}),
    PeerCase("optax", "amsgrad", {**ADAM_KW, "debias_before_max": True}),
    PeerCase("optax", "adam", {**ADAM_KW, "weight_decay": 0.02}),
    PeerCase("optax", "rmsprop", {"learning_rate": 0.002, "rho": 0.85, "momentum": 0.7, "epsilon": 1e-3, "centered": True}),
    # pytorch_optimizer
    PeerCase("pytorch_optimizer", "adabelief", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-8, "weight_decay": 0.01}),
    PeerCase("pytorch_optimizer", "lion", {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.95, "weight_decay": 0.1}),
    PeerCase("pytorch_optimizer", "radam", {"learning_rate": 0.01, "beta_1": 0.85, "beta_2": 0.98, "epsilon": 1e-12}, {"epsilon": 0.0}),
    PeerCase("pytorch_optimizer", "yogi", {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3, "initial_accumulator_value": 1e-4, "bias_correction": True}),
    # keras core, same backend
    PeerCase("keras", "nesterov", {"learning_rate": 0.01, "momentum": 0.85, "weight_decay": 0.02}, rtol=5e-4),
    PeerCase("keras", "adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.1, "epsilon": 1e-3, "epsilon_inside_sqrt": True}),
    PeerCase("keras", "adadelta", {"learning_rate": 0.5, "rho": 0.9, "epsilon": 1e-4, "weight_decay": 0.01}),
    PeerCase("keras", "rmsprop", {"learning_rate": 0.002, "rho": 0.85, "momentum": 0.7, "epsilon": 1e-3, "centered": True, "epsilon_inside_sqrt": True}),
    PeerCase("keras", "adam", {**ADAM_KW, "epsilon_hat": True, "weight_decay": 0.02}),
    PeerCase("keras", "amsgrad", {**ADAM_KW, "epsilon_hat": True}),
    PeerCase("keras", "adamw", {"learning_rate": 0.005, "beta_1": 0.85, "beta_2": 0.99, "epsilon": 1e-6, "weight_decay": 0.05, "epsilon_hat": True}),
    # keras core's Nadam warms its momentum with 0.96**t, i.e. momentum_decay=1.
    PeerCase("keras", "nadam", {"learning_rate": 0.003, "beta_1": 0.85, "beta_2": 0.99, "epsilon": 1e-6, "momentum_decay": 1.0}),
    PeerCase("keras", "lion", {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.95, "weight_decay": 0.1}),
]


def peer_trajectory(case: PeerCase, params0, grads) -> list[list[np.ndarray]]:
    cls, preset = oz.optimizers.entry(case.name)
    algorithm = cls.__name__
    kwargs = {**preset, **case.kwargs, **case.peer_overrides}
    if case.peer == "torch":
        name, torch_kwargs = peers.torch_peer(algorithm, kwargs)
        return peers.run_torch(name, torch_kwargs, params0, grads)
    if case.peer == "optax":
        return peers.run_optax(peers.optax_peer(algorithm, kwargs), params0, grads)
    if case.peer == "pytorch_optimizer":
        name, peer_kwargs = peers.pytorch_optimizer_peer(algorithm, kwargs)
        return peers.run_pytorch_optimizer(name, peer_kwargs, params0, grads)
    return peers.run_keras_core(peers.keras_core_peer(algorithm, kwargs), params0, grads, compiled=True)


def test_required_peers_are_covered():
    covered = {(c.peer, c.name) for c in CASES}
    required = {
        "torch": ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "amsgrad", "adamw", "nadam", "radam"],
        "optax": ["adabelief", "yogi", "lion", "radam", "amsgrad"],
        "pytorch_optimizer": ["adabelief", "lion", "radam", "yogi"],
        "keras": ["nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw", "nadam", "lion"],
    }
    missing = [(p, n) for p, names in required.items() for n in names if (p, n) not in covered]
    assert not missing


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_matches_peer(case: PeerCase):
    params0, grads = make_problem(seed=0, steps=STEPS)
    expected = peer_trajectory(case, params0, grads)
    # The compiled step (XLA on TF and JAX): test_reference covers eager too.
    ours = run_zoo(oz.get(case.name, **case.kwargs), params0, grads, compiled=True)
    for t, (mine, theirs) in enumerate(zip(ours, expected), start=1):
        for i, (actual, wanted) in enumerate(zip(mine["params"], theirs)):
            floor = max(1e-2, 1e-2 * float(np.max(np.abs(wanted))))
            error = max_relative_error(actual, wanted, floor)
            assert error < case.rtol, f"{case.id}: param{i} at step {t}: {error:.2e}"
