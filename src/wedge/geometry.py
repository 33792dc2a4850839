"""Acquisition geometry: an immutable value object shared by every projector and method.

Conventions (see ``docs/conventions.md``; each is enforced by a test):

* A volume is a (Z, Y, X) array; Z is the beam direction at 0° tilt, Y the tilt axis,
  X the other image axis. A tilt series is (n_tilts, Y, X).
* Angles are degrees in this object and at every user-facing boundary; radians inside
  the projectors.
* Orientation of image ``i`` is the Euler triple (φ, θ, ψ) with
  ``R = Z(φ) · Y(θ) · X(ψ)`` (right-handed rotations about z, y, x). A point ``p`` at
  (x, y, z) relative to the rotation centre appears at image position
  ``(u, v) = (R p)[:2] + (dx, dy)``. For (0, β, 0) this is
  ``u = x cos β + z sin β, v = y``: IMOD's tilt convention.
* The rotation centre is the geometric centre of each array, index (N − 1)/2 along
  every axis (ASTRA's convention). GENFIRE and RESIRE put it at N/2; a volume in that
  convention is this one shifted by +0.5 voxel along each even-sized axis.
* Shifts (dx, dy) are in detector pixels: the measured image is the ideal projection
  translated by (+dx, +dy).
* An in-plane tilt-axis angle α (degrees, counter-clockwise from image Y, as IMOD's
  rotation angle) is the Euler angle φ = α; it is stored separately so that a single
  tilt axis at α stays a "single-axis" geometry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["Geometry", "euler_to_matrix", "rotation_z", "rotation_y", "rotation_x"]


def _rot(axis: str, a: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(a), torch.sin(a)
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    if axis == "z":
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    elif axis == "y":
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    else:
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def rotation_z(a: torch.Tensor) -> torch.Tensor:
    """Right-handed rotation by ``a`` radians about z, batched over ``a``: (..., 3, 3) in xyz."""
    return _rot("z", a)


def rotation_y(a: torch.Tensor) -> torch.Tensor:
    """Right-handed rotation by ``a`` radians about y, batched: (..., 3, 3) in xyz."""
    return _rot("y", a)


def rotation_x(a: torch.Tensor) -> torch.Tensor:
    """Right-handed rotation by ``a`` radians about x, batched: (..., 3, 3) in xyz."""
    return _rot("x", a)


def euler_to_matrix(euler_rad: torch.Tensor) -> torch.Tensor:
    """``R = Z(φ) Y(θ) X(ψ)`` for Euler triples in radians, shape (..., 3) → (..., 3, 3).

    Matrices act on column vectors (x, y, z). Differentiable in the angles.
    """
    phi, theta, psi = euler_rad.unbind(-1)
    return rotation_z(phi) @ rotation_y(theta) @ rotation_x(psi)


def _as_tuple2d(a: Any, n: int, width: int, name: str) -> tuple[tuple[float, ...], ...]:
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape != (n, width):
        raise ValueError(f"{name} must have shape ({n}, {width}), got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf; pass finite values.")
    return tuple(tuple(float(v) for v in row) for row in arr)


@dataclasses.dataclass(frozen=True, eq=True, repr=False)
class Geometry:
    """Parallel-beam acquisition geometry of a tilt series and the volume it images.

    Parameters
    ----------
    volume_shape : (nz, ny, nx)
        Shape of the reconstructed volume, in voxels.
    detector_shape : (ny, nx)
        Shape of each image, in pixels (pixel size = voxel size).
    euler : sequence of (φ, θ, ψ), degrees
        One Euler triple per image, ``R = Z(φ) Y(θ) X(ψ)``.
    shifts : sequence of (dx, dy), pixels, optional
        Per-image translation of the measured image against the ideal projection.
    tilt_axis_angle : float, degrees
        In-plane angle of the tilt axis, counter-clockwise from image Y; composes as an
        extra Z rotation applied after ``R``.
    voxel_size : float, Å
    device : str
        Where operators built from this geometry live (``.to(device)`` changes it).

    Use :meth:`single_axis` to build one from tilt angles. Slicing (``geom[3:10]``,
    ``geom[[0, 2]]``) gives the geometry of a subset of images.
    """

    volume_shape: tuple[int, int, int]
    detector_shape: tuple[int, int]
    euler: tuple[tuple[float, float, float], ...]
    shifts: tuple[tuple[float, float], ...] | None = None
    tilt_axis_angle: float = 0.0
    voxel_size: float = 1.0
    device: str = "cpu"

    def __post_init__(self) -> None:
        vs = tuple(int(v) for v in self.volume_shape)
        ds = tuple(int(v) for v in self.detector_shape)
        if len(vs) != 3 or min(vs) < 1:
            raise ValueError(f"volume_shape must be 3 positive integers (Z, Y, X), got {vs}.")
        if len(ds) != 2 or min(ds) < 1:
            raise ValueError(f"detector_shape must be 2 positive integers (Y, X), got {ds}.")
        n = len(self.euler)
        if n < 1:
            raise ValueError("a geometry needs at least one image orientation.")
        object.__setattr__(self, "volume_shape", vs)
        object.__setattr__(self, "detector_shape", ds)
        object.__setattr__(self, "euler", _as_tuple2d(self.euler, n, 3, "euler"))
        if self.shifts is not None:
            sh = _as_tuple2d(self.shifts, n, 2, "shifts")
            object.__setattr__(self, "shifts", None if not any(any(r) for r in sh) else sh)
        if not np.isfinite(self.tilt_axis_angle):
            raise ValueError("tilt_axis_angle must be finite (degrees).")
        object.__setattr__(self, "tilt_axis_angle", float(self.tilt_axis_angle))
        if not (self.voxel_size > 0 and np.isfinite(self.voxel_size)):
            raise ValueError(f"voxel_size must be a positive number of Å, got {self.voxel_size}.")
        object.__setattr__(self, "voxel_size", float(self.voxel_size))
        object.__setattr__(self, "device", str(torch.device(self.device)))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def single_axis(
        cls,
        angles: Sequence[float] | np.ndarray,
        volume_shape: Sequence[int],
        detector_shape: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> Geometry:
        """Geometry of a single-axis tilt series about Y, tilt angles in degrees."""
        a = np.asarray(angles, dtype=np.float64).reshape(-1)
        euler = np.zeros((a.size, 3))
        euler[:, 1] = a
        if detector_shape is None:
            detector_shape = (volume_shape[1], volume_shape[2])
        return cls(tuple(volume_shape), tuple(detector_shape), euler, **kwargs)

    # ------------------------------------------------------------------ views
    @property
    def n_images(self) -> int:
        return len(self.euler)

    def __len__(self) -> int:
        return self.n_images

    @property
    def data_shape(self) -> tuple[int, int, int]:
        """Shape of the tilt series this geometry describes: (n_images, Y, X)."""
        return (self.n_images, *self.detector_shape)

    @property
    def euler_array(self) -> np.ndarray:
        """Euler angles (φ, θ, ψ) in degrees, shape (n, 3)."""
        return np.array(self.euler, dtype=np.float64)

    @property
    def angles(self) -> np.ndarray:
        """Tilt angles θ in degrees, shape (n,)."""
        return self.euler_array[:, 1]

    @property
    def shifts_array(self) -> np.ndarray:
        """Shifts (dx, dy) in pixels, shape (n, 2); zeros when none were given."""
        if self.shifts is None:
            return np.zeros((self.n_images, 2))
        return np.array(self.shifts, dtype=np.float64)

    @property
    def is_single_axis(self) -> bool:
        """True when every image is a pure tilt about Y (φ = ψ = 0) and α = 0."""
        e = self.euler_array
        return bool(np.all(e[:, 0] == 0) and np.all(e[:, 2] == 0) and self.tilt_axis_angle == 0)

    def matrices(self, device: str | torch.device | None = None) -> torch.Tensor:
        """Rotation matrices ``Z(α) R_i`` as a float64 tensor of shape (n, 3, 3)."""
        e = torch.tensor(np.deg2rad(self.euler_array), dtype=torch.float64, device=device)
        r = euler_to_matrix(e)
        if self.tilt_axis_angle:
            a = torch.tensor(np.deg2rad(self.tilt_axis_angle), dtype=torch.float64, device=device)
            r = rotation_z(a) @ r
        return r

    # ------------------------------------------------------------------ value-object API
    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> Geometry:
        idx = np.arange(self.n_images)[index]
        idx = np.atleast_1d(idx)
        if idx.size == 0:
            raise IndexError("indexing a Geometry must keep at least one image.")
        euler = self.euler_array[idx]
        shifts = None if self.shifts is None else self.shifts_array[idx]
        return dataclasses.replace(self, euler=euler, shifts=shifts)

    def replace(self, **changes: Any) -> Geometry:
        """A copy with some fields changed (the object itself never changes)."""
        return dataclasses.replace(self, **changes)

    def to(self, device: str | torch.device) -> Geometry:
        """The same geometry, for operators that live on ``device``."""
        return dataclasses.replace(self, device=str(torch.device(device)))

    def __repr__(self) -> str:
        fields = [
            f"volume_shape={self.volume_shape!r}",
            f"detector_shape={self.detector_shape!r}",
            f"euler={self.euler!r}",
        ]
        if self.shifts is not None:
            fields.append(f"shifts={self.shifts!r}")
        if self.tilt_axis_angle:
            fields.append(f"tilt_axis_angle={self.tilt_axis_angle!r}")
        if self.voxel_size != 1.0:
            fields.append(f"voxel_size={self.voxel_size!r}")
        if self.device != "cpu":
            fields.append(f"device={self.device!r}")
        return f"Geometry({', '.join(fields)})"
