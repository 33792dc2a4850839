"""Electrostatic potentials of neutral atoms: scattering factors, radial and voxel potentials.

Units: lengths in Å, potentials in volts (V), projected potentials in V·Å. Positions are
(x, y, z) in Å relative to the centre of the box, whose voxel ``(k, j, i)`` of a
``(Z, Y, X)`` array sits at ``((i - (NX-1)/2) d, (j - (NY-1)/2) d, (k - (NZ-1)/2) d)``
(wedge's (N-1)/2 centre convention).

Parametrisation: Lobato & Van Dyck, Acta Cryst. A70, 636 (2014) (default) or Kirkland,
*Advanced Computing in Electron Microscopy*, 2nd ed. (2010), Appendix C. The potential of an
atom is the inverse Fourier transform of its electron scattering factor (Kirkland eq. 5.9)

    V(r) = 2π a0 e ∫ f_e(q) exp(2πi q·r) d³q,       2π a0 e = 47.878 V·Å²,

which for the Lobato form ``f_e = Σ a_i (2 + b_i q²)/(1 + b_i q²)²`` is (α_i = 2π/√b_i)

    V(r) = 2π a0 e Σ π² a_i / b_i^{3/2} (2/(α_i r) + 1) exp(-α_i r),
    v(R) = ∫ V dz = 2π a0 e Σ 2π a_i [K0(α_i R)/b_i + π R K1(α_i R)/b_i^{3/2}].

Two discretisations are offered:

* :func:`potential_volume`: an isotropic 3-D volume (the ground truth for tomography). Each
  voxel holds the potential averaged over the voxel, approximated by convolving with a
  Gaussian of the voxel's variance d²/12 (plus the thermal variance), evaluated from a radial
  table within a cutoff radius. Sum over z times d is the projected potential.
* :func:`slice_potentials`: the projected potential of slabs for the multislice (atoms are
  assigned whole to the slab holding their centre, Kirkland ch. 6): the analytic projected
  potential v(R) sampled at pixel centres (exact sub-pixel positions, no rounding to the grid).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from scipy import special

from .._backend import resolve_device, to_output
from ._parameters import KIRKLAND, LOBATO, SYMBOLS

__all__ = [
    "TWO_PI_A0_E",
    "atomic_number",
    "scattering_factor",
    "radial_potential",
    "projected_radial_potential",
    "potential_volume",
    "slice_potentials",
]

#: 2π a0 e in V·Å² (a0 = 0.529177 Å Bohr radius, e = 14.39965 V·Å), Kirkland eq. 5.9.
TWO_PI_A0_E = 2.0 * np.pi * 0.529177210903 * 14.3996454784

Parametrisation = Literal["lobato", "kirkland"]


def atomic_number(element: int | str) -> int:
    """Atomic number of ``element`` (a symbol such as ``"Pt"`` or an integer 1..103)."""
    if isinstance(element, str):
        sym = element.strip()
        sym = sym[:1].upper() + sym[1:].lower()
        if sym not in SYMBOLS:
            raise ValueError(
                f"unknown element symbol {element!r}; use a chemical symbol from H to Lr."
            )
        return SYMBOLS.index(sym) + 1
    z = int(element)
    if not 1 <= z <= len(SYMBOLS):
        raise ValueError(f"unknown atomic number {element}; use an integer from 1 (H) to 103 (Lr).")
    return z


def _atoms_input(
    positions_A: Any, numbers: Any, thermal_sigma: float, cutoff: float
) -> tuple[np.ndarray, np.ndarray]:
    """Validated (n, 3) float64 positions and (n,) atomic numbers from NumPy or torch input."""
    if thermal_sigma < 0 or not np.isfinite(thermal_sigma):
        raise ValueError(f"thermal_sigma must be a finite number >= 0 Å, got {thermal_sigma}.")
    if not (cutoff > 0 and np.isfinite(cutoff)):
        raise ValueError(f"cutoff must be a positive number of Å, got {cutoff}.")
    pos = np.asarray(
        positions_A.detach().cpu() if isinstance(positions_A, torch.Tensor) else positions_A,
        dtype=np.float64,
    ).reshape(-1, 3)
    z_num = _as_numbers(numbers.cpu() if isinstance(numbers, torch.Tensor) else numbers)
    return pos, z_num


def _as_numbers(numbers: Any) -> np.ndarray:
    arr = np.asarray(numbers).reshape(-1)
    if arr.dtype.kind in "USO":
        return np.array([atomic_number(str(s)) for s in arr], dtype=np.int64)
    if arr.size and (np.any(arr != np.round(arr)) or arr.min() < 1 or arr.max() > len(SYMBOLS)):
        raise ValueError(
            "atomic numbers must be integers from 1 (H) to 103 (Lr); "
            f"got values in [{arr.min()}, {arr.max()}]."
        )
    return arr.astype(np.int64)


def scattering_factor(
    q: Any, element: int | str, parametrisation: Parametrisation = "lobato"
) -> np.ndarray:
    """Electron scattering factor f_e(q) in Å at spatial frequency ``q`` (1/Å, no 2π).

    Lobato & Van Dyck (2014) eq. 12 or Kirkland (2010) eq. C.15, by ``parametrisation``.
    """
    q2 = np.asarray(q, dtype=np.float64) ** 2
    sym = SYMBOLS[atomic_number(element) - 1]
    if parametrisation == "lobato":
        a, b = (np.asarray(v)[:, None] for v in LOBATO[sym])
        x = 1.0 + b * q2.reshape(-1)
        return (a * (1.0 + x) / x**2).sum(0).reshape(q2.shape)
    if parametrisation == "kirkland":
        a, b, c, d = (np.asarray(v)[:, None] for v in KIRKLAND[sym])
        qq = q2.reshape(-1)
        f = (a / (qq + b)).sum(0) + (c * np.exp(-d * qq)).sum(0)
        return f.reshape(q2.shape)
    raise ValueError(f"parametrisation must be 'lobato' or 'kirkland', got {parametrisation!r}.")


def _lobato(element: int | str) -> tuple[np.ndarray, np.ndarray]:
    a, b = LOBATO[SYMBOLS[atomic_number(element) - 1]]
    return np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)


def projected_radial_potential(R: Any, element: int | str) -> np.ndarray:
    """Projected potential v(R) = ∫V dz (V·Å) of one atom at in-plane distance ``R`` (Å).

    Analytic Lobato form (module docstring); diverges logarithmically at R = 0.
    """
    a, b = _lobato(element)
    r = np.asarray(R, dtype=np.float64)[..., None]
    alpha = 2.0 * np.pi / np.sqrt(b)
    v = 2.0 * np.pi * a * (special.k0(alpha * r) / b + np.pi * r * special.k1(alpha * r) / b**1.5)
    return TWO_PI_A0_E * v.sum(-1)


def radial_potential(r: Any, element: int | str, sigma: float = 0.0) -> np.ndarray:
    """Potential V(r) in volts of one atom at distance ``r`` (Å), Lobato parametrisation.

    With ``sigma > 0`` the potential is convolved with an isotropic Gaussian of standard
    deviation ``sigma`` Å per axis (thermal smearing, Debye–Waller factor
    exp(-2π²σ²q²) on f_e); it is then finite at r = 0 and is computed by the radial Fourier
    integral V(r) = 2π a0 e · 4π ∫ q² f_e(q) e^{-2π²σ²q²} sinc(2qr) dq.
    """
    r = np.asarray(r, dtype=np.float64)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0 Å, got {sigma}.")
    if sigma == 0:
        a, b = _lobato(element)
        alpha = 2.0 * np.pi / np.sqrt(b)
        rr = r[..., None]
        with np.errstate(divide="ignore"):
            v = np.pi**2 * a / b**1.5 * (2.0 / (alpha * rr) + 1.0) * np.exp(-alpha * rr)
        return TWO_PI_A0_E * v.sum(-1)
    q_max = np.sqrt(40.0 / (2.0 * np.pi**2 * sigma**2))
    r_max = float(r.max()) if r.size else 0.0
    n_q = int(np.clip(q_max * max(r_max, 1.0) * 16, 2048, 40000)) | 1
    q = np.linspace(0.0, q_max, n_q)
    w = np.full(n_q, 2.0)
    w[1:-1:2] = 4.0
    w[0] = w[-1] = 1.0
    w *= (q[1] - q[0]) / 3.0  # Simpson weights
    g = w * q**2 * scattering_factor(q, element) * np.exp(-2.0 * np.pi**2 * sigma**2 * q**2)
    flat = r.reshape(-1)
    out = np.empty(flat.shape)
    for s in range(0, flat.size, 512):  # chunks of radii, vectorised over q
        out[s : s + 512] = np.sinc(2.0 * np.outer(flat[s : s + 512], q)) @ g
    return (TWO_PI_A0_E * 4.0 * np.pi * out).reshape(r.shape)


def _check_box(
    pos: np.ndarray, numbers: np.ndarray, shape: Sequence[int], spacing: Sequence[float]
) -> None:
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"positions must have shape (n_atoms, 3) as (x, y, z) Å; got {pos.shape}.")
    if numbers.shape[0] != pos.shape[0]:
        raise ValueError(
            f"got {pos.shape[0]} positions but {numbers.shape[0]} atomic numbers; pass one each."
        )
    if not np.all(np.isfinite(pos)):
        raise ValueError("positions contain NaN or Inf; pass finite coordinates in Å.")
    half = np.array([shape[2] * spacing[2], shape[1] * spacing[1], shape[0] * spacing[0]]) / 2
    outside = np.any(np.abs(pos) > half, axis=1)
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(
            f"{int(outside.sum())} atom(s) lie outside the box (first: index {i} at "
            f"{pos[i].round(3).tolist()} Å; the box spans ±{half.round(3).tolist()} Å in x, y, z); "
            "enlarge the shape or voxel size, or centre the model."
        )


def _check_grid(shape: Sequence[int], voxel_size: float, name: str = "voxel_size") -> tuple:
    shp = tuple(int(s) for s in shape)
    if len(shp) != 3 or min(shp) < 1:
        raise ValueError(f"shape must be 3 positive integers (Z, Y, X), got {tuple(shape)}.")
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise ValueError(f"{name} must be a positive number of Å, got {voxel_size}.")
    return shp


def potential_volume(
    positions_A: Any,
    numbers: Any,
    shape: Sequence[int],
    voxel_size: float,
    *,
    thermal_sigma: float = 0.0,
    projected: bool = False,
    cutoff: float = 4.0,
    device: str | torch.device | None = None,
) -> Any:
    """Voxelised electrostatic potential of a set of neutral atoms (Z, Y, X).

    Parameters
    ----------
    positions_A : (n, 3) array, Å
        Atom centres as columns (x, y, z) relative to the box centre (index (N-1)/2).
    numbers : (n,) ints or chemical symbols
        Atomic numbers Z (1..103) or symbols.
    shape : (nz, ny, nx)
        Voxels along z (beam at 0° tilt), y (tilt axis), x.
    voxel_size : float, Å
        Cubic voxel edge d.
    thermal_sigma : float, Å
        Root-mean-square thermal displacement per axis; the potential is convolved with a
        Gaussian of that width (Debye–Waller smearing).
    projected : bool
        False: potential in V (voxel average). True: V·Å per voxel-thick slice (the volume
        times d), so summing over z gives the projected potential v(x, y) in V·Å.
    cutoff : float, Å
        Radius beyond which an atom's potential is neglected.
    device : torch device, optional
        Where to compute; the result is NumPy unless ``positions_A`` is a tensor.

    Returns
    -------
    (nz, ny, nx) float32 array: samples at voxel centres of V * G_s (Lobato parametrisation),
    G_s a Gaussian of variance s² = thermal_sigma² + d²/12 (d²/12 is the variance of the voxel
    box, so each value approximates the voxel average). Each atom's samples are scaled to the
    exact integral of V * G_s within ``cutoff`` (→ 2π a0 e f_e(0) for a large cutoff), which
    removes the sub-voxel aliasing of point sampling from the voxel sum.
    """
    shp = _check_grid(shape, voxel_size)
    like = positions_A
    pos, z_num = _atoms_input(positions_A, numbers, thermal_sigma, cutoff)
    _check_box(pos, z_num, shp, (voxel_size,) * 3)
    dev = resolve_device(device, positions_A)
    d = float(voxel_size)
    vol = torch.zeros(int(np.prod(shp)), dtype=torch.float32, device=dev)
    if pos.shape[0]:
        sigma = float(np.sqrt(thermal_sigma**2 + d**2 / 12.0))
        elements, el_idx = np.unique(z_num, return_inverse=True)
        dr = min(d / 8.0, 0.01)
        r_tab = np.arange(0.0, cutoff + 2 * dr, dr)
        table = np.stack([radial_potential(r_tab, int(z), sigma) for z in elements])
        table[:, r_tab > cutoff] = 0.0
        # integral of each kernel within the cutoff (trapezoid on the fine radial table)
        shell = 4 * np.pi * r_tab**2 * table
        inside = ((shell[:, 1:] + shell[:, :-1]) / 2 * dr).sum(1) / d**3
        tab = torch.as_tensor(table, dtype=torch.float32, device=dev)
        norm = torch.as_tensor(inside, dtype=torch.float32, device=dev)
        m = int(np.ceil(cutoff / d))
        o = torch.arange(-m, m + 1, device=dev)
        offs = torch.stack(torch.meshgrid(o, o, o, indexing="ij"), -1).reshape(-1, 3)
        offs = offs[(offs.float() * d).norm(dim=1) <= cutoff + d * np.sqrt(3) / 2]
        # continuous voxel index (k, j, i) of each atom
        centre = torch.tensor([(s - 1) / 2.0 for s in shp], dtype=torch.float64, device=dev)
        idx = torch.as_tensor(pos[:, ::-1].copy(), device=dev) / d + centre
        eli = torch.as_tensor(el_idx, device=dev)
        dims = torch.tensor(shp, device=dev)
        strides = torch.tensor([shp[1] * shp[2], shp[2], 1], device=dev)
        chunk = max(1, 4_000_000 // offs.shape[0])
        for s in range(0, idx.shape[0], chunk):
            c = idx[s : s + chunk]
            nb = torch.round(c)[:, None, :].long() + offs[None]  # (c, m, 3)
            dist = ((nb.double() - c[:, None, :]).norm(dim=-1) * d).float()
            near = dist <= cutoff
            ok = near & ((nb >= 0) & (nb < dims)).all(-1)
            t = dist / dr
            i0 = t.floor().long().clamp_(max=tab.shape[1] - 2)
            w = t - i0
            e = eli[s : s + chunk, None].expand_as(i0)
            val = (tab[e, i0] * (1 - w) + tab[e, i0 + 1] * w) * near
            # normalise each atom's samples to the kernel's exact integral (removes the
            # sub-voxel aliasing of point sampling from the voxel sum)
            val = val * (norm[eli[s : s + chunk]] / val.sum(1))[:, None]
            flat = (nb * strides).sum(-1)
            vol.index_add_(0, flat[ok], val[ok])
    vol = vol.reshape(shp)
    if projected:
        vol = vol * d
    return to_output(vol, like)


def _projected_table(element: int, r: np.ndarray, sigma: float, r_min: float) -> np.ndarray:
    """Projected potential v(R) (V·Å) on ``r``: analytic (σ = 0, R clamped at ``r_min``) or
    the 2-D Hankel transform 2π a0 e · 2π ∫ q f_e(q) e^{-2π²σ²q²} J0(2πqR) dq."""
    if sigma == 0:
        return projected_radial_potential(np.maximum(r, r_min), element)
    q_max = np.sqrt(40.0 / (2.0 * np.pi**2 * sigma**2))
    n_q = int(np.clip(q_max * max(float(r.max()), 1.0) * 16, 2048, 40000)) | 1
    q = np.linspace(0.0, q_max, n_q)
    w = np.full(n_q, 2.0)
    w[1:-1:2] = 4.0
    w[0] = w[-1] = 1.0
    w *= (q[1] - q[0]) / 3.0
    g = w * q * scattering_factor(q, element) * np.exp(-2.0 * np.pi**2 * sigma**2 * q**2)
    out = np.concatenate(
        [special.j0(2 * np.pi * np.outer(r[s : s + 256], q)) @ g for s in range(0, r.size, 256)]
    )
    return TWO_PI_A0_E * 2.0 * np.pi * out


def slice_potentials(
    positions_A: Any,
    numbers: Any,
    shape: Sequence[int],
    pixel_size: float,
    slice_thickness: float,
    *,
    thermal_sigma: float = 0.0,
    cutoff: float = 4.0,
    device: str | torch.device | None = None,
) -> Any:
    """Projected potential of each slab (V·Å) for the multislice: (n_slices, ny, nx).

    Slab k spans z in [z0 + k Δz, z0 + (k+1) Δz) with z0 = -n_slices Δz / 2 (centred box);
    each atom is projected whole into the slab holding its centre (Kirkland 2010 §6.4).
    Pixel (j, i) sits at x = (i - (nx-1)/2) d, y = (j - (ny-1)/2) d; the lateral boundary is
    periodic (as the FFT multislice). Each atom adds its analytic projected potential
    v(R) = ∫V dz (Lobato; module docstring) sampled at the pixel centres within ``cutoff``,
    shifted so that it goes to zero smoothly at the cutoff (v(R) − v(rc) − (R − rc) v'(rc));
    R is clamped at d/2 against the logarithmic singularity (abTEM makes the same choice).
    ``thermal_sigma`` > 0 uses the Gaussian-smeared v from a 2-D Hankel transform of
    f_e(q) exp(-2π²σ²q²).

    Parameters
    ----------
    positions_A : (n, 3), Å, (x, y, z) about the box centre
    numbers : (n,) atomic numbers or symbols
    shape : (n_slices, ny, nx)
    pixel_size, slice_thickness : float, Å
    thermal_sigma : float, Å, rms displacement per axis
    cutoff : float, Å
    """
    shp = _check_grid(shape, pixel_size, "pixel_size")
    if not (np.isfinite(slice_thickness) and slice_thickness > 0):
        raise ValueError(f"slice_thickness must be a positive number of Å, got {slice_thickness}.")
    like = positions_A
    pos, z_num = _atoms_input(positions_A, numbers, thermal_sigma, cutoff)
    _check_box(pos, z_num, shp, (slice_thickness, pixel_size, pixel_size))
    dev = resolve_device(device, positions_A)
    ns, ny, nx = shp
    d = float(pixel_size)
    out = torch.zeros(ns * ny * nx, dtype=torch.float32, device=dev)
    if pos.shape[0]:
        elements, el_idx = np.unique(z_num, return_inverse=True)
        dr = min(d / 8.0, 0.005)
        r_tab = np.arange(0.0, cutoff + 2 * dr, dr)
        tabs = []
        for z in elements:
            v = _projected_table(int(z), r_tab, thermal_sigma, d / 2)
            ic = int(round(cutoff / dr))
            slope = (v[ic + 1] - v[ic - 1]) / (2 * dr)
            v = v - v[ic] - (r_tab - cutoff) * slope
            v[r_tab >= cutoff] = 0.0
            tabs.append(v)
        tab = torch.as_tensor(np.stack(tabs), dtype=torch.float32, device=dev)
        m = int(np.ceil(cutoff / d))
        o = torch.arange(-m, m + 1, device=dev)
        offs = torch.stack(torch.meshgrid(o, o, indexing="ij"), -1).reshape(-1, 2)
        k_slab = np.clip(np.floor(pos[:, 2] / slice_thickness + ns / 2.0).astype(int), 0, ns - 1)
        idx = torch.as_tensor(
            np.stack([pos[:, 1] / d + (ny - 1) / 2, pos[:, 0] / d + (nx - 1) / 2], 1), device=dev
        )
        base = torch.as_tensor(k_slab, device=dev) * (ny * nx)
        eli = torch.as_tensor(el_idx, device=dev)
        chunk = max(1, 4_000_000 // offs.shape[0])
        for s in range(0, idx.shape[0], chunk):
            c = idx[s : s + chunk]
            nb = torch.round(c)[:, None, :].long() + offs[None]  # (c, m, 2) as (j, i)
            dist = ((nb.double() - c[:, None, :]).norm(dim=-1) * d).float()
            t = (dist / dr).clamp_(max=tab.shape[1] - 1.001)
            i0 = t.floor().long()
            w = t - i0
            e = eli[s : s + chunk, None].expand_as(i0)
            val = tab[e, i0] * (1 - w) + tab[e, i0 + 1] * w
            flat = base[s : s + chunk, None] + (nb[..., 0] % ny) * nx + nb[..., 1] % nx
            out.index_add_(0, flat.reshape(-1), val.reshape(-1))
    return to_output(out.reshape(shp), like)
