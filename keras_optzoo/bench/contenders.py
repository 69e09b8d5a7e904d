"""The implementations that race, each behind one small runner interface.

A runner owns its parameters and optimizer state on the device and offers
`step(grads)`, `sync()` (wait for the device) and `params()` (read back as
NumPy). Each runs the path its library's users run:

* keras optimizers (ours and keras core): on JAX `jax.jit` of
  `optimizer.stateless_apply` with parameters and optimizer state donated, as
  Keras's JAX trainer does; on TensorFlow `optimizer.apply` inside
  `tf.function(jit_compile=True)` (and, for reference, without XLA); on torch
  the eager `optimizer.apply`, as Keras's torch trainer does.
* optax: `jax.jit` of `update` + `apply_updates`, parameters and state donated.
* torch.optim: `step()` with `foreach=True` or `fused=True`.

Every runner updates its state in place (donation on JAX, variables on
TensorFlow and torch), so none pays for a fresh copy that another avoids.
"""

from __future__ import annotations

import inspect
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import keras
import numpy as np

from keras_optzoo.bench.algorithms import Algorithm, Pairing


class Runner(Protocol):
    def step(self, grads: list[Any]) -> None: ...

    def sync(self) -> None: ...

    def params(self) -> list[np.ndarray]: ...


# ---------------------------------------------------------------------------
# Device helpers
# ---------------------------------------------------------------------------


