"""The tilt series: images plus everything needed to know where each came from."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .geometry import Geometry

if TYPE_CHECKING:
    from .optics import Microscope

__all__ = ["TiltSeries", "AngleUnitWarning", "TiltRangeWarning"]


class AngleUnitWarning(UserWarning):
    """Angles look like radians where wedge expects degrees."""


class TiltRangeWarning(UserWarning):
    """The tilt angles are unusual: repeated orientations, or tilts beyond ±90°."""


def _check_angles_degrees(angles: np.ndarray, what: str = "angles") -> None:
    """Warn (:class:`AngleUnitWarning`) when more than four angles all lie within ±π."""
    if angles.size > 4 and np.all(np.abs(angles) < np.pi) and np.ptp(angles) > 0:
        warnings.warn(
            f"all {angles.size} {what} lie within ±π: they look like radians, but wedge expects "
            "degrees (convert with numpy.rad2deg).",
            AngleUnitWarning,
            stacklevel=3,
        )


def _check_orientations(angles: np.ndarray, euler: np.ndarray | None) -> None:
    """Refuse a series whose images all share one orientation; warn on repeats and on
    tilts beyond ±90° that do not look like a full-rotation (needle, pillar) series."""
    pose = np.round(euler if euler is not None else angles[:, None], 6)
    n = pose.shape[0]
    unique = np.unique(pose, axis=0).shape[0]
    if n > 1 and unique == 1:
        raise ValueError(
            f"all {n} images have the same orientation ({pose[0].tolist()} degrees), so there "
            "is nothing to reconstruct in 3D; check the angle file (one angle per image)."
        )
    if unique < n:
        warnings.warn(
            f"{n - unique} of {n} images repeat an orientation already in the series; "
            "check the angle file (repeated angles usually mean a misread or misordered file).",
            TiltRangeWarning,
            stacklevel=3,
        )
    top = float(np.max(np.abs(angles)))
    if top > 360:
        raise ValueError(
            f"a tilt angle of {top:g}° is beyond ±360°; angles must be degrees in [-360, 360]."
        )
    if top > 180 or (top > 90 and np.ptp(angles) < 170):
        warnings.warn(
            f"tilt angles reach {top:g}°, beyond ±90°: fine for a full-rotation (needle or "
            "pillar) series, but for a slab specimen this usually means a wrong unit or offset.",
            TiltRangeWarning,
            stacklevel=3,
        )


def _check_defocus(defocus: Any, n: int, n_defocus: int | None) -> np.ndarray:
    """Defocus (Å) as (n,) for 3D images or (n, n_defocus) for focal series."""
    df = np.asarray(defocus, dtype=np.float64)
    if n_defocus is None:
        if df.ndim not in (1, 2) or df.shape[0] != n:
            raise ValueError(
                f"defocus has shape {df.shape}; 3D images (n, Y, X) take one row per image, "
                f"shape ({n},) or ({n}, k) in Å (a focal series is 4D images "
                "(n, n_defocus, Y, X))."
            )
    else:
        if df.ndim == 1 and df.size == n_defocus:  # the same focal series at every tilt
            df = np.broadcast_to(df, (n, n_defocus)).copy()
        if df.shape != (n, n_defocus):
            raise ValueError(
                f"defocus has shape {df.shape} but the images hold {n} tilts × {n_defocus} "
                f"defocus values; give defocus of shape ({n}, {n_defocus}) in Å."
            )
    if not np.all(np.isfinite(df)):
        raise ValueError("the defocus values contain NaN or Inf.")
    return df


@dataclasses.dataclass(frozen=True, eq=False)
class TiltSeries:
    """A stack of projection (or HRTEM) images with its acquisition parameters.

    Parameters
    ----------
    images : array (n_tilts, Y, X) or (n_tilts, n_defocus, Y, X)
        The images, converted to float32. Y is the tilt axis (after ``tilt_axis_angle``).
        Four dimensions hold an HRTEM tilt + focal series: ``n_defocus`` images per tilt,
        each at its own ``defocus``.
    angles : array (n_tilts,), degrees
        Tilt angles θ about the tilt axis.
    pixel_size : float, Å
    shifts : array (n_tilts, 2), pixels, optional
        (dx, dy) translation of each measured image against its ideal projection.
    euler : array (n_tilts, 3), degrees, optional
        Full orientation (φ, θ, ψ) per image; when given, ``angles`` must equal its θ column.
    tilt_axis_angle : float, degrees
        In-plane tilt-axis angle, counter-clockwise from image Y (IMOD's rotation angle).
    defocus : array, Å, optional
        Positive is underfocus, measured from the exit surface of the volume box. Shape
        (n_tilts,) or (n_tilts, k) for 3D images; (n_tilts, n_defocus) for 4D images (a 1D array of
        ``n_defocus`` values is taken as the same focal series at every tilt).
    microscope : wedge.optics.Microscope, optional
        Beam energy and aberrations (HRTEM).
    source : str
        Where the images and angles came from (set by :func:`wedge.read_tiltseries`).
    provenance : tuple of str
        What was done to the images since they were read, one line per step, oldest first
        (each preprocessing step appends one; :meth:`with_step`).

    Raises
    ------
    ValueError
        Empty or non-finite images, a count of angles, shifts, euler or defocus rows that
        differs from the image count, all images at one orientation, angles beyond ±360°.

    Warns
    -----
    AngleUnitWarning
        The angles look like radians.
    TiltRangeWarning
        Repeated orientations, or tilts beyond ±90° in a series that does not span a
        full rotation (≥ 170°).
    """

    images: np.ndarray
    angles: np.ndarray
    pixel_size: float = 1.0
    shifts: np.ndarray | None = None
    euler: np.ndarray | None = None
    tilt_axis_angle: float = 0.0
    defocus: np.ndarray | None = None
    microscope: Microscope | None = None
    source: str = ""
    provenance: tuple[str, ...] = ()

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
        microscope: Microscope | None = None,
        source: str = "",
        provenance: tuple[str, ...] = (),
    ) -> None:
        imgs = np.asarray(images)
        if imgs.ndim == 2:
            imgs = imgs[None]
        if imgs.ndim not in (3, 4):
            raise ValueError(
                f"a tilt series must be a 3D array (n_tilts, Y, X) or, for a focal series, 4D "
                f"(n_tilts, n_defocus, Y, X); got {imgs.ndim} dimensions with shape "
                f"{imgs.shape}."
            )
        if imgs.size == 0:
            raise ValueError(f"the tilt series is empty (shape {imgs.shape}); give images.")
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
            if not np.all(np.isfinite(shifts)):
                raise ValueError("the shifts contain NaN or Inf.")
        if euler is not None:
            euler = np.asarray(euler, dtype=np.float64)
            if euler.shape != (n, 3):
                raise ValueError(
                    f"euler must have shape ({n}, 3) as (phi, theta, psi) degrees, "
                    f"got {euler.shape}."
                )
            if not np.all(np.isfinite(euler)):
                raise ValueError("the euler angles contain NaN or Inf.")
            if not np.allclose(euler[:, 1], ang):
                raise ValueError("euler[:, 1] (theta) must equal the tilt angles.")
        _check_orientations(ang, euler)
        if not np.isfinite(tilt_axis_angle):
            raise ValueError("tilt_axis_angle must be a finite number of degrees.")
        if defocus is not None:
            defocus = _check_defocus(defocus, n, imgs.shape[1] if imgs.ndim == 4 else None)
        if microscope is not None:
            from .optics import Microscope

            if not isinstance(microscope, Microscope):
                raise TypeError(
                    f"microscope must be a wedge.optics.Microscope, got {type(microscope)}."
                )
        for name, value in (
            ("images", imgs),
            ("angles", ang),
            ("pixel_size", float(pixel_size)),
            ("shifts", shifts),
            ("euler", euler),
            ("tilt_axis_angle", float(tilt_axis_angle)),
            ("defocus", defocus),
            ("microscope", microscope),
            ("source", source),
            ("provenance", tuple(str(p) for p in provenance)),
        ):
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------
    @property
    def n_tilts(self) -> int:
        return int(self.images.shape[0])

    @property
    def n_defocus(self) -> int:
        """Images per tilt: ``n_defocus`` of a focal series, else 1."""
        return int(self.images.shape[1]) if self.images.ndim == 4 else 1

    @property
    def is_focal_series(self) -> bool:
        """True for 4D images (n_tilts, n_defocus, Y, X)."""
        return self.images.ndim == 4

    @property
    def image_shape(self) -> tuple[int, int]:
        """(Y, X) of one image."""
        return (int(self.images.shape[-2]), int(self.images.shape[-1]))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape)

    def euler_angles(self) -> np.ndarray:
        """(φ, θ, ψ) per image in degrees; (0, θ, 0) for a single-axis series."""
        if self.euler is not None:
            return self.euler.copy()
        e = np.zeros((self.n_tilts, 3))
        e[:, 1] = self.angles
        return e

    def replace(self, **changes: Any) -> TiltSeries:
        """A copy with some fields changed, validated again (the series itself never changes).

        Changing ``euler`` updates ``angles`` to its θ column unless both are given.
        """
        if changes.get("euler") is not None and "angles" not in changes:
            changes["angles"] = np.asarray(changes["euler"], dtype=np.float64)[:, 1]
        return dataclasses.replace(self, **changes)

    def with_step(self, description: str, **changes: Any) -> TiltSeries:
        """:meth:`replace` plus one line appended to :attr:`provenance` (for processing steps)."""
        return self.replace(provenance=(*self.provenance, description), **changes)

    def geometry(
        self, volume_shape: tuple[int, int, int] | None = None, *, thickness: int | None = None
    ) -> Geometry:
        """The :class:`Geometry` of this series for a volume of ``volume_shape``.

        By default the volume is (thickness, Y, X) with ``thickness`` defaulting to X.
        """
        ny, nx = self.image_shape
        if volume_shape is None:
            if thickness is None:
                nz = nx
            elif isinstance(thickness, bool) or int(thickness) != thickness:
                raise ValueError(f"thickness must be a whole number of voxels, got {thickness!r}.")
            else:
                nz = int(thickness)
            if nz < 1:
                raise ValueError(f"thickness must be a positive number of voxels, got {nz}.")
            volume_shape = (nz, ny, nx)
        else:
            vs = tuple(volume_shape)
            if len(vs) != 3 or any(isinstance(v, bool) or int(v) != v for v in vs):
                raise ValueError(
                    f"volume_shape must be three whole numbers (Z, Y, X), got {volume_shape!r}."
                )
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
        if idx.size == 0:
            raise IndexError("indexing a TiltSeries must keep at least one image.")
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return TiltSeries(
            self.images[idx],
            self.angles[idx],
            pixel_size=self.pixel_size,
            shifts=pick(self.shifts),
            euler=pick(self.euler),
            tilt_axis_angle=self.tilt_axis_angle,
            defocus=pick(self.defocus),
            microscope=self.microscope,
            source=self.source,
            provenance=self.provenance,
        )

    def save(self, path: str | Path) -> Path:
        """Write the images (MRC/TIFF/HDF5/.npy by suffix) and, for MRC and TIFF, a .tlt beside."""
        from .io import write_tiltseries

        return write_tiltseries(path, self)

    def __repr__(self) -> str:
        a = self.angles
        ny, nx = self.image_shape
        focal = f" × {self.n_defocus} defocus" if self.is_focal_series else ""
        return (
            f"TiltSeries({self.n_tilts} images{focal} of {ny}×{nx}, "
            f"angles {a.min():.1f}..{a.max():.1f}°, pixel {self.pixel_size:g} Å)"
        )
