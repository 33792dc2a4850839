"""Poses of the copies and the interpolation operators that place the object in a copy.

A pose is one row ``(x, y, z, φ, θ, ψ)``: the object's centre in voxels relative to the
centre of the copy's volume, then wedge's Euler angles in degrees (``R = Z(φ) Y(θ) X(ψ)``,
``docs/conventions.md``). A point ``p = (x, y, z)`` of the object's canonical frame,
relative to the object's centre, lies at

    q = R p + t

relative to the centre of the copy's volume. Centres are the geometric centres of the
arrays, index ``(N − 1)/2`` along every axis (wedge's convention).

Two linear maps are built from a pose, both trilinear interpolation written out as sparse
matrices (exact adjoint = the transpose, checked by a dot test):

* :class:`Resampler` ``place`` (object → copy): copy voxel ``q`` takes ``h(Rᵀ(q − t))``.
  This is ``Pᵢ`` of the constrained reconstruction model: the copy holds ``Pᵢ(s ⊙ h)``
  inside the object's footprint.
* ``extract`` (copy → object): object voxel ``p`` takes ``f(R p + t)``; the averaging
  baselines use it to bring each copy's reconstruction into the object frame.

Beyond the paper: Han et al. (2020) place copies by position only and give no rotation
operator. Rotations here are trilinear interpolation; for integer translations without
rotation both maps are exact crops (one weight of 1 per voxel).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..geometry import euler_to_matrix
from ..projectors.single_axis import csr_tensor

__all__ = [
    "Resampler",
    "pose_matrices",
    "check_poses",
    "default_support",
    "place_operator",
    "extract_operator",
]

#: weights below this are dropped from the interpolation matrices
_EPS = 1e-9


def check_poses(poses: Any, n_copies: int) -> np.ndarray:
    """Validated poses as float64 (n_copies, 6); one clear error otherwise."""
    try:
        p = np.asarray(poses, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            "poses must be numbers, one row (x, y, z, phi, theta, psi) per copy."
        ) from None
    if p.ndim != 2 or p.shape[1] != 6:
        raise ValueError(
            f"poses must have shape (n_copies, 6) as (x, y, z, phi, theta, psi), got {p.shape}."
        )
    if p.shape[0] != n_copies:
        raise ValueError(
            f"the pose table has {p.shape[0]} rows but there are {n_copies} copies; give "
            "exactly one pose row per copy, in the order of the copies."
        )
    if not np.all(np.isfinite(p)):
        raise ValueError("the poses contain NaN or Inf; give finite positions and angles.")
    return p


def pose_matrices(poses: np.ndarray) -> np.ndarray:
    """Rotation matrices ``R = Z(φ) Y(θ) X(ψ)`` (acting on (x, y, z)) of (n, 6) poses."""
    e = torch.tensor(np.deg2rad(np.asarray(poses, np.float64)[:, 3:6]), dtype=torch.float64)
    return euler_to_matrix(e).numpy()


def default_support(object_shape: Sequence[int]) -> np.ndarray:
    """The inscribed sphere (circle for a (Z, 1, X) object) as a boolean (Z, Y, X) mask.

    Radius ``(min(extent) − 1)/2`` over the axes longer than one voxel, centred at
    index ``(N − 1)/2``.
    """
    shape = tuple(int(v) for v in object_shape)
    axes = [np.arange(n) - (n - 1) / 2 for n in shape]
    big = [n for n in shape if n > 1]
    r = (min(big) - 1) / 2 if big else 0.0
    zz, yy, xx = np.meshgrid(*axes, indexing="ij")
    return (zz**2 + yy**2 + xx**2) <= r**2 + 1e-9


def _centres(shape: Sequence[int]) -> np.ndarray:
    """(x, y, z) centre of a (Z, Y, X) array, in index units."""
    nz, ny, nx = shape
    return np.array([(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2])


@dataclasses.dataclass
class Resampler:
    """A sparse linear map between two (Z, Y, X) grids and its exact adjoint.

    Attributes
    ----------
    src_shape, dst_shape : (Z, Y, X)
    matrix : torch sparse CSR (dst voxels, src voxels), float32
    matrix_t : the transpose, CSR
    identity_rows : bool
        True when every non-empty row holds one weight of exactly 1 (a crop: integer
        translation, no rotation).
    """

    src_shape: tuple[int, int, int]
    dst_shape: tuple[int, int, int]
    matrix: torch.Tensor
    matrix_t: torch.Tensor
    identity_rows: bool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a ``src_shape`` volume to ``dst_shape``."""
        if tuple(x.shape) != self.src_shape:
            raise ValueError(f"volume has shape {tuple(x.shape)}, expected {self.src_shape}.")
        v = x.reshape(-1, 1).to(torch.float32)
        return torch.sparse.mm(self.matrix, v).reshape(self.dst_shape)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """The exact adjoint: a ``dst_shape`` volume back to ``src_shape``."""
        if tuple(y.shape) != self.dst_shape:
            raise ValueError(f"volume has shape {tuple(y.shape)}, expected {self.dst_shape}.")
        v = y.reshape(-1, 1).to(torch.float32)
        return torch.sparse.mm(self.matrix_t, v).reshape(self.src_shape)

    @property
    def nnz(self) -> int:
        return int(self.matrix.values().numel())


