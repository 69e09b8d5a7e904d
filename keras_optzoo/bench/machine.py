"""What the benchmark ran on: CPU, accelerator, load, library versions."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from typing import Any

import keras

_BACKEND_PACKAGES = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def available_host_bytes() -> int | None:
    """`MemAvailable` from /proc/meminfo, or None where there is none."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    for name in (package, f"{package}-cpu"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def accelerator() -> dict[str, Any] | None:
    """The accelerator the active backend computes on, or None on a CPU."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":
            return None
        stats = device.memory_stats() or {}
        return {"name": device.device_kind, "platform": device.platform,
                "memory_bytes": stats.get("bytes_limit")}
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return None
        return {"name": torch.cuda.get_device_name(0), "platform": "cuda",
                "memory_bytes": torch.cuda.mem_get_info()[1]}
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return {"name": details.get("device_name", gpus[0].name), "platform": "gpu", "memory_bytes": None}


def free_device_bytes() -> int | None:
    """Free memory on the device the benchmark allocates on."""
    backend = keras.backend.backend()
    if accelerator() is None:
        return available_host_bytes()
    if backend == "torch":
        import torch

        return torch.cuda.mem_get_info()[0]
    if backend == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        if "bytes_limit" in stats:
            return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    return None


def _nvidia_smi() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.memory",
             "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def device_slug(description: dict[str, Any]) -> str:
    """`cpu`, or the accelerator's name in lowercase with dashes (for file names)."""
    gpu = description.get("accelerator")
    if not gpu:
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", gpu["name"].lower()).strip("-") or "gpu"


def describe() -> dict[str, Any]:
    """The machine and software the benchmark runs on.

    Returns:
        A JSON-ready dict: backend, CPU model, logical cores (all and usable
        by this process), memory, load average at the start (the machine may
        be shared), accelerator, `nvidia-smi` line, torch's intra-op thread
        count where torch is the backend, and package versions.
    """
    backend = keras.backend.backend()
    description: dict[str, Any] = {
        "backend": backend,
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _memory_gib(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "accelerator": accelerator(),
        "nvidia_smi": _nvidia_smi(),
        "versions": {
            package: _version(package)
            for package in ("keras", "keras_optzoo", "jax", "jaxlib", "optax", "tensorflow", "torch")
        },
    }
    if backend == "torch":
        import torch

        description["torch_threads"] = torch.get_num_threads()
    description["backend_version"] = description["versions"].get(_BACKEND_PACKAGES[backend])
    return description
