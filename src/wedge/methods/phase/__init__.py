"""Multislice phase-retrieval tomography: methods ``multislice`` and ``singleslice``.

Reconstructs the 3D electrostatic potential (Z, Y, X) in V from an HRTEM tilt + focal series
(images (n_tilts, n_defocus, Y, X), vacuum = 1) through the multislice forward model
(Ren, Ophus, Chen & Waller, Ultramicroscopy 208, 112860 (2020); Lee et al., PhaseT3M (2025)).

* ``multislice``: the rotated volume is cut into slabs of ``n_bin`` voxels (Ren §2.3 and
  eq. A.11); multiple scattering is modelled.
* ``singleslice``: the projection approximation: one phase grating of the whole projected
  potential per tilt (PhaseT3M's single-slice model, the weak-object limit).

Loss: amplitude Σ‖√I − √Î‖² (Ren eq. 5, default), intensity Σ‖I − Î‖², or the Poisson
deviance Σ Î − I − I log(Î/I) (normalised intensities; the dose factor is dropped).
The reconstruction is coherent, as Ren's: partial coherence belongs to the simulation.
Schemes, step normalisation and refinement: :mod:`.iteration`; the per-tilt model:
:mod:`.frame`; the proximal operators: :mod:`.prox`. docs/multislice-reconstruction.md has
the user guide.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Literal

import numpy as np
import torch

from ...parameters import AcquisitionParameters
from ...problem import Problem
from ...runner import RunOptions, RunResult, data_weight, run
from ..registry import register_method
from .frame import BeamFrame, binning_limit
from .iteration import LOSS_CURVATURE, REFINE_LR, PhaseIteration
from .prox import soft_threshold, tv_prox_fgp

__all__ = [
    "PhaseOptions",
    "BinningLimitWarning",
    "BeamFrame",
    "PhaseIteration",
    "binning_limit",
    "default_n_bin",
    "tv_prox_fgp",
    "soft_threshold",
    "LOSS_CURVATURE",
    "REFINE_LR",
    "DEFAULT_WEIGHT",
]

#: Default prox weight λ (V) per regulariser, as measured on the validation particles
#: (docs/multislice-reconstruction.md): TV 5 V at ∞, 50,000 and 7,000 e⁻/Å²; L1 0.5 V.
DEFAULT_WEIGHT = {"tv": 5.0, "l1": 0.5}


class BinningLimitWarning(UserWarning):
    """``n_bin`` makes slabs thicker than Ren's axial-resolution limit (Eq. A.14)."""


