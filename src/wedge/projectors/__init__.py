"""Projectors: forward/adjoint pairs on one geometry, and the NumPy-in/NumPy-out API.

Registered projectors (:data:`PROJECTORS`):

================  =====================================================  ==============
name              what                                                   geometry
================  =====================================================  ==============
``ray-sparse``    ray-driven sparse system matrix (fast path)            single-axis
``voxel-sparse``  sub-voxel splatting sparse system matrix (fast path)   single-axis
``ray-3d``        trilinear ray sampling, pose-differentiable            any
``fourier``       Fourier-slice theorem with oversampling (RESIRE FST)   any
================  =====================================================  ==============

``model`` names used by the API: ``"ray"`` (``ray-sparse`` when the geometry is
single-axis, else ``ray-3d``), ``"voxel"`` (``voxel-sparse``), ``"fourier"``, or any
registered name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend import as_tensor, resolve_device, to_output
from ..geometry import Geometry
from . import fourier, general, single_axis  # noqa: F401  (register the projectors)
from .base import PROJECTORS, Projector, autograd_adjoint, register_projector
from .single_axis import clear_matrix_cache

__all__ = [
    "PROJECTORS",
    "Projector",
    "register_projector",
    "autograd_adjoint",
    "make_projector",
    "project",
    "backproject",
    "clear_matrix_cache",
    "MODELS",
]

MODELS = ("ray", "voxel", "fourier")


def make_projector(geometry: Geometry, model: str = "ray", **options: Any) -> Projector:
    """Build the projector for ``geometry``.

    Parameters
    ----------
    geometry : Geometry
    model : {"ray", "voxel", "fourier"} or a registered projector name
    **options
        Passed to the projector class (``n_sub`` for the sparse projectors, ``step`` for
        ``ray-3d``, ``oversampling`` for ``fourier``).
    """
    if model == "ray":
        name = "ray-sparse" if geometry.is_single_axis else "ray-3d"
    elif model == "voxel":
        name = "voxel-sparse"
    else:
        name = model
    if name not in PROJECTORS:
        known = ", ".join(sorted(set(MODELS) | set(PROJECTORS)))
        raise ValueError(f"unknown projector model {model!r}; known models: {known}.")
    return PROJECTORS[name](geometry, **options)


def _geometry(
    angles: Any,
    volume_shape: Sequence[int],
    detector_shape: Sequence[int] | None,
    shifts: Any,
    euler: Any,
    tilt_axis_angle: float,
    device: Any,
) -> Geometry:
    if euler is not None:
        e = np.asarray(euler, dtype=np.float64)
        if e.ndim != 2 or e.shape[1] != 3:
            raise ValueError(f"euler must have shape (n, 3) as (phi, theta, psi), got {e.shape}.")
    else:
        a = np.asarray(angles, dtype=np.float64).reshape(-1)
        e = np.zeros((a.size, 3))
        e[:, 1] = a
    if detector_shape is None:
        detector_shape = (volume_shape[1], volume_shape[2])
    return Geometry(
        volume_shape=tuple(volume_shape),
        detector_shape=tuple(detector_shape),
        euler=e,
        shifts=shifts,
        tilt_axis_angle=tilt_axis_angle,
        device=str(device),
    )


def project(
    volume: Any,
    angles: Any = None,
    *,
    shifts: Any = None,
    euler: Any = None,
    tilt_axis_angle: float = 0.0,
    detector_shape: Sequence[int] | None = None,
    model: str = "ray",
    device: Any = None,
    **options: Any,
) -> Any:
    """Project a volume (Z, Y, X) to a tilt series (n, Y, X).

    Parameters
    ----------
    volume : ndarray or tensor (Z, Y, X)
    angles : sequence of float, degrees
        Tilt angles about Y (ignored when ``euler`` is given).
    shifts : (n, 2) pixels, optional
        (dx, dy) translation of each image.
    euler : (n, 3) degrees, optional
        (φ, θ, ψ) per image, ``R = Z(φ) Y(θ) X(ψ)``.
    tilt_axis_angle : float, degrees
    detector_shape : (Y, X), optional
        Defaults to the volume's (Y, X).
    model : {"ray", "voxel", "fourier"} or a registered projector name
    device : str, optional
        Compute device; defaults to the tensor's device, else CUDA when present.

    Returns
    -------
    ndarray (n, Y, X) for NumPy input, tensor on the input's device for tensor input.
    Values are line integrals in voxel units.
    """
    if angles is None and euler is None:
        raise ValueError("give the tilt angles (degrees) or euler angles (n, 3).")
    dev = resolve_device(device, volume)
    x = as_tensor(volume, dev)
    if x.ndim != 3:
        raise ValueError(f"volume must be 3D (Z, Y, X), got shape {tuple(x.shape)}.")
    geom = _geometry(angles, x.shape, detector_shape, shifts, euler, tilt_axis_angle, dev)
    return to_output(make_projector(geom, model, **options).forward(x), volume)


def backproject(
    images: Any,
    angles: Any,
    volume_shape: Sequence[int],
    *,
    shifts: Any = None,
    euler: Any = None,
    tilt_axis_angle: float = 0.0,
    model: str = "ray",
    device: Any = None,
    **options: Any,
) -> Any:
    """The exact adjoint of :func:`project`: images (n, Y, X) → volume ``volume_shape``.

    Arguments as in :func:`project`; the detector shape is the images' (Y, X).
    """
    dev = resolve_device(device, images)
    y = as_tensor(images, dev)
    if y.ndim != 3:
        raise ValueError(f"images must be 3D (n, Y, X), got shape {tuple(y.shape)}.")
    if len(tuple(volume_shape)) != 3:
        raise ValueError(f"volume_shape must be (Z, Y, X), got {volume_shape}.")
    geom = _geometry(angles, volume_shape, y.shape[1:], shifts, euler, tilt_axis_angle, dev)
    if geom.n_images != y.shape[0]:
        raise ValueError(f"{geom.n_images} angles were given for {y.shape[0]} images.")
    return to_output(make_projector(geom, model, **options).adjoint(y), images)
