"""The per-tilt forward model of multislice phase-retrieval tomography.

One :class:`BeamFrame` holds what every tilt shares: the computational box in the beam
frame, the propagator, the cached rotation grids, and the transfer-function ingredients.
:meth:`BeamFrame.images` gives the HRTEM images (k, Y, X) of one tilt for a (Z, Y, X)
volume (V), differentiably in the volume (Ren et al. 2020, Algorithm 2, hand-written, in
:mod:`wedge.multislice`; rotation and binning by autograd, which applies their exact
adjoints: Algorithm 3 line 10, R†B†∇) and in the refined acquisition parameters.

Conventions
-----------
* Volume (Z, Y, X) in V, voxel size d Å = the pixel size; rotation about the centre index
  (N−1)/2 with W(q) = V(Rᵀq), R = Z(α + φ) Y(θ) X(ψ) (as :func:`wedge.multislice.rotate_volume`
  and the ``multislice`` forward model of :mod:`wedge.models`).
* The beam frame is the volume box padded by ``padding`` voxels on every side, so that the
  rotated box is not clipped at high tilt. Its exit surface lies ``padding·d`` below the
  volume's exit surface, from which the defocus is measured (positive underfocus), so the
  transfer function is evaluated at Δf + padding·d. Images are cropped back to (Y, X) after
  the shift, so padding never changes the data that are fitted.
* Rotations are cached per tilt, up to ``cache_bytes``: for tilts about the y axis the
  rotation is a bilinear resampling of every y plane, cached as a sparse (Z'X', ZX) matrix
  S of interpolation weights and its transpose, so that the forward W = S·V and the exact
  adjoint Sᵀ·G are two sparse products (the adjoint through ``grid_sample``'s backward
  scatter costs ~5× more on the CPU); other poses cache a (Z', Y', X', 3) grid for
  ``grid_sample``. Beyond the budget, grids are rebuilt per use; when tilt angles are
  refined they are rebuilt from the angle tensors each time, differentiably.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from ...geometry import euler_to_matrix
from ...models import shift_images
from ...multislice import (
    MultisliceOptions,
    _forward_waves,
    _Multislice,
    _setup,
    _short_slab_correction,
    bin_slices,
)
from ...optics import Microscope, aberration_phase, aperture_mask, spatial_frequencies
from ...parameters import AcquisitionParameters

__all__ = ["BeamFrame", "binning_limit"]

_POSE_NAMES = ("tilt", "phi", "psi", "tilt_axis")


def binning_limit(pixel_size: float, wavelength_A: float) -> float:
    """Ren et al. Eq. A.14: the axial resolution Δz = λ / (1 − √(1 − NA²)), NA = λ/Δx, in Å.

    A multislice slab (N_B voxels of size Δx) should be thinner than Δz. Raises ValueError
    when Δx ≤ λ (NA ≥ 1: no slab thickness satisfies the limit).
    """
    na = wavelength_A / pixel_size
    if not na < 1:
        raise ValueError(
            f"the pixel size {pixel_size:g} Å is not larger than the electron wavelength "
            f"{wavelength_A:.4g} Å, so Ren's slice-binning limit (Eq. A.14) has no solution; "
            "use a pixel size above the wavelength."
        )
    return wavelength_A / (1.0 - np.sqrt(1.0 - na * na))


@dataclasses.dataclass
class _Grid:
    kind: str  # "plane" (tilt about y, sparse), "2d" (tilt about y, grid_sample) or "3d"
    grid: torch.Tensor | None
    s: torch.Tensor | None = None  # (Z'X', ZX) sparse bilinear weights (kind "plane")
    st: torch.Tensor | None = None  # its transpose, for the adjoint

    def nbytes(self) -> int:
        out = 0
        for t in (self.grid, self.s, self.st):
            if t is None:
                continue
            if t.is_sparse:
                out += t._nnz() * (t.indices().element_size() * 2 + t.values().element_size())
            else:
                out += t.numel() * t.element_size()
        return out


def _plane_matrix(px: torch.Tensor, pz: torch.Tensor, nz: int, nx: int) -> torch.Tensor:
    """Sparse (Z'X', ZX) matrix of bilinear interpolation at (px, pz) (about the centre),
    zero outside: the same weights as ``grid_sample(..., align_corners=False, zeros)``."""
    ix = (px + (nx - 1) / 2).reshape(-1)
    iz = (pz + (nz - 1) / 2).reshape(-1)
    x0, z0 = torch.floor(ix), torch.floor(iz)
    wx, wz = ix - x0, iz - z0
    rows = torch.arange(ix.numel(), device=ix.device)
    r_all, c_all, v_all = [], [], []
    for dz, dx, w in ((0, 0, (1 - wz) * (1 - wx)), (0, 1, (1 - wz) * wx),
                      (1, 0, wz * (1 - wx)), (1, 1, wz * wx)):  # fmt: skip
        xi, zi = x0 + dx, z0 + dz
        ok = (xi >= 0) & (xi < nx) & (zi >= 0) & (zi < nz) & (w > 0)
        r_all.append(rows[ok])
        c_all.append((zi[ok] * nx + xi[ok]).to(torch.int64))
        v_all.append(w[ok])
    idx = torch.stack([torch.cat(r_all), torch.cat(c_all)])
    vals = torch.cat(v_all).to(torch.float32)
    return torch.sparse_coo_tensor(
        idx, vals, (ix.numel(), nz * nx), check_invariants=True
    ).coalesce()


class _PlaneRotation(torch.autograd.Function):
    """W = S·V applied to every y plane (y planes as columns); backward Sᵀ·G exactly."""

    @staticmethod
    def forward(ctx, volume, s, st, out_zx):  # type: ignore[override]
        nz, ny, nx = volume.shape
        m = volume.permute(0, 2, 1).reshape(nz * nx, ny)
        ctx.st, ctx.shape = st, (nz, ny, nx)
        out = torch.sparse.mm(s, m.contiguous())
        return out.reshape(out_zx[0], out_zx[1], ny).permute(0, 2, 1)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        nz, ny, nx = ctx.shape
        gm = g.permute(0, 2, 1).reshape(-1, ny).contiguous()
        back = torch.sparse.mm(ctx.st, gm)
        return back.reshape(nz, nx, ny).permute(0, 2, 1), None, None, None


class BeamFrame:
    """Shared per-series state of the multislice (or single-slice) forward model.

    Parameters
    ----------
    volume_shape : (Z, Y, X) of the reconstructed volume
    voxel_size : Å (the pixel size)
    microscope : :class:`wedge.optics.Microscope` (energy, aperture, C5, astigmatism; C3 and
        defocus come from the parameters)
    options : :class:`wedge.multislice.MultisliceOptions` (``n_bin``, ``mode``,
        ``checkpoint``)
    padding : voxels added on every side of the beam frame
    device : torch device
    cache_bytes : most bytes the rotation-grid cache may hold
    """

    def __init__(
        self,
        volume_shape: tuple[int, int, int],
        voxel_size: float,
        microscope: Microscope,
        options: MultisliceOptions,
        padding: int,
        device: torch.device,
        cache_bytes: int = 1 << 30,
    ) -> None:
        self.volume_shape = tuple(int(s) for s in volume_shape)
        self.d = float(voxel_size)
        self.mic = microscope
        self.opts = options
        self.pad = int(padding)
        self.device = device
        self.frame_shape = tuple(s + 2 * self.pad for s in self.volume_shape)
        nzf, nyf, nxf = self.frame_shape
        self.prop, _ = _setup((nyf, nxf), nzf, self.d, 0.0, microscope, options, device)
        self.extra = _short_slab_correction(
            (nyf, nxf), nzf, self.d, microscope.wavelength, options, device
        )
        qy, qx = spatial_frequencies((nyf, nxf), self.d, device)
        self.q2 = qx**2 + qy**2
        self.chi_rest = aberration_phase(qy, qx, 0.0, dataclasses.replace(microscope, cs=0.0))
        self.aperture = aperture_mask(qy, qx, microscope)
        self.psi0 = torch.ones((nyf, nxf), dtype=torch.complex64, device=device)
        self.cache_bytes = int(cache_bytes)
        self._grids: dict[int, _Grid] = {}
        self._cached = 0

    # ------------------------------------------------------------------ rotation
    def _frame_coords(self, dtype: torch.dtype) -> torch.Tensor:
        nzf, nyf, nxf = self.frame_shape
        zz, yy, xx = torch.meshgrid(
            *(
                torch.arange(n, dtype=dtype, device=self.device) - (n - 1) / 2
                for n in (nzf, nyf, nxf)
            ),
            indexing="ij",
        )
        return torch.stack([xx, yy, zz], -1)

    def _grid(self, r: torch.Tensor, sparse: bool = False) -> _Grid:
        """Sampling grid of the rotation R (3, 3) acting on (x, y, z): q ↦ Rᵀq, normalised;
        for a tilt about y with ``sparse``, the bilinear weights as a sparse matrix."""
        nz, ny, nx = self.volume_shape
        rt = r.T
        e_y = torch.tensor([0.0, 1.0, 0.0], dtype=r.dtype, device=r.device)
        about_y = not r.requires_grad and bool(
            torch.allclose(r[1], e_y, atol=1e-12) and torch.allclose(r[:, 1], e_y, atol=1e-12)
        )
        if about_y:
            nzf, _, nxf = self.frame_shape
            zz, xx = torch.meshgrid(
                *(
                    torch.arange(n, dtype=torch.float64, device=self.device) - (n - 1) / 2
                    for n in (nzf, nxf)
                ),
                indexing="ij",
            )
            px = rt[0, 0] * xx + rt[0, 2] * zz
            pz = rt[2, 0] * xx + rt[2, 2] * zz
            if sparse:
                mat = _plane_matrix(px, pz, nz, nx)
                return _Grid("plane", None, mat, mat.t().coalesce())
            g = torch.stack([2 * px / nx, 2 * pz / nz], -1).to(torch.float32)
            return _Grid("2d", g[None])
        q = self._frame_coords(torch.float64 if not r.requires_grad else r.dtype)
        p = q @ rt.T.to(q.dtype)
        size = p.new_tensor([nx, ny, nz])
        return _Grid("3d", (2.0 * p / size).to(torch.float32)[None])

    def rotation(self, i: int, r: torch.Tensor, cache: bool) -> _Grid:
        """The grid of tilt ``i`` with rotation ``r``; cached when ``cache`` and it fits."""
        if cache and i in self._grids:
            return self._grids[i]
        g = self._grid(r, sparse=cache and self._cached < self.cache_bytes)
        if cache:
            size = g.nbytes()
            if self._cached + size <= self.cache_bytes:
                self._grids[i] = g
                self._cached += size
        return g

    def rotate(self, volume: torch.Tensor, g: _Grid) -> torch.Tensor:
        """W = R(V) on the beam frame (Z', Y', X'), trilinear, zero outside the volume."""
        if g.kind == "plane":
            nzf, _, nxf = self.frame_shape
            out = _PlaneRotation.apply(volume, g.s, g.st, (nzf, nxf))
            return F.pad(out, (0, 0, self.pad, self.pad)) if self.pad else out
        if g.kind == "2d":
            # y planes as channels, one shared (z, x) grid: bilinear = trilinear at integer y
            out = F.grid_sample(
                volume.permute(1, 0, 2)[None],
                g.grid,
                mode="bilinear",
                padding_mode="zeros",
                align_corners=False,
            )[0].permute(1, 0, 2)
            if self.pad:
                out = F.pad(out, (0, 0, self.pad, self.pad))
            return out
        return F.grid_sample(
            volume[None, None], g.grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )[0, 0]

    # ------------------------------------------------------------------ optics
    def transfer(self, defocus: torch.Tensor, c3: torch.Tensor) -> torch.Tensor:
        """H (k, Y', X') = A exp(−iχ) at defocus + padding·d, differentiable in both."""
        lam = self.mic.wavelength
        df = defocus.to(torch.float64) + self.pad * self.d
        chi = self.chi_rest + np.pi * lam * self.q2 * (
            -df[:, None, None] + 0.5 * c3.to(torch.float64) * lam**2 * self.q2
        )
        h = self.aperture * torch.exp(-1j * chi)
        if self.extra is not None:
            h = h * self.extra
        return h.to(torch.complex64)

    # ------------------------------------------------------------------ images
    def pose_matrix(self, p: AcquisitionParameters, i: int) -> torch.Tensor:
        """R_i = Z(α + φ_i) Y(θ_i) X(ψ_i), float64 (3, 3), differentiable in refined angles."""
        e = torch.stack([p.phi[i] + p.tilt_axis, p.tilt[i], p.psi[i]])
        return euler_to_matrix(torch.deg2rad(e))

    def images(
        self, volume: torch.Tensor, p: AcquisitionParameters, i: int, refine_pose: bool
    ) -> torch.Tensor:
        """Images (k, Y, X) of tilt ``i``: rotate, bin N_B voxels per slab (× d, V·Å),
        multislice (or one phase grating), H per defocus, |·|², shift, crop to the detector.

        Image j is translated by ``p.shifts[i] + p.focal_shifts[i, j]`` (dx, dy) px by a
        Fourier phase ramp (:func:`wedge.models.shift_images`), differentiably in both."""
        r = self.pose_matrix(p, i)
        if not refine_pose:
            r = r.detach()
        g = self.rotation(i, r, cache=not refine_pose)
        w = self.rotate(volume, g)
        slabs = bin_slices(w, self.opts.n_bin) * self.d
        if self.opts.mode == "single":
            slabs = slabs.sum(0, keepdim=True)
        h = self.transfer(p.defocus[i], p.c3)
        img = _Multislice.apply(
            slabs, self.psi0, self.prop, h, self.mic.sigma, 0.0, self.opts.checkpoint
        )
        return self._place(img, p, i)

    def _place(self, img: torch.Tensor, p: AcquisitionParameters, i: int) -> torch.Tensor:
        """Shift images (..., k, Y', X') of tilt ``i`` by ``p.shifts[i]`` (+ focal shifts)
        and crop the padding."""
        k = img.shape[-3]
        sh = p.shifts[i].expand(k, 2)
        if p.focal_shifts is not None:
            sh = sh + p.focal_shifts[i]  # (k, 2): the tilt's shift + each image's own
        if sh.requires_grad or bool(torch.any(sh != 0)):
            lead = img.shape[:-3]
            flat = img.reshape(-1, *img.shape[-2:])
            img = shift_images(flat, sh.expand(*lead, k, 2).reshape(-1, 2)).reshape(img.shape)
        if self.pad:
            c = self.pad
            img = img[..., c:-c, c:-c]
        return img

    def exit_spectrum(self, volume: torch.Tensor, p: AcquisitionParameters, i: int) -> torch.Tensor:
        """Ψ (Y', X') = FFT of the exit wave of tilt ``i`` (before the transfer function),
        without gradient: with :meth:`images_at_defocus` it gives the images at any number
        of candidate defoci for the cost of one multislice pass."""
        with torch.no_grad():
            g = self.rotation(i, self.pose_matrix(p, i).detach(), cache=True)
            slabs = bin_slices(self.rotate(volume, g), self.opts.n_bin) * self.d
            if self.opts.mode == "single":
                slabs = slabs.sum(0, keepdim=True)
            psi, _ = _forward_waves(slabs, self.psi0, self.prop, self.mic.sigma, 0.0, 1 << 30)
            return torch.fft.fft2(psi)

    def images_at_defocus(
        self, spec: torch.Tensor, defocus: torch.Tensor, p: AcquisitionParameters, i: int
    ) -> torch.Tensor:
        """Images (..., k, Y, X) of tilt ``i`` from its exit spectrum ``spec``
        (:meth:`exit_spectrum`) at the defoci ``defocus`` (..., k) Å (positive underfocus,
        measured from the volume's exit surface), C3 ``p.c3``; shifted and cropped as
        :meth:`images` (image j by ``p.shifts[i] + p.focal_shifts[i, j]``)."""
        with torch.no_grad():
            df = torch.as_tensor(defocus, dtype=torch.float64, device=spec.device)
            h = self.transfer(df.reshape(-1), p.c3.detach())
            psi = torch.fft.ifft2(spec * h)
            img = (psi.real**2 + psi.imag**2).reshape(*df.shape, *spec.shape)
            return self._place(img, p, i)

    def wave_bytes(self, n_defocus: int) -> int:
        """Bytes of one tilt's wave stack and images (complex64), for the memory estimate."""
        nzf, nyf, nxf = self.frame_shape
        n_slabs = 1 if self.opts.mode == "single" else -(-nzf // self.opts.n_bin)
        keep = n_slabs if self.opts.checkpoint is None else n_slabs // self.opts.checkpoint + 1
        return 8 * nyf * nxf * (keep + 4 * n_defocus + 4)
