"""Particle tables (CSV, RELION STAR), Euler conversions, and extraction of copies.

Positions are voxel index coordinates ``(x, y, z)`` in the tomogram (0-based; the centre
of voxel ``i`` is at ``i``), orientations wedge Euler angles (φ, θ, ψ) in degrees with
``R = Z(φ) Y(θ) X(ψ)`` mapping the canonical object into the tomogram (``q = R p + t``).

RELION. ``rlnAngleRot, rlnAngleTilt, rlnAnglePsi`` (ZYZ) give RELION's matrix
``A = Rz(ψ)ᵖ Ry(θ)ᵖ Rz(φ)ᵖ`` of passive (coordinate-system) rotations, i.e.
``A = (Rz(rot) Ry(tilt) Rz(psi))ᵀ`` in active rotations; ``A`` takes reference
coordinates to particle coordinates (RELION samples the reference at ``Aᵀ k`` for a
particle frequency ``k``), which is wedge's pose rotation ``R``. :func:`relion_to_wedge`
returns the wedge angles of that ``R``. The particle centre is ``rlnCoordinate − rlnOrigin``
(origins in pixels, or ``rlnOrigin*Angst`` divided by the pixel size). wedge reads
``rlnCoordinate*`` as 0-based voxel indices, as RELION's own extraction does
(``Preprocessing::extractParticlesFromOneFrame`` in RELION 3.1's ``preprocessing.cpp``
truncates the coordinate to an integer and puts the box's centre element, index
``size // 2``, at that array index of the 0-based micrograph or tomogram; wedge keeps the
fraction). For a table counted from 1, subtract one (``coordinate_offset=-1``). RELION 5's
centred coordinates (``rlnCenteredCoordinate*Angst``) are not read.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..tiltseries import TiltSeries

__all__ = [
    "ParticleTable",
    "read_particles",
    "relion_to_wedge",
    "matrix_to_euler",
    "extract_copies",
    "subtomogram_copies",
    "MrcCopies",
]


@dataclasses.dataclass(frozen=True)
class ParticleTable:
    """Particle centres (n, 3) as (x, y, z) voxel indices and wedge Euler angles (n, 3)."""

    positions: np.ndarray
    euler: np.ndarray

    def __len__(self) -> int:
        return int(self.positions.shape[0])


def matrix_to_euler(r: np.ndarray) -> np.ndarray:
    """wedge Euler angles (φ, θ, ψ) in degrees with ``Z(φ) Y(θ) X(ψ) = r``; (..., 3, 3) → (..., 3).

    θ in [−90°, 90°]; at θ = ±90° (gimbal lock) ψ is set to 0.
    """
    r = np.asarray(r, np.float64)
    theta = -np.arcsin(np.clip(r[..., 2, 0], -1.0, 1.0))
    ct = np.cos(theta)
    lock = ct < 1e-8
    psi = np.where(lock, 0.0, np.arctan2(r[..., 2, 1], r[..., 2, 2]))
    phi = np.where(
        lock, np.arctan2(-r[..., 0, 1], r[..., 1, 1]), np.arctan2(r[..., 1, 0], r[..., 0, 0])
    )
    return np.degrees(np.stack([phi, theta, psi], -1))


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack(
        [np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2
    )


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack(
        [np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2
    )


def relion_to_wedge(rot: Any, tilt: Any, psi: Any) -> np.ndarray:
    """RELION ZYZ angles (degrees) → wedge (φ, θ, ψ) (degrees), shape (n, 3).

    ``R = (Rz(rot) Ry(tilt) Rz(psi))ᵀ`` (active rotations), RELION's matrix ``A``.
    """
    a, b, g = (np.deg2rad(np.atleast_1d(np.asarray(v, np.float64))) for v in (rot, tilt, psi))
    r = np.swapaxes(_rz(a) @ _ry(b) @ _rz(g), -1, -2)
    return matrix_to_euler(r)


def _required(frame: Any, names: Sequence[str], path: Path) -> np.ndarray:
    missing = [n for n in names if n not in frame]
    if missing:
        raise ValueError(
            f"{path} lacks the column(s) {', '.join(missing)}; a particle table needs "
            f"{', '.join(names)}."
        )
    try:
        return np.stack([np.asarray(frame[n], np.float64) for n in names], 1)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: the columns {', '.join(names)} must be numbers.") from None


def _read_star(path: Path, pixel_size: float | None, offset: float) -> ParticleTable:
    import starfile

    data = starfile.read(path, always_dict=True)
    frame = None
    for block in data.values():
        if hasattr(block, "columns") and "rlnCoordinateX" in block.columns:
            frame = block
            break
    if frame is None:
        centred = any(
            hasattr(b, "columns") and "rlnCenteredCoordinateXAngst" in b.columns
            for b in data.values()
        )
        hint = (
            " It holds RELION 5's rlnCenteredCoordinate*Angst (Å from the tomogram's centre), "
            "which wedge does not read: convert them to voxel indices first."
            if centred
            else ""
        )
        raise ValueError(
            f"{path} has no data block with rlnCoordinateX/Y/Z; a particle STAR file needs "
            "rlnCoordinateX, rlnCoordinateY, rlnCoordinateZ (and rlnAngleRot/Tilt/Psi)." + hint
        )
    pos = _required(frame, ["rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ"], path) + offset
    angle_cols = ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]
    present = [c for c in angle_cols if c in frame.columns]
    if present and len(present) < 3:
        _required(frame, angle_cols, path)  # raises, naming the missing ones
    if present:
        a = _required(frame, angle_cols, path)
        euler = relion_to_wedge(a[:, 0], a[:, 1], a[:, 2])
    else:
        euler = np.zeros_like(pos)
    if {"rlnOriginX", "rlnOriginY", "rlnOriginZ"} <= set(frame.columns):
        pos = pos - _required(frame, ["rlnOriginX", "rlnOriginY", "rlnOriginZ"], path)
    elif {"rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst"} <= set(frame.columns):
        px = pixel_size
        if px is None and "rlnImagePixelSize" in frame.columns:
            px = float(np.asarray(frame["rlnImagePixelSize"], np.float64)[0])
        if px is None:
            raise ValueError(
                f"{path} gives origins in Å but no pixel size; pass pixel_size= (Å per voxel)."
            )
        ang = _required(frame, ["rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst"], path)
        pos = pos - ang / px
    return ParticleTable(pos, euler)


def _read_csv(path: Path) -> ParticleTable:
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path} holds no particles (a header x,y,z[,phi,theta,psi] and rows).")
    frame = {str(k).strip().lower(): [r[k] for r in rows] for k in rows[0] if k is not None}
    pos = _required(frame, ["x", "y", "z"], path)
    angles = [c for c in ("phi", "theta", "psi") if c in frame]
    if angles and len(angles) < 3:
        _required(frame, ["phi", "theta", "psi"], path)
    euler = _required(frame, ["phi", "theta", "psi"], path) if angles else np.zeros_like(pos)
    return ParticleTable(pos, euler)


def read_particles(
    path: str | os.PathLike[str], *, pixel_size: float | None = None, coordinate_offset: float = 0.0
) -> ParticleTable:
    """Read a particle table: CSV (columns x, y, z[, phi, theta, psi]) or RELION STAR.

    Raises
    ------
    ValueError
        Unknown suffix, missing or non-numeric columns, no rows, NaN/Inf values.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"particle table {p} does not exist.")
    suffix = p.suffix.lower()
    if suffix == ".star":
        table = _read_star(p, pixel_size, coordinate_offset)
    elif suffix in (".csv", ".txt"):
        table = _read_csv(p)
    else:
        raise ValueError(f"{p}: particle tables are .csv or RELION .star files.")
    if len(table) == 0:
        raise ValueError(f"{p} holds no particles.")
    if not (np.all(np.isfinite(table.positions)) and np.all(np.isfinite(table.euler))):
        raise ValueError(f"{p} contains NaN or Inf positions or angles.")
    return table