def _csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]):
    import scipy.sparse as sp

    m = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=shape)
    m.sum_duplicates()
    m.sort_indices()
    return csr_tensor(
        torch.from_numpy(m.indptr.astype(np.int32)),
        torch.from_numpy(m.indices.astype(np.int32)),
        torch.from_numpy(m.data),
        shape,
    )


def _trilinear(
    src_shape: tuple[int, int, int],
    dst_shape: tuple[int, int, int],
    mat: np.ndarray,
    offset: np.ndarray,
    device: Any,
    zxy: bool = False,
) -> Resampler:
    """dst voxel ``d`` (xyz, relative to dst centre) samples src at ``mat @ d + offset``
    (xyz, relative to src centre), trilinearly; samples outside src contribute nothing.

    Axes of length 1 are sampled exactly at their single index (within 1e-6), else zero,
    so (Z, 1, X) problems stay two-dimensional. ``zxy``: number the dst voxels in
    (Z, X, Y) order (the work layout of wedge's sparse single-axis projectors).
    """
    nz, ny, nx = dst_shape
    sz, sy, sx = src_shape
    cd, cs = _centres(dst_shape), _centres(src_shape)
    # restrict to the dst box that can see src: map src corners into dst
    inv = np.linalg.inv(mat)
    corners = np.array(
        [[a, b, c] for a in (-1, sx) for b in (-1, sy) for c in (-1, sz)], dtype=np.float64
    )
    dpos = (corners - cs - offset) @ inv.T + cd
    lo = np.maximum(np.floor(dpos.min(0)).astype(int), 0)
    hi = np.minimum(np.ceil(dpos.max(0)).astype(int) + 1, [nx, ny, nz])
    if np.any(hi <= lo):
        empty = np.zeros(0)
        m = _csr(empty.astype(int), empty.astype(int), empty, (nz * ny * nx, sz * sy * sx))
        mt = _csr(empty.astype(int), empty.astype(int), empty, (sz * sy * sx, nz * ny * nx))
        return Resampler(src_shape, dst_shape, m.to(device), mt.to(device), True)
    gx, gy, gz = (np.arange(lo[i], hi[i]) for i in range(3))
    zz, yy, xx = np.meshgrid(gz, gy, gx, indexing="ij")
    dst_idx = (((zz * nx + xx) * ny + yy) if zxy else ((zz * ny + yy) * nx + xx)).reshape(-1)
    d = np.stack([xx, yy, zz], -1).reshape(-1, 3).astype(np.float64) - cd
    s = d @ mat.T + offset + cs  # src index coordinates (x, y, z)
    src_n = np.array([sx, sy, sz])
    base = np.floor(s + 1e-9).astype(np.int64)
    frac = s - base
    frac[np.abs(frac) < 1e-9] = 0.0
    rows, cols, vals = [], [], []
    for corner in range(8):
        off = np.array([(corner >> k) & 1 for k in range(3)])
        idx = base + off
        w = np.prod(np.where(off == 1, frac, 1.0 - frac), axis=1)
        ok = (w > _EPS) & np.all((idx >= 0) & (idx < src_n), axis=1)
        for ax in range(3):  # single-voxel axes: sample exactly on the voxel or not at all
            if src_n[ax] == 1:
                ok &= np.abs(s[:, ax]) < 1e-6
        if not np.any(ok):
            continue
        i = idx[ok]
        rows.append(dst_idx[ok])
        cols.append((i[:, 2] * sy + i[:, 1]) * sx + i[:, 0])
        vals.append(w[ok])
    if rows:
        r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    else:
        r = c = np.zeros(0, int)
        v = np.zeros(0)
    n_dst, n_src = nz * ny * nx, sz * sy * sx
    m = _csr(r, c, v, (n_dst, n_src))
    mt = _csr(c, r, v, (n_src, n_dst))
    counts = np.bincount(r, minlength=n_dst)
    ident = bool(np.all(counts <= 1) and np.allclose(v, 1.0))
    return Resampler(src_shape, dst_shape, m.to(device), mt.to(device), ident)


