"""The `environment` block of results.json: what a reader needs to know to compare two runs."""

import os
import platform
import sys
from importlib import metadata


def environment() -> dict[str, str]:
    """Python, auralign, torch, transformers, peft, numpy versions (installed, not imported), platform, CPU, GPU."""
    env = {"python": platform.python_version()}
    for package in ("auralign", "torch", "transformers", "peft", "numpy"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            env[package] = "not installed"
    env["platform"] = platform.platform()
    env["cpu"] = f"{platform.machine()}, {os.cpu_count()} logical cores"
    env["gpu"] = _gpu()
    env["executable"] = sys.executable
    return env


def _gpu() -> str:
    torch = sys.modules.get("torch")  # only if the run already uses it: importing torch here costs seconds
    if torch is None or not torch.cuda.is_available():
        return "none"
    names = {torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
    return f"{torch.cuda.device_count()} x {', '.join(sorted(names))}"