@dataclasses.dataclass
class PhaseOptions:
    """Options of the ``multislice`` and ``singleslice`` methods.

    Parameters
    ----------
    loss : {"amplitude", "intensity", "poisson"}
        Data term: amplitude (Ren eq. 5; suited to Poisson noise), intensity (Gaussian
        noise), or the Poisson deviance.
    scheme : {"ren", "gd", "adam"}
        ``ren``: Ren Algorithm 3 (sequential per-tilt gradient steps, prox, Nesterov
        momentum); ``gd``: PhaseT3M Algorithm 1 (per-tilt gradient step and positivity, no
        momentum); ``adam``: Adam on the per-tilt gradients.
    step : float
        ``ren``/``gd``: normalised step (1 = the weak-phase 1/L of one tilt's loss, see
        :mod:`wedge.methods.phase.iteration`); ``adam``: learning rate in V.
    regulariser : {"none", "tv", "l1"}
        Proximal step after each sweep (Ren §2.5): isotropic TV (Beck–Teboulle FGP) or L1
        soft threshold.
    weight : float or None
        Strength λ of that prox in V: the prox solves argmin ½‖u − U‖² + λR(u) once per outer
        iteration (Ren's α·τ of eq. 6). L1: voxels below λ V are set to 0. None (default):
        :data:`DEFAULT_WEIGHT` of the regulariser, TV 5 V (worked at ∞, 50,000 and
        7,000 e⁻/Å² on the validation particles) and L1 0.5 V (the value measured, at
        50,000 e⁻/Å²); docs/multislice-reconstruction.md.
    tv_iterations : int
        FGP iterations of the TV prox.
    positivity : bool
        V ≥ 0 (Ren: a real, positive potential; inside the prox).
    support : array (Z, Y, X) of 0/1, optional
        Voxels outside are set to 0.
    n_bin : int, optional
        Voxels per multislice slab N_B; default min(10, Ren's limit Δz/d of Eq. A.14).
        Ignored by ``singleslice``.
    padding : int
        Voxels added on every side of the beam-frame box so the rotated volume is not
        clipped at high tilt (and Fresnel fringes do not wrap).
    wave_checkpoint : int, optional
        Store every c-th wave of a tilt's stack and recompute the others in the gradient.
    refine_lr : float
        Multiplier of the Adam learning rates of refined parameters (``REFINE_LR``).
    refine_after : int
        First outer iteration (1-based) at which refined parameters move.
    refine_decay : float
        Factor by which the learning rates of refined parameters shrink per iteration.
    exact_history : bool
        Score the history on V⁽ˢ⁾ (one extra forward pass per iteration) instead of on
        the predictions made during the sweep.
    focal_shifts : array (n_tilts, n_defocus, 2), optional
        Start values of the focal alignment: (dx, dy) pixels of each image on top of its
        tilt's ``shifts`` (zero by default). Refined with ``refine=["focal_shifts"]``,
        each tilt's mean held at its starting value (the gauge against ``shifts``).
    """

    loss: Literal["amplitude", "intensity", "poisson"] = "amplitude"
    scheme: Literal["ren", "gd", "adam"] = "ren"
    step: float = 0.5
    regulariser: Literal["none", "tv", "l1"] = "none"
    weight: float | None = None
    tv_iterations: int = 20
    positivity: bool = True
    support: Any = None
    n_bin: int | None = None
    padding: int = 0
    wave_checkpoint: int | None = None
    refine_lr: float = 1.0
    refine_after: int = 1
    refine_decay: float = 0.9
    exact_history: bool = False
    focal_shifts: Any = None

    @property
    def prox_weight(self) -> float:
        """λ in V: ``weight``, or the regulariser's :data:`DEFAULT_WEIGHT` when None."""
        if self.weight is not None:
            return float(self.weight)
        return DEFAULT_WEIGHT.get(self.regulariser, 0.0)

    def __post_init__(self) -> None:
        if self.loss not in LOSS_CURVATURE:
            raise ValueError(f"loss must be amplitude, intensity or poisson, got {self.loss!r}.")
        if self.scheme not in ("ren", "gd", "adam"):
            raise ValueError(f"scheme must be ren, gd or adam, got {self.scheme!r}.")
        if self.regulariser not in ("none", "tv", "l1"):
            raise ValueError(f"regulariser must be none, tv or l1, got {self.regulariser!r}.")
        if not (math.isfinite(self.step) and self.step > 0):
            raise ValueError(f"step must be a positive number, got {self.step}.")
        if self.weight is not None and not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"weight must be a number of volts ≥ 0, got {self.weight}.")
        if self.tv_iterations < 1:
            raise ValueError(f"tv_iterations must be ≥ 1, got {self.tv_iterations}.")
        if self.n_bin is not None and self.n_bin < 1:
            raise ValueError(f"n_bin must be a positive number of voxels, got {self.n_bin}.")
        if self.padding < 0:
            raise ValueError(f"padding must be ≥ 0 voxels, got {self.padding}.")
        if self.wave_checkpoint is not None and self.wave_checkpoint < 1:
            raise ValueError(f"wave_checkpoint must be ≥ 1 or None, got {self.wave_checkpoint}.")
        if not (math.isfinite(self.refine_lr) and self.refine_lr > 0):
            raise ValueError(f"refine_lr must be a positive number, got {self.refine_lr}.")
        if not 0 < self.refine_decay <= 1:
            raise ValueError(f"refine_decay must lie in (0, 1], got {self.refine_decay}.")
        if self.refine_after < 1:
            raise ValueError(f"refine_after must be ≥ 1, got {self.refine_after}.")


def default_n_bin(pixel_size: float, wavelength_A: float) -> int:
    """min(10, ⌊Δz/d⌋) with Δz Ren's limit (Eq. A.14): Ren's N_B = 10 at d = 0.5 Å."""
    return max(1, min(10, int(binning_limit(pixel_size, wavelength_A) / pixel_size)))


