"""Coarse alignment by grid search scored by the reconstruction error (PhaseT3M Fig. 1e).

Shifts: for each tilt, the images predicted from the current reconstruction (at zero shift)
are translated by every candidate (dx, dy) on a grid (Fourier phase ramp,
:func:`wedge.models.shift_images`), and the candidate with the smallest data loss against
the measured focal series is kept (the same shift for every image of the tilt's focal
series). With ``per_image=True`` each image of the focal series is translated and scored
on its own (its own data loss), which also aligns the images within a tilt's focal series
(focal alignment). :func:`align_shifts` alternates short reconstructions with this search.
Use it for shifts of several pixels; ``refine=["shifts"]`` (and ``"focal_shifts"``) then
polishes them by gradient.

Defocus: for each tilt, the exit wave of the current reconstruction is computed once
(:meth:`BeamFrame.exit_spectrum`), the transfer function of every candidate defocus on a
grid around each image's current value is applied to it, and each image keeps the
candidate with its smallest own data loss (:func:`grid_search_defocus`).
:func:`align_defocus` alternates short reconstructions with it, optionally on low-passed
images (``lowpass``: errors of ±150 Å on the test case are found only so);
``refine=["defocus"]`` then polishes. Nothing is removed as a gauge by default: a defocus
change common to every image is a displacement along the beam in every view, which no
single translation of the volume reproduces once the views are tilted, so the data
determine it (the gradient recovers it); but a search from a poor first reconstruction can
drift in it, which ``keep_mean=True`` prevents (docs/multislice-reconstruction.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ...models import shift_images
from ...parameters import AcquisitionParameters
from ...problem import Problem
from ...tiltseries import TiltSeries
from . import PhaseOptions, default_n_bin
from .iteration import PhaseIteration

__all__ = [
    "grid_search_shifts",
    "align_shifts",
    "grid_search_defocus",
    "align_defocus",
    "lowpass_images",
]


def _scorer(
    series: TiltSeries, volume: Any, method: str, options: PhaseOptions
) -> tuple[PhaseIteration, torch.Tensor]:
    """The forward model and data loss of ``series`` for the (Z, Y, X) ``volume``."""
    from . import _measurements

    vol = torch.as_tensor(np.asarray(volume, dtype=np.float32))
    problem = Problem(series, tuple(vol.shape), torch.device("cpu"))
    meas = _measurements(problem, method)
    n_bin = options.n_bin or default_n_bin(series.pixel_size, series.microscope.wavelength)
    return PhaseIteration(problem, options, None, method, n_bin, meas), vol


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
    alg, vol = _scorer(series.replace(shifts=None), volume, method, opts)
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


def _alternate(
    series: TiltSeries,
    method: str,
    rounds: int,
    iterations: int,
    options: dict[str, Any],
    search: Callable[[TiltSeries, np.ndarray, dict[str, Any]], tuple[TiltSeries, dict, Any]],
    extra: dict[str, Any] | None = None,
    prepare: Callable[[int, TiltSeries], TiltSeries] | None = None,
) -> tuple[TiltSeries, dict[str, Any], list[Any]]:
    """``rounds`` × (``iterations`` of reconstruction, then ``search``), PhaseT3M-style.

    ``search(current, volume, extra)`` returns the series and the extra reconstruction
    options (e.g. ``focal_shifts``) for the next round, and the round's history entry;
    ``extra`` are those of the first round. ``prepare(round, current)``, if given, makes
    the series that round ``round`` (0-based) reconstructs and searches with (e.g.
    low-passed images).
    """
    from ...api import reconstruct

    if rounds < 1:
        raise ValueError(f"rounds must be ≥ 1, got {rounds}.")
    current, extra, history = series, dict(extra or {}), []
    for r in range(rounds):
        work = current if prepare is None else prepare(r, current)
        rec = reconstruct(work, method, iterations=iterations, progress=False, **options, **extra)
        current, extra, entry = search(work, rec.volume, extra)
        history.append(entry)
    return current, extra, history


def _phase_options(options: dict[str, Any]) -> PhaseOptions:
    fields = {f.name for f in dataclasses.fields(PhaseOptions)}
    return PhaseOptions(**{k: v for k, v in options.items() if k in fields})


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
    if per_image and not series.is_focal_series:
        raise ValueError("per_image=True aligns the images of a focal series; use 4D images.")
    popts = _phase_options(options)
    focal = options.pop("focal_shifts", None)
    first = {} if focal is None else {"focal_shifts": focal}

    def search(current, volume, extra):
        sh = grid_search_shifts(
            series, volume, method=method, radius=radius, step=step, options=popts,
            per_image=per_image,
        )  # fmt: skip
        fs = extra.get("focal_shifts")
        if per_image:
            fs = sh - sh.mean(1, keepdims=True)
            sh = sh.mean(1)
        sh -= sh.mean(0)
        entry = sh if fs is None or not per_image else sh[:, None] + fs
        return series.replace(shifts=sh), ({} if fs is None else {"focal_shifts": fs}), entry

    current, extra, history = _alternate(series, method, rounds, iterations, options, search, first)
    if not per_image:
        return current, history
    params = AcquisitionParameters(current, focal_shifts=extra["focal_shifts"])
    return params.to_series(current), history


def _check_defocus_grid(series: TiltSeries, radius: float, step: float) -> None:
    """Refuse a defocus search without defocus values or with a grid that is not positive."""
    if series.defocus is None:
        raise ValueError("the series has no defocus to search around; pass defocus=... (Å).")
    if not (np.isfinite(radius) and np.isfinite(step) and radius > 0 and step > 0):
        raise ValueError("radius and step must be positive numbers of Å.")


def grid_search_defocus(
    series: TiltSeries,
    volume: Any,
    *,
    method: str = "multislice",
    radius: float = 200.0,
    step: float = 10.0,
    options: PhaseOptions | None = None,
) -> np.ndarray:
    """Best defocus of every image on the grid Δf ± radius (spacing ``step``, Å) around its
    current value Δf (``series.defocus``), for the (Z, Y, X) potential ``volume`` (V).

    Per tilt, the exit wave is computed once and every candidate's transfer function
    applied to it; each image is scored by its own data loss (``options.loss``, amplitude
    by default), with the series' shifts and ``options.focal_shifts`` applied. Returns the
    defocus (Å, positive underfocus) in the shape of ``series.defocus``.
    """
    _check_defocus_grid(series, radius, step)
    alg, vol = _scorer(series, volume, method, options or PhaseOptions())
    offsets = torch.arange(-radius, radius + step / 2, step, dtype=torch.float64)
    df = alg.params.defocus.detach().to(torch.float64)  # (n, k)
    best = np.empty((series.n_tilts, alg.k))
    for i in range(series.n_tilts):
        spec = alg.frame.exit_spectrum(vol, alg.params, i)
        cand = df[i][None] + offsets[:, None]  # (candidates, k)
        with torch.no_grad():
            scores = alg._loss(alg.frame.images_at_defocus(spec, cand, alg.params, i), i, True)
        best[i] = cand.gather(0, scores.argmin(0)[None])[0].numpy()
    return best.reshape(np.shape(series.defocus))


def lowpass_images(series: TiltSeries, sigma: float) -> TiltSeries:
    """The series with every image multiplied in Fourier space by exp(−q²/(2σ²)), ``sigma``
    in cycles/Å (q from the pixel size; periodic edges), clipped at 0 (intensities)."""
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"the low-pass sigma must be a positive number of 1/Å, got {sigma}.")
    ny, nx = series.image_shape
    fy = np.fft.fftfreq(ny, series.pixel_size)[:, None]
    fx = np.fft.fftfreq(nx, series.pixel_size)[None]
    g = np.exp(-(fx**2 + fy**2) / (2.0 * sigma**2))
    out = np.fft.ifft2(np.fft.fft2(series.images) * g).real
    return series.replace(images=np.clip(out, 0, None).astype(series.images.dtype))


def align_defocus(
    series: TiltSeries,
    *,
    method: str = "multislice",
    rounds: int = 3,
    iterations: int = 5,
    radius: float = 200.0,
    step: float = 10.0,
    lowpass: float | Sequence[float | None] | None = None,
    keep_mean: bool = False,
    **options: Any,
) -> tuple[TiltSeries, list[np.ndarray]]:
    """Alternate ``iterations`` of reconstruction and a per-image defocus grid search
    (:func:`grid_search_defocus`, ±``radius`` Å in ``step`` Å around the current values),
    ``rounds`` times; each round's search is centred on the previous round's result.

    Parameters
    ----------
    series : TiltSeries with ``defocus`` (Å) and a ``microscope``
    method : ``multislice`` or ``singleslice``, for the short reconstructions and the search
    rounds, iterations : rounds, and reconstruction iterations per round (from zero)
    radius, step : the search grid around each image's current defocus, Å
    lowpass : σ in cycles/Å, or one per round (None: the full band)
        Reconstruct and score with the images low-passed by exp(−q²/(2σ²))
        (:func:`lowpass_images`). A defocus error δ changes the transfer phase by
        πλq²δ, so the low band is where a first reconstruction made with wrong defoci is
        still right; without it, errors beyond about ±75 Å on the 0.5 Å test case lead
        the search to a wrong fixed point (docs/multislice-reconstruction.md).
    keep_mean : bool
        After each search, subtract the change of the mean defocus over all images, so
        the mean stays at the given one (for errors of random sign, whose mean is small).
        Off by default: the common defocus is determined by the data (no gauge).
    options : passed to :func:`wedge.reconstruct` (the :class:`PhaseOptions` among them
        also to the search)

    Returns
    -------
    The series (original images) with the found defocus, and the defocus of every round,
    each in the shape of ``series.defocus``. Follow with ``refine=["defocus"]``.
    """
    _check_defocus_grid(series, radius, step)
    if lowpass is None or np.isscalar(lowpass):
        sigmas = [lowpass] * rounds
    else:
        sigmas = list(lowpass)
        if len(sigmas) != rounds:
            raise ValueError(
                f"lowpass gives {len(sigmas)} values for {rounds} rounds; give one per round "
                "or a single number."
            )
    if any(sig is not None and not (np.isfinite(sig) and sig > 0) for sig in sigmas):
        raise ValueError(f"lowpass must be positive numbers of 1/Å (or None), got {lowpass}.")
    popts = _phase_options(options)
    start_mean = float(np.mean(series.defocus))

    def prepare(r, current):
        return current if sigmas[r] is None else lowpass_images(current, sigmas[r])

    def search(work, volume, extra):
        df = grid_search_defocus(
            work, volume, method=method, radius=radius, step=step, options=popts
        )
        if keep_mean:
            df = df - (df.mean() - start_mean)
        return series.replace(defocus=df), extra, df

    current, _, history = _alternate(
        series, method, rounds, iterations, options, search, prepare=prepare
    )
    return current, history
