"""Input checks and conversion shared by the metric functions.

Every metric accepts NumPy arrays or torch tensors (any device). Inputs are checked
at the boundary (real, non-empty, finite, matching shapes) and converted to torch
tensors on one device before any work starts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._backend import as_tensor

__all__ = ["as_real_tensor", "as_real_pair", "check_data_range"]


def _describe(x: Any) -> tuple[tuple[int, ...], bool]:
    """Shape and whether the dtype is complex, without converting ``x``."""
    if isinstance(x, torch.Tensor):
        return tuple(x.shape), x.is_complex()
    a = np.asarray(x)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(
            f"expected a numeric array or tensor, got dtype {a.dtype}; pass a NumPy array or "
            "torch tensor of real numbers."
        )
    return a.shape, np.iscomplexobj(a)


def _float_dtype(x: Any) -> torch.dtype:
    """float64 for float64 inputs, float32 for every other real dtype."""
    dt = x.dtype if isinstance(x, torch.Tensor) else np.asarray(x).dtype
    return torch.float64 if dt in (np.float64, torch.float64) else torch.float32


def _check_one(x: Any, name: str) -> tuple[int, ...]:
    shape, is_complex = _describe(x)
    if is_complex:
        raise ValueError(f"{name} is complex; metrics are defined for real arrays, pass x.real.")
    if int(np.prod(shape)) == 0:
        raise ValueError(f"{name} is empty (shape {shape}); pass a non-empty array.")
    return shape


def _check_finite(t: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values; clean or mask them first.")


def as_real_tensor(x: Any, name: str, *, dtype: torch.dtype | None = torch.float64) -> torch.Tensor:
    """Check ``x`` (real, non-empty, finite) and return it as a tensor.

    A tensor stays on its device; a NumPy array is computed on the CPU. ``dtype=None``
    keeps float64 inputs in float64 and computes everything else in float32.
    """
    _check_one(x, name)
    dev = x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
    t = as_tensor(x, dev, dtype if dtype is not None else _float_dtype(x))
    _check_finite(t, name)
    return t


def as_real_pair(
    x: Any,
    y: Any,
    names: tuple[str, str],
    *,
    dtype: torch.dtype | None = torch.float64,
    ndims: tuple[int, ...] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check two arrays of the same shape and return them as tensors on one device.

    The device is the first tensor argument's (NumPy inputs follow a tensor partner);
    with two NumPy inputs it is the CPU. ``dtype=None`` computes in float64 when either
    input is float64 and in float32 otherwise. ``ndims`` restricts the allowed ranks.
    """
    sx = _check_one(x, names[0])
    sy = _check_one(y, names[1])
    if sx != sy:
        raise ValueError(
            f"{names[0]} has shape {sx} but {names[1]} has shape {sy}; "
            "pass arrays of the same shape."
        )
    if ndims is not None and len(sx) not in ndims:
        allowed = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(
            f"{names[0]} and {names[1]} are {len(sx)}-D; this metric needs {allowed} arrays."
        )
    device = next((a.device for a in (x, y) if isinstance(a, torch.Tensor)), torch.device("cpu"))
    if dtype is None:
        wide = torch.float64 in (_float_dtype(x), _float_dtype(y))
        dtype = torch.float64 if wide else torch.float32
    tx = as_tensor(x, device, dtype)
    ty = as_tensor(y, device, dtype)
    _check_finite(tx, names[0])
    _check_finite(ty, names[1])
    return tx, ty


def check_data_range(data_range: float | None, reference: torch.Tensor) -> float:
    """The dynamic range L: the given value, else ``reference.max() - reference.min()``."""
    if data_range is None:
        value = float(reference.max() - reference.min())
        if value <= 0:
            raise ValueError(
                "the reference is constant, so its range (max - min) is 0; pass data_range "
                "explicitly (e.g. the range of the intensities you expect)."
            )
        return value
    value = float(data_range)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}.")
    return value