def torch_device() -> str:
    """The device Keras's torch backend puts variables on."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def device_arrays(arrays: list[np.ndarray]) -> list[Any]:
    """NumPy arrays as tensors of the active backend, on its default device.

    The same tensors feed every contender of the backend (keras optimizers,
    optax and torch.optim alike), so all see the same gradients.
    """
    return [keras.ops.convert_to_tensor(array) for array in arrays]


def torch_sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


# ---------------------------------------------------------------------------
# Runners
# ---------------------------------------------------------------------------


class KerasRunner:
    """A Keras optimizer (ours or keras core) on the backend's compiled path.

    Args:
        optimizer: an unbuilt `keras.optimizers.Optimizer`.
        params: initial parameter values.
        jit_compile: TensorFlow only: XLA (True) or a plain graph (False).
    """

    def __init__(self, optimizer: Any, params: list[np.ndarray], jit_compile: bool = True) -> None:
        self.backend = keras.backend.backend()
        self.variables = [keras.Variable(p, dtype=str(p.dtype)) for p in params]
        optimizer.build(self.variables)
        self.optimizer = optimizer
        if self.backend == "jax":
            import jax

            def step(state, params, grads):
                new_params, new_state = optimizer.stateless_apply(state, grads, params)
                return new_state, new_params

            # Outputs in the order of the donated inputs: JAX pairs donated
            # buffers with outputs by order among equal shapes, and
            # `stateless_apply` returns (params, state) for (state, grads,
            # params); donating it directly aliases slots to weights' buffers
            # and XLA copies every tensor on every step (3-4x slower).
            self._stateless = jax.jit(step, donate_argnums=(0, 1))
            self._params = [v.value for v in self.variables]
            self._state = [v.value for v in optimizer.variables]
        elif self.backend == "tensorflow":
            import tensorflow as tf

            variables = self.variables
            self._apply = tf.function(
                lambda grads: optimizer.apply(grads, variables), jit_compile=jit_compile
            )
        else:
            self._apply = lambda grads: optimizer.apply(grads, self.variables)

    def step(self, grads: list[Any]) -> None:
        if self.backend == "jax":
            self._state, self._params = self._stateless(self._state, self._params, grads)
        else:
            self._apply(grads)

    def sync(self) -> None:
        if self.backend == "jax":
            import jax

            jax.block_until_ready((self._params, self._state))
        elif self.backend == "tensorflow":
            # Reading a slice waits for every update queued before it.
            self.variables[-1].value[:1].numpy()
        else:
            torch_sync()

    def params(self) -> list[np.ndarray]:
        if self.backend == "jax":
            return [np.asarray(p) for p in self._params]
        return [np.asarray(keras.ops.convert_to_numpy(v)) for v in self.variables]


class OptaxRunner:
    """An optax transformation under `jax.jit`, parameters and state donated."""

    def __init__(self, transform: Any, params: list[np.ndarray]) -> None:
        import jax
        import jax.numpy as jnp
        import optax

        def step(params, state, grads):
            updates, state = transform.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        self._params = [jnp.array(p) for p in params]
        self._state = transform.init(self._params)
        self._step = jax.jit(step, donate_argnums=(0, 1))

    def step(self, grads: list[Any]) -> None:
        self._params, self._state = self._step(self._params, self._state, grads)

    def sync(self) -> None:
        import jax

        jax.block_until_ready((self._params, self._state))

    def params(self) -> list[np.ndarray]:
        return [np.asarray(p) for p in self._params]


class TorchOptimRunner:
    """A `torch.optim` optimizer with one of its multi-tensor implementations.

    Args:
        class_name: e.g. `"Adam"`.
        kwargs: its hyperparameters.
        params: initial parameter values.
        implementation: `"foreach"` or `"fused"`.
    """

    def __init__(
        self, class_name: str, kwargs: dict[str, Any], params: list[np.ndarray], implementation: str
    ) -> None:
        import torch

        cls = getattr(torch.optim, class_name)
        if implementation not in inspect.signature(cls).parameters:
            raise NotImplementedError(
                f"torch.optim.{class_name} has no {implementation} implementation"
            )
        device = torch_device()
        self._params = [
            torch.tensor(p, device=device).requires_grad_(True) for p in params
        ]
        try:
            self.optimizer = cls(self._params, **kwargs, **{implementation: True})
        except RuntimeError as error:
            # e.g. a fused kernel that torch does not build for this device.
            raise NotImplementedError(
                f"torch.optim.{class_name}({implementation}=True) on {device}: {error}"
            ) from error

    def step(self, grads: list[Any]) -> None:
        for param, grad in zip(self._params, grads):
            param.grad = grad
        self.optimizer.step()

    def sync(self) -> None:
        torch_sync()

    def params(self) -> list[np.ndarray]:
        return [p.detach().cpu().numpy() for p in self._params]


# ---------------------------------------------------------------------------
# The contenders of one algorithm on the active backend
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    """One implementation in the race.

    Attributes:
        key: stable id in the results (`ours`, `keras_core`, `optax`, ...).
        label: column heading in the report.
        config: the call that builds it, with every hyperparameter.
        make: builds a runner from initial parameter values.
        reference: key of our contender running the same math, which the
            correctness guard compares it with (None for `ours`).
        exact: False where no convention of ours is the peer's math.
        note: the convention, for the report.
    """

    key: str
    label: str
    config: str
    make: Callable[[list[np.ndarray]], Runner]
    reference: str | None = None
    exact: bool = True
    note: str = ""


def _ours_config(name: str, kwargs: dict[str, Any]) -> str:
    arguments = ", ".join([repr(name)] + [f"{k}={v!r}" for k, v in kwargs.items()])
    return f"oz.get({arguments})"


def _ours(name: str, kwargs: dict[str, Any], jit_compile: bool = True) -> Callable:
    from keras_optzoo.optimizers import get

    return lambda params: KerasRunner(get(name, **kwargs), params, jit_compile)


def _keras_core(pairing: Pairing, jit_compile: bool = True) -> Callable:
    return lambda params: KerasRunner(pairing.peer.build(), params, jit_compile)


def _optax(pairing: Pairing) -> Callable:
    return lambda params: OptaxRunner(pairing.peer.build(), params)


def _torch(pairing: Pairing, implementation: str) -> Callable:
    def make(params: list[np.ndarray]) -> TorchOptimRunner:
        class_name, kwargs = pairing.peer.build()
        return TorchOptimRunner(class_name, kwargs, params, implementation)

    return make


def contenders(algorithm: Algorithm, backend: str) -> list[Contender]:
    """Every contender for `algorithm` on `backend`, ours first.

    Our optimizer runs at the primary convention (keras core's where keras core
    has the algorithm) and, where a peer's convention differs, again at the
    peer's, so that every ratio compares the same math. On TensorFlow both
    Keras optimizers run once more without XLA, for reference.
    """
    name = algorithm.name
    primary = algorithm.ours_kwargs()
    race = [Contender("ours", "ours", _ours_config(name, primary), _ours(name, primary))]
    core = algorithm.pairings.get("keras_core")
    if core is not None:
        race.append(Contender(
            "keras_core", "keras core", str(core.peer), _keras_core(core),
            reference="ours", note=core.convention,
        ))
    if backend == "tensorflow":
        race.append(Contender(
            "ours_graph", "ours (no XLA)", _ours_config(name, primary) + ", no XLA",
            _ours(name, primary, jit_compile=False), reference="ours",
        ))
        if core is not None:
            race.append(Contender(
                "keras_core_graph", "keras core (no XLA)", f"{core.peer}, no XLA",
                _keras_core(core, jit_compile=False), reference="ours", note=core.convention,
            ))
    peer = {"jax": "optax", "torch": "torch"}.get(backend)
    pairing = algorithm.pairings.get(peer) if peer else None
    if pairing is None:
        return race
    reference = "ours"
    ours_for_peer = algorithm.ours_kwargs(peer)
    if ours_for_peer != primary:
        reference = f"ours_{peer}"
        race.append(Contender(
            reference, f"ours ({peer} conv.)", _ours_config(name, ours_for_peer),
            _ours(name, ours_for_peer), note=pairing.convention,
        ))
    common = {"reference": reference, "exact": pairing.exact, "note": pairing.convention}
    if peer == "optax":
        race.append(Contender("optax", "optax", str(pairing.peer), _optax(pairing), **common))
        return race
    for implementation in ("foreach", "fused"):
        race.append(Contender(
            f"torch_{implementation}", f"torch {implementation}",
            f"{pairing.peer}, {implementation}=True", _torch(pairing, implementation), **common,
        ))
    return race


# ---------------------------------------------------------------------------
# Timing and the correctness guard
# ---------------------------------------------------------------------------


def time_steps(runner: Runner, grads: list[Any], repeats: int, steps: int) -> list[float]:
    """Seconds per step of `repeats` runs of `steps` steps each (warm-up excluded)."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            runner.step(grads)
        runner.sync()
        samples.append((time.perf_counter() - start) / steps)
    return samples


