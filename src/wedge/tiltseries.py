"""The tilt series: images plus everything needed to know where each came from."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .geometry import Geometry

__all__ = ["TiltSeries", "AngleUnitWarning"]


class AngleUnitWarning(UserWarning):
    """Angles look like radians where wedge expects degrees."""


def _check_angles_degrees(angles: np.ndarray, what: str = "angles") -> None:
    if angles.size > 4 and np.all(np.abs(angles) < np.pi) and np.ptp(angles) > 0:
        warnings.warn(
            f"all {angles.size} {what} lie within ±π: they look like radians, but wedge expects "
            "degrees (convert with numpy.rad2deg).",
            AngleUnitWarning,
            stacklevel=3,
        )


@dataclasses.dataclass(frozen=True, eq=False)
class TiltSeries:
    """A stack of projection images with its acquisition parameters.

    Parameters
    ----------
    images : array (n_tilts, Y, X)
        The images; converted to float32. Y is the tilt axis (after ``tilt_axis_angle``).
    angles : array (n_tilts,), degrees
        Tilt angles θ about the tilt axis.
    pixel_size : float, Å
    shifts : array (n_tilts, 2), pixels, optional
        (dx, dy) translation of each measured image against its ideal projection.
    euler : array (n_tilts, 3), degrees, optional
        Full orientation (φ, θ, ψ) per image; when given, ``angles`` must equal its θ column.
    tilt_axis_angle : float, degrees
        In-plane tilt-axis angle, counter-clockwise from image Y (IMOD's rotation angle).
    defocus : array (n_tilts,) or (n_tilts, k), Å, optional
        Defocus per image (HRTEM); positive is underfocus.
    source : str
        Where the images and angles came from (set by :func:`wedge.read_tiltseries`).
    """

    images: np.ndarray
    angles: np.ndarray
    pixel_size: float = 1.0
    shifts: np.ndarray | None = None
    euler: np.ndarray | None = None
    tilt_axis_angle: float = 0.0
    defocus: np.ndarray | None = None
    source: str = ""

    def __init__(
        self,
        images: Any,
        angles: Any,
        *,
        pixel_size: float = 1.0,
        shifts: Any = None,
        euler: Any = None,
        tilt_axis_angle: float = 0.0,
        defocus: Any = None,
        source: str = "",
    ) -> None:
        imgs = np.asarray(images)
        if imgs.ndim == 2:
            imgs = imgs[None]
        if imgs.ndim != 3:
            raise ValueError(
                f"a tilt series must be a 3D array (n_tilts, Y, X); got {imgs.ndim} dimensions "
                f"with shape {imgs.shape}."
            )
        if not np.issubdtype(imgs.dtype, np.number) or np.iscomplexobj(imgs):
            raise ValueError(f"images must be real numbers, got dtype {imgs.dtype}.")
        imgs = np.ascontiguousarray(imgs, dtype=np.float32)
        if not np.all(np.isfinite(imgs)):
            bad = int(np.count_nonzero(~np.isfinite(imgs)))
            raise ValueError(
                f"the images contain {bad} NaN or Inf values; replace them (e.g. with the "
                "image mean) before reconstructing."
            )
        n = imgs.shape[0]
        ang = np.asarray(angles, dtype=np.float64).reshape(-1)
        if ang.size != n:
            raise ValueError(
                f"{ang.size} angles were given for {n} images; give exactly one tilt angle "
                "per image."
            )
        if not np.all(np.isfinite(ang)):
            raise ValueError("the tilt angles contain NaN or Inf.")
        _check_angles_degrees(ang)
        if not (np.isfinite(pixel_size) and pixel_size > 0):
            raise ValueError(f"pixel_size must be a positive number of Å, got {pixel_size}.")
        if shifts is not None:
            shifts = np.asarray(shifts, dtype=np.float64)
            if shifts.shape != (n, 2):
                raise ValueError(f"shifts must have shape ({n}, 2) as (dx, dy) pixels.")
        if euler is not None:
            euler = np.asarray(euler, dtype=np.float64)
            if euler.shape != (n, 3):
                raise ValueError(
                    f"euler must have shape ({n}, 3) as (phi, theta, psi) degrees, "
                    f"got {euler.shape}."
                )
            if not np.allclose(euler[:, 1], ang):
                raise ValueError("euler[:, 1] (theta) must equal the tilt angles.")
        if defocus is not None:
            defocus = np.asarray(defocus, dtype=np.float64)
            if defocus.shape[0] != n:
                raise ValueError(
                    f"{defocus.shape[0]} defocus values were given for {n} images; give one "
                    "row per image."
                )
        for name, value in (
            ("images", imgs),
            ("angles", ang),
            ("pixel_size", float(pixel_size)),
            ("shifts", shifts),
            ("euler", euler),
            ("tilt_axis_angle", float(tilt_axis_angle)),
            ("defocus", defocus),
            ("source", source),
        ):
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------
    @property
    def n_tilts(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape)  # type: ignore[return-value]

    def euler_angles(self) -> np.ndarray:
        """(φ, θ, ψ) per image in degrees; (0, θ, 0) for a single-axis series."""
        if self.euler is not None:
            return self.euler.copy()
        e = np.zeros((self.n_tilts, 3))
        e[:, 1] = self.angles
        return e

    def geometry(
        self, volume_shape: tuple[int, int, int] | None = None, *, thickness: int | None = None
    ) -> Geometry:
        """The :class:`Geometry` of this series for a volume of ``volume_shape``.

        By default the volume is (thickness, Y, X) with ``thickness`` defaulting to X.
        """
        _, ny, nx = self.images.shape
        if volume_shape is None:
            nz = nx if thickness is None else int(thickness)
            if nz < 1:
                raise ValueError(f"thickness must be a positive number of voxels, got {nz}.")
            volume_shape = (nz, ny, nx)
        return Geometry(
            volume_shape=volume_shape,
            detector_shape=(ny, nx),
            euler=self.euler_angles(),
            shifts=self.shifts,
            tilt_axis_angle=self.tilt_axis_angle,
            voxel_size=self.pixel_size,
        )

    def __getitem__(self, index: Any) -> TiltSeries:
        idx = np.atleast_1d(np.arange(self.n_tilts)[index])
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return TiltSeries(
            self.images[idx],
            self.angles[idx],
            pixel_size=self.pixel_size,
            shifts=pick(self.shifts),
            euler=pick(self.euler),
            tilt_axis_angle=self.tilt_axis_angle,
            defocus=pick(self.defocus),
            source=self.source,
        )

    def save(self, path: str | Path) -> Path:
        """Write the images (MRC/TIFF/HDF5/.npy by suffix) and, for MRC and TIFF, a .tlt beside."""
        from .io import write_tiltseries

        return write_tiltseries(path, self)

    def __repr__(self) -> str:
        a = self.angles
        return (
            f"TiltSeries({self.n_tilts} images of {self.images.shape[1]}×{self.images.shape[2]}, "
            f"angles {a.min():.1f}..{a.max():.1f}°, pixel {self.pixel_size:g} Å)"
        )
