"""Single-axis fast path: one sparse 2D system matrix shared by every XZ slice.

For tilts about Y, every XZ slice of the volume is projected with the same 2D weights,
so the projector is one sparse matrix ``A`` (rows: tilt × detector column, columns:
Z × X) applied to the volume viewed as a (Z·X, Y) matrix: a single sparse-times-dense
product (torch CSR: MKL on CPU, cuSPARSE on GPU). ``Aᵀ`` is stored as a second CSR
matrix, so the adjoint is exact by construction. Shifts along X fold into ``A``; shifts
along Y (and a detector taller or shorter than the volume) are a per-image linear
interpolation along Y, applied after ``A`` (its transpose before ``Aᵀ``).

Two weightings are provided:

``ray``
    Ray-driven. Along each ray the volume is sampled by bilinear interpolation (zero
    outside) at ``n_sub`` points per voxel along the ray's dominant axis; with the
    default ``n_sub = 3`` the step along the ray is ≤ 1/3·√2 ≈ 0.47 voxel. The weights
    are the exact sums of the bilinear coefficients times the step length.
``voxel``
    Voxel-driven splatting with sub-voxel precision (RESIRE's "Radon transform with
    sub-voxel precision"): each voxel is split into ``n_sub × n_sub`` sub-voxels in the
    XZ plane, each projected onto the detector and shared linearly between the two
    nearest detector pixels, carrying 1/n_sub² of the voxel's value.

Both give line integrals in voxel units: a slab of 1-valued voxels T voxels thick
projects to T at 0° tilt.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from ..geometry import Geometry
from .base import Projector, register_projector

__all__ = [
    "ray_matrix",
    "voxel_matrix",
    "SparseRayProjector",
    "SparseVoxelProjector",
    "SparseProjector",
    "clear_matrix_cache",
]


def _tent(d: np.ndarray) -> np.ndarray:
    return np.maximum(np.float32(0), np.float32(1) - np.abs(d))


def _ray_block(
    c: float, s: float, u: np.ndarray, nz: int, nx: int, n_sub: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray weights of one tilt: (detector index, volume column index, weight) triples.

    ``u`` holds the ideal-projection coordinate of each detector pixel relative to the
    rotation centre. The ray through ``u`` is {(x, z): x cos β + z sin β = u}.
    """
    cx, cz = (nx - 1) / 2, (nz - 1) / 2
    k = np.arange(-(n_sub - 1), n_sub, dtype=np.float32)
    off = k / n_sub  # sample offsets along the dominant axis, in voxels
    w_along = _tent(off)  # bilinear weight of a sample on the row/column it is near
    along_z = abs(c) >= abs(s)
    if along_z:  # parametrise the ray by z: x(z) = (u - z sin β)/cos β
        n_along, n_across, a_cen, b_cen = nz, nx, cz, cx
        slope, inv = s, c
    else:  # parametrise by x: z(x) = (u - x cos β)/sin β
        n_along, n_across, a_cen, b_cen = nx, nz, cx, cz
        slope, inv = c, s
    step = np.float32(1.0 / (n_sub * abs(inv)))  # path length per sample
    a = np.arange(n_along, dtype=np.float32) - a_cen
    # across-axis index coordinate of every sample: (nu, n_along, K)
    pos = (u[:, None, None] - (a[None, :, None] + off) * slope) / inv + b_cen
    pos = pos.astype(np.float32)
    m = np.floor(pos[..., n_sub - 1] + 0.5)  # nearest cell to the on-row sample
    reach = 1 if n_sub <= 2 else 2
    d = np.arange(-reach, reach + 1, dtype=np.float32)
    cand = m[..., None] + d  # (nu, n_along, C)
    w = np.einsum("k,uakc->uac", w_along, _tent(pos[..., :, None] - cand[..., None, :])) * step
    ok = (w > 0) & (cand >= 0) & (cand < n_across)
    iu, ia, _ = np.nonzero(ok)
    cb = cand[ok].astype(np.int64)
    col = ia * nx + cb if along_z else cb * nx + ia
    return _row_sorted(iu, col, w[ok], nu=u.size, presorted=along_z)


