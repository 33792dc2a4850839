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

Y chunks
--------
The product runs over ``w`` Y columns at a time (``y_chunk``). On the CPU each row of
``A`` (one ray) gathers rows of the dense operand ``B = volume[:, y0:y0+w, :]`` viewed as
(Z·X, w), ``Z·X·w·4`` bytes, and every tilt sweeps all of ``B`` once; ``A`` itself
(8 bytes per non-zero) is streamed once per chunk. Wide chunks stream ``A`` fewer times but
once ``B`` leaves the shared L3 every tilt's sweep goes to memory; narrow chunks keep ``B``
cached but stream ``A`` more often and leave MKL's inner loop (over ``w``) too short. See
:func:`default_y_chunk` for the rule and :func:`measure_y_chunk` for the measured choice.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from .._cpuinfo import cpu_info
from ..geometry import Geometry
from .base import Projector, register_projector

__all__ = [
    "ray_matrix",
    "voxel_matrix",
    "SparseRayProjector",
    "SparseVoxelProjector",
    "SparseProjector",
    "clear_matrix_cache",
    "default_y_chunk",
    "measure_y_chunk",
    "clear_y_chunk_cache",
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


#: Y-chunk rule constants (see :func:`default_y_chunk`).
_L3_SHARE = 4  # the dense operand of one chunk may take 1/4 of one L3 instance
_L2_SHARE = 2  # one ray's gathered rows may take 1/2 of a core's L2
_MIN_CHUNK, _MAX_CHUNK = 16, 32
_FALLBACK_L3, _FALLBACK_L2 = 8 << 20, 256 << 10  # when the sizes cannot be read
_DEVICE_CHUNK_BYTES = 32 << 20  # GPUs: bound the permuted copies only

#: (volume shape, data shape, nnz, device, torch threads) → measured Y chunk width.
_MEASURED_Y_CHUNK: dict[tuple, int] = {}


def _floor_pow2(v: int) -> int:
    return 1 << (max(1, int(v)).bit_length() - 1)


def default_y_chunk(
    volume_shape: tuple[int, int, int],
    data_shape: tuple[int, int, int],
    nnz: int,
    device: str | torch.device = "cpu",
) -> int:
    """Y columns per sparse product, from the cache sizes (deterministic on one machine).

    On the CPU, with ``per_col = 4·max(Z·X, n·X_det)`` bytes (one Y column of the larger
    dense operand) and ``per_row = 4·nnz/(n·X_det)`` bytes (one ray's gathered rows per
    column)::

        w = min(L3 / 4 / per_col,  L2 / 2 / per_row)

    rounded down to a power of two and clamped to [16, 32] and to Y. ``L3`` is one L3
    instance: the dense operand is read by every thread, once per tilt, so it is the shared
    cache that must hold it, with room left for ``A`` streaming through and for other
    tenants of a shared L3. ``L2`` is per core: consecutive rays of one tilt reuse most of
    each other's voxels, so one ray's gathered rows should stay in the thread's own L2.
    Below 16 columns (one 64-byte line of float32) each gathered row wastes part of its
    cache line and ``A`` is streamed too often; above 32 the forward gains nothing and the
    adjoint slows by 13–29 % (64 against 32 at 128³ and 256³; docs/benchmarks.md). Unknown
    cache sizes fall back to an 8 MiB L3 and a 256 KiB L2. The rule does not depend on the
    thread count: the best width was the same with 1 and 2 threads. On a loaded machine
    with OpenMP's default spin-waiting, every parallel region also waits for a descheduled
    thread, which favours fewer, wider chunks; ``y_chunk="measure"``
    (:func:`measure_y_chunk`) sees that, and ``OMP_WAIT_POLICY=PASSIVE`` or one thread
    removes it.

    On other devices the chunk only bounds the permuted copies to about 32 MiB.

    Parameters
    ----------
    volume_shape : (Z, Y, X)
    data_shape : (n, Y_det, X_det)
    nnz : int
        Non-zeros of ``A``.
    device : str or torch.device

    Returns
    -------
    int
        Columns per chunk, between 1 and Y.
    """
    nz, ny, nx = volume_shape
    n, _, nu = data_shape
    per_col = 4 * max(nz * nx, n * nu)
    if torch.device(device).type != "cpu":
        return max(1, min(ny, _DEVICE_CHUNK_BYTES // per_col))
    info = cpu_info()
    l3 = info.l3_bytes or _FALLBACK_L3
    l2 = info.l2_bytes or _FALLBACK_L2
    per_row = 4 * max(1, math.ceil(nnz / max(1, n * nu)))
    w = min(l3 // _L3_SHARE // per_col, l2 // _L2_SHARE // per_row)
    w = min(_MAX_CHUNK, max(_MIN_CHUNK, _floor_pow2(w)))
    return max(1, min(ny, w))


def measure_y_chunk(
    a: torch.Tensor,
    at: torch.Tensor,
    volume_shape: tuple[int, int, int],
    data_shape: tuple[int, int, int],
    candidates: tuple[int, ...] = (8, 16, 32, 64, 128),
    repeat: int = 3,
) -> int:
    """Y chunk width chosen by timing the actual matrices, cached in memory.

    Each candidate width ``w`` is timed as one product ``A @ B`` plus one ``Aᵀ @ R`` on
    random operands of ``w`` columns, best of ``repeat`` with the candidates interleaved;
    the width with the least time per column wins. The result is kept per (volume shape,
    data shape, nnz, device, torch threads) until :func:`clear_y_chunk_cache`. It takes
    about ``repeat`` forward + adjoint passes over ``sum(candidates)`` columns (2.3 s at
    256³ × 61 tilts on a 2-core AMD EPYC, random operands included) and reflects the load
    at the time it runs.

    Parameters
    ----------
    a, at : torch sparse CSR tensors
        The system matrix and its transpose.
    volume_shape, data_shape : the projector's shapes
    candidates : widths to try (those above Y, or with an operand above 128 MiB, are
        skipped; at least the smallest is kept)
    repeat : timing rounds

    Returns
    -------
    int
    """
    nz, ny, nx = volume_shape
    n, _, nu = data_shape
    dev = a.device
    key = (
        tuple(volume_shape),
        tuple(data_shape),
        int(a.values().numel()),
        str(dev),
        torch.get_num_threads(),
    )
    if key in _MEASURED_Y_CHUNK:
        return _MEASURED_Y_CHUNK[key]
    per_col = 4 * max(nz * nx, n * nu)
    cands = sorted({min(ny, int(w)) for w in candidates if int(w) >= 1})
    fit = [w for w in cands if w * per_col <= 128 << 20]
    cands = fit or cands[:1]
    g = torch.Generator(device="cpu").manual_seed(0)
    ops = {
        w: (
            torch.rand((nz * nx, w), generator=g).to(dev),
            torch.rand((n * nu, w), generator=g).to(dev),
        )
        for w in cands
    }
    best = dict.fromkeys(cands, math.inf)
    for _ in range(max(1, repeat)):
        for w in cands:
            b, r = ops[w]
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t = time.perf_counter()
            torch.sparse.mm(a, b)
            torch.sparse.mm(at, r)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            best[w] = min(best[w], (time.perf_counter() - t) / w)
    choice = min(cands, key=lambda w: (best[w], -w))
    _MEASURED_Y_CHUNK[key] = choice
    return choice


def clear_y_chunk_cache() -> None:
    """Forget the widths chosen by :func:`measure_y_chunk`."""
    _MEASURED_Y_CHUNK.clear()


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
    y_chunk : int
        Y columns per sparse product (see :func:`default_y_chunk`). Results do not depend
        on it beyond float32 rounding.

    Parameters
    ----------
    geometry : Geometry
        A single-axis geometry.
    n_sub : int, optional
        Samples per voxel (``ray``) or sub-voxels per axis (``voxel``).
    y_chunk : int, "measure" or None
        Y columns per sparse product. None (default): from the cache sizes,
        :func:`default_y_chunk`. An int: that width (capped at Y). ``"measure"``: timed on
        the matrices at first use, :func:`measure_y_chunk`, and cached in memory.
    """

    model: str = "ray"
    default_sub: int = 3

    def __init__(
        self,
        geometry: Geometry,
        n_sub: int | None = None,
        y_chunk: int | Literal["measure"] | None = None,
    ) -> None:
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
        self.y_chunk_option = y_chunk
        self.y_chunk = self._resolve_y_chunk(y_chunk)

    def _resolve_y_chunk(self, y_chunk: int | str | None) -> int:
        ny = self.volume_shape[1]
        if y_chunk is None:
            nnz = int(self.a.values().numel())
            return default_y_chunk(self.volume_shape, self.data_shape, nnz, self.device)
        if y_chunk == "measure":
            return measure_y_chunk(self.a, self.at, self.volume_shape, self.data_shape)
        if isinstance(y_chunk, bool) or not isinstance(y_chunk, int | np.integer) or y_chunk < 1:
            raise ValueError(
                f"y_chunk must be a positive integer, 'measure' or None, got {y_chunk!r}."
            )
        return min(int(y_chunk), ny)

    def with_geometry(self, geometry: Geometry) -> SparseProjector:
        """The same projector class, ``n_sub`` and ``y_chunk`` option on another geometry."""
        return type(self)(geometry, n_sub=self.n_sub, y_chunk=self.y_chunk_option)

    def _y_chunks(self) -> range:
        """Starts of the Y chunks, ``self.y_chunk`` columns apart."""
        return range(0, self.volume_shape[1], self.y_chunk)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        nz, ny, nx = self.volume_shape
        n, _, nu = self.data_shape
        p = x.new_empty((n, ny, nu))
        for y0 in self._y_chunks():
            y1 = min(ny, y0 + self.y_chunk)
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
        for y0 in self._y_chunks():
            y1 = min(ny, y0 + self.y_chunk)
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