def _measurements(problem: Problem, name: str) -> torch.Tensor:
    """Validated intensities (n, k, Y, X) on the device; every error before any work."""
    s = problem.series
    if s.microscope is None:
        raise ValueError(
            f"method {name!r} needs the microscope (TiltSeries.microscope: energy, C3, "
            "aperture); pass microscope=wedge.optics.Microscope(...)."
        )
    if s.defocus is None:
        raise ValueError(
            f"method {name!r} needs the defocus of every image (TiltSeries.defocus, Å, "
            "positive underfocus); pass defocus=..."
        )
    imgs = problem.images()
    if imgs.ndim == 3:
        if s.defocus.ndim == 2 and s.defocus.shape[1] != 1:
            raise ValueError(
                f"the images are (n, Y, X), one per tilt, but defocus has shape "
                f"{s.defocus.shape}; give one defocus per image, shape ({s.n_tilts},), or "
                "the focal series as 4D images (n_tilts, n_defocus, Y, X)."
            )
        imgs = imgs[:, None]
    neg = int((imgs < 0).sum())
    if neg:
        raise ValueError(
            f"{neg} pixels of the images are negative; HRTEM intensities must be ≥ 0 and "
            "normalised so that vacuum is 1 (divide by the flat-field / vacuum mean)."
        )
    binning_limit(s.pixel_size, s.microscope.wavelength)
    if tuple(problem.volume_shape[1:]) != tuple(imgs.shape[-2:]):
        raise ValueError(
            f"the volume's (Y, X) = {tuple(problem.volume_shape[1:])} must equal the image "
            f"shape {tuple(imgs.shape[-2:])} (voxel size = pixel size); set only thickness."
        )
    return imgs


def _reconstruct(
    problem: Problem,
    iterations: int,
    x0: torch.Tensor | None,
    callbacks: Any,
    options: PhaseOptions,
    run_options: RunOptions,
    mode: str,
) -> RunResult:
    meas = _measurements(problem, mode)
    s = problem.series
    lam = s.microscope.wavelength
    limit = binning_limit(s.pixel_size, lam)
    n_bin = options.n_bin or default_n_bin(s.pixel_size, lam)
    if mode == "multislice" and n_bin * s.pixel_size > limit:
        warnings.warn(
            f"n_bin={n_bin} makes {n_bin * s.pixel_size:.3g} Å slabs, thicker than Ren's "
            f"axial-resolution limit Δz = {limit:.3g} Å (Eq. A.14) at {s.pixel_size:g} Å "
            f"pixels; use n_bin ≤ {int(limit / s.pixel_size)}.",
            BinningLimitWarning,
            stacklevel=3,
        )
    if options.support is not None:
        sup = np.asarray(options.support)
        if sup.shape != tuple(problem.volume_shape):
            raise ValueError(
                f"the support mask has shape {sup.shape} but the volume is "
                f"{tuple(problem.volume_shape)}; give a (Z, Y, X) mask."
            )
    weight = data_weight(meas, run_options)
    alg = PhaseIteration(problem, options, weight, mode, n_bin, meas)
    x = torch.zeros(problem.volume_shape, device=problem.device) if x0 is None else x0

    def record_loss(rec: dict[str, float], _x: torch.Tensor) -> None:
        rec["loss"] = alg.last_loss

    result = run(alg, x, iterations, run_options, (record_loss, *callbacks), name=mode)
    if not problem.refine:
        return result
    refined = AcquisitionParameters(problem.series, (), problem.device)  # no grad attached
    refined.load_state_dict(alg.params.state_dict())
    return dataclasses.replace(result, parameters=refined)


def _extra_bytes(volume_shape: tuple[int, int, int], options: PhaseOptions) -> int:
    """One tilt's wave stack (n_bin 1 worst case, 3 defocus) and three beam-frame volumes."""
    nz, ny, nx = (s + 2 * options.padding for s in volume_shape)
    n_bin = options.n_bin or 1
    slabs = -(-nz // n_bin)
    keep = slabs if options.wave_checkpoint is None else slabs // options.wave_checkpoint + 1
    return 8 * ny * nx * (keep + 16) + 3 * 4 * nz * ny * nx


_COMMON = dict(kind="model", default_iterations=20, work_volumes=6.0, work_images=3.0)


@register_method(
    "multislice",
    PhaseOptions,
    "multislice phase-retrieval tomography of HRTEM focal series (Ren et al. 2020)",
    extra_bytes=_extra_bytes,
    **_COMMON,
)
def multislice(
    problem: Problem,
    iterations: int,
    x0: torch.Tensor | None = None,
    callbacks: Any = (),
    *,
    options: PhaseOptions,
    run: RunOptions,
) -> RunResult:
    """Multislice phase-retrieval tomography (see the module notes and :class:`PhaseOptions`)."""
    return _reconstruct(problem, iterations, x0, callbacks, options, run, "multislice")


@register_method(
    "singleslice",
    PhaseOptions,
    "single-slice (projection-approximation) phase-retrieval tomography (PhaseT3M)",
    extra_bytes=_extra_bytes,
    **_COMMON,
)
def singleslice(
    problem: Problem,
    iterations: int,
    x0: torch.Tensor | None = None,
    callbacks: Any = (),
    *,
    options: PhaseOptions,
    run: RunOptions,
) -> RunResult:
    """Single-slice phase-retrieval tomography: one phase grating per tilt."""
    return _reconstruct(problem, iterations, x0, callbacks, options, run, "singleslice")
