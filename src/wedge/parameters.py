"""Acquisition parameters as tensors, some of them refinable by gradients.

Microscopes misreport where each image came from. A method with a nonlinear or learned
forward model can refine these jointly with the volume: it asks
:class:`AcquisitionParameters` for the tensors it needs (rotation matrices, shifts,
defocus, C3), lets gradients flow to them through a differentiable model
(:func:`~wedge.projectors.general.project_rays`,
:func:`~wedge.projectors.fourier.fourier_slice_project`, :mod:`wedge.models`), steps an
optimiser on :meth:`AcquisitionParameters.refined`, and returns them;
:meth:`AcquisitionParameters.to_series` makes the refined :class:`~wedge.TiltSeries`.

Refinable names (:data:`REFINABLE`):

============ ================ =======================================================
name         shape, unit      what
============ ================ =======================================================
shifts       (n, 2) pixels    (dx, dy) of each image, as ``TiltSeries.shifts``
tilt         (n,) degrees     tilt angle θ of each image
phi          (n,) degrees     Euler φ of each image
psi          (n,) degrees     Euler ψ of each image
tilt_axis    () degrees       in-plane tilt-axis angle α (one for the series)
defocus      (n, k) Å         defocus of each image (HRTEM; positive underfocus)
c3           () Å             spherical aberration C3 (HRTEM; one for the series)
focal_shifts (n, k, 2) pixels (dx, dy) of each image of a tilt's focal series on top
                              of the tilt's ``shifts`` (HRTEM focal alignment; None
                              without defocus). Not a ``TiltSeries`` field: start
                              values go to the constructor, and :meth:`to_series`
                              registers the images instead
============ ================ =======================================================

The tensors are float64 leaves on the problem's device; rotation matrices follow
:mod:`wedge.geometry`: ``Z(α) Z(φ) Y(θ) X(ψ)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from .geometry import euler_to_matrix, rotation_z
from .tiltseries import TiltSeries

__all__ = ["AcquisitionParameters", "REFINABLE", "check_refine"]

REFINABLE = ("shifts", "tilt", "phi", "psi", "tilt_axis", "defocus", "c3", "focal_shifts")


def check_refine(refine: Iterable[str] | str | None, series: TiltSeries) -> tuple[str, ...]:
    """Validate the names of the parameters to refine against :data:`REFINABLE` and ``series``.

    Raises
    ------
    ValueError
        An unknown name, ``defocus``/``c3`` for a series without defocus or microscope, or
        ``focal_shifts`` for a series that is not a focal series.
    """
    if refine is None:
        return ()
    names = (refine,) if isinstance(refine, str) else tuple(refine)
    unknown = [n for n in names if n not in REFINABLE]
    if unknown:
        raise ValueError(
            f"cannot refine {', '.join(map(repr, unknown))}; refinable acquisition parameters "
            f"are: {', '.join(REFINABLE)}."
        )
    if "defocus" in names and series.defocus is None:
        raise ValueError(
            "refine='defocus' needs a series with defocus values (TiltSeries.defocus)."
        )
    if "c3" in names and series.microscope is None:
        raise ValueError("refine='c3' needs a series with a microscope (TiltSeries.microscope).")
    if "focal_shifts" in names and not (series.is_focal_series and series.defocus is not None):
        raise ValueError(
            "refine='focal_shifts' aligns the images within each tilt's focal series and needs "
            "4D images (n_tilts, n_defocus ≥ 2, Y, X) with defocus; refine 'shifts' instead."
        )
    return tuple(dict.fromkeys(names))


class AcquisitionParameters:
    """The acquisition parameters of a :class:`~wedge.TiltSeries` as tensors.

    Parameters
    ----------
    series : TiltSeries
    refine : iterable of str
        Names from :data:`REFINABLE` whose tensors require gradients.
    device : torch device
    focal_shifts : array (n, k, 2), pixels, optional
        Start values of :attr:`focal_shifts` (zero when not given); only for a series with
        defocus (k = the defocus columns).

    Attributes
    ----------
    shifts : tensor (n, 2), pixels
    tilt, phi, psi : tensors (n,), degrees
    tilt_axis : tensor (), degrees
    defocus : tensor (n, k) Å, or None
    c3 : tensor () Å, or None
    focal_shifts : tensor (n, k, 2) pixels, or None
        (dx, dy) of image j of tilt i on top of ``shifts[i]`` (so image (i, j) is translated
        by ``shifts[i] + focal_shifts[i, j]``); None for a series without defocus.
    """

    def __init__(
        self,
        series: TiltSeries,
        refine: Iterable[str] = (),
        device: torch.device | str = "cpu",
        *,
        focal_shifts: Any = None,
    ) -> None:
        self.refine = check_refine(tuple(refine), series)
        dev = torch.device(device)

        def leaf(a: Any, name: str) -> torch.Tensor:
            t = torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, device=dev)
            return t.requires_grad_(name in self.refine)

        e = series.euler_angles()
        self.shifts = leaf(
            series.shifts if series.shifts is not None else np.zeros((series.n_tilts, 2)),
            "shifts",
        )
        self.phi = leaf(e[:, 0], "phi")
        self.tilt = leaf(e[:, 1], "tilt")
        self.psi = leaf(e[:, 2], "psi")
        self.tilt_axis = leaf(series.tilt_axis_angle, "tilt_axis")
        df = series.defocus
        if df is not None and df.ndim == 1:
            df = df[:, None]
        self.defocus = None if df is None else leaf(df, "defocus")
        mic = series.microscope
        self.c3 = None if mic is None else leaf(mic.cs, "c3")
        self.focal_shifts = None
        if df is not None:
            shape = (df.shape[0], df.shape[1], 2)
            fs = np.zeros(shape) if focal_shifts is None else np.asarray(focal_shifts, float)
            if fs.shape != shape or not np.all(np.isfinite(fs)):
                raise ValueError(
                    f"focal_shifts must be finite (dx, dy) pixels of shape {shape} (tilts, "
                    f"defocus, 2), got shape {fs.shape}; give one pair per image."
                )
            self.focal_shifts = leaf(fs, "focal_shifts")
        elif focal_shifts is not None:
            raise ValueError(
                "focal_shifts were given for a series without defocus; they align the images "
                "of a focal series (set TiltSeries.defocus) — use shifts otherwise."
            )

    # ------------------------------------------------------------------ tensors
    _NAMES = ("shifts", "phi", "tilt", "psi", "tilt_axis", "defocus", "c3", "focal_shifts")

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every parameter tensor by name (None entries left out)."""
        out = {}
        for name in self._NAMES:
            t = getattr(self, name)
            if t is not None:
                out[name] = t
        return out

    def refined(self) -> list[torch.Tensor]:
        """The tensors being refined (to hand to an optimiser)."""
        return [getattr(self, n) for n in self.refine]

    def euler(self) -> torch.Tensor:
        """(φ, θ, ψ) per image in degrees, (n, 3), differentiable."""
        return torch.stack([self.phi, self.tilt, self.psi], dim=-1)

    def matrices(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Rotation matrices ``Z(α) Z(φ) Y(θ) X(ψ)``, (n, 3, 3), differentiable in every angle.

        Equal to :meth:`wedge.Geometry.matrices` of the series' geometry when nothing moved.
        """
        r = euler_to_matrix(torch.deg2rad(self.euler()))
        r = rotation_z(torch.deg2rad(self.tilt_axis)) @ r
        return r.to(dtype)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Detached copies of every tensor (for checkpoints; loads with weights_only=True)."""
        return {k: v.detach().clone() for k, v in self.tensors().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy values from :meth:`state_dict` into the tensors (gradients kept as they are)."""
        with torch.no_grad():
            for k, v in self.tensors().items():
                if k not in state or tuple(state[k].shape) != tuple(v.shape):
                    raise ValueError(f"the parameter state has no {k} of shape {tuple(v.shape)}.")
                v.copy_(state[k])

    # ------------------------------------------------------------------ back to a series
    def to_series(self, series: TiltSeries) -> TiltSeries:
        """``series`` with these parameter values (the images are shared, not copied).

        A ``TiltSeries`` has no field for :attr:`focal_shifts`: where any is non-zero, the
        images are registered instead, each image (i, j) translated by −focal_shifts[i, j]
        (Fourier phase ramp, periodic, :func:`wedge.models.shift_images`; a copy, with a
        provenance step), so that the returned series needs zero focal shifts.
        """
        e = self.euler().detach().cpu().numpy()
        sh = self.shifts.detach().cpu().numpy()
        changes: dict[str, Any] = {
            "angles": e[:, 1].copy(),
            "euler": None if not (np.any(e[:, 0]) or np.any(e[:, 2])) else e,
            "shifts": sh if np.any(sh) else None,
            "tilt_axis_angle": float(self.tilt_axis.detach()),
        }
        if self.defocus is not None:
            df = self.defocus.detach().cpu().numpy()
            changes["defocus"] = df[:, 0] if series.defocus.ndim == 1 else df
        if self.c3 is not None:
            changes["microscope"] = dataclasses.replace(
                series.microscope, cs=float(self.c3.detach())
            )
        if self.focal_shifts is not None and bool(torch.any(self.focal_shifts != 0)):
            from .models import shift_images

            fs = self.focal_shifts.detach().cpu()
            imgs = torch.as_tensor(series.images)
            flat = imgs.reshape(-1, *imgs.shape[-2:])
            moved = shift_images(flat, -fs.reshape(-1, 2)).reshape(series.images.shape)
            rms = float(fs.square().sum(-1).mean().sqrt())
            changes["images"] = moved.numpy()
            return series.with_step(
                f"focal alignment: images shifted by -focal_shifts ({rms:.3g} px RMS)", **changes
            )
        return series.replace(**changes)

    def __repr__(self) -> str:
        return f"AcquisitionParameters(n={self.tilt.numel()}, refine={self.refine!r})"
