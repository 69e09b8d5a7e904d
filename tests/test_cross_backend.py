"""The same scenario under TensorFlow, JAX and PyTorch must give the same numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.harness import BACKEND, max_relative_error

BACKENDS = ("tensorflow", "jax", "torch")
SCENARIO = Path(__file__).with_name("cross_backend_scenario.py")


@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="spawns all three backends itself; runs once, in the tensorflow session",
)
def test_trajectories_agree_across_backends(tmp_path):
    results = {}
    for backend in BACKENDS:
        out = tmp_path / f"{backend}.npz"
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        completed = subprocess.run(
            [sys.executable, str(SCENARIO), str(out)],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )
        assert completed.returncode == 0, f"{backend} failed:\n{completed.stderr[-4000:]}"
        results[backend] = dict(np.load(out))

    keys = sorted(results["tensorflow"])
    assert len(keys) > 100
    for backend in ("jax", "torch"):
        assert sorted(results[backend]) == keys
        worst = max(
            (max_relative_error(results[backend][k], results["tensorflow"][k], 1e-3), k)
            for k in keys
        )
        # float32 arithmetic in different op orders: a few ulps per step over
        # 60 steps stays far below 1e-4.
        assert worst[0] < 1e-4, f"{backend} vs tensorflow: {worst}"