def extract_copies(
    series: TiltSeries,
    particles: ParticleTable,
    box: tuple[int, int],
    *,
    thickness: int,
) -> tuple[list[TiltSeries], np.ndarray]:
    """Cut one copy per particle out of a tomogram's tilt series.

    The tomogram is (``thickness``, Y, X) with the series' geometry (angles, shifts,
    tilt axis). For particle ``k`` at ``c`` (voxel indices) the copy's volume is centred on
    the voxel ``round(c)``; its pose is ``(c − round(c), Euler)``. In image ``j`` that
    voxel appears at ``(Mⱼ p)[:2] + (dx, dy)`` (``p`` relative to the tomogram centre);
    the ``box`` (height, width) window is cut around the nearest pixel, and the remaining
    sub-pixel offset becomes the copy image's shift, so no image is interpolated.

    Returns
    -------
    (copies, poses)
        One (n, box_h, box_w) :class:`TiltSeries` per particle and poses (n_particles, 6).

    Raises
    ------
    ValueError
        A window leaves an image (the particle is too close to the edge at some tilt).
    """
    bh, bw = (int(v) for v in box)
    ny, nx = series.image_shape
    if bh < 1 or bw < 1 or bh > ny or bw > nx:
        raise ValueError(f"box {box} must be positive and fit the images ({ny}, {nx}).")
    centre = np.array([(nx - 1) / 2, (ny - 1) / 2, (thickness - 1) / 2])
    m = series.geometry((thickness, ny, nx)).matrices().numpy()
    sh = series.shifts if series.shifts is not None else np.zeros((series.n_tilts, 2))
    copies, poses = [], []
    for k, (c, e) in enumerate(zip(particles.positions, particles.euler, strict=True)):
        c0 = np.round(c)
        p0 = c0 - centre
        uv = (m @ p0)[:, :2] + sh + np.array([(nx - 1) / 2, (ny - 1) / 2])
        start = np.round(uv - np.array([(bw - 1) / 2, (bh - 1) / 2])).astype(int)
        if np.any(start < 0) or np.any(start[:, 0] + bw > nx) or np.any(start[:, 1] + bh > ny):
            raise ValueError(
                f"particle {k} at {c.tolist()} is too close to the edge: its {box} window "
                "leaves some image; drop it or use a smaller box."
            )
        resid = uv - (start + np.array([(bw - 1) / 2, (bh - 1) / 2]))
        imgs = np.stack(
            [
                im[s[1] : s[1] + bh, s[0] : s[0] + bw]
                for im, s in zip(series.images, start, strict=True)
            ]
        )
        copies.append(
            TiltSeries(
                imgs,
                series.angles,
                pixel_size=series.pixel_size,
                shifts=resid,
                euler=series.euler,
                tilt_axis_angle=series.tilt_axis_angle,
                source=f"{series.source} particle {k}",
            )
        )
        poses.append([*(c - c0), *e])
    return copies, np.array(poses, np.float64)


