"""Array plumbing shared by every module: NumPy in, NumPy out; torch in, torch out.

Public functions accept NumPy arrays or torch tensors. They compute with torch on
the requested device and return the type they were given: a NumPy array for NumPy
input, a tensor on the input's device for tensor input.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

__all__ = ["as_tensor", "default_device", "resolve_device", "to_output", "is_tensor"]


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor."""
    return isinstance(x, torch.Tensor)


def default_device() -> torch.device:
    """The device wedge uses when none is given: CUDA when present, else CPU.

    ``WEDGE_FORCE_GPU=1`` makes the absence of CUDA an error instead of a silent
    fall-back (used to run the test-suite on a GPU machine).
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    if os.environ.get("WEDGE_FORCE_GPU") == "1":
        raise RuntimeError("WEDGE_FORCE_GPU=1 is set but torch sees no CUDA device.")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None, *arrays: Any) -> torch.device:
    """Pick the compute device: the explicit one, else a tensor argument's, else the default."""
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but torch sees no CUDA device; use device='cpu'."
            )
        return dev
    for a in arrays:
        if isinstance(a, torch.Tensor):
            return a.device
    return default_device()


def as_tensor(
    x: Any, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Convert ``x`` (array-like or tensor) to a contiguous tensor of ``dtype`` on ``device``."""
    if isinstance(x, torch.Tensor):
        t = x.to(device=device if device is not None else x.device, dtype=dtype)
    else:
        a = np.ascontiguousarray(x)
        if not a.flags.writeable:  # torch cannot wrap read-only memory (e.g. memory maps)
            a = a.copy()
        t = torch.as_tensor(a, dtype=dtype, device=device)
    return t.contiguous()


def to_output(t: torch.Tensor, like: Any) -> Any:
    """Return ``t`` as ``like``'s type: a tensor (kept where it is) or a NumPy array."""
    if isinstance(like, torch.Tensor):
        return t.to(like.device)
    return t.detach().cpu().numpy()
