"""One scenario, run once per backend by `test_cross_backend.py` in a subprocess.

Usage: KERAS_BACKEND=jax python tests/cross_backend_scenario.py OUT.npz
Every registered optimizer, non-default weight decay and gradient clipping,
runs the shared problem through `model`-free `optimizer.apply`; the final
params and slots are saved for comparison across backends.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras_optzoo as oz
from tests.harness import run_zoo
from tests.problems import make_problem

STEPS = 60


def main(out: str) -> None:
    params0, grads = make_problem(seed=1, steps=STEPS)
    arrays = {}
    for name in oz.optimizers.names():
        optimizer = oz.get(name, weight_decay=0.02, global_clipnorm=50.0)
        trajectory = run_zoo(optimizer, params0, grads)
        for step in (0, STEPS // 2, STEPS - 1):
            for i, value in enumerate(trajectory[step]["params"]):
                arrays[f"{name}/step{step}/param{i}"] = value
            for slot, values in trajectory[step]["slots"].items():
                for i, value in enumerate(values):
                    arrays[f"{name}/step{step}/{slot}{i}"] = value
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
