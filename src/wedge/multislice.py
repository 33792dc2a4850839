"""Multislice forward model for plane-wave HRTEM and its hand-written gradient.

Implements Ren et al. (Ultramicroscopy 2020, "A multiple scattering algorithm for three
dimensional phase contrast atomic electron tomography"), Algorithm 1 (forward) and
Algorithm 2 / appendix A3 (back-propagation), with slice binning (appendix A4, eq. A.11),
as also used by PhaseT3M (lines 19-24 of its pseudo-code).

Conventions
-----------
* The volume is (Z, Y, X) in volts (voxel-averaged potential, e.g. from
  :func:`wedge.atoms.potential.potential_volume`); z is the beam direction of the rotated
  volume, slice 0 (lowest z) is met first. A slab's projected potential (V·Å) is the sum of
  its N_B voxels times the voxel size d.
* Per slab m: transmission t_m = exp(iσ W_m) (optionally exp(iσ (1 + iκ) W_m), absorption κ),
  then angular-spectrum propagation over Δz = N_B d (Ren eq. 2),
  P(q) = B(q) exp(2πiΔz (√(1/λ² − q²) − 1/λ)), with B the band limit q ≤ b·q_Nyquist
  (b = 2/3 against aliasing, Kirkland 2010 §6.8). The exit wave lies at the bottom of the box:
  when Z is not a multiple of N_B the short last slab propagates only its own thickness
  (for the images this is folded into H, for :func:`exit_wave` applied to the wave).
* Image at defocus Δf (positive underfocus, measured from the exit plane, or from the box
  centre with ``defocus_reference="center"``): I = |F⁻¹[H(q) F ψ_exit]|² with
  H = A exp(−iχ) from :mod:`wedge.optics` (so H with defocus Δf equals propagation by −Δf).
* The incident wave is a unit plane wave, so vacuum images are 1.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ._backend import as_tensor, resolve_device, to_output
from .geometry import euler_to_matrix
from .optics import Microscope, transfer_function, wavelength
from .projectors.general import volume_grid_coordinates

__all__ = [
    "MultisliceOptions",
    "rotate_volume",
    "bin_slices",
    "band_limit_mask",
    "propagator",
    "propagate",
    "exit_wave",
    "multislice_intensity",
    "multislice_images",
    "multislice_gradient",
    "slab_images",
]


@dataclasses.dataclass(frozen=True)
class MultisliceOptions:
    """Numerical options of the forward model.

    Attributes
    ----------
    n_bin : int
        Slice binning N_B: voxels summed per multislice slab (Ren eq. A.11).
    mode : "multislice" or "single"
        "single" is the projection approximation: one transmission of the total projected
        potential placed at the box centre, then propagation to the exit plane.
    band_limit : float
        Fraction of the Nyquist frequency kept by the propagator (2/3 avoids aliasing).
    absorption : float
        κ, imaginary potential as a fraction of the real one (0: none).
    defocus_reference : "exit" or "center"
        Plane from which the defocus is measured.
    checkpoint : int or None
        Hand-written gradient: store every ``checkpoint``-th wave and recompute the others
        (memory ~ (n_slabs/c + c) waves instead of n_slabs); None stores all.
    """

    n_bin: int = 1
    mode: Literal["multislice", "single"] = "multislice"
    band_limit: float = 2.0 / 3.0
    absorption: float = 0.0
    defocus_reference: Literal["exit", "center"] = "exit"
    checkpoint: int | None = None

    def __post_init__(self) -> None:
        if int(self.n_bin) != self.n_bin or self.n_bin < 1:
            raise ValueError(f"n_bin must be a positive integer, got {self.n_bin}.")
        if self.mode not in ("multislice", "single"):
            raise ValueError(f"mode must be 'multislice' or 'single', got {self.mode!r}.")
        if not 0 < self.band_limit <= 1:
            raise ValueError(f"band_limit must be in (0, 1], got {self.band_limit}.")
        if not (np.isfinite(self.absorption) and self.absorption >= 0):
            raise ValueError(f"absorption must be >= 0, got {self.absorption}.")
        if self.defocus_reference not in ("exit", "center"):
            raise ValueError("defocus_reference must be 'exit' or 'center'.")
        if self.checkpoint is not None and self.checkpoint < 1:
            raise ValueError(
                f"checkpoint must be a positive integer or None, got {self.checkpoint}."
            )


# ---------------------------------------------------------------------------- geometry
def rotate_volume(volume: Any, euler_deg: Any) -> torch.Tensor:
    """Rotate a (Z, Y, X) volume to an image orientation, differentiably (trilinear).

    The output W satisfies W(q) = V(Rᵀ q) with R = Z(φ) Y(θ) X(ψ)
    (:func:`wedge.geometry.euler_to_matrix`) and q = (x, y, z) about the centre index
    (N−1)/2, so a feature at p appears at R p: summing W over z gives the ray projection in
    wedge's convention (image position (R p)[:2]). Voxels sampled outside are 0.
    ``euler_deg`` (3,) may be a tensor requiring grad. Returns a tensor on the volume's device.
    """
    v = volume if isinstance(volume, torch.Tensor) else torch.as_tensor(np.asarray(volume))
    if v.ndim != 3:
        raise ValueError(f"volume must be (Z, Y, X), got shape {tuple(v.shape)}.")
    v = v.to(torch.float32) if not v.is_floating_point() else v
    e = torch.as_tensor(euler_deg, dtype=torch.float64, device=v.device)
    if e.shape != (3,):
        raise ValueError(
            f"euler_deg must be (phi, theta, psi) in degrees, got shape {tuple(e.shape)}."
        )
    rt = euler_to_matrix(torch.deg2rad(e)).T.to(v.dtype)  # R^T: output -> input coordinates
    nz, ny, nx = v.shape
    dev = v.device
    zz, yy, xx = torch.meshgrid(
        *(torch.arange(n, dtype=v.dtype, device=dev) - (n - 1) / 2 for n in (nz, ny, nx)),
        indexing="ij",
    )
    q = torch.stack([xx, yy, zz], -1)  # (Z, Y, X, 3) as (x, y, z)
    p = q @ rt.T  # source positions Rᵀ q
    grid = volume_grid_coordinates(p, (nz, ny, nx))[None]
    out = F.grid_sample(
        v[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out[0, 0]


def bin_slices(volume: torch.Tensor, n_bin: int) -> torch.Tensor:
    """Ren's binning B_{N_B} (eq. A.11): sum groups of ``n_bin`` z-slices (last may be short)."""
    nz = volume.shape[0]
    n_out = -(-nz // n_bin)
    pad = n_out * n_bin - nz
    if pad:
        volume = torch.cat([volume, volume.new_zeros((pad, *volume.shape[1:]))], 0)
    return volume.reshape(n_out, n_bin, *volume.shape[1:]).sum(1)


# ---------------------------------------------------------------------------- propagation
def band_limit_mask(
    shape: tuple[int, int], pixel_size: float, band_limit: float = 2 / 3, device: Any = None
) -> torch.Tensor:
    """1 where q ≤ band_limit · 1/(2 d), else 0, on the FFT grid (Y, X), float64."""
    qy = torch.fft.fftfreq(shape[0], pixel_size, dtype=torch.float64, device=device)
    qx = torch.fft.fftfreq(shape[1], pixel_size, dtype=torch.float64, device=device)
    q2 = qy[:, None] ** 2 + qx[None, :] ** 2
    return (q2 <= (band_limit / (2 * pixel_size)) ** 2).to(torch.float64)


def propagator(
    shape: tuple[int, int],
    pixel_size: float,
    dz: float,
    wavelength_A: float,
    *,
    band_limit: float = 2 / 3,
    tilt: tuple[float, float] = (0.0, 0.0),
    device: Any = None,
) -> torch.Tensor:
    """Angular-spectrum propagator over ``dz`` Å (Ren eq. 2 without the constant phase): (Y, X).

    ``tilt`` (qy, qx) 1/Å evaluates it at q + tilt: propagation of the envelope of a wave
    with a tilted carrier exp(2πi tilt·r). Complex128.
    """
    qy = torch.fft.fftfreq(shape[0], pixel_size, dtype=torch.float64, device=device) + tilt[0]
    qx = torch.fft.fftfreq(shape[1], pixel_size, dtype=torch.float64, device=device) + tilt[1]
    q2 = qy[:, None] ** 2 + qx[None, :] ** 2
    k2 = 1.0 / wavelength_A**2
    kz = torch.sqrt(torch.clamp(k2 - q2, min=0.0)) - np.sqrt(k2)
    mask = band_limit_mask(shape, pixel_size, band_limit, device)
    return mask * torch.exp(2j * np.pi * dz * kz)


def propagate(wave: Any, kernel: torch.Tensor) -> torch.Tensor:
    """F⁻¹[kernel · F wave] over the last two axes."""
    w = wave if isinstance(wave, torch.Tensor) else torch.as_tensor(wave)
    return torch.fft.ifft2(
        torch.fft.fft2(w) * kernel.to(w.dtype if w.is_complex() else torch.complex64)
    )


# ---------------------------------------------------------------------------- core
def _transmission(w: torch.Tensor, sigma: float, kappa: float) -> torch.Tensor:
    """t = exp(iσV − σκV), built with torch.polar (10× cheaper than a complex exp)."""
    w = w.to(torch.float32)
    amplitude = torch.exp(-sigma * kappa * w) if kappa else torch.ones_like(w)
    return torch.polar(amplitude, sigma * w)


def _forward_waves(
    slabs: torch.Tensor,
    psi0: torch.Tensor,
    prop: torch.Tensor,
    sigma: float,
    kappa: float,
    keep: int | None,
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Ren Algorithm 1 lines 1-5; returns the exit wave and the stored input waves ψ_m."""
    psi = psi0
    stored: dict[int, torch.Tensor] = {}
    for m in range(slabs.shape[0]):
        if keep is None or m % keep == 0:
            stored[m] = psi
        psi = torch.fft.ifft2(torch.fft.fft2(_transmission(slabs[m], sigma, kappa) * psi) * prop)
    return psi, stored


class _Multislice(torch.autograd.Function):
    """Intensities (k, Y, X) of slabs (S, Y, X) V·Å; backward is Ren's Algorithm 2.

    The gradient also reaches the transfer functions ``h`` (k, Y, X) when they require
    it (defocus and C3 refinement): with Ψ the exit spectrum and G = 2 g ψ_img,
    ∂L/∂h = conj(Ψ) · F[G] / (Y·X) (PyTorch's conjugate-Wirtinger convention).
    """

    @staticmethod
    def forward(ctx, slabs, psi0, prop, h, sigma, kappa, keep):  # type: ignore[override]
        with torch.no_grad():
            exit_psi, stored = _forward_waves(slabs, psi0, prop, sigma, kappa, keep)
            spec = torch.fft.fft2(exit_psi)
            img = torch.fft.ifft2(spec[None] * h)
        ctx.save_for_backward(slabs, psi0, prop, h, img)
        ctx.stored, ctx.sigma, ctx.kappa, ctx.keep = stored, sigma, kappa, keep
        ctx.spec = spec if ctx.needs_input_grad[3] else None
        return img.real**2 + img.imag**2

    @staticmethod
    def backward(ctx, g_int):  # type: ignore[override]
        slabs, psi0, prop, h, img = ctx.saved_tensors
        sigma, kappa, keep, stored = ctx.sigma, ctx.kappa, ctx.keep, ctx.stored
        # dL/dψ_img = 2 g ψ_img (g ≡ ∂L/∂Re + i ∂L/∂Im); adjoint of H and sum over defocus
        g_img = torch.fft.fft2(2 * g_int * img)
        grad_h = None
        if ctx.spec is not None:
            grad_h = ctx.spec.conj()[None] * g_img / (img.shape[-1] * img.shape[-2])
        g = torch.fft.ifft2((g_img * h.conj()).sum(0))
        grad = torch.empty_like(slabs)
        coef = 1j * sigma * (1 + 1j * kappa)
        n = slabs.shape[0]
        step = keep or n
        for s in reversed(range(0, n, step)):
            e = min(s + step, n)
            waves = [stored[s]]
            for m in range(s, e - 1):  # the segment's input waves (recomputed when checkpointing)
                if keep is None:
                    waves.append(stored[m + 1])
                else:
                    t = _transmission(slabs[m], sigma, kappa)
                    waves.append(torch.fft.ifft2(torch.fft.fft2(t * waves[-1]) * prop))
            for m in range(e - 1, s - 1, -1):  # Ren Algorithm 2, lines 5-9
                t = _transmission(slabs[m], sigma, kappa)
                gz = torch.fft.ifft2(torch.fft.fft2(g) * prop.conj())
                grad[m] = (coef * t * waves[m - s] * gz.conj()).real
                g = t.conj() * gz
        return grad, None, None, grad_h, None, None, None


def _slabs_from_volume(
    volume: torch.Tensor, voxel_size: float, euler: Any, options: MultisliceOptions
) -> torch.Tensor:
    w = volume if euler is None else rotate_volume(volume, euler)
    slabs = bin_slices(w, options.n_bin) * voxel_size
    if options.mode == "single":
        slabs = slabs.sum(0, keepdim=True)
    return slabs


def _setup(
    shape_yx: tuple[int, int],
    n_z: int,
    voxel_size: float,
    defocus: Any,
    microscope: Microscope,
    options: MultisliceOptions,
    device: torch.device,
    tilt: tuple[float, float] = (0.0, 0.0),
    envelopes: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    lam = wavelength(microscope.energy)
    thick = n_z * voxel_size
    dz = thick / 2 if options.mode == "single" else options.n_bin * voxel_size
    df = np.atleast_1d(np.asarray(defocus, dtype=np.float64))
    if df.ndim != 1 or not np.all(np.isfinite(df)):
        raise ValueError("defocus must be a finite number or a 1-D list of numbers (Å).")
    if options.defocus_reference == "center":
        df = df + thick / 2
    prop = propagator(
        shape_yx, voxel_size, dz, lam, band_limit=options.band_limit, tilt=tilt, device=device
    )
    h = transfer_function(
        shape_yx, voxel_size, df, microscope, envelopes=envelopes, tilt=tilt, device=device
    )
    extra = _short_slab_correction(shape_yx, n_z, voxel_size, lam, options, device, tilt)
    if extra is not None:
        h = h * extra
    return prop.to(torch.complex64), h.to(torch.complex64)


def _short_slab_correction(
    shape_yx: tuple[int, int],
    n_z: int,
    voxel_size: float,
    lam: float,
    options: MultisliceOptions,
    device: torch.device,
    tilt: tuple[float, float] = (0.0, 0.0),
) -> torch.Tensor | None:
    """Propagator by −(N_B − n_last)·d that brings a short last slab back to its own thickness.

    Every slab is propagated by Δz = N_B d; when n_z is not a multiple of N_B the last slab
    holds only n_last = n_z − (S − 1) N_B voxels, so its wave must travel n_last·d, not
    N_B·d, for the exit wave to lie at the bottom of the box. Returns None when no
    correction is needed (single-slice mode or n_z a multiple of N_B); complex128 (Y, X).
    """
    if options.mode != "multislice":
        return None
    last = n_z - (-(-n_z // options.n_bin) - 1) * options.n_bin
    if last == options.n_bin:
        return None
    return propagator(
        shape_yx,
        voxel_size,
        (last - options.n_bin) * voxel_size,
        lam,
        band_limit=1.0,
        tilt=tilt,
        device=device,
    )


def _check_volume(volume: Any, voxel_size: float) -> None:
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise ValueError(f"voxel_size must be a positive number of Å, got {voxel_size}.")
    if len(tuple(volume.shape)) != 3:
        raise ValueError(f"volume must be a (Z, Y, X) array, got shape {tuple(volume.shape)}.")


def multislice_intensity(
    volume: torch.Tensor,
    voxel_size: float,
    defocus: Any,
    microscope: Microscope,
    *,
    euler: Any = None,
    options: MultisliceOptions | None = None,
    tilt: tuple[float, float] = (0.0, 0.0),
    envelopes: bool = False,
) -> torch.Tensor:
    """Differentiable images (k, Y, X) of a (Z, Y, X) torch volume (V), hand-written backward.

    The torch-level entry point for reconstruction: gradients flow to ``volume`` (and to
    ``euler`` when it is a tensor requiring grad) through rotation and binning by autograd,
    and through the multislice by Ren's Algorithm 2.
    """
    opts = options or MultisliceOptions()
    _check_volume(volume, voxel_size)
    dev = volume.device
    prop, h = _setup(
        tuple(volume.shape[1:]),
        volume.shape[0],
        voxel_size,
        defocus,
        microscope,
        opts,
        dev,
        tilt,
        envelopes,
    )
    slabs = _slabs_from_volume(volume.to(torch.float32), voxel_size, euler, opts)
    psi0 = torch.ones(volume.shape[1:], dtype=torch.complex64, device=dev)
    keep = opts.checkpoint
    return _Multislice.apply(slabs, psi0, prop, h, microscope.sigma, opts.absorption, keep)


def exit_wave(
    volume: Any,
    voxel_size: float,
    microscope: Microscope,
    *,
    euler: Any = None,
    options: MultisliceOptions | None = None,
    device: Any = None,
) -> Any:
    """Exit wave (Y, X) complex64 at the bottom of the box for a (Z, Y, X) volume in V.

    Parameters
    ----------
    volume : (Z, Y, X) potential in V (voxel averages), NumPy or torch; z is the beam axis
        (after the rotation by ``euler``), slice 0 is met first
    voxel_size : Å (also the pixel size of the wave)
    microscope : :class:`wedge.optics.Microscope` (only its energy is used)
    euler : (φ, θ, ψ) degrees or None (volume already in the beam frame)
    options : :class:`MultisliceOptions`
    device : torch device, optional

    Returns
    -------
    (Y, X) complex64, NumPy for NumPy input, torch for torch input; a unit incident plane wave
    gives 1 in vacuum.

    Notes
    -----
    The wave lies at the exit plane z = Z·d (the bottom of the box, the plane from which
    ``defocus_reference="exit"`` measures defocus). When Z is not a multiple of
    ``options.n_bin`` the last slab holds only Z − (S − 1)·N_B voxels and is propagated by
    its own thickness, not N_B·d, so that
    ``|F⁻¹[H(Δf) F exit_wave]|² == multislice_images(..., Δf)`` for every Z and N_B.
    """
    opts = options or MultisliceOptions()
    _check_volume(volume, voxel_size)
    dev = resolve_device(device, volume)
    v = as_tensor(volume, dev)
    n_z, shape_yx = v.shape[0], tuple(v.shape[1:])
    prop, _ = _setup(shape_yx, n_z, voxel_size, 0.0, microscope, opts, dev)
    extra = _short_slab_correction(shape_yx, n_z, voxel_size, microscope.wavelength, opts, dev)
    with torch.no_grad():
        slabs = _slabs_from_volume(v, voxel_size, euler, opts)
        psi0 = torch.ones(shape_yx, dtype=torch.complex64, device=dev)
        psi, _ = _forward_waves(
            slabs, psi0, prop, microscope.sigma, opts.absorption, len(slabs) + 1
        )
        if extra is not None:
            psi = torch.fft.ifft2(torch.fft.fft2(psi) * extra.to(torch.complex64))
    return psi if isinstance(volume, torch.Tensor) else psi.cpu().numpy()


def multislice_images(
    volume: Any,
    voxel_size: float,
    defocus: Any,
    microscope: Microscope,
    *,
    euler: Any = None,
    options: MultisliceOptions | None = None,
    envelopes: bool = False,
    device: Any = None,
) -> Any:
    """HRTEM images (k, Y, X) of one orientation at ``k`` defocus values (Å, underfocus > 0).

    Parameters
    ----------
    volume : (Z, Y, X) potential in V (voxel averages), NumPy or torch
    voxel_size : Å (also the image pixel size)
    defocus : float or (k,) Å
    microscope : :class:`wedge.optics.Microscope`
    euler : (φ, θ, ψ) degrees or None (volume already in the beam frame)
    options : :class:`MultisliceOptions`
    envelopes : apply the temporal/spatial coherence envelopes to H (quasi-coherent)

    Returns NumPy for NumPy input, torch for torch input; vacuum intensity is 1.
    """
    _check_volume(volume, voxel_size)
    dev = resolve_device(device, volume)
    v = as_tensor(volume, dev)
    # no gradient here: keep only the first wave (checkpoint beyond the last slab)
    opts = dataclasses.replace(options or MultisliceOptions(), checkpoint=v.shape[0] + 1)
    with torch.no_grad():
        out = multislice_intensity(
            v, voxel_size, defocus, microscope, euler=euler, options=opts, envelopes=envelopes
        )
    return to_output(out, volume)


def multislice_gradient(
    volume: Any,
    measured: Any,
    voxel_size: float,
    defocus: Any,
    microscope: Microscope,
    *,
    euler: Any = None,
    options: MultisliceOptions | None = None,
    loss: Literal["amplitude", "intensity"] = "amplitude",
    device: Any = None,
) -> tuple[float, Any]:
    """Loss and its gradient with respect to the (Z, Y, X) volume, by back-propagation.

    ``loss="amplitude"``: Σ (√Î − √I)² (Ren eq. 5); ``"intensity"``: Σ (Î − I)².
    ``measured`` is (k, Y, X), one image per defocus value. Returns (loss, gradient) with the
    gradient NumPy or torch like ``volume``. ``volume`` itself is never modified: the
    gradient is taken with respect to a detached copy, so a caller's tensor keeps its values
    and its ``requires_grad`` flag.
    """
    _check_volume(volume, voxel_size)
    meas = measured
    df = np.atleast_1d(np.asarray(defocus, dtype=np.float64))
    if tuple(meas.shape) != (df.size, *tuple(volume.shape[1:])):
        raise ValueError(
            f"measured has shape {tuple(meas.shape)} but {df.size} defocus value(s) and a "
            f"{tuple(volume.shape[1:])} image need "
            f"({df.size}, {volume.shape[1]}, {volume.shape[2]}); pass one defocus per image."
        )
    dev = resolve_device(device, volume)
    # a fresh leaf: as_tensor may return the caller's own tensor, which must stay untouched
    v = as_tensor(volume, dev).detach().requires_grad_(True)
    m = as_tensor(meas, dev)
    pred = multislice_intensity(v, voxel_size, df, microscope, euler=euler, options=options)
    if loss == "amplitude":
        val = ((torch.sqrt(pred + 1e-12) - torch.sqrt(m.clamp(min=0))) ** 2).sum()
    elif loss == "intensity":
        val = ((pred - m) ** 2).sum()
    else:
        raise ValueError(f"loss must be 'amplitude' or 'intensity', got {loss!r}.")
    (g,) = torch.autograd.grad(val, v)
    return float(val.detach()), to_output(g, volume)


def slab_images(
    slabs: Any,
    pixel_size: float,
    slice_thickness: float,
    defocus: Any,
    microscope: Microscope,
    *,
    band_limit: float = 2.0 / 3.0,
    tilt: tuple[float, float] = (0.0, 0.0),
    envelopes: bool = False,
    return_exit_wave: bool = False,
    device: Any = None,
) -> Any:
    """Images (k, Y, X) from precomputed slab projected potentials (S, Y, X) in V·Å.

    For slabs from :func:`wedge.atoms.potential.slice_potentials` (each Δz =
    ``slice_thickness`` thick): transmit, propagate Δz, per slab; then H per defocus (from
    the exit plane). ``return_exit_wave=True`` returns the exit wave (Y, X) instead.
    """
    if not (np.isfinite(slice_thickness) and slice_thickness > 0):
        raise ValueError(f"slice_thickness must be a positive number of Å, got {slice_thickness}.")
    _check_volume(slabs, pixel_size)
    dev = resolve_device(device, slabs)
    w = as_tensor(slabs, dev)
    shape = tuple(w.shape[1:])
    prop = propagator(
        shape,
        pixel_size,
        slice_thickness,
        wavelength(microscope.energy),
        band_limit=band_limit,
        tilt=tilt,
        device=dev,
    ).to(torch.complex64)
    psi0 = torch.ones(shape, dtype=torch.complex64, device=dev)
    with torch.no_grad():
        if return_exit_wave:
            psi, _ = _forward_waves(w, psi0, prop, microscope.sigma, 0.0, len(w) + 1)
            return psi if isinstance(slabs, torch.Tensor) else psi.cpu().numpy()
        h = transfer_function(
            shape, pixel_size, defocus, microscope, envelopes=envelopes, tilt=tilt, device=dev
        ).to(torch.complex64)
        out = _Multislice.apply(w, psi0, prop, h, microscope.sigma, 0.0, len(w) + 1)
    return to_output(out, slabs)