def place_operator(
    pose: np.ndarray,
    object_shape: Sequence[int],
    volume_shape: Sequence[int],
    device: Any = "cpu",
    *,
    zxy: bool = False,
) -> Resampler:
    """``Pᵢ``: object (Z, Y, X) → copy volume, copy voxel ``q`` takes ``h(Rᵀ(q − t))``.

    ``zxy``: the copy side is flattened in (Z, X, Y) order (``forward`` then returns the
    copy as (Z, X, Y) and ``adjoint`` takes that layout).
    """
    pose = np.asarray(pose, np.float64)
    r = pose_matrices(pose[None])[0]
    src = tuple(int(v) for v in object_shape)
    dst = tuple(int(v) for v in volume_shape)
    op = _trilinear(src, dst, r.T, -r.T @ pose[:3], device, zxy)  # type: ignore[arg-type]
    if zxy:
        op.dst_shape = (dst[0], dst[2], dst[1])
    return op


def extract_operator(
    pose: np.ndarray,
    object_shape: Sequence[int],
    volume_shape: Sequence[int],
    device: Any = "cpu",
) -> Resampler:
    """``Eᵢ``: copy volume → object frame, object voxel ``p`` takes ``f(R p + t)``."""
    pose = np.asarray(pose, np.float64)
    r = pose_matrices(pose[None])[0]
    src = tuple(int(v) for v in volume_shape)
    dst = tuple(int(v) for v in object_shape)
    return _trilinear(src, dst, r, pose[:3], device)  # type: ignore[arg-type]


def support_inside(
    pose: np.ndarray, support: np.ndarray, volume_shape: Sequence[int]
) -> tuple[bool, float]:
    """Whether every support voxel, placed by ``pose``, lies inside the copy volume.

    Returns (inside, worst overshoot in voxels)."""
    pose = np.asarray(pose, np.float64)
    r = pose_matrices(pose[None])[0]
    zz, yy, xx = np.nonzero(support)
    p = np.stack([xx, yy, zz], -1).astype(np.float64) - _centres(support.shape)
    q = p @ r.T + pose[:3]
    half = np.array(_centres(tuple(volume_shape)))  # (x, y, z) half extents
    over = np.abs(q) - half
    worst = float(over.max()) if over.size else 0.0
    return worst <= 1e-6, worst
