"""Anti-aliased rendering of shapes on voxel grids, shared by the phantoms.

Shapes are signed functions of (z, y, x) voxel coordinates; occupancy is estimated by
supersampling only the voxels the surface can cross, in chunks that bound memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Shape3 = tuple[int, int, int]
# A signed function of absolute index coordinates (z, y, x) -> value, negative inside.
SignedFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

_MAX_SUBSAMPLE_POINTS = 1 << 22  # sub-sample points evaluated per chunk (bounds memory)


# ----------------------------------------------------------------------------- validation
def _check_shape(shape: Any, minimum: int = 1) -> Shape3:
    try:
        vals = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        vals = ()
    if len(vals) != 3 or min(vals) < minimum:
        raise ValueError(
            f"shape must be 3 integers (Z, Y, X), each at least {minimum} voxels; got {shape!r}."
        )
    return vals  # type: ignore[return-value]


def _check_supersample(supersample: Any) -> int:
    if int(supersample) != supersample or int(supersample) < 1:
        raise ValueError(
            f"supersample must be a positive integer (sub-samples per voxel edge), "
            f"got {supersample!r}."
        )
    return int(supersample)


# ----------------------------------------------------------------------------- rendering
def _subsample_offsets(supersample: int) -> np.ndarray:
    """Offsets (K, 3) of the ``supersample**3`` sub-voxel centres from the voxel centre."""
    o = (np.arange(supersample) + 0.5) / supersample - 0.5
    oz, oy, ox = np.meshgrid(o, o, o, indexing="ij")
    return np.stack([oz.ravel(), oy.ravel(), ox.ravel()], axis=1)


def _bbox_slices(
    shape: Shape3, lo: Sequence[float], hi: Sequence[float]
) -> tuple[slice, slice, slice] | None:
    """Index slices covering the continuous box [lo, hi] (index units, z-y-x), clipped."""
    sl = []
    for n, a, b in zip(shape, lo, hi, strict=True):
        start = max(0, math.floor(a))
        stop = min(n, math.ceil(b) + 1)
        if stop <= start:
            return None
        sl.append(slice(start, stop))
    return tuple(sl)  # type: ignore[return-value]


def _occupancy(
    shape: Shape3,
    inside: SignedFn,
    lo: Sequence[float],
    hi: Sequence[float],
    supersample: int,
) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """Anti-aliased occupancy of the shape ``inside < 0`` within its bounding box.

    ``inside`` must be Lipschitz-1 in voxel units (see the module docstring). Returns the
    bounding-box slices and the occupancy (float64, in [0, 1]) over them, or None when the
    box misses the array.
    """
    box = _bbox_slices(shape, lo, hi)
    if box is None:
        return None
    z = np.arange(box[0].start, box[0].stop, dtype=np.float64)[:, None, None]
    y = np.arange(box[1].start, box[1].stop, dtype=np.float64)[None, :, None]
    x = np.arange(box[2].start, box[2].stop, dtype=np.float64)[None, None, :]
    f = np.broadcast_to(inside(z, y, x), (z.size, y.size, x.size))
    occ = (f < 0).astype(np.float64)
    if supersample > 1:
        margin = 0.5 * math.sqrt(3.0) * (1.0 - 1.0 / supersample)
        edge = np.nonzero(np.abs(f) <= margin)
        if edge[0].size:
            offs = _subsample_offsets(supersample)
            centres = np.stack(
                [edge[0] + box[0].start, edge[1] + box[1].start, edge[2] + box[2].start], axis=1
            ).astype(np.float64)
            frac = np.empty(centres.shape[0])
            step = max(1, _MAX_SUBSAMPLE_POINTS // offs.shape[0])
            for s in range(0, centres.shape[0], step):  # chunks of voxels, to bound memory
                p = centres[s : s + step, None, :] + offs[None, :, :]
                frac[s : s + step] = (inside(p[..., 0], p[..., 1], p[..., 2]) < 0).mean(axis=1)
            occ[edge] = frac
    return box, occ


def _paint_max(vol: np.ndarray, rendered: Any, value: float) -> None:
    """vol[box] = max(vol[box], value * occupancy), in place."""
    if rendered is None:
        return
    box, occ = rendered
    np.maximum(vol[box], value * occ, out=vol[box])


def _rotation_xyz(axis: Sequence[float], angle_deg: float) -> np.ndarray:
    """Right-handed rotation matrix (3, 3) about ``axis`` (x, y, z) by ``angle_deg`` degrees."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    t = math.radians(angle_deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * (k @ k)


