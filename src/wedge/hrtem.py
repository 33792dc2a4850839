"""HRTEM tilt-and-focal series simulation with the multislice forward model.

For each tilt the specimen is rotated to the image orientation (atoms: positions rotated
exactly, each atom's analytic projected potential put whole into the slab holding its
centre, slabs aligned with the voxel slabs of the (Z, Y, X) box; volume:
:func:`rotate_volume`), the exit wave computed by multislice, and one image formed per
defocus value (positive underfocus, measured from the exit surface of the box). Partial
coherence is simulated as incoherent sums (Ren et al. 2020, appendix A1.2-A1.3):
Gauss–Hermite quadrature over a Gaussian focal spread (cheap: the exit wave is shared) and
over a 2-D Gaussian beam-tilt spread (one multislice per tilt sample, with propagator and
transfer function evaluated at q + k_tilt, i.e. an incident plane wave exp(2πi k·r)). Shot
noise: Poisson counts at a dose in e⁻/Å².
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ._backend import resolve_device
from .atoms.potential import potential_volume, slice_potentials
from .atoms.xyz import AtomicModel, read_xyz
from .geometry import euler_to_matrix
from .multislice import MultisliceOptions, _Multislice, _setup, bin_slices, rotate_volume
from .optics import Microscope, focal_spread, gauss_hermite

__all__ = ["HRTEMSeries", "hrtem_tilt_series", "tilt_angles", "write_hrtem_series"]


@dataclasses.dataclass(frozen=True, eq=False)
class HRTEMSeries:
    """A simulated HRTEM tilt-and-focal series.

    Attributes
    ----------
    images : (n_tilts, n_defocus, Y, X) float32
        Intensities, vacuum = 1 (with a dose: Poisson counts / expected counts per pixel).
    angles : (n_tilts,) degrees
        Tilt angles about y; ``euler`` (n_tilts, 3) degrees is (0, θ, 0) per tilt.
    defocus : (n_defocus,) Å
        Positive underfocus, measured from the exit surface of the box; the same at every
        tilt.
    truth : (Z, Y, X) float32
        Potential in V of the untilted specimen.
    pixel_size : float, Å
    dose : float or None
        e⁻/Å² per image (None: noise-free).
    microscope : :class:`wedge.optics.Microscope`
    """

    images: np.ndarray
    angles: np.ndarray
    euler: np.ndarray
    defocus: np.ndarray
    truth: np.ndarray
    pixel_size: float
    dose: float | None
    microscope: Microscope


def tilt_angles(
    tilt_range: tuple[float, float] = (-60.0, 60.0),
    step: float = 3.0,
    missing_wedge: tuple[float, float] | None = None,
) -> np.ndarray:
    """Tilt angles (degrees) from ``tilt_range[0]`` to ``tilt_range[1]`` inclusive in ``step``;
    angles strictly inside ``missing_wedge`` (lo, hi) are left out."""
    if not step > 0:
        raise ValueError(f"tilt step must be positive (degrees), got {step}.")
    lo, hi = tilt_range
    a = np.arange(lo, hi + step * 1e-6, step)
    if missing_wedge is not None:
        a = a[(a <= missing_wedge[0]) | (a >= missing_wedge[1])]
    return a


def _slabs_atoms(model: AtomicModel, euler: np.ndarray, shape, d, n_bin, sigma_th, dev):
    """Slab potentials (S, Y, X) V·Å of the rotated atoms, slabs aligned with the volume box.

    Slab k spans z ∈ [−Z d/2 + k N_B d, −Z d/2 + (k+1) N_B d) like :func:`bin_slices` of the
    (Z, Y, X) box, so a short last slab ends at the box's exit surface Z d/2 (the plane the
    defocus is measured from). :func:`slice_potentials` centres its S·N_B·d slabs on z = 0;
    the atoms are moved by −(S N_B − Z) d/2 to put the padding below the box.
    """
    r = euler_to_matrix(torch.deg2rad(torch.as_tensor(euler, dtype=torch.float64))).numpy()
    pos = model.positions @ r.T
    ns = -(-shape[0] // n_bin)
    pos = pos - np.array([0.0, 0.0, (ns * n_bin - shape[0]) * d / 2])
    return slice_potentials(
        torch.as_tensor(pos),
        model.numbers,
        (ns, shape[1], shape[2]),
        d,
        n_bin * d,
        thermal_sigma=sigma_th,
        device=dev,
    )


def hrtem_tilt_series(
    specimen: AtomicModel | str | os.PathLike | np.ndarray,
    *,
    angles: Any = None,
    tilt_range: tuple[float, float] = (-60.0, 60.0),
    tilt_step: float = 3.0,
    missing_wedge: tuple[float, float] | None = None,
    defocus: Any = (0.0,),
    microscope: Microscope | None = None,
    voxel_size: float = 0.5,
    shape: tuple[int, int, int] | None = None,
    n_bin: int = 1,
    thermal_sigma: float = 0.0,
    dose: float | None = None,
    dose_mode: Literal["per_image", "total"] = "per_image",
    focal_samples: int = 5,
    tilt_samples: int = 3,
    mode: Literal["multislice", "single"] = "multislice",
    seed: int | None = 0,
    device: str | None = None,
) -> HRTEMSeries:
    """Simulate an HRTEM tilt series with several defocus values per tilt.

    Parameters
    ----------
    specimen : AtomicModel, path to an (extended) XYZ file, or (Z, Y, X) potential in V
    angles : tilt angles in degrees (about y); default from ``tilt_range``, ``tilt_step``,
        ``missing_wedge`` (see :func:`tilt_angles`)
    defocus : (k,) Å, positive underfocus, from the exit plane of the box
    microscope : aberrations and coherence (:class:`wedge.optics.Microscope`); 300 kV default
    voxel_size : Å, also the pixel size; shape : (Z, Y, X) box for atoms (default: the model's
        extent plus 5 Å, cubic)
    n_bin : voxels per multislice slab; thermal_sigma : Å rms (atoms only)
    dose : e⁻/Å² per image (``dose_mode="per_image"``) or over the whole series
        (``"total"``, shared equally by all images); None gives noise-free images
    focal_samples, tilt_samples : quadrature points per axis for the focal and beam-tilt
        spreads (used only when the microscope has them)
    """
    mic = microscope or Microscope()
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise ValueError(f"voxel_size must be a positive number of Å, got {voxel_size}.")
    ang = (
        tilt_angles(tilt_range, tilt_step, missing_wedge)
        if angles is None
        else np.atleast_1d(np.asarray(angles, dtype=np.float64))
    )
    if ang.size == 0 or not np.all(np.isfinite(ang)):
        raise ValueError("no finite tilt angles to simulate; check angles / tilt_range.")
    df = np.atleast_1d(np.asarray(defocus, dtype=np.float64))
    if df.ndim != 1 or df.size == 0 or not np.all(np.isfinite(df)):
        raise ValueError("defocus must be a non-empty 1-D list of finite values in Å.")
    if dose is not None and not (np.isfinite(dose) and dose > 0):
        raise ValueError(f"dose must be a positive number of e-/Å² or None, got {dose}.")
    if dose_mode not in ("per_image", "total"):
        raise ValueError(f"dose_mode must be 'per_image' or 'total', got {dose_mode!r}.")
    opts = MultisliceOptions(n_bin=n_bin, mode=mode)
    dev = resolve_device(device)
    d = float(voxel_size)
    model: AtomicModel | None = None
    if isinstance(specimen, (str, os.PathLike)):
        specimen = read_xyz(specimen)
    if isinstance(specimen, AtomicModel):
        model = specimen
        if shape is None:
            ext = 2 * np.abs(model.positions).max() + 10.0 if len(model) else 10.0
            n = int(np.ceil(ext / d))
            shape = (n, n, n)
        truth = potential_volume(
            model.positions, model.numbers, shape, d, thermal_sigma=thermal_sigma, device=dev
        )
    else:
        truth = np.asarray(specimen, dtype=np.float32)
        if truth.ndim != 3:
            raise ValueError(f"a potential specimen must be a (Z, Y, X) array, got {truth.shape}.")
        shape = truth.shape
    truth_t = torch.as_tensor(truth, device=dev)
    euler = np.zeros((ang.size, 3))
    euler[:, 1] = ang
    lam = mic.wavelength
    fs = focal_spread(mic)
    f_nodes, f_w = gauss_hermite(focal_samples if fs > 0 else 1, fs)
    s_rad = mic.illumination_semiangle * 1e-3
    t_nodes, t_w = gauss_hermite(tilt_samples if s_rad > 0 else 1, s_rad / lam)
    df_all = (df[:, None] + f_nodes[None, :]).reshape(-1)
    psi0 = torch.ones(shape[1:], dtype=torch.complex64, device=dev)
    images = np.zeros((ang.size, df.size, shape[1], shape[2]), dtype=np.float32)
    for i, e in enumerate(euler):
        if model is not None:
            slabs = torch.as_tensor(_slabs_atoms(model, e, shape, d, n_bin, thermal_sigma, dev))
        else:
            slabs = bin_slices(rotate_volume(truth_t, e), n_bin) * d
        if mode == "single":
            slabs = slabs.sum(0, keepdim=True)
        acc = torch.zeros((df.size, shape[1], shape[2]), dtype=torch.float64, device=dev)
        for ty, wy in zip(t_nodes, t_w, strict=True):
            for tx, wx in zip(t_nodes, t_w, strict=True):
                prop, h = _setup(
                    tuple(shape[1:]),
                    shape[0],
                    d,
                    df_all,
                    mic,
                    opts,
                    dev,
                    tilt=(float(ty), float(tx)),
                )
                with torch.no_grad():
                    img = _Multislice.apply(
                        slabs.float(), psi0, prop, h, mic.sigma, 0.0, len(slabs) + 1
                    )
                img = img.reshape(df.size, f_w.size, *shape[1:]).double()
                acc += (
                    wy * wx * (img * torch.as_tensor(f_w, device=dev)[None, :, None, None]).sum(1)
                )
        images[i] = acc.cpu().numpy()
    per_image = None
    if dose is not None:
        per_image = dose if dose_mode == "per_image" else dose / images.shape[0] / images.shape[1]
        rng = np.random.default_rng(seed)
        expected = per_image * d * d
        images = (rng.poisson(np.clip(images, 0, None) * expected) / expected).astype(np.float32)
    return HRTEMSeries(
        images, ang, euler, df, np.asarray(truth, dtype=np.float32), d, per_image, mic
    )


def write_hrtem_series(series: HRTEMSeries, out_dir: str | os.PathLike) -> list[Path]:
    """Write a simulated series to ``out_dir`` in wedge's HRTEM layout, every file atomically.

    Files: images.mrc ((n_tilts·n_defocus, Y, X), tilt-major), truth_potential.mrc (V),
    angles.tlt (degrees), defocus.txt (Å, one row per tilt) and the sidecar hrtem.json
    (pixel size, counts, image order, defocus table, microscope with units, dose); see
    :mod:`wedge.io.hrtem` and docs/multislice.md. :func:`wedge.read_tiltseries` reads the
    directory back as a (n_tilts, n_defocus, Y, X) :class:`wedge.TiltSeries`.

    Returns
    -------
    list of Path
        The files written.
    """
    from .io.hrtem import write_hrtem

    return write_hrtem(
        out_dir,
        series.images,
        series.angles,
        series.defocus,
        pixel_size=series.pixel_size,
        microscope=series.microscope,
        euler=series.euler,
        dose=series.dose,
        truth=series.truth,
    )
