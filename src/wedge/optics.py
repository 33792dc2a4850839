"""Electron optics: wavelength, interaction parameter, aberrations, transfer function, envelopes.

Units: energies in eV (accelerating voltage × e), lengths in Å (defocus, Cs, C5, Cc,
astigmatism), angles in mrad, spatial frequencies q in 1/Å (no 2π). Defocus is positive
for underfocus (wedge's TiltSeries convention, Kirkland's sign).

Formulas (E. J. Kirkland, *Advanced Computing in Electron Microscopy*, 2nd ed., 2010):

* λ = h c / √(eE (2 m0 c² + eE))                                      (eq. 2.5)
* σ = 2π m e λ / h² = (2π / (λ E)) (m0c² + eE) / (2 m0c² + eE)   rad/(V·Å)   (eq. 5.6)
* χ(q) = π λ q² (−Δf + ½ C3 λ² q² + ⅓ C5 λ⁴ q⁴ + A2 cos 2(φ − φ_A))  (eq. 3.42, with
  two-fold astigmatism A2 = C12; see :func:`aberration_phase`)
* H(q) = A(q) exp(−i χ(q)); weak-phase CTF: I(q) = δ(q) + 2σ v(q) sin χ(q)   (eq. 3.63)
* Temporal envelope  E_t = exp(−½ (π λ Δ)² q⁴), focal spread Δ = Cc ΔE/E    (eq. 3.69)
* Spatial envelope   E_s = exp(−2 (π s / λ)² (C3 λ³ q³ − Δf λ q)²), s the rms illumination
  semi-angle per axis (eq. 3.70 with α = √2 s)
* Scherzer defocus Δf_S = √(4/3 C3 λ); point resolution 0.66 C3^¼ λ^¾      (eqs. 3.64-3.66)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

__all__ = [
    "Microscope",
    "wavelength",
    "interaction_parameter",
    "spatial_frequencies",
    "aberration_phase",
    "aperture_mask",
    "temporal_envelope",
    "spatial_envelope",
    "transfer_function",
    "weak_phase_ctf",
    "scherzer_defocus",
    "point_resolution",
    "focal_spread",
    "gauss_hermite",
]

_H = 6.62607015e-34  # J s
_C = 299792458.0  # m / s
_M0 = 9.1093837015e-31  # kg
_QE = 1.602176634e-19  # C
_M0C2_EV = _M0 * _C**2 / _QE  # 510998.95 eV


def _check_energy(energy: float) -> float:
    e = float(energy)
    if not (np.isfinite(e) and e > 0):
        raise ValueError(
            f"energy must be a positive number of eV (e.g. 300e3 for 300 kV), got {energy}."
        )
    return e


def wavelength(energy: float) -> float:
    """Relativistic electron wavelength λ in Å for kinetic energy ``energy`` (eV)."""
    e = _check_energy(energy) * _QE
    return _H * _C / np.sqrt(e * (2 * _M0 * _C**2 + e)) * 1e10


def interaction_parameter(energy: float) -> float:
    """Interaction parameter σ in rad/(V·Å): the phase shift per V·Å of projected potential."""
    e = _check_energy(energy)
    lam = wavelength(e)
    return 2 * np.pi / (lam * e) * (_M0C2_EV + e) / (2 * _M0C2_EV + e)


@dataclasses.dataclass(frozen=True)
class Microscope:
    """Imaging conditions of a conventional TEM (plane-wave illumination).

    Attributes
    ----------
    energy : float, eV
        Electron kinetic energy (300e3 for 300 kV).
    cs : float, Å
        Third-order spherical aberration C3 (1 mm = 1e7 Å).
    c5 : float, Å
        Fifth-order spherical aberration.
    astigmatism : float, Å
        Two-fold astigmatism amplitude A2 (C12); ``astigmatism_angle`` in degrees.
    aperture : float or None, mrad
        Objective aperture semi-angle (hard cut-off at q = aperture/λ).
    cc : float, Å
        Chromatic aberration coefficient; with ``energy_spread`` (rms, eV) gives the focal
        spread Δ = Cc ΔE/E unless ``focal_spread`` (rms, Å) is given directly.
    illumination_semiangle : float, mrad
        rms beam divergence per axis (spatial partial coherence).
    """

    energy: float = 300e3
    cs: float = 0.0
    c5: float = 0.0
    astigmatism: float = 0.0
    astigmatism_angle: float = 0.0
    aperture: float | None = None
    cc: float = 0.0
    energy_spread: float = 0.0
    focal_spread: float | None = None
    illumination_semiangle: float = 0.0

    def __post_init__(self) -> None:
        _check_energy(self.energy)
        for name in ("cs", "c5", "astigmatism", "astigmatism_angle"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite.")
        for name in ("cc", "energy_spread", "illumination_semiangle"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v}.")
        if self.aperture is not None and not (self.aperture > 0):
            raise ValueError(
                f"aperture must be a positive semi-angle in mrad or None, got {self.aperture}."
            )
        if self.focal_spread is not None and not (self.focal_spread >= 0):
            raise ValueError(f"focal_spread must be >= 0 Å or None, got {self.focal_spread}.")

    @property
    def wavelength(self) -> float:
        """λ in Å."""
        return wavelength(self.energy)

    @property
    def sigma(self) -> float:
        """Interaction parameter σ in rad/(V·Å)."""
        return interaction_parameter(self.energy)


def focal_spread(microscope: Microscope) -> float:
    """rms focal spread Δ in Å: ``microscope.focal_spread`` or Cc·ΔE/E."""
    if microscope.focal_spread is not None:
        return float(microscope.focal_spread)
    return microscope.cc * microscope.energy_spread / microscope.energy


def spatial_frequencies(
    shape: tuple[int, int], pixel_size: float, device: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """FFT-ordered frequency grids (qy, qx) in 1/Å, each (Y, X) float64."""
    if not (np.isfinite(pixel_size) and pixel_size > 0):
        raise ValueError(f"pixel_size must be a positive number of Å, got {pixel_size}.")
    qy = torch.fft.fftfreq(int(shape[0]), d=pixel_size, dtype=torch.float64, device=device)
    qx = torch.fft.fftfreq(int(shape[1]), d=pixel_size, dtype=torch.float64, device=device)
    return torch.meshgrid(qy, qx, indexing="ij")


def aberration_phase(
    qy: torch.Tensor, qx: torch.Tensor, defocus: Any, microscope: Microscope
) -> torch.Tensor:
    """Aberration phase χ(q) in radians, batched over ``defocus`` (Å): (..., Y, X).

    χ = π λ q² [−Δf + ½ C3 λ² q² + ⅓ C5 λ⁴ q⁴ + A2 cos 2(φ_q − φ_A)] (Kirkland eq. 3.42;
    the astigmatism term uses the convention that A2 adds to −Δf along φ_A).
    """
    lam = microscope.wavelength
    df = torch.as_tensor(defocus, dtype=torch.float64, device=qx.device)[..., None, None]
    q2 = qx**2 + qy**2
    poly = -df + 0.5 * microscope.cs * lam**2 * q2 + microscope.c5 * lam**4 * q2**2 / 3.0
    if microscope.astigmatism:
        phi = torch.atan2(qy, qx)
        poly = poly + microscope.astigmatism * torch.cos(
            2 * (phi - np.deg2rad(microscope.astigmatism_angle))
        )
    return np.pi * lam * q2 * poly


def aperture_mask(qy: torch.Tensor, qx: torch.Tensor, microscope: Microscope) -> torch.Tensor:
    """Objective aperture A(q): 1 inside q ≤ aperture/λ, else 0 (all ones without aperture)."""
    q = torch.sqrt(qx**2 + qy**2)
    if microscope.aperture is None:
        return torch.ones_like(q)
    return (q <= microscope.aperture * 1e-3 / microscope.wavelength).to(q.dtype)


def temporal_envelope(q: Any, microscope: Microscope) -> Any:
    """E_t(q) = exp(−½ (π λ Δ q²)²), Δ the rms focal spread (Kirkland eq. 3.69)."""
    lam, d = microscope.wavelength, focal_spread(microscope)
    if isinstance(q, torch.Tensor):
        return torch.exp(-0.5 * (np.pi * lam * d * q**2) ** 2)
    return np.exp(-0.5 * (np.pi * lam * d * np.asarray(q) ** 2) ** 2)


def spatial_envelope(q: Any, defocus: Any, microscope: Microscope) -> Any:
    """E_s(q) = exp(−2 (π s/λ)² (C3 λ³ q³ − Δf λ q)²), s the rms semi-angle (rad)."""
    lam, s = microscope.wavelength, microscope.illumination_semiangle * 1e-3
    if isinstance(q, torch.Tensor):
        df = torch.as_tensor(defocus, dtype=q.dtype, device=q.device)[..., None, None]
        grad = microscope.cs * lam**3 * q**3 - df * lam * q
        return torch.exp(-2 * (np.pi * s / lam) ** 2 * grad**2)
    q = np.asarray(q, dtype=np.float64)
    grad = microscope.cs * lam**3 * q**3 - np.asarray(defocus, dtype=np.float64) * lam * q
    return np.exp(-2 * (np.pi * s / lam) ** 2 * grad**2)


def transfer_function(
    shape: tuple[int, int],
    pixel_size: float,
    defocus: Any,
    microscope: Microscope,
    *,
    envelopes: bool = False,
    tilt: tuple[float, float] = (0.0, 0.0),
    device: Any = None,
) -> torch.Tensor:
    """Coherent transfer function H(q) = A(q) exp(−iχ(q)) on the FFT grid: (k, Y, X) complex128.

    Parameters
    ----------
    shape : (Y, X); pixel_size : Å
    defocus : float or (k,) Å, positive underfocus
    envelopes : multiply by the temporal and spatial envelopes (quasi-coherent approximation)
    tilt : (qy, qx) in 1/Å, evaluate H(q + tilt) (beam-tilt sample of an incoherent sum)
    """
    qy, qx = spatial_frequencies(shape, pixel_size, device)
    qy, qx = qy + tilt[0], qx + tilt[1]
    df = torch.atleast_1d(torch.as_tensor(defocus, dtype=torch.float64, device=qx.device))
    chi = aberration_phase(qy, qx, df, microscope)
    h = aperture_mask(qy, qx, microscope) * torch.exp(-1j * chi)
    if envelopes:
        q = torch.sqrt(qx**2 + qy**2)
        h = h * temporal_envelope(q, microscope) * spatial_envelope(q, df, microscope)
    return h


def weak_phase_ctf(q: Any, defocus: float, microscope: Microscope) -> np.ndarray:
    """Linear phase-contrast transfer 2 A(q) sin χ(q) (radially, no astigmatism), with envelopes.

    The image of a weak phase object ψ = 1 + iσv is I(q) = δ(q) + σ v(q) · 2 sin χ(q).
    """
    q = np.asarray(q, dtype=np.float64)
    lam = microscope.wavelength
    chi = (
        np.pi
        * lam
        * q**2
        * (-defocus + 0.5 * microscope.cs * lam**2 * q**2 + microscope.c5 * lam**4 * q**4 / 3)
    )
    a = np.ones_like(q) if microscope.aperture is None else (q <= microscope.aperture * 1e-3 / lam)
    env = temporal_envelope(q, microscope) * spatial_envelope(q, defocus, microscope)
    return 2 * a * np.sin(chi) * env


def scherzer_defocus(energy: float, cs: float) -> float:
    """Scherzer defocus Δf = √(4/3 C3 λ) in Å (underfocus positive)."""
    if not cs > 0:
        raise ValueError(f"cs must be positive (Å) for a Scherzer defocus, got {cs}.")
    return float(np.sqrt(4.0 / 3.0 * cs * wavelength(energy)))


def point_resolution(energy: float, cs: float) -> float:
    """Point resolution 1/q0 (Å): first zero of sin χ at Scherzer defocus, ≈ 0.66 C3^¼ λ^¾."""
    lam = wavelength(energy)
    q0 = np.sqrt(2 * scherzer_defocus(energy, cs) / (cs * lam**2))
    return float(1.0 / q0)


def gauss_hermite(n: int, rms: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (sum 1) to average f(x) over a Gaussian of standard deviation ``rms``."""
    if n < 1:
        raise ValueError(f"the number of quadrature points must be >= 1, got {n}.")
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x * rms, w / w.sum()