def _ellipsoid_fn(
    centre_zyx: Sequence[float],
    semi_xyz: Sequence[float],
    rotation_xyz: np.ndarray | None = None,
    scale_zyx: Sequence[float] = (1.0, 1.0, 1.0),
) -> tuple[SignedFn, float]:
    """Signed Lipschitz-1 function of an ellipsoid, and its bounding half-width (index units).

    A voxel at index (z, y, x) sits at physical point ``((x - cx) sx, (y - cy) sy,
    (z - cz) sz)``; the ellipsoid has semi-axes ``semi_xyz`` (physical units) along the
    columns of ``rotation_xyz``. With ``q`` the ellipsoid "radius" (q = 1 on the surface),
    ``(q - 1) · min(semi) / max(scale)`` has gradient at most 1 per voxel.
    """
    cz, cy, cx = (float(v) for v in centre_zyx)
    sz, sy, sx = (float(v) for v in scale_zyx)
    semi = np.asarray(semi_xyz, dtype=np.float64)
    rot = np.eye(3) if rotation_xyz is None else np.asarray(rotation_xyz, dtype=np.float64)
    lipschitz_scale = float(semi.min()) / max(sz, sy, sx)
    # local_j = sum_i rot[i, j] p_i ; q^2 = sum_j (local_j / semi_j)^2
    m = rot / semi[None, :]

    def fn(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        px, py, pz = (x - cx) * sx, (y - cy) * sy, (z - cz) * sz
        q2 = 0.0
        for j in range(3):  # three axes, not voxels
            q2 = q2 + (px * m[0, j] + py * m[1, j] + pz * m[2, j]) ** 2
        return (np.sqrt(q2) - 1.0) * lipschitz_scale

    return fn, float(semi.max()) / min(sz, sy, sx)


def _render_ellipsoid(
    shape: Shape3,
    centre_zyx: Sequence[float],
    semi_xyz: Sequence[float],
    rotation_xyz: np.ndarray | None = None,
    scale_zyx: Sequence[float] = (1.0, 1.0, 1.0),
    supersample: int = 1,
) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    fn, half = _ellipsoid_fn(centre_zyx, semi_xyz, rotation_xyz, scale_zyx)
    lo = [c - half - 1 for c in centre_zyx]
    hi = [c + half + 1 for c in centre_zyx]
    return _occupancy(shape, fn, lo, hi, supersample)


def _splat_gaussians(
    shape: Shape3, centres_zyx: np.ndarray, sigma: float, amplitudes: np.ndarray
) -> np.ndarray:
    """Sum of isotropic 3D Gaussians ``a exp(-|p - c|² / 2σ²)`` (peak ``a``), float64.

    Each Gaussian is evaluated in a cube of half-width ``ceil(4σ)`` around its centre
    (truncation error below ``exp(-8) a``); all atoms at once, accumulated with bincount.
    """
    c = np.asarray(centres_zyx, dtype=np.float64).reshape(-1, 3)
    amp = np.broadcast_to(np.asarray(amplitudes, dtype=np.float64), (c.shape[0],))
    h = max(1, math.ceil(4.0 * sigma))
    o = np.arange(-h, h + 1)
    offs = np.stack(np.meshgrid(o, o, o, indexing="ij"), axis=-1).reshape(-1, 3)
    idx = np.rint(c).astype(np.int64)[:, None, :] + offs[None, :, :]  # (n, K, 3)
    d2 = ((idx - c[:, None, :]) ** 2).sum(axis=-1)
    val = amp[:, None] * np.exp(-d2 / (2.0 * sigma**2))
    ok = np.all((idx >= 0) & (idx < np.asarray(shape)), axis=-1)
    flat = np.ravel_multi_index(tuple(idx[ok].T), shape)
    return np.bincount(flat, weights=val[ok], minlength=int(np.prod(shape))).reshape(shape)


def _gaussian_shell(
    shape: Shape3, centre_zyx: Sequence[float], semi_xyz: Sequence[float], fwhm: float
) -> np.ndarray:
    """Membrane: a Gaussian profile (peak 1, ``fwhm`` voxels wide) across an ellipsoid surface.

    The distance to the surface is measured radially from the centre, ``|p| (1 - 1/q)``,
    which equals the normal distance on a sphere and is close to it for mild ellipticity.
    """
    zz, yy, xx = (
        np.arange(n, dtype=np.float64) - c for n, c in zip(shape, centre_zyx, strict=True)
    )
    z, y, x = zz[:, None, None], yy[None, :, None], xx[None, None, :]
    ax, ay, az = (float(v) for v in semi_xyz)
    q = np.sqrt((x / ax) ** 2 + (y / ay) ** 2 + (z / az) ** 2)
    r = np.sqrt(x**2 + y**2 + z**2)
    d = r * (1.0 - 1.0 / np.maximum(q, 1e-12))
    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    return np.exp(-0.5 * (d / sigma) ** 2)


def _centre(shape: Shape3) -> np.ndarray:
    return (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0


# ----------------------------------------------------------------------------- ball
