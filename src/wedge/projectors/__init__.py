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
from ..tiltseries import _check_angles_degrees
from . import fourier, general, single_axis  # noqa: F401  (register the projectors)
from .base import PROJECTORS, Projector, autograd_adjoint, register_projector
from .options import ProjectorOptions, projector_name
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
    "ProjectorOptions",
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
    name = projector_name(model, geometry.is_single_axis)
    if name not in PROJECTORS:
        known = ", ".join(sorted(set(MODELS) | set(PROJECTORS)))
        raise ValueError(f"unknown projector model {model!r}; known models: {known}.")
    return PROJECTORS[name](geometry, **options)


def _orientations(angles: Any, euler: Any) -> tuple[np.ndarray, str]:
    """Checked (n, 3) Euler angles in degrees from ``euler`` or tilt ``angles``, and the
    name of the θ values for messages."""
    if euler is not None:
        e = np.asarray(euler, dtype=np.float64)
        if e.ndim != 2 or e.shape[1] != 3:
            raise ValueError(f"euler must have shape (n, 3) as (phi, theta, psi), got {e.shape}.")
        what = "euler theta angles"
    elif angles is not None:
        a = np.asarray(angles, dtype=np.float64)
        if a.ndim > 1:
            raise ValueError(
                f"angles must be a 1D sequence of tilt angles (degrees), got shape {a.shape}; "
                "pass euler=(n, 3) for full orientations."
            )
        a = a.reshape(-1)
        e = np.zeros((a.size, 3))
        e[:, 1] = a
        what = "angles"
    else:
        raise ValueError(
            "give the tilt angles (angles=, degrees) or full orientations (euler=, shape (n, 3))."
        )
    given = "euler angles" if euler is not None else "angles"
    if e.shape[0] == 0:
        raise ValueError(f"no {given} were given; pass one per image (degrees).")
    if not np.all(np.isfinite(e)):
        raise ValueError(f"the {given} contain NaN or Inf; pass finite angles in degrees.")
    return e, what


def _geometry(
    euler: np.ndarray,
    volume_shape: Sequence[int],
    detector_shape: Sequence[int] | None,
    shifts: Any,
    tilt_axis_angle: float,
    device: Any,
) -> Geometry:
    if detector_shape is None:
        detector_shape = (volume_shape[1], volume_shape[2])
    return Geometry(
        volume_shape=tuple(volume_shape),
        detector_shape=tuple(detector_shape),
        euler=euler,
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
    ndarray or tensor (n, Y, X), float32
        NumPy for NumPy input, a tensor on the input's device for tensor input. Values are
        line integrals in voxel units.

    Raises
    ------
    ValueError
        Neither ``angles`` nor ``euler`` given, non-finite angles, a complex or non-3D
        volume.

    Warns
    -----
    AngleUnitWarning
        When more than four tilt angles (or euler θ values) all lie within ±π: they look
        like radians.

    Notes
    -----
    wedge computes in float32: real input of any numeric dtype (float64, float16, integer)
    is converted to float32 and the result is float32, whatever came in. Complex input is
    refused (take ``.real`` or ``abs()`` first).
    """
    e, what = _orientations(angles, euler)
    _check_angles_degrees(e[:, 1], what)
    dev = resolve_device(device, volume)
    x = as_tensor(volume, dev, name="volume")
    if x.ndim != 3:
        raise ValueError(f"volume must be 3D (Z, Y, X), got shape {tuple(x.shape)}.")
    geom = _geometry(e, x.shape, detector_shape, shifts, tilt_axis_angle, dev)
    return to_output(make_projector(geom, model, **options).forward(x), volume)


def backproject(
    images: Any,
    angles: Any = None,
    volume_shape: Sequence[int] | None = None,
    *,
    shifts: Any = None,
    euler: Any = None,
    tilt_axis_angle: float = 0.0,
    model: str = "ray",
    device: Any = None,
    **options: Any,
) -> Any:
    """The exact adjoint of :func:`project`: images (n, Y, X) → volume ``volume_shape``.

    Parameters
    ----------
    images : ndarray or tensor (n, Y, X)
        The detector shape is the images' (Y, X).
    angles : sequence of float, degrees, optional
        Tilt angles about Y; not needed (and ignored) when ``euler`` is given.
    volume_shape : (Z, Y, X)
        Shape of the returned volume (required).
    shifts, euler, tilt_axis_angle, model, device, **options
        As in :func:`project`.

    Returns
    -------
    ndarray or tensor (Z, Y, X), float32
        NumPy for NumPy input, a tensor on the input's device for tensor input.

    Raises
    ------
    ValueError
        Neither ``angles`` nor ``euler`` given, no ``volume_shape``, a count of angles that
        differs from the image count, complex or non-3D images.

    Warns
    -----
    AngleUnitWarning
        When more than four tilt angles (or euler θ values) all lie within ±π.

    Notes
    -----
    wedge computes in float32: real input of any numeric dtype (float64, float16, integer)
    is converted to float32 and the result is float32, whatever came in. Complex input is
    refused (take ``.real`` or ``abs()`` first).
    """
    e, what = _orientations(angles, euler)
    if volume_shape is None or len(tuple(volume_shape)) != 3:
        raise ValueError(
            f"volume_shape must be (Z, Y, X), got {volume_shape}; pass the shape of the "
            "volume to back-project into."
        )
    _check_angles_degrees(e[:, 1], what)
    dev = resolve_device(device, images)
    y = as_tensor(images, dev, name="images")
    if y.ndim != 3:
        raise ValueError(f"images must be 3D (n, Y, X), got shape {tuple(y.shape)}.")
    if e.shape[0] != y.shape[0]:
        raise ValueError(
            f"{e.shape[0]} {what} were given for {y.shape[0]} images; pass one per image."
        )
    geom = _geometry(e, volume_shape, y.shape[1:], shifts, tilt_axis_angle, dev)
    return to_output(make_projector(geom, model, **options).adjoint(y), images)
