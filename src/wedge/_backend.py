"""Array plumbing shared by every module: NumPy in, NumPy out; torch in, torch out.

Public functions accept NumPy arrays or torch tensors. They compute with torch on
the requested device and return the type they were given: a NumPy array for NumPy
input, a tensor on the input's device for tensor input.

dtype policy
------------
wedge computes in float32. Real input of any numeric dtype (float16, float64, integer,
unsigned, bool) is converted to float32 at the boundary, so results are float32 whatever
came in: float32 NumPy out for NumPy in, a float32 tensor on the input's device for tensor
in. float64 input therefore loses precision beyond float32's ~7 significant digits; cast
the result back (``out.astype(np.float64)``) if a caller needs float64 storage. Complex
input is refused rather than silently dropping its imaginary part, and so are
non-numeric arrays (strings, objects). Modules that need another precision ask for it
explicitly (the metrics compute in float64).
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


def _refuse_non_real(kind: str, dtype: Any, name: str) -> None:
    """Raise for complex or non-numeric input (``kind`` is NumPy's dtype kind letter)."""
    if kind == "c":
        raise ValueError(
            f"{name} is complex ({dtype}), but wedge computes with real values and would drop "
            "the imaginary part; take the real part (x.real) or the magnitude (abs(x)) first."
        )
    if kind not in "biuf":
        raise ValueError(
            f"{name} has dtype {dtype}, which is not numeric; pass a NumPy array or torch "
            "tensor of real numbers."
        )


def as_tensor(
    x: Any,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    *,
    name: str = "the input",
) -> torch.Tensor:
    """Convert ``x`` (array-like or tensor) to a contiguous tensor of ``dtype`` on ``device``.

    Parameters
    ----------
    x : array-like or torch.Tensor
    device : torch.device or str, optional
        Defaults to the tensor's device, else the CPU.
    dtype : torch.dtype
        Target dtype; float32 unless a caller needs another precision.
    name : str
        What ``x`` is, for error messages (e.g. ``"volume"``).

    Returns
    -------
    torch.Tensor

    Raises
    ------
    ValueError
        If ``x`` is complex (or non-numeric) and ``dtype`` is real: the conversion would
        silently drop the imaginary part.
    """
    if isinstance(x, torch.Tensor):
        if not dtype.is_complex:
            kind = "c" if x.is_complex() else ("f" if x.is_floating_point() else "i")
            _refuse_non_real(kind, x.dtype, name)
        t = x.to(device=device if device is not None else x.device, dtype=dtype)
    else:
        a = np.ascontiguousarray(x)
        if not dtype.is_complex:
            _refuse_non_real(a.dtype.kind, a.dtype, name)
        if not a.flags.writeable:  # torch cannot wrap read-only memory (e.g. memory maps)
            a = a.copy()
        t = torch.as_tensor(a, dtype=dtype, device=device)
    return t.contiguous()


def to_output(t: torch.Tensor, like: Any) -> Any:
    """Return ``t`` as ``like``'s type: a tensor (kept where it is) or a NumPy array."""
    if isinstance(like, torch.Tensor):
        return t.to(like.device)
    return t.detach().cpu().numpy()
