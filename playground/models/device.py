"""Device and dtype policy: CUDA, then Apple MPS, then CPU; half precision on CUDA, float32 elsewhere."""

from __future__ import annotations

import re

from playground.errors import UserError
from playground.lazy import torch

_DEVICE_RE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


class DeviceError(UserError, RuntimeError):
    """The requested device is malformed or not available on this machine."""


def pick_device(override: str | None = None) -> torch.device:
    """The device models run on: `override` if given (validated), else CUDA, then MPS, then CPU.

    >>> pick_device("cpu")
    device(type='cpu')
    """
    if override:
        name = override.strip().lower()
        if not _DEVICE_RE.match(name):
            raise DeviceError(f"PLAYGROUND_DEVICE={override!r} is not a device; use cpu, cuda, cuda:N or mps.")
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise DeviceError(f"PLAYGROUND_DEVICE={override!r} but CUDA is not available here; unset it or use cpu.")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"PLAYGROUND_DEVICE={override!r} but only {torch.cuda.device_count()} CUDA device(s) exist.")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise DeviceError(f"PLAYGROUND_DEVICE={override!r} but Apple MPS is not available here; unset it or use cpu.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, override: str | None = None) -> torch.dtype:
    """float32 on CPU and MPS; on CUDA bfloat16 where the GPU supports it, else float16.

    >>> pick_dtype(torch.device("cpu"))
    torch.float32
    """
    if override:
        return getattr(torch, override)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def release_device_memory(device: torch.device) -> None:
    """Hand freed blocks back to the driver after a model was dropped."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()
