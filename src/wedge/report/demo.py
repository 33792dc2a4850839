"""``wedge demo``: simulate the vesicle phantom and compare every registered method on it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..methods.registry import get_method
from ..methods.registry import list_methods as registered_methods
from .compare import ComparisonResult, compare

__all__ = ["DEMO_ITERATIONS", "demo"]

#: Iterations per method in the demo: about where each method's error against the phantom
#: stops falling at the demo's default dose (iterating further fits the noise: the
#: convergence figure shows it), and few enough that the whole demo stays well under two
#: minutes on two CPU cores. Methods not listed use their registered default.
DEMO_ITERATIONS: dict[str, int] = {
    "sirt": 50,
    "sart": 5,
    "art": 4,
    "cgls": 8,
    # later methods: short of their plateau on this phantom, to keep the time budget
    "genfire": 10,
    "resire": 20,
}


def demo(
    out_dir: str | Path,
    *,
    size: int = 64,
    n_tilts: int = 41,
    tilt_max: float = 70.0,
    dose: float | None = 20.0,
    seed: int = 0,
    pixel_size: float = 10.0,
    methods: Sequence[str] | None = None,
    iterations: Mapping[str, int] | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    metric_points: int = 4,
) -> ComparisonResult:
    """Simulate a noisy tilt series of the vesicle phantom and compare methods on it.

    The phantom is :func:`wedge.phantoms.vesicle` on a ``size``³ grid; the series is
    ``n_tilts`` images evenly spaced over ±``tilt_max`` degrees about Y, projected with the
    ray projector and given Poisson shot noise (:func:`wedge.simulate.simulate_tiltseries`).
    Every registered method (or ``methods``) reconstructs it with the phantom as reference;
    ``out_dir`` receives the report (:func:`wedge.report.compare`), the simulated series
    (``vesicle.mrc`` + ``vesicle.tlt``) and the phantom (``vesicle_truth.mrc``), so that
    ``wedge compare out_dir/vesicle.mrc --reference out_dir/vesicle_truth.mrc`` reproduces it.

    Parameters
    ----------
    out_dir : path
        Created if absent.
    size : int
        Edge of the cubic volume and of the square images, voxels (≥ 16).
    n_tilts : int
        Number of tilts (≥ 2).
    tilt_max : float, degrees
        Tilts run from −tilt_max to +tilt_max (0 < tilt_max < 90).
    dose : float or None
        Electrons per pixel per image for unit projection value (see
        :func:`wedge.simulate.add_poisson_noise`); None for noiseless images.
    seed : int
        Seeds the phantom and the noise.
    pixel_size : float, Å
    methods : sequence of str, optional
        Methods to compare; default every registered one (:func:`wedge.methods`).
    iterations : dict, optional
        Overrides :data:`DEMO_ITERATIONS` per method.
    device, progress, metric_points
        As in :func:`wedge.report.compare` (fewer metric evaluations than its default, to
        keep the demo quick).

    Returns
    -------
    ComparisonResult
    """
    from ..phantoms import vesicle
    from ..simulate import SimulationOptions, save_simulation, simulate_tiltseries

    if isinstance(size, bool) or int(size) != size or size < 16:
        raise ValueError(f"size must be an integer of at least 16 voxels, got {size!r}.")
    if isinstance(n_tilts, bool) or int(n_tilts) != n_tilts or n_tilts < 2:
        raise ValueError(f"n_tilts must be an integer of at least 2, got {n_tilts!r}.")
    if not (math.isfinite(tilt_max) and 0 < tilt_max < 90):
        raise ValueError(f"tilt_max must lie in (0, 90) degrees, got {tilt_max!r}.")
    names = list(methods) if methods is not None else registered_methods()
    for m in names:
        get_method(m)
    iters: dict[str, int] = {}
    for m in names:
        if iterations is not None and m in iterations:
            iters[m] = iterations[m]
        elif m in DEMO_ITERATIONS and get_method(m).iterative:
            iters[m] = DEMO_ITERATIONS[m]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    n = int(size)
    truth = vesicle((n, n, n), seed=seed)
    step = 2.0 * float(tilt_max) / (int(n_tilts) - 1)
    opts = SimulationOptions(
        tilt_range=(-float(tilt_max), float(tilt_max)), step=step, dose=dose, seed=seed
    )
    sim = simulate_tiltseries(truth, opts, pixel_size=pixel_size)
    save_simulation(sim, out, stem="vesicle")
    dose_txt = "noiseless" if dose is None else f"Poisson noise at {dose:g} e⁻/px"
    kw: dict[str, Any] = {"iterations": iters} if iters else {}
    return compare(
        sim.series,
        names,
        reference=truth,
        out_dir=out,
        device=device,
        progress=progress,
        metric_points=metric_points,
        title=f"wedge demo: vesicle {n}³, {n_tilts} tilts ±{tilt_max:g}°, {dose_txt}",
        **kw,
    )