def _row_sorted(
    row: np.ndarray, col: np.ndarray, val: np.ndarray, nu: int, presorted: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One tilt's triples as (entries per detector pixel, int32 columns, float32 values),
    ordered by row and by column inside each row (the CSR layout)."""
    if not presorted:
        order = np.argsort(row.astype(np.int64) * (int(col.max(initial=0)) + 1) + col)
        row, col, val = row[order], col[order], val[order]
    counts = np.bincount(row, minlength=nu)
    return counts, col.astype(np.int32), val.astype(np.float32, copy=False)


def _voxel_block(
    c: float, s: float, shift: float, nz: int, nx: int, nu: int, n_sub: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splatting weights of one tilt: (detector index, volume column index, weight)."""
    cx, cz, cu = (nx - 1) / 2, (nz - 1) / 2, (nu - 1) / 2
    sub = ((np.arange(n_sub, dtype=np.float32) + 0.5) / n_sub - 0.5).astype(np.float32)
    # projection of each sub-voxel offset: (S,) with S = n_sub²
    sub_p = (sub[None, :] * c + sub[:, None] * s).reshape(-1)
    x = np.arange(nx, dtype=np.float32) - cx
    z = np.arange(nz, dtype=np.float32) - cz
    pc = (x[None, :] * c + z[:, None] * s + cu + shift).astype(np.float32)  # (nz, nx)
    m = np.floor(pc + 0.5)
    d = np.arange(-2, 3, dtype=np.float32)
    cand = m[..., None] + d  # (nz, nx, 5)
    p = pc[..., None] + sub_p  # (nz, nx, S)
    w = _tent(p[..., None, :] - cand[..., :, None]).sum(-1) / np.float32(n_sub * n_sub)
    ok = (w > 0) & (cand >= 0) & (cand < nu)
    iz, ix, _ = np.nonzero(ok)
    return _row_sorted(cand[ok].astype(np.int64), iz * nx + ix, w[ok], nu=nu, presorted=False)


def _assemble(blocks, n_tilts: int, nu: int, nz: int, nx: int) -> sp.csr_matrix:
    """Stack per-tilt blocks (already in CSR order) into one CSR matrix, no global sort."""
    counts = np.concatenate([b[0] for b in blocks])
    nnz = int(counts.sum())
    idx = np.int32 if nnz < 2**31 - 1 else np.int64
    indptr = np.zeros(n_tilts * nu + 1, dtype=idx)
    np.cumsum(counts, out=indptr[1:])
    cols = np.concatenate([b[1] for b in blocks]).astype(idx, copy=False)
    blocks_vals = [b[2] for b in blocks]
    blocks.clear()  # free the per-tilt pieces as soon as they are copied
    vals = np.concatenate(blocks_vals)
    del blocks_vals
    a = sp.csr_matrix((vals, cols, indptr), shape=(n_tilts * nu, nz * nx), copy=False)
    a.has_sorted_indices = True
    return a


def ray_matrix(
    angles_deg: np.ndarray, dx: np.ndarray, nz: int, nx: int, nu: int, n_sub: int = 3
) -> sp.csr_matrix:
    """Ray-driven 2D system matrix, shape (n_tilts·nu, nz·nx), as SciPy CSR (float32).

    Row ``t·nu + j`` is detector column ``j`` of tilt ``t``; column ``z·nx + x`` is voxel
    (z, x) of an XZ slice. ``dx`` are the per-tilt detector shifts in pixels.
    """
    beta = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    cu = (nu - 1) / 2
    blocks = []
    for b, sh in zip(beta, dx, strict=True):
        u = (np.arange(nu) - cu - sh).astype(np.float32)
        blocks.append(_ray_block(float(np.cos(b)), float(np.sin(b)), u, nz, nx, n_sub))
    return _assemble(blocks, beta.size, nu, nz, nx)


def voxel_matrix(
    angles_deg: np.ndarray, dx: np.ndarray, nz: int, nx: int, nu: int, n_sub: int = 2
) -> sp.csr_matrix:
    """Voxel-driven (sub-voxel splatting) 2D system matrix, same layout as :func:`ray_matrix`."""
    beta = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    blocks = [
        _voxel_block(float(np.cos(b)), float(np.sin(b)), float(sh), nz, nx, nu, n_sub)
        for b, sh in zip(beta, dx, strict=True)
    ]
    return _assemble(blocks, beta.size, nu, nz, nx)


def csr_tensor(
    crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """A torch CSR tensor from its arrays, without invariant checks or the beta warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, val, size=size, check_invariants=False)


def _to_torch_csr(m: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """Wrap SciPy CSR arrays as a torch CSR tensor (no copy on the CPU when int32)."""
    idx = np.int32 if m.nnz < 2**31 - 1 else np.int64
    t = csr_tensor(
        torch.from_numpy(np.asarray(m.indptr, dtype=idx)),
        torch.from_numpy(np.asarray(m.indices, dtype=idx)),
        torch.from_numpy(m.data),
        m.shape,
    )
    return t.to(device)


@functools.lru_cache(maxsize=4)
def _cached_pair(
    model: str,
    angles: tuple[float, ...],
    dx: tuple[float, ...],
    nz: int,
    nx: int,
    nu: int,
    n_sub: int,
    device: str,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    build = ray_matrix if model == "ray" else voxel_matrix
    a = build(np.array(angles), np.array(dx), nz, nx, nu, n_sub)
    at = a.T.tocsr()
    dev = torch.device(device)
    nbytes = 2 * (a.data.nbytes + 4 * a.indices.size + 4 * a.indptr.size)
    return _to_torch_csr(a, dev), _to_torch_csr(at, dev), nbytes


def clear_matrix_cache() -> None:
    """Free the cached system matrices (at most four geometries are kept)."""
    _cached_pair.cache_clear()


class _YResample:
    """Per-image linear interpolation along Y: volume rows → detector rows, with shift dy.

    Detector row ``r`` of image ``i`` samples volume row ``r − c_det − dy_i + c_vol``
    (centres at (N−1)/2), zero outside.
    """

    def __init__(self, ny_vol: int, ny_det: int, dy: np.ndarray, device: torch.device) -> None:
        self.identity = ny_vol == ny_det and not np.any(dy)
        self.ny_vol = ny_vol
        if self.identity:
            return
        yv = (np.arange(ny_det) - (ny_det - 1) / 2)[None, :] - dy[:, None] + (ny_vol - 1) / 2
        i0 = np.floor(yv)
        f = yv - i0
        w0 = (1 - f) * ((i0 >= 0) & (i0 < ny_vol))
        w1 = f * ((i0 + 1 >= 0) & (i0 + 1 < ny_vol))

        def t(a, dt):
            return torch.as_tensor(a, dtype=dt, device=device)

        self.i0 = t(np.clip(i0, 0, ny_vol - 1), torch.int64)[:, :, None]
        self.i1 = t(np.clip(i0 + 1, 0, ny_vol - 1), torch.int64)[:, :, None]
        self.w0 = t(w0, torch.float32)[:, :, None]
        self.w1 = t(w1, torch.float32)[:, :, None]

    def forward(self, p: torch.Tensor) -> torch.Tensor:  # (n, ny_vol, nu) → (n, ny_det, nu)
        if self.identity:
            return p
        nu = p.shape[-1]
        i0, i1 = self.i0.expand(-1, -1, nu), self.i1.expand(-1, -1, nu)
        return self.w0 * p.gather(1, i0) + self.w1 * p.gather(1, i1)

    def adjoint(self, q: torch.Tensor) -> torch.Tensor:  # (n, ny_det, nu) → (n, ny_vol, nu)
        if self.identity:
            return q
        n, _, nu = q.shape
        out = q.new_zeros((n, self.ny_vol, nu))
        out.scatter_add_(1, self.i0.expand(-1, -1, nu), self.w0 * q)
        out.scatter_add_(1, self.i1.expand(-1, -1, nu), self.w1 * q)
        return out


class SparseProjector(Projector):
    """Base of the single-axis sparse projectors.

    Attributes
    ----------
    a, at : torch sparse CSR tensors
        The 2D system matrix (n·X_det, Z·X) and its transpose (shared through the cache).
    ymap : the per-image Y interpolation; ``ymap.identity`` is True when the detector has
        the volume's Y size and there are no Y shifts, so that ``forward`` is exactly
        ``a @ volume.view(Z·X, Y)``. Block-iterative methods slice ``a`` by image rows.
    matrix_bytes : int
        Memory of ``a`` and ``at``.
    """

    model: str = "ray"
    default_sub: int = 3

    def __init__(self, geometry: Geometry, n_sub: int | None = None) -> None:
        if not geometry.is_single_axis:
            raise ValueError(
                f"the {self.name!r} projector needs a single-axis geometry (φ = ψ = 0 and no "
                "in-plane axis angle); use model='ray' to get the general 3D projector."
            )
        super().__init__(geometry)
        self.n_sub = int(n_sub or self.default_sub)
        if self.n_sub < 1:
            raise ValueError("n_sub must be a positive integer.")
        nz, ny, nx = geometry.volume_shape
        _, nvy, nu = geometry.data_shape
        sh = geometry.shifts_array
        self.a, self.at, self.matrix_bytes = _cached_pair(
            self.model,
            tuple(geometry.angles.tolist()),
            tuple(sh[:, 0].tolist()),
            nz,
            nx,
            nu,
            self.n_sub,
            str(self.device),
        )
        self.ymap = _YResample(ny, nvy, sh[:, 1], self.device)

    def _y_chunks(self) -> range:
        """Y rows per sparse product: bounds the permuted copies to ~32 MB."""
        nz, ny, nx = self.volume_shape
        n, _, nu = self.data_shape
        per_row = 4 * max(nz * nx, n * nu)
        step = max(1, min(ny, (32 << 20) // per_row))
        return range(0, ny, step)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        nz, ny, nx = self.volume_shape
        n, _, nu = self.data_shape
        p = x.new_empty((n, ny, nu))
        chunks = self._y_chunks()
        for y0 in chunks:
            y1 = min(ny, y0 + chunks.step)
            cols = x[:, y0:y1, :].permute(0, 2, 1).reshape(nz * nx, y1 - y0)  # (Z·X, y)
            prod = torch.sparse.mm(self.a, cols)
            p[:, y0:y1, :] = prod.reshape(n, nu, y1 - y0).permute(0, 2, 1)
        return self.ymap.forward(p)

    def adjoint_chunks(self, y: torch.Tensor):
        """Yield ``(y0, y1, block)`` with ``block = (Aᵀ y)[:, y0:y1, :]``, Y slab by slab.

        Lets a method fold the back-projection into its update without a second
        volume-sized buffer (SIRT does).
        """
        nz, ny, nx = self.volume_shape
        n, _, nu = self.data_shape
        q = self.ymap.adjoint(y.to(self.device, torch.float32))
        chunks = self._y_chunks()
        for y0 in chunks:
            y1 = min(ny, y0 + chunks.step)
            rows = q[:, y0:y1, :].permute(0, 2, 1).reshape(n * nu, y1 - y0)
            v = torch.sparse.mm(self.at, rows)
            yield y0, y1, v.reshape(nz, nx, y1 - y0).permute(0, 2, 1)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        out = y.new_empty(self.volume_shape)
        for y0, y1, block in self.adjoint_chunks(y):
            out[:, y0:y1, :] = block
        return out


@register_projector("ray-sparse")
class SparseRayProjector(SparseProjector):
    """Single-axis ray-driven projector (bilinear samples every 1/n_sub voxel)."""

    model = "ray"
    default_sub = 3


@register_projector("voxel-sparse")
class SparseVoxelProjector(SparseProjector):
    """Single-axis voxel-driven projector (splatting of n_sub × n_sub sub-voxels)."""

    model = "voxel"
    default_sub = 2