def subtomogram_copies(
    tomogram: np.ndarray,
    particles: ParticleTable,
    box: int,
    angles: Any,
    *,
    model: str = "ray",
) -> tuple[list[TiltSeries], np.ndarray]:
    """Copies from a reconstructed tomogram (Z, Y, X): crop a ``box``³ subvolume around each
    particle and re-project it at the measured tilt ``angles`` with wedge's projector.

    The subvolume carries the tomogram's missing-wedge artefacts, and its re-projections
    stand in for the particle's images; prefer :func:`extract_copies` when the tilt
    series is at hand.
    """
    from ..geometry import Geometry
    from ..projectors import make_projector

    vol = np.asarray(tomogram, np.float32)
    n = int(box)
    shape = np.array(vol.shape)  # (Z, Y, X)
    geom = Geometry.single_axis(np.asarray(angles, np.float64), (n, n, n))
    op = make_projector(geom, model)
    copies, poses = [], []
    for k, (c, e) in enumerate(zip(particles.positions, particles.euler, strict=True)):
        c0 = np.round(c).astype(int)  # (x, y, z)
        lo = c0[::-1] - (n - 1) // 2
        if np.any(lo < 0) or np.any(lo + n > shape):
            raise ValueError(f"particle {k} at {c.tolist()}: its {n}³ box leaves the tomogram.")
        sub = vol[lo[0] : lo[0] + n, lo[1] : lo[1] + n, lo[2] : lo[2] + n]
        shift = (n - 1) / 2 - (n - 1) // 2  # box centre vs the rounded voxel, even n
        imgs = op.forward(torch.from_numpy(np.ascontiguousarray(sub))).numpy()
        copies.append(TiltSeries(imgs, np.asarray(angles, np.float64)))
        poses.append([*(c - c0 - shift), *e])
    return copies, np.array(poses, np.float64)


class MrcCopies(Sequence[TiltSeries]):
    """Copies stored as MRC stacks, read (memory-mapped) only when indexed.

    Parameters
    ----------
    paths : sequence of paths
        One (n, Y, X) MRC stack per copy.
    angles : array (n,) degrees, or a sequence of them (one per copy)
    shifts : sequence of (n, 2) arrays, optional
        Per copy, the (dx, dy) pixel shifts of its images (as :func:`extract_copies` sets).
    """

    def __init__(
        self, paths: Sequence[str | os.PathLike[str]], angles: Any, shifts: Any = None
    ) -> None:
        self.paths = [Path(p) for p in paths]
        for p in self.paths:
            if not p.is_file():
                raise FileNotFoundError(f"copy stack {p} does not exist.")
        a = np.asarray(angles, dtype=object)
        self.angles = (
            [np.asarray(v, np.float64) for v in angles]
            if a.ndim == 2 or (a.ndim == 1 and a.size and np.ndim(a[0]) == 1)
            else [np.asarray(angles, np.float64)] * len(self.paths)
        )
        if shifts is not None and len(shifts) != len(self.paths):
            raise ValueError(f"{len(shifts)} shift tables for {len(self.paths)} copies.")
        self.shifts = shifts

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):  # type: ignore[override]
        import mrcfile

        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        with mrcfile.mmap(self.paths[i], mode="r", permissive=True) as m:
            data = np.array(m.data)  # one copy in memory; the map is closed on return
        sh = None if self.shifts is None else self.shifts[i]
        return TiltSeries(data, self.angles[i], shifts=sh, source=str(self.paths[i]))
