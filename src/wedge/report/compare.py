"""Run several reconstruction methods on one tilt series and compare them.

:func:`compare` reconstructs one series with every requested method through
:func:`wedge.reconstruct` (so every method runs exactly as a user would run it), measures
each run's time and peak memory, evaluates the volumes against a reference when one is
given (Pearson, relative L2, PSNR, SSIM, FSC resolutions) and writes the figures and
``report.html`` (:mod:`wedge.report.figures`, :mod:`wedge.report.html`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .._backend import as_tensor, resolve_device
from ..api import Reconstruction, reconstruct
from ..methods.registry import get_method
from ..metrics import FSCResult, compute_metrics, fsc, r_factor
from ..preprocess import rotate_images
from ..projectors import make_projector
from ..tiltseries import TiltSeries
from .memory import PeakMemory

__all__ = ["ComparisonResult", "MethodSummary", "SeriesSummary", "compare", "metric_iterations"]

#: Metrics against the reference, in table order (keys of :func:`wedge.metrics.compute_metrics`).
REFERENCE_METRICS = ("pearson", "relative_l2", "psnr", "ssim")


@dataclasses.dataclass(frozen=True)
class SeriesSummary:
    """The inputs of a comparison, as shown in the report.

    Attributes
    ----------
    n_tilts : int
    tilt_min, tilt_max : float, degrees
    image_shape : (Y, X), pixels
    volume_shape : (Z, Y, X), voxels
    pixel_size : float, Å (also the voxel size)
    tilt_axis_angle : float, degrees
    source : str
    """

    n_tilts: int
    tilt_min: float
    tilt_max: float
    image_shape: tuple[int, int]
    volume_shape: tuple[int, int, int]
    pixel_size: float
    tilt_axis_angle: float
    source: str

    @classmethod
    def of(cls, series: TiltSeries, volume_shape: tuple[int, int, int]) -> SeriesSummary:
        return cls(
            n_tilts=series.n_tilts,
            tilt_min=float(series.angles.min()),
            tilt_max=float(series.angles.max()),
            image_shape=(int(series.images.shape[1]), int(series.images.shape[2])),
            volume_shape=volume_shape,
            pixel_size=float(series.pixel_size),
            tilt_axis_angle=float(series.tilt_axis_angle),
            source=series.source,
        )


@dataclasses.dataclass(frozen=True)
class MethodSummary:
    """One row of the comparison table.

    Attributes
    ----------
    method : str
    iterations : int
        Iterations run (0 for direct methods).
    stopped : str
        Why the run ended (see :class:`wedge.Reconstruction`).
    run_time_s : float
        Wall time of :func:`wedge.reconstruct`, projector set-up included, less the time the
        comparison itself spent on per-iteration metrics against the reference.
    peak_memory_bytes : int
        See ``memory_kind``.
    memory_kind : str
        ``"cuda allocated"`` (peak of ``torch.cuda.max_memory_allocated``, absolute) or
        ``"cpu rss increase"`` (peak resident set size above the value before the run);
        see :mod:`wedge.report.memory`.
    final_r_factor : float
        RESIRE Eq. 10 R-factor of the final volume against the series, re-projected with the
        ``"ray"`` projector for every method alike.
    pearson, relative_l2, psnr, ssim : float or None
        Against the reference (:func:`wedge.metrics.compute_metrics`); None without one.
    fsc_0143_A, fsc_half_bit_A : float or None
        Resolution, Å, where the FSC against the reference crosses 0.143 and the half-bit
        curve (:class:`wedge.metrics.FSCResult`); None without a reference.
    """

    method: str
    iterations: int
    stopped: str
    run_time_s: float
    peak_memory_bytes: int
    memory_kind: str
    final_r_factor: float
    pearson: float | None = None
    relative_l2: float | None = None
    psnr: float | None = None
    ssim: float | None = None
    fsc_0143_A: float | None = None
    fsc_half_bit_A: float | None = None


@dataclasses.dataclass
class ComparisonResult:
    """What :func:`compare` returns.

    Attributes
    ----------
    reconstructions : dict
        Method name → :class:`wedge.Reconstruction`, in the order run.
    metrics : list of MethodSummary
        The table of the report, one row per method.
    convergence : dict
        Method name → list of per-iteration records: the runner's history (``iteration``,
        ``r_factor``, ``residual_norm``, ``rel_change``, ``time_s``, …) joined, at the
        iterations where they were evaluated, with the reference metrics. Empty for direct
        methods.
    fsc : dict
        Method name → :class:`~wedge.metrics.FSCResult` against the reference (empty without).
    inputs : SeriesSummary
    figures : dict
        Figure name (``"orthoslices"``, ``"fsc"``, ``"convergence"``) → PNG path.
    report : Path
        ``out_dir/report.html``.
    """

    reconstructions: dict[str, Reconstruction]
    metrics: list[MethodSummary]
    convergence: dict[str, list[dict[str, float]]]
    fsc: dict[str, FSCResult]
    inputs: SeriesSummary
    figures: dict[str, Path]
    report: Path

    def table(self) -> list[dict[str, Any]]:
        """The metrics table as a list of plain dicts (one per method)."""
        return [dataclasses.asdict(row) for row in self.metrics]

    def row(self, method: str) -> MethodSummary:
        """The table row of ``method``."""
        for r in self.metrics:
            if r.method == method:
                return r
        raise KeyError(f"{method!r} was not compared; compared: {[r.method for r in self.metrics]}")


# ----------------------------------------------------------------------------- validation
def _check_methods(methods: Sequence[str]) -> list[str]:
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    names = list(methods)
    if not names:
        raise ValueError("methods is empty; name at least one method (see wedge.list_methods()).")
    dup = sorted({m for m in names if names.count(m) > 1})
    if dup:
        raise ValueError(f"method(s) {', '.join(dup)} are listed more than once; list each once.")
    for m in names:
        get_method(m)  # raises with the list of known names
    return names


def _check_iterations(
    iterations: int | Mapping[str, int] | None, names: list[str]
) -> dict[str, int | None]:
    def ok(v: Any) -> bool:
        return isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1

    if iterations is None:
        return dict.fromkeys(names)
    if isinstance(iterations, Mapping):
        extra = sorted(set(iterations) - set(names))
        if extra:
            raise ValueError(
                f"iterations names method(s) {', '.join(extra)} that are not compared; "
                f"compared: {', '.join(names)}."
            )
        bad = {k: v for k, v in iterations.items() if not ok(v)}
        if bad:
            raise ValueError(f"iterations must be positive integers, got {bad}.")
        return {m: (int(iterations[m]) if m in iterations else None) for m in names}
    if not ok(iterations):
        raise ValueError(f"iterations must be a positive integer or a dict, got {iterations!r}.")
    return dict.fromkeys(names, int(iterations))


def _check_reference(reference: Any, volume_shape: tuple[int, int, int]) -> np.ndarray | None:
    if reference is None:
        return None
    if isinstance(reference, torch.Tensor):
        reference = reference.detach().cpu().numpy()
    ref = np.asarray(reference)
    if not np.issubdtype(ref.dtype, np.number) or np.iscomplexobj(ref):
        raise ValueError(f"reference must be a real-valued volume, got dtype {ref.dtype}.")
    if ref.shape != volume_shape:
        raise ValueError(
            f"reference has shape {ref.shape} but the reconstructions will be {volume_shape} "
            "(Z, Y, X); pass thickness= to match its Z size, or crop the reference."
        )
    ref = np.ascontiguousarray(ref, dtype=np.float32)
    if not np.all(np.isfinite(ref)):
        raise ValueError("reference contains NaN or Inf values; clean it first.")
    if float(ref.max() - ref.min()) <= 0:
        raise ValueError("reference is constant; metrics against it are undefined.")
    if min(volume_shape) < 7:
        raise ValueError(f"volume shape {volume_shape}: SSIM needs every axis ≥ 7 voxels.")
    return ref


def metric_iterations(n_iterations: int, points: int) -> set[int]:
    """Iterations (1-based) at which reference metrics are evaluated: ~log-spaced, last included.

    Parameters
    ----------
    n_iterations : int
        Iterations of the run.
    points : int
        Target number of evaluations (the set has at most ``points`` entries).
    """
    if n_iterations < 1 or points < 1:
        return set()
    if points >= n_iterations:
        return set(range(1, n_iterations + 1))
    grid = np.geomspace(1, n_iterations, num=min(points, n_iterations))
    return {int(v) for v in np.unique(np.rint(grid))} | {n_iterations}


# ----------------------------------------------------------------------------- running
def _series_data(series: TiltSeries, device: torch.device) -> torch.Tensor:
    """The images in the frame :func:`wedge.reconstruct` uses (tilt axis along Y)."""
    images = as_tensor(series.images, device)
    if series.tilt_axis_angle and series.euler is None:
        images = rotate_images(images, series.tilt_axis_angle)
    return images


def _final_r_factor(rec: Reconstruction, data: torch.Tensor, cache: dict[str, Any]) -> float:
    """R-factor of ``rec.volume`` re-projected with the ray projector (built once per compare)."""
    if "op" not in cache:  # every method shares the series' geometry
        cache["op"] = make_projector(rec.geometry, "ray")
    calc = cache["op"].forward(as_tensor(rec.volume, data.device))
    return r_factor(data, calc)


def _run_one(
    series: TiltSeries,
    name: str,
    iterations: int | None,
    reference: np.ndarray | None,
    thickness: int | None,
    device: torch.device,
    progress: bool,
    points: int,
) -> tuple[Reconstruction, list[dict[str, float]], float, PeakMemory]:
    info = get_method(name)
    n_iter = iterations if iterations is not None else info.default_iterations
    wanted = (
        metric_iterations(n_iter, points) if (reference is not None and info.iterative) else set()
    )
    evaluated: dict[int, dict[str, float]] = {}
    spent = [0.0]

    def track(record: dict[str, float], x: torch.Tensor) -> bool:
        it = int(record["iteration"])
        if it in wanted:
            t0 = time.perf_counter()
            with tracker.paused():
                evaluated[it] = compute_metrics(x.detach(), reference)
            spent[0] += time.perf_counter() - t0
        return False

    with PeakMemory(device) as tracker:
        rec = reconstruct(
            series,
            name,
            thickness=thickness,
            iterations=n_iter if info.iterative else None,
            device=device,
            callbacks=(track,) if wanted else (),
            progress=progress,
        )
    history = [dict(h) for h in rec.history]
    for h in history:
        h.update(evaluated.get(int(h["iteration"]), {}))
    return rec, history, max(rec.elapsed_s - spent[0], 0.0), tracker


def _evaluate(
    name: str,
    rec: Reconstruction,
    run_time: float,
    tracker: PeakMemory,
    data: torch.Tensor,
    reference: np.ndarray | None,
    cache: dict[str, Any],
) -> tuple[MethodSummary, FSCResult | None]:
    values: dict[str, Any] = {}
    curve = None
    if reference is not None:
        values.update(compute_metrics(rec.volume, reference))
        curve = fsc(rec.volume, reference, voxel_size=rec.voxel_size)
        values["fsc_0143_A"] = curve.resolution(0.143)
        values["fsc_half_bit_A"] = curve.resolution_half_bit()
    row = MethodSummary(
        method=name,
        iterations=len(rec.history),
        stopped=rec.stopped,
        run_time_s=run_time,
        peak_memory_bytes=tracker.peak_bytes,
        memory_kind=tracker.kind,
        final_r_factor=_final_r_factor(rec, data, cache),
        **values,
    )
    return row, curve


def compare(
    series: TiltSeries,
    methods: Sequence[str],
    *,
    reference: Any = None,
    out_dir: str | Path,
    iterations: int | Mapping[str, int] | None = None,
    thickness: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    slab: int = 4,
    metric_points: int = 12,
    title: str = "wedge reconstruction comparison",
) -> ComparisonResult:
    """Reconstruct ``series`` with several methods and write a comparison report.

    Every method runs through :func:`wedge.reconstruct` on the same series, volume shape and
    device, one after another. Per method the report gives run time, peak memory, the final
    R-factor and, with a reference, Pearson correlation, relative L2 error, PSNR, SSIM and
    the FSC resolutions at 0.143 and the half-bit curve; figures show central orthoslices,
    FSC curves and convergence curves. Written to ``out_dir``: ``report.html``,
    ``orthoslices.png``, ``fsc.png`` (with a reference), ``convergence.png`` (when a method
    is iterative or a reference is given). Volumes are not written (save them with
    ``result.reconstructions[name].save(path)``).

    Parameters
    ----------
    series : TiltSeries
        Images (n, Y, X), angles in degrees, pixel size in Å.
    methods : sequence of str
        Registered method names (:func:`wedge.methods`), or one comma-separated string.
    reference : array (Z, Y, X), optional
        Ground truth on the reconstruction grid (centre at index (N − 1)/2, same units as
        the reconstructions: density per voxel).
    out_dir : path
        Created if absent.
    iterations : int or dict, optional
        Iterations of every iterative method, or ``{method: iterations}``; methods left out
        use their registered default. Direct methods ignore it.
    thickness : int, optional
        Z size of the volume in voxels; defaults to the image width X.
    device : str or torch.device, optional
        ``"cpu"`` or ``"cuda"``; CUDA when present by default.
    progress : bool
        Progress bars (one over methods, one per iterative run).
    slab : int
        Thickness of the orthoslices in voxels (averaged about the centre).
    metric_points : int
        How many times (log-spaced over the iterations) each iterative run is evaluated
        against the reference for the convergence curves. Each evaluation is excluded from
        the run time and the peak memory.
    title : str
        Heading of the report.

    Returns
    -------
    ComparisonResult

    Notes
    -----
    Peak memory: on CUDA the peak of ``torch.cuda.max_memory_allocated`` during the run; on
    the CPU the rise of the process's resident set size during the run, read from the
    kernel's high-water mark (see :mod:`wedge.report.memory`).
    """
    from .figures import convergence_figure, fsc_figure, orthoslice_figure
    from .html import write_report

    if not isinstance(series, TiltSeries):
        raise TypeError("series must be a wedge.TiltSeries (see wedge.read_tiltseries).")
    names = _check_methods(methods)
    iters = _check_iterations(iterations, names)
    if thickness is not None and (isinstance(thickness, bool) or int(thickness) < 1):
        raise ValueError(f"thickness must be a positive number of voxels, got {thickness!r}.")
    _, ny, nx = series.images.shape
    volume_shape = (int(thickness) if thickness is not None else nx, ny, nx)
    ref = _check_reference(reference, volume_shape)
    if isinstance(slab, bool) or int(slab) < 1:
        raise ValueError(f"slab must be a positive number of voxels, got {slab!r}.")
    if isinstance(metric_points, bool) or int(metric_points) < 1:
        raise ValueError(f"metric_points must be a positive integer, got {metric_points!r}.")
    dev = resolve_device(device)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {out} exists and is not a directory; pick another path.")
    out.mkdir(parents=True, exist_ok=True)

    recs: dict[str, Reconstruction] = {}
    rows: list[MethodSummary] = []
    conv: dict[str, list[dict[str, float]]] = {}
    curves: dict[str, FSCResult] = {}
    data = _series_data(series, dev)
    cache: dict[str, Any] = {}
    for name in tqdm(names, desc="methods", disable=not progress, leave=False):
        rec, history, run_time, tracker = _run_one(
            series, name, iters[name], ref, thickness, dev, progress, int(metric_points)
        )
        row, curve = _evaluate(name, rec, run_time, tracker, data, ref, cache)
        recs[name], conv[name] = rec, history
        rows.append(row)
        if curve is not None:
            curves[name] = curve

    inputs = SeriesSummary.of(series, volume_shape)
    figures = {
        "orthoslices": orthoslice_figure(
            {n: r.volume for n, r in recs.items()},
            out / "orthoslices.png",
            reference=ref,
            voxel_size=inputs.pixel_size,
            slab=int(slab),
        )
    }
    if curves:
        figures["fsc"] = fsc_figure(curves, out / "fsc.png")
    if any(conv.values()) or ref is not None:
        figures["convergence"] = convergence_figure(conv, rows, out / "convergence.png")
    result = ComparisonResult(
        reconstructions=recs,
        metrics=rows,
        convergence=conv,
        fsc=curves,
        inputs=inputs,
        figures=figures,
        report=out / "report.html",
    )
    write_report(result, title=title)
    return result
