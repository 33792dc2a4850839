"""Test volumes: the 3D Shepp-Logan head, a membrane vesicle, a materials-science phantom, a ball.

Every phantom is a float32 NumPy array of shape (Z, Y, X) (wedge's volume layout: Z is the
beam direction at 0° tilt, Y the tilt axis, X the other image axis). Sizes are in voxels.
Positions are measured from the rotation centre, index (N - 1)/2 along each axis, unless a
function says otherwise. Everything is vectorised: shapes are rendered from signed distance
functions over (open) index grids, never voxel by voxel.

Anti-aliasing. Sharp-edged shapes are rendered as the fraction of ``supersample**3``
sub-voxel sample points (the centres of a regular ``supersample``-per-axis sub-grid) that
fall inside the shape. Only voxels the surface can cross are supersampled: a shape is given
by a signed function ``f`` (negative inside) that changes by at most one unit per voxel of
displacement (Lipschitz constant 1 in voxel units), so a voxel whose centre has
``|f| > (√3/2)(1 - 1/supersample)`` has all its sample points on one side and is exactly
0 or 1. The result is therefore identical to evaluating every sub-sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import special

from ._render import (
    Shape3,
    SignedFn,
    _centre,
    _check_shape,
    _check_supersample,
    _gaussian_shell,
    _occupancy,
    _paint_max,
    _render_ellipsoid,
    _rotation_xyz,
    _splat_gaussians,
)

__all__ = [
    "PHANTOMS",
    "ball",
    "dense",
    "make_phantom",
    "materials",
    "shepp_logan_3d",
    "vesicle",
]


def ball(
    shape: Sequence[int],
    radius: float,
    centre: Sequence[float] | None = None,
    value: float = 1.0,
    supersample: int = 4,
) -> np.ndarray:
    """A ball with anti-aliased edges.

    Parameters
    ----------
    shape : (nz, ny, nx)
        Array shape in voxels.
    radius : float
        Radius in voxels.
    centre : (cz, cy, cx), optional
        Centre in index coordinates (voxel centres at integers); default the array centre
        ``(N - 1)/2`` along each axis, wedge's rotation centre.
    value : float
        Value inside the ball (the density per voxel).
    supersample : int
        Sub-samples per voxel edge: a surface voxel holds ``value`` times the fraction of its
        ``supersample**3`` sub-voxel centres inside the ball; 1 gives a binary ball.

    Returns
    -------
    ndarray, float32, (nz, ny, nx)

    Notes
    -----
    The line integral through a ball of radius r at distance d from its centre is
    ``2 sqrt(r² - d²)``; the sum of this array along any axis approaches it (in voxel
    lengths times ``value``) with an error of at most ``1/supersample`` per sub-column.
    """
    shp = _check_shape(shape)
    ss = _check_supersample(supersample)
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a positive number of voxels, got {radius!r}.")
    if not np.isfinite(value):
        raise ValueError(f"value must be finite, got {value!r}.")
    c = _centre(shp) if centre is None else np.asarray(centre, dtype=np.float64).reshape(-1)
    if c.shape != (3,) or not np.all(np.isfinite(c)):
        raise ValueError(f"centre must be 3 finite index coordinates (z, y, x), got {centre!r}.")
    vol = np.zeros(shp, dtype=np.float64)
    rendered = _render_ellipsoid(shp, c, (radius, radius, radius), supersample=ss)
    if rendered is not None:
        box, occ = rendered
        vol[box] = occ
    return (vol * value).astype(np.float32)


# ----------------------------------------------------------------------------- Shepp-Logan
# Kak & Slaney, Principles of Computerized Tomographic Imaging (1988), Table 3.2 (p. 102):
# centre (x0, y0, z0), semi-axes (A, B, C), rotation beta (deg, about z, from x towards y),
# and the original gray levels. Coordinates are normalised so that the array spans [-1, 1].
_SL_GEOMETRY = np.array(
    [
        # x0     y0      z0      A       B      C      beta
        [0.00, 0.000, 0.000, 0.6900, 0.920, 0.900, 0.0],
        [0.00, 0.000, 0.000, 0.6624, 0.874, 0.880, 0.0],
        [-0.22, 0.000, -0.250, 0.4100, 0.160, 0.210, 108.0],
        [0.22, 0.000, -0.250, 0.3100, 0.110, 0.220, 72.0],
        [0.00, 0.350, -0.250, 0.2100, 0.250, 0.500, 0.0],
        [0.00, 0.100, -0.250, 0.0460, 0.046, 0.046, 0.0],
        [-0.08, -0.650, -0.250, 0.0460, 0.023, 0.020, 0.0],
        [0.06, -0.650, -0.250, 0.0460, 0.023, 0.020, 90.0],
        [0.06, -0.105, 0.625, 0.0560, 0.040, 0.100, 90.0],
        [0.00, 0.100, 0.625, 0.0560, 0.056, 0.100, 0.0],
    ]
)
_SL_ORIGINAL = np.array([2.0, -0.98, -0.02, -0.02, 0.02, 0.02, 0.01, 0.01, 0.02, -0.02])
# High-contrast ("modified") gray levels of the same ellipsoids: Yu, Ye & Wang, Proc. SPIE
# 5535, 550 (2004); the 3D counterpart of Toft's modified 2D Shepp-Logan.
_SL_MODIFIED = np.array([1.0, -0.8, -0.2, -0.2, 0.2, 0.2, 0.1, 0.1, 0.2, -0.2])


def shepp_logan_3d(
    shape: Sequence[int] = (64, 64, 64), *, modified: bool = True, supersample: int = 1
) -> np.ndarray:
    """The 3D Shepp-Logan head phantom (Kak & Slaney's ellipsoid table).

    Ten ellipsoids whose gray levels add where they overlap (Kak & Slaney 1988, Table 3.2).

    Parameters
    ----------
    shape : (nz, ny, nx)
        Array shape in voxels; the phantom fills the box on every axis (anisotropic shapes
        stretch it).
    modified : bool
        True (default): the high-contrast gray levels of Yu, Ye & Wang (2004) — skull 1,
        brain 0.2, values in [0, 1]. False: the original levels (skull 2, brain 1.02).
    supersample : int
        Sub-samples per voxel edge for anti-aliased ellipsoid edges (1: sample at voxel
        centres only).

    Returns
    -------
    ndarray, float32, (nz, ny, nx)

    Notes
    -----
    Frame mapping. The table's normalised coordinates (x, y, z) map to wedge's array axes
    as x → X (axis 2), y → Y (axis 1, the tilt axis), z → Z (axis 0, the beam): the voxel
    at index (k, j, i) sits at ``x = (2i + 1)/nx - 1``, ``y = (2j + 1)/ny - 1``,
    ``z = (2k + 1)/nz - 1``, so the array's outer voxel edges are at ±1 and its centre
    (N - 1)/2 is the origin. The rotation β turns an ellipsoid about z, from +x towards +y.
    Displayed with ``imshow(vol[k], origin="lower")`` (y up), a slice looks like the
    textbook picture; with the default ``origin="upper"`` it is flipped vertically.

    Most small features (the two dark ellipses, the three "tumours") lie in the plane
    z = -0.25 (index ``nz (1 - 0.25)/2 - 1/2``); the central plane z = 0 cuts the skull,
    the brain and the large ellipsoid e only.
    """
    shp = _check_shape(shape)
    ss = _check_supersample(supersample)
    levels = _SL_MODIFIED if modified else _SL_ORIGINAL
    scale = tuple(2.0 / n for n in shp)  # physical (normalised) units per voxel, z-y-x
    centre = _centre(shp)
    vol = np.zeros(shp, dtype=np.float64)
    for (x0, y0, z0, a, b, c, beta), level in zip(_SL_GEOMETRY, levels, strict=True):
        # ten table rows, not voxels
        c_zyx = (
            centre[0] + z0 / scale[0],
            centre[1] + y0 / scale[1],
            centre[2] + x0 / scale[2],
        )
        rendered = _render_ellipsoid(
            shp, c_zyx, (a, b, c), _rotation_xyz((0, 0, 1), beta), scale, ss
        )
        if rendered is not None:
            box, occ = rendered
            vol[box] += level * occ
    vol[np.abs(vol) < 1e-9] = 0.0  # exact zeros where levels cancel (e.g. 1 - 0.8 - 0.2)
    return vol.astype(np.float32)


# ----------------------------------------------------------------------------- vesicle
def _pick_bodies(
    rng: np.random.Generator,
    n: int,
    radius_range: tuple[float, float],
    region_semi_xyz: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` non-overlapping ball positions (x, y, z) inside an ellipsoidal region.

    Candidates are drawn in one batch; a greedy pass keeps those clear of the ones kept.
    """
    m = max(64, 32 * n)
    u = rng.normal(size=(m, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    rad = rng.uniform(*radius_range, size=m)
    depth = rng.uniform(0.0, 1.0, size=m) ** (1.0 / 3.0)  # uniform in the region's volume
    # shrink the region by each ball's radius so the ball stays inside it
    pos = u * depth[:, None] * np.maximum(region_semi_xyz[None, :] - rad[:, None], 0.0)
    keep: list[int] = []
    for i in range(m):  # a few dozen candidate bodies, not voxels
        if len(keep) == n:
            break
        if keep:
            d = np.linalg.norm(pos[keep] - pos[i], axis=1)
            if np.any(d < rad[keep] + rad[i] + 1.0):
                continue
        keep.append(i)
    return pos[keep], rad[keep]


def vesicle(
    shape: Sequence[int] = (64, 64, 64),
    *,
    semi_axes: Sequence[float] = (0.36, 0.37, 0.17),
    membrane_fwhm: float = 1.5,
    membrane_value: float = 0.35,
    n_bodies: int = 4,
    n_proteins: int = 8,
    seed: int = 0,
    supersample: int = 2,
) -> np.ndarray:
    """A membrane vesicle: a thin ellipsoidal shell with inner bodies and membrane proteins.

    Modelled on the 64³ vesicle used by GENFIRE and RESIRE (Pham et al., Sci. Rep. 13,
    5624 (2023), Fig. 2): a closed lipid membrane of low density, dense bodies inside it and
    small dense particles sitting on the membrane. Values lie in [0, 1]; background is 0.

    Parameters
    ----------
    shape : (nz, ny, nx)
        Array shape in voxels, at least 16 per axis.
    semi_axes : (ax, ay, az)
        Membrane semi-axes along x, y, z as fractions of nx, ny, nz. The default is
        flattened along z (the beam) about 2:1, like GENFIRE's vesicle (whose flat axis is
        its array's last one, the beam axis once transposed to (Z, Y, X) as the RESIRE data
        are) and like a vesicle in thin ice.
    membrane_fwhm : float
        Membrane thickness, voxels (full width at half maximum of its Gaussian profile).
    membrane_value : float
        Peak density of the membrane.
    n_bodies : int
        Inner bodies: balls of radius 2–5 voxels (times min(shape)/64), density 0.45–0.9,
        placed without overlap well inside the membrane (fewer if they do not fit).
    n_proteins : int
        Gaussian particles (σ = 1.2 voxels × min(shape)/64, peak 0.9) centred on the membrane.
    seed : int
        Seeds the body and protein placement; the same seed gives the same volume.
    supersample : int
        Sub-samples per voxel edge for the bodies' edges.

    Returns
    -------
    ndarray, float32, (nz, ny, nx)
    """
    shp = _check_shape(shape, minimum=16)
    ss = _check_supersample(supersample)
    semi_f = np.asarray(semi_axes, dtype=np.float64).reshape(-1)
    if semi_f.shape != (3,) or not np.all((semi_f > 0) & (semi_f < 0.5)):
        raise ValueError(
            "semi_axes must be 3 fractions of the box (x, y, z), each in (0, 0.5); "
            f"got {semi_axes!r}."
        )
    if not (membrane_fwhm > 0 and np.isfinite(membrane_fwhm)):
        raise ValueError(f"membrane_fwhm must be a positive number of voxels, got {membrane_fwhm}.")
    if int(n_bodies) < 0 or int(n_proteins) < 0:
        raise ValueError("n_bodies and n_proteins must be non-negative counts.")
    rng = np.random.default_rng(seed)
    s = min(shp) / 64.0
    centre = _centre(shp)  # z, y, x
    semi_xyz = semi_f * np.array([shp[2], shp[1], shp[0]], dtype=np.float64)

    vol = membrane_value * _gaussian_shell(shp, centre, semi_xyz, membrane_fwhm)

    # membrane proteins: Gaussian particles on the membrane surface
    if n_proteins:
        u = rng.normal(size=(int(n_proteins), 3))
        # scale each direction onto the ellipsoid: (x, y, z) points with q = 1
        on_surface = u / np.linalg.norm(u / semi_xyz[None, :], axis=1, keepdims=True)
        zyx = centre[None, :] + on_surface[:, ::-1]
        blobs = _splat_gaussians(shp, zyx, 1.2 * s, np.full(int(n_proteins), 0.9))
        np.maximum(vol, blobs, out=vol)

    # inner bodies: balls clear of the membrane
    if n_bodies:
        inner = semi_xyz - 1.5 * membrane_fwhm - 1.0
        pos, rad = _pick_bodies(rng, int(n_bodies), (2.0 * s, 5.0 * s), np.maximum(inner, 1.0))
        dens = rng.uniform(0.45, 0.9, size=pos.shape[0])
        for p, r, d in zip(pos, rad, dens, strict=True):  # a handful of bodies
            rendered = _render_ellipsoid(shp, centre + p[::-1], (r, r, r), supersample=ss)
            _paint_max(vol, rendered, float(d))

    return np.clip(vol, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- materials
def _halfspace_fn(normals_xyz: np.ndarray, offsets: np.ndarray, centre_zyx: np.ndarray) -> SignedFn:
    """Convex polytope ``n_i · p <= d_i`` (unit normals, voxel units): max_i (n_i·p - d_i)."""
    n = normals_xyz / np.linalg.norm(normals_xyz, axis=1, keepdims=True)
    cz, cy, cx = (float(v) for v in centre_zyx)

    def fn(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        px, py, pz = x - cx, y - cy, z - cz
        out = None
        for (nx_, ny_, nz_), d in zip(n, offsets, strict=True):  # faces, not voxels
            v = px * nx_ + py * ny_ + pz * nz_ - d
            out = v if out is None else np.maximum(out, v)
        return out  # type: ignore[return-value]

    return fn


def _pyramid(
    shp: Shape3, centre_zyx: np.ndarray, half_base: float, height: float, rot: np.ndarray, ss: int
) -> Any:
    """Square pyramid: base (side 2·half_base) at local z = -height/2, apex at +height/2."""
    t = half_base / height
    k = 1.0 / math.sqrt(1.0 + t * t)
    # local faces: ±x ≤ half_base (1 - (z + h/2)/h) etc., and the base z ≥ -h/2
    local = np.array([[k, 0, k * t], [-k, 0, k * t], [0, k, k * t], [0, -k, k * t], [0, 0, -1.0]])
    d = np.array([k * t * height / 2] * 4 + [height / 2])
    normals = local @ rot.T  # rotate the face normals into the volume frame
    fn = _halfspace_fn(normals, d, centre_zyx)
    r = math.hypot(math.hypot(half_base, half_base), height) + 1
    return _occupancy(shp, fn, centre_zyx - r, centre_zyx + r, ss)


def _soft_block(
    shp: Shape3, centre_zyx: np.ndarray, half_xyz: np.ndarray, rot: np.ndarray, edge: float
) -> np.ndarray:
    """Box with smooth edges: ``erfc(f / (√2 σ)) / 2`` of its signed distance f, σ = ``edge``.

    Across each face this is the box convolved with a Gaussian of width σ (exactly so away
    from edges and corners); it falls below 1e-9 beyond 6σ.
    """
    normals = np.concatenate([rot.T, -rot.T])  # rows: ±local axes in the volume frame
    fn = _halfspace_fn(normals, np.concatenate([half_xyz, half_xyz]), centre_zyx)
    z, y, x = (np.arange(n, dtype=np.float64) for n in shp)
    f = fn(z[:, None, None], y[None, :, None], x[None, None, :])
    return 0.5 * special.erfc(f / (math.sqrt(2.0) * edge))


def _fibonacci_sphere(k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` nearly evenly spread unit vectors (x, y, z): a Fibonacci lattice, randomly turned."""
    i = np.arange(k) + 0.5
    cos_t = 1.0 - 2.0 * i / k
    phi = math.pi * (1.0 + math.sqrt(5.0)) * i
    sin_t = np.sqrt(1.0 - cos_t**2)
    pts = np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # a random orthogonal matrix
    return pts @ q.T


def materials(
    shape: Sequence[int] = (64, 64, 64),
    *,
    seed: int = 0,
    n_atoms: int | None = None,
    supersample: int = 2,
) -> np.ndarray:
    """A materials-science phantom with sharp and smooth features of several sizes.

    In the spirit of the INR-tomography phantom (Lim et al., quantEM; §4.4): everything
    is wrapped in a thin ellipsoidal membrane (density 0.25), and inside it sit

    * two balls with sharp (anti-aliased) edges, radii 0.10 and 0.05 × min(shape),
      densities 0.7 and 1.0;
    * a square pyramid (sharp faces and a sharp apex, high spatial frequencies), tilted
      30° about x, density 0.8;
    * a block with smooth, Gaussian-blurred edges (σ = 1.5 voxels; low spatial
      frequencies), rotated 25° about z, density 0.5;
    * a "sea mine": a ball of density 0.4 and radius 0.07 × min(shape) surrounded by
      ``n_atoms`` point-like atoms (Gaussians, σ = 0.7 voxel, peak 1) spread evenly over a
      thin spherical shell of radius 0.13 × min(shape) (a Fibonacci lattice, randomly
      rotated; with the default count neighbouring atoms are about 3.3 voxels apart).

    Parameters
    ----------
    shape : (nz, ny, nx)
        Array shape in voxels, at least 24 per axis. Positions scale with each axis, sizes
        with min(shape).
    seed : int
        Seeds the orientation of the atoms' lattice on their shell; the same seed gives the
        same volume.
    n_atoms : int, optional
        Number of atoms on the shell; default ``round(60 (min(shape)/64)²)``, which keeps
        their spacing independent of size.
    supersample : int
        Sub-samples per voxel edge for the sharp shapes.

    Returns
    -------
    ndarray, float32, (nz, ny, nx), values in [0, 1]
    """
    shp = _check_shape(shape, minimum=24)
    ss = _check_supersample(supersample)
    if n_atoms is not None and int(n_atoms) < 0:
        raise ValueError(f"n_atoms must be a non-negative count, got {n_atoms}.")
    rng = np.random.default_rng(seed)
    m = float(min(shp))
    k = round(60 * (m / 64.0) ** 2) if n_atoms is None else int(n_atoms)
    c0 = _centre(shp)
    ext_zyx = np.asarray(shp, dtype=np.float64)

    def at(fx: float, fy: float, fz: float) -> np.ndarray:
        """Index position (z, y, x) of a point given as fractions (x, y, z) of the box."""
        return c0 + np.array([fz, fy, fx]) * ext_zyx

    semi = 0.45 * np.array([shp[2], shp[1], shp[0]], dtype=np.float64)
    vol = 0.25 * _gaussian_shell(shp, c0, semi, 1.5)

    balls = ((at(-0.20, -0.18, 0.05), 0.10, 0.7), (at(-0.02, 0.02, -0.17), 0.05, 1.0))
    for centre, radius, density in balls:  # two objects
        _paint_max(vol, _render_ellipsoid(shp, centre, (radius * m,) * 3, supersample=ss), density)
    tilt = _rotation_xyz((1, 0, 0), 30.0)
    _paint_max(vol, _pyramid(shp, at(-0.17, 0.21, 0.0), 0.10 * m, 0.20 * m, tilt, ss), 0.8)
    half = np.array([0.10, 0.07, 0.11]) * m
    block = _soft_block(shp, at(0.21, 0.20, -0.04), half, _rotation_xyz((0, 0, 1), 25.0), 1.5)
    np.maximum(vol, 0.5 * block, out=vol)
    mine = at(0.16, -0.16, 0.02)
    _paint_max(vol, _render_ellipsoid(shp, mine, (0.07 * m,) * 3, supersample=ss), 0.4)
    if k:
        xyz = _fibonacci_sphere(k, rng) * (0.13 * m)
        atoms = _splat_gaussians(shp, mine[None, :] + xyz[:, ::-1], 0.7, np.ones(k))
        np.maximum(vol, atoms, out=vol)
    return np.clip(vol, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- dense
def _sector_fn(
    centre_zyx: np.ndarray, radius: float, half_height: float, opening_deg: float, rot: np.ndarray
) -> SignedFn:
    """Cheese wedge: a cylinder sector (local axis z, opening ``opening_deg`` < 180 from
    local +x), Lipschitz-1: the max of the radial, height and two plane distances."""
    a = math.radians(opening_deg)
    planes = np.array([[0.0, -1.0, 0.0], [-math.sin(a), math.cos(a), 0.0]])  # outward normals
    cz, cy, cx = (float(v) for v in centre_zyx)

    def fn(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        p = (x - cx, y - cy, z - cz)
        lx, ly, lz = (rot[0, i] * p[0] + rot[1, i] * p[1] + rot[2, i] * p[2] for i in range(3))
        out = np.maximum(np.sqrt(lx * lx + ly * ly) - radius, np.abs(lz) - half_height)
        for n in planes:  # two faces
            out = np.maximum(out, n[0] * lx + n[1] * ly)
        return out

    return fn


def _spiky_ball_fn(
    centre_zyx: np.ndarray, radius: float, tips_xyz: np.ndarray, spike_radius: float
) -> SignedFn:
    """Sea mine: a ball and thin capsules from its centre to ``tips_xyz`` (offsets, voxels);
    the min of Lipschitz-1 distances."""
    cz, cy, cx = (float(v) for v in centre_zyx)

    def fn(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        px, py, pz = x - cx, y - cy, z - cz
        out = np.sqrt(px * px + py * py + pz * pz) - radius
        for tx, ty, tz in tips_xyz:  # a dozen spikes, not voxels
            ll = tx * tx + ty * ty + tz * tz
            t = np.clip((px * tx + py * ty + pz * tz) / ll, 0.0, 1.0)
            d = np.sqrt((px - t * tx) ** 2 + (py - t * ty) ** 2 + (pz - t * tz) ** 2)
            out = np.minimum(out, d - spike_radius)
        return out

    return fn


def dense(
    shape: Sequence[int] = (64, 64, 64), *, seed: int = 0, supersample: int = 2
) -> np.ndarray:
    """A dense, fine-featured phantom after the INR-tomography paper's (Lim et al. §4.4).

    Inside a thin ellipsoidal membrane (Gaussian profile, FWHM 1.2 voxels, peak 0.35,
    semi-axes 0.46 of each axis) the box is filled with

    * a square pyramid (sharp faces and apex), tilted 30° about x, density 0.8;
    * a cheese wedge: a 60° sector of a cylinder (radius 0.2, half-height 0.09 × min(shape)),
      turned 20° about x, density 0.6 (flat faces: low spatial frequencies);
    * a spiky "sea mine": a ball of radius 0.08 × min(shape), density 0.5, with 14 spikes
      (capsules of radius 0.9 voxel) to 0.19 × min(shape), along Fibonacci directions;
    * atom-like points: Gaussians (σ = 0.6 voxel, peak 1) on a 4 × 4 × 4 grid with spacing
      0.07 × min(shape) (≥ 3 voxels);
    * a small dense ball (radius 0.05 × min(shape), density 1.0) and a faint large one
      (radius 0.11, density 0.2) that overlaps the others.

    Sharp faces, thin spikes, a shell and point-like atoms sit side by side, so a
    sparse-view reconstruction needs more than positivity to get them all (a few smooth
    ellipsoids in empty space would not test that).

    Parameters
    ----------
    shape : (nz, ny, nx)
        At least 24 per axis; positions scale with each axis, sizes with min(shape).
    seed : int
        Turns the spike directions; the same seed gives the same volume.
    supersample : int
        Sub-samples per voxel edge for the sharp shapes.

    Returns
    -------
    ndarray, float32, (nz, ny, nx), values in [0, 1]
    """
    shp = _check_shape(shape, minimum=24)
    ss = _check_supersample(supersample)
    rng = np.random.default_rng(seed)
    m = float(min(shp))
    c0 = _centre(shp)
    ext_zyx = np.asarray(shp, dtype=np.float64)

    def at(fx: float, fy: float, fz: float) -> np.ndarray:
        return c0 + np.array([fz, fy, fx]) * ext_zyx

    semi = 0.46 * np.array([shp[2], shp[1], shp[0]], dtype=np.float64)
    vol = 0.35 * _gaussian_shell(shp, c0, semi, 1.2)
    faint = _render_ellipsoid(shp, at(0.05, 0.0, 0.0), (0.11 * m,) * 3, supersample=ss)
    _paint_max(vol, faint, 0.2)
    tilt = _rotation_xyz((1, 0, 0), 30.0)
    _paint_max(vol, _pyramid(shp, at(-0.18, 0.20, 0.02), 0.10 * m, 0.20 * m, tilt, ss), 0.8)
    c = at(0.20, 0.18, -0.05)
    r, hh = 0.20 * m, 0.09 * m
    fn = _sector_fn(c, r, hh, 60.0, _rotation_xyz((1, 0, 0), 20.0))
    _paint_max(vol, _occupancy(shp, fn, c - r - 1, c + r + 1, ss), 0.6)
    mine = at(0.17, -0.19, 0.03)
    tips = _fibonacci_sphere(14, rng) * (0.19 * m)
    fn = _spiky_ball_fn(mine, 0.08 * m, tips, 0.9)
    reach = 0.19 * m + 2
    _paint_max(vol, _occupancy(shp, fn, mine - reach, mine + reach, ss), 0.5)
    g = (np.arange(4) - 1.5) * max(3.0, 0.07 * m)
    gz, gy, gx = np.meshgrid(g, g, g, indexing="ij")
    grid = at(-0.17, -0.17, -0.1) + np.stack([gz.ravel(), gy.ravel(), gx.ravel()], 1)
    np.maximum(vol, _splat_gaussians(shp, grid, 0.6, np.ones(grid.shape[0])), out=vol)
    ball_ = _render_ellipsoid(shp, at(0.0, 0.02, 0.2), (0.05 * m,) * 3, supersample=ss)
    _paint_max(vol, ball_, 1.0)
    return np.clip(vol, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- registry
PHANTOMS: dict[str, Callable[..., np.ndarray]] = {
    "shepp-logan": shepp_logan_3d,
    "vesicle": vesicle,
    "materials": materials,
}


def make_phantom(name: str, shape: Sequence[int] = (64, 64, 64), **kw: Any) -> np.ndarray:
    """Build the phantom registered under ``name`` (see :data:`PHANTOMS`) with ``shape``.

    Extra keyword arguments go to the phantom function.
    """
    try:
        fn = PHANTOMS[name]
    except KeyError:
        known = ", ".join(sorted(PHANTOMS))
        raise ValueError(f"unknown phantom {name!r}; choose one of: {known}.") from None
    return fn(shape, **kw)
