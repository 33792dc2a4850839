"""Coarse shift alignment by grid search scored by the reconstruction error (PhaseT3M Fig. 1e).

For each tilt, the images predicted from the current reconstruction (at zero shift) are
translated by every candidate (dx, dy) on a grid (Fourier phase ramp,
:func:`wedge.models.shift_images`), and the candidate with the smallest data loss against
the measured focal series is kept (the same shift for every image of the tilt's focal
series). With ``per_image=True`` each image of the focal series is translated and scored
on its own (its own data loss), which also aligns the images within a tilt's focal series
(focal alignment). :func:`align_shifts` alternates short reconstructions with this search.
Use it for shifts of several pixels; ``refine=["shifts"]`` (and ``"focal_shifts"``) then
polishes them by gradient.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from ...models import shift_images
from ...parameters import AcquisitionParameters
from ...problem import Problem
from ...tiltseries import TiltSeries
from . import PhaseOptions, default_n_bin
from .iteration import PhaseIteration

__all__ = ["grid_search_shifts", "align_shifts"]


def grid_search_shifts(
    series: TiltSeries,
    volume: Any,
    *,
    method: str = "multislice",
    radius: float = 3.0,
    step: float = 0.5,
    options: PhaseOptions | None = None,
    per_image: bool = False,
) -> np.ndarray:
    """Best (dx, dy) pixels on the grid [−radius, radius]² (spacing ``step``) for the
    (Z, Y, X) potential ``volume`` (V), by the loss of ``options`` (amplitude).

    Returns (n, 2), one shift per tilt scored by its whole focal series, or with
    ``per_image`` (n, k, 2), one per image scored by that image's loss. Shifts are totals
    (the series' shifts are ignored); ``options.focal_shifts`` is ignored too.
    """
    if not (radius > 0 and step > 0):
        raise ValueError("radius and step must be positive numbers of pixels.")
    opts = dataclasses.replace(options or PhaseOptions(), focal_shifts=None)
    vol = torch.as_tensor(np.asarray(volume, dtype=np.float32))
    problem = Problem(series.replace(shifts=None), tuple(vol.shape), torch.device("cpu"))
    from . import _measurements

    meas = _measurements(problem, method)
    lam = series.microscope.wavelength
    n_bin = opts.n_bin or default_n_bin(series.pixel_size, lam)
    alg = PhaseIteration(problem, opts, None, method, n_bin, meas)
    g = np.arange(-radius, radius + step / 2, step)
    cand = torch.tensor(np.stack(np.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2))
    best = np.zeros((series.n_tilts, alg.k, 2))
    with torch.no_grad():
        for i in range(series.n_tilts):
            pred = alg.frame.images(vol, alg.params, i, False)
            shifted = shift_images(pred[None].expand(len(cand), *pred.shape), cand)
            scores = alg._loss(shifted, i, per_image=True)  # (candidates, k)
            if not per_image:
                scores = scores.sum(1, keepdim=True).expand(-1, alg.k)
            best[i] = cand[scores.argmin(0)].numpy()
    return best if per_image else best[:, 0]


def align_shifts(
    series: TiltSeries,
    *,
    method: str = "multislice",
    rounds: int = 3,
    iterations: int = 5,
    radius: float = 3.0,
    step: float = 0.5,
    per_image: bool = False,
    **options: Any,
) -> tuple[TiltSeries, list[np.ndarray]]:
    """Alternate ``iterations`` of reconstruction and a shift grid search, ``rounds`` times.

    Returns the series with the found shifts (the common mean removed: a translation of
    the whole object is not determined) and the shifts of every round: (n, 2) per tilt,
    or with ``per_image`` (n, k, 2) per image (the focal alignment too). Then each tilt's
    mean over its images becomes its ``shifts`` and the rest its focal shifts, which the
    next round's reconstruction uses (``PhaseOptions.focal_shifts``); the returned series
    carries them as registered images (:meth:`AcquisitionParameters.to_series`).
    """
    from ...api import reconstruct

    if rounds < 1:
        raise ValueError(f"rounds must be ≥ 1, got {rounds}.")
    if per_image and not series.is_focal_series:
        raise ValueError("per_image=True aligns the images of a focal series; use 4D images.")
    fields = {f.name for f in dataclasses.fields(PhaseOptions)}
    popts = PhaseOptions(**{k: v for k, v in options.items() if k in fields})
    focal = options.pop("focal_shifts", None)
    current = series
    history = []
    for _ in range(rounds):
        extra = {} if focal is None else {"focal_shifts": focal}
        rec = reconstruct(
            current, method, iterations=iterations, progress=False, **options, **extra
        )
        sh = grid_search_shifts(
            series,
            rec.volume,
            method=method,
            radius=radius,
            step=step,
            options=popts,
            per_image=per_image,
        )
        if per_image:
            focal = sh - sh.mean(1, keepdims=True)
            sh = sh.mean(1)
        sh -= sh.mean(0)
        history.append(sh if focal is None or not per_image else sh[:, None] + focal)
        current = series.replace(shifts=sh)
    params = AcquisitionParameters(current, focal_shifts=focal if per_image else None)
    return (params.to_series(current) if per_image else current), history
