"""Per-image tilt-axis frames and the shift gauge: what coarse alignment needs when the
images of a series do not share one axis (interleaved acquisitions), and the choice of the
object translation that shifts cannot fix (:func:`centre_shifts`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..preprocess.rotate import rotate_shifts
from ..tiltseries import TiltSeries

__all__ = ["centre_shifts", "interleaved_subsets"]


def _axis_angles(alpha: Any, n: int) -> float | np.ndarray:
    """α as a float, or as an (n,) array when the images have their own axes."""
    a = np.asarray(alpha, dtype=np.float64)
    if a.ndim == 0 or (a.ndim == 1 and a.size == n and np.all(a == a[0])):
        a = float(a.reshape(-1)[0])
        if not math.isfinite(a):
            raise ValueError(f"tilt_axis_angle must be a finite number of degrees, got {a}.")
        return a
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise ValueError(
            f"tilt_axis_angle must be one finite angle or one per image ({n}) in degrees, "
            f"got shape {a.shape}."
        )
    return a


def _with_axes(series: TiltSeries, shifts: np.ndarray, alpha: float | np.ndarray) -> TiltSeries:
    """The series with these shifts and axis angle(s); per-image axes go in as Euler
    angles (φ = α, θ, ψ = 0), the single-axis series with in-plane axis α of each image."""
    if isinstance(alpha, float):
        return series.replace(shifts=shifts, tilt_axis_angle=alpha)
    euler = np.stack([alpha, series.angles, np.zeros_like(alpha)], 1)
    return series.replace(shifts=shifts, tilt_axis_angle=0.0, euler=euler)


def centre_shifts(shifts: Any, angles: Any, tilt_axis_angle: Any = 0.0) -> np.ndarray:
    """Shifts moved by the object translation that centres them, (n, 2) pixels.

    Shifts are fixed by the data only up to a translation of the object: in the axis frame
    (:func:`~wedge.preprocess.rotate_shifts`) a constant along the axis, and
    a·cos β + b·sin β across it (a translation by (a, b) in (x, z)). This removes the mean
    along the axis (a translation along Y) and, across it, the depth translation b·sin β
    of a least-squares fit c + a·cos β + b·sin β, so that the images' common field of view
    is centred on the object along the axis and in depth. The part c + a·cos β stays as
    the shift stages left it: c (the offset of the tilt axis from the image centre) is not
    a translation, and over a limited tilt range it cannot be told from a·cos β.

    Parameters
    ----------
    shifts : array (n, 2), pixels
        (dx, dy) in the frame of the images.
    angles : array (n,), degrees
        Tilt angles β.
    tilt_axis_angle : float or array (n,), degrees
        α of the images (one per image for acquisition subsets with their own axes).
    """
    s = rotate_shifts(np.asarray(shifts, dtype=np.float64), tilt_axis_angle)
    b = np.deg2rad(np.asarray(angles, dtype=np.float64))
    # fit c + a·cos β + b·sin β and remove only the depth translation b·sin β: over a
    # limited tilt range cos β is nearly constant, so a (a translation across the axis)
    # and the axis offset c are poorly told apart, and removing a fitted a·cos β could
    # move the object far off-centre (it did, on a ±60° test phantom)
    design = np.stack([np.ones_like(b), np.cos(b), np.sin(b)], 1)
    coef, *_ = np.linalg.lstsq(design, s[:, 0], rcond=None)
    s[:, 0] -= design[:, 2] * coef[2]
    s[:, 1] -= s[:, 1].mean()
    return rotate_shifts(s, -np.asarray(tilt_axis_angle, dtype=np.float64))


def interleaved_subsets(angles: Any, k: int) -> np.ndarray:
    """Subset labels (n,) of ``k`` interleaved tilt series merged into one: in order of
    tilt angle the images belong to subsets 0, 1, …, k − 1, 0, 1, … (e.g. two series with
    4° steps, offset by 2°, as in the INR paper's §4.5)."""
    ang = np.asarray(angles, dtype=np.float64).reshape(-1)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(
            f"the number of interleaved subsets must be a positive integer, not {k!r}."
        )
    labels = np.empty(ang.size, dtype=np.int64)
    labels[np.argsort(ang, kind="stable")] = np.arange(ang.size) % int(k)
    return labels


def _check_subsets(subsets: Any, series: TiltSeries) -> np.ndarray | None:
    if subsets is None:
        return None
    lab = np.asarray(subsets)
    n = series.n_tilts
    if lab.shape != (n,) or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(
            f"subsets must hold one integer label per image ({n}), got {lab.dtype} of shape "
            f"{lab.shape}; see wedge.align.interleaved_subsets."
        )
    for k in np.unique(lab):
        m = int(np.sum(lab == k))
        if m < 3:
            raise ValueError(
                f"subset {k} has {m} image(s); estimating its own tilt axis needs at least "
                "3 tilts: merge it with another subset."
            )
    return lab
