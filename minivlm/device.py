"""Device choice, seeding and an environment report (chapter 0: notebooks/00_setup.ipynb)."""

from __future__ import annotations

import os
import platform
import random
from importlib import metadata

import numpy as np
import torch

DEVICE_ENV = "MINIVLM_DEVICE"
KNOWN_DEVICES = ("cuda", "mps", "cpu")


def device_available(kind: str) -> bool:
    """Whether this machine has a device of this kind ("cuda", "mps" or "cpu")."""
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        return mps is not None and mps.is_available()
    return kind == "cpu"


def pick_device(prefer: str | None = None) -> torch.device:
    """cuda if there is one, else mps (Apple GPUs), else cpu.

    `prefer`, or else the environment variable MINIVLM_DEVICE, names a device to use instead
    ("cpu", "cuda", "cuda:1", "mps"); asking for one that is unknown or absent is an error.
    """
    choice = prefer if prefer is not None else os.environ.get(DEVICE_ENV, "").strip()
    if not choice:
        return torch.device(next(k for k in KNOWN_DEVICES if device_available(k)))
    kind = choice.split(":")[0]
    if kind not in KNOWN_DEVICES:
        raise ValueError(
            f"unknown device {choice!r} (from {'argument' if prefer else DEVICE_ENV}); "
            f"expected one of {KNOWN_DEVICES}, optionally with an index such as 'cuda:0'"
        )
    if not device_available(kind):
        raise RuntimeError(f"device {choice!r} was requested but is not available on this machine")
    device = torch.device(choice)
    if kind == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise RuntimeError(f"device {choice!r} was requested, but there are {count} GPU(s)")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices) so a run can be repeated exactly."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every cuda device


def deterministic(enabled: bool = True) -> None:
    """Make GPU arithmetic repeatable where the notebooks compare digits (chapter 0).

    cuDNN may pick its convolution kernels by timing them (`benchmark`), and some of them add
    with atomics: `deterministic=True, benchmark=False` fixes the choice and the order. TF32
    rounds convolution (and, if allowed, matmul) inputs to 10 bits of mantissa on Ampere and
    later GPUs, far from what a CPU computes: it is turned off. On a CPU none of this changes a
    digit. enabled=False restores torch's defaults, which the capstone's training uses."""
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = not enabled
    torch.backends.cuda.matmul.allow_tf32 = False


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def env_report(device: torch.device | None = None) -> dict[str, str]:
    """What chapter 0 prints: versions, device and threads, as strings."""
    device = device or pick_device()
    report = {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "device": str(device),
        "torch threads": str(torch.get_num_threads()),
    }
    for pkg in ("minivlm", "torchvision", "transformers", "tokenizers", "einops", "numpy"):
        report[pkg] = _version(pkg)
    report["torch"] = torch.__version__  # with its build tag, e.g. +cpu or +cu130
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    return report


def format_report(report: dict[str, str]) -> str:
    width = max(len(k) for k in report)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in report.items())