def warm_up(runner: Runner, grads: list[Any], steps: int) -> None:
    """Compile and run `steps` steps (at least one, which compiles)."""
    for _ in range(max(1, steps)):
        runner.step(grads)
    runner.sync()


def median(samples: list[float]) -> float:
    return statistics.median(samples)


CHECK_STEPS = 3
CHECK_TOLERANCE = 1e-3


def check_problem(seed: int = 1) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """Two small float32 tensors and `CHECK_STEPS` steps of gradients whose
    magnitudes span 1e-2..10 and whose signs change from step to step.

    The weights are of size 0.1, so that float32 resolves a few steps of size
    1e-4 (Lion's) to about 1e-4 of their length.
    """
    rng = np.random.default_rng(seed)
    shapes = [(97,), (211,)]
    params = [(0.1 * rng.standard_normal(s)).astype("float32") for s in shapes]
    grads = [
        [
            (rng.choice([-1.0, 1.0], s) * 10.0 ** rng.uniform(-2, 1, s)).astype("float32")
            for s in shapes
        ]
        for _ in range(CHECK_STEPS)
    ]
    return params, grads


def displacement_error(
    params0: list[np.ndarray], actual: list[np.ndarray], expected: list[np.ndarray]
) -> float:
    """max |Δactual − Δexpected| / max |Δexpected|, Δ = parameters − start.

    Measured on the displacement, not the parameters, so that a few steps of
    size 1e-4 on weights of size 1 still compare at full resolution.
    """
    difference = max(
        float(np.max(np.abs(a.astype(np.float64) - e.astype(np.float64))))
        for a, e in zip(actual, expected)
    )
    scale = max(
        float(np.max(np.abs(e.astype(np.float64) - p.astype(np.float64))))
        for e, p in zip(expected, params0)
    )
    return difference / scale if scale > 0 else difference


def check(race: list[Contender]) -> dict[str, dict[str, Any]]:
    """Run every contender `CHECK_STEPS` steps on a small problem through the
    same runner code that is timed, and compare each with its reference.

    Returns:
        `{key: {"error": float, "ok": bool}}` for every contender with a
        reference; `{"error": None, "ok": False, "failed": message}` for one
        that failed, `{"error": None, "ok": None, "failed": "n/a: ..."}` for
        one its library does not provide here.
    """
    params0, grads = check_problem()
    trajectories: dict[str, list[np.ndarray] | str] = {}
    unavailable: dict[str, str] = {}
    for contender in race:
        try:
            runner = contender.make([p.copy() for p in params0])
            for step_grads in grads:
                runner.step(device_arrays(step_grads))
            runner.sync()
            trajectories[contender.key] = runner.params()
        except NotImplementedError as error:
            unavailable[contender.key] = f"n/a: {error}"
        except Exception as error:  # noqa: BLE001 - reported in the table, not fatal
            trajectories[contender.key] = f"{type(error).__name__}: {error}"
    results: dict[str, dict[str, Any]] = {}
    for contender in race:
        if contender.reference is None:
            continue
        if contender.key in unavailable:
            results[contender.key] = {"error": None, "ok": None, "failed": unavailable[contender.key]}
            continue
        actual = trajectories[contender.key]
        expected = trajectories.get(contender.reference)
        if isinstance(actual, str) or isinstance(expected, str) or expected is None:
            failed = actual if isinstance(actual, str) else f"reference failed: {expected}"
            results[contender.key] = {"error": None, "ok": False, "failed": failed}
            continue
        error = displacement_error(params0, actual, expected)
        results[contender.key] = {"error": error, "ok": error <= CHECK_TOLERANCE}
    return results
