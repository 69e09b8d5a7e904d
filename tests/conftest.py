"""Shared pytest setup: the backend under test is whatever KERAS_BACKEND names."""

from __future__ import annotations

import os

import keras
import pytest

from tests.harness import BACKEND


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {BACKEND} (KERAS_BACKEND={os.environ.get('KERAS_BACKEND')})"


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.utils.set_random_seed(0)
    policy = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(policy)
