"""Coarse shift alignment by grid search scored by the reconstruction error (PhaseT3M Fig. 1e).

For each tilt, the images predicted from the current reconstruction (at zero shift) are
translated by every candidate (dx, dy) on a grid (Fourier phase ramp,
:func:`wedge.models.shift_images`), and the candidate with the smallest data loss against
the measured focal series is kept (the same shift for every image of the tilt's focal
series). :func:`align_shifts` alternates short reconstructions with this search.
Use it for shifts of several pixels; ``refine=["shifts"]`` then polishes them by gradient.
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
) -> np.ndarray:
    """Best (dx, dy) pixels per tilt (n, 2) on the grid [−radius, radius]² (spacing ``step``)
    for the (Z, Y, X) potential ``volume`` (V), by the loss of ``options`` (amplitude)."""
    if not (radius > 0 and step > 0):
        raise ValueError("radius and step must be positive numbers of pixels.")
    opts = options or PhaseOptions()
    vol = torch.as_tensor(np.asarray(volume, dtype=np.float32))
    problem = Problem(series.replace(shifts=None), tuple(vol.shape), torch.device("cpu"))
    from . import _measurements

    meas = _measurements(problem, method)
    lam = series.microscope.wavelength
    n_bin = opts.n_bin or default_n_bin(series.pixel_size, lam)
    alg = PhaseIteration(problem, opts, None, method, n_bin, meas)
    g = np.arange(-radius, radius + step / 2, step)
    cand = torch.tensor(np.stack(np.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2))
    best = np.zeros((series.n_tilts, 2))
    with torch.no_grad():
        for i in range(series.n_tilts):
            pred = alg.frame.images(vol, alg.params, i, False)
            shifted = shift_images(pred[None].expand(len(cand), *pred.shape), cand)
            scores = [float(alg._loss(shifted[c], i)) for c in range(len(cand))]
            best[i] = cand[int(np.argmin(scores))].numpy()
    return best


def align_shifts(
    series: TiltSeries,
    *,
    method: str = "multislice",
    rounds: int = 3,
    iterations: int = 5,
    radius: float = 3.0,
    step: float = 0.5,
    **options: Any,
) -> tuple[TiltSeries, list[np.ndarray]]:
    """Alternate ``iterations`` of reconstruction and a shift grid search, ``rounds`` times.

    Returns the series with the found shifts (the common mean removed: a translation of
    the whole object is not determined) and the shifts of every round.
    """
    from ...api import reconstruct

    if rounds < 1:
        raise ValueError(f"rounds must be ≥ 1, got {rounds}.")
    fields = {f.name for f in dataclasses.fields(PhaseOptions)}
    popts = PhaseOptions(**{k: v for k, v in options.items() if k in fields})
    current = series
    history = []
    for _ in range(rounds):
        rec = reconstruct(current, method, iterations=iterations, progress=False, **options)
        sh = grid_search_shifts(
            series, rec.volume, method=method, radius=radius, step=step, options=popts
        )
        sh -= sh.mean(0)
        history.append(sh)
        current = series.replace(shifts=sh)
    AcquisitionParameters(current)  # validates the shapes
    return current, history
