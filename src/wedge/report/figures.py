"""Figures of a method comparison (matplotlib, Agg backend, PNG written atomically).

- :func:`orthoslice_figure`: central XY, XZ and YZ slabs of every volume side by side.
- :func:`fsc_figure`: FSC of every method against the reference, with the 0.143, 0.5 and
  half-bit thresholds.
- :func:`convergence_figure`: R-factor and reference metrics against the iteration.

Every figure is built on its own :class:`matplotlib.figure.Figure` (no pyplot state), so
the functions are safe to call from scripts, tests and servers without a display.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io import atomic_output
from ..metrics import FSCResult

__all__ = [
    "central_slabs",
    "convergence_figure",
    "fsc_figure",
    "method_colours",
    "orthoslice_figure",
    "save_figure",
]

REFERENCE_LABEL = "reference"
_DPI = 110


def method_colours(names: Sequence[str]) -> dict[str, Any]:
    """A fixed colour per method (matplotlib's tab10 cycle in the given order)."""
    cycle = [f"C{i % 10}" for i in range(len(names))]
    return dict(zip(names, cycle, strict=True))


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Render ``fig`` with the Agg canvas and write it to ``path`` (PNG) atomically."""
    FigureCanvasAgg(fig)
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI)
    return path


def central_slabs(volume: np.ndarray, slab: int) -> dict[str, np.ndarray]:
    """Mean of ``slab`` central planes of a (Z, Y, X) volume along each axis.

    The slab along an axis of length N covers indices ``(N - slab) // 2`` onwards: it is
    centred on the rotation centre (N − 1)/2 when N − slab is even, half a voxel beyond it
    otherwise. ``slab`` is clipped to N.

    Returns
    -------
    dict
        ``"XY"``: (Y, X) mean over Z; ``"XZ"``: (Z, X) mean over Y; ``"YZ"``: (Z, Y) mean over X.
    """
    vol = np.asarray(volume, dtype=np.float32)

    def mean_along(axis: int) -> np.ndarray:
        n = vol.shape[axis]
        k = min(slab, n)
        start = (n - k) // 2
        return vol.take(np.arange(start, start + k), axis=axis).mean(axis=axis)

    return {"XY": mean_along(0), "XZ": mean_along(1), "YZ": mean_along(2)}


def _extent(n_h: int, n_v: int, voxel_size: float) -> list[float]:
    """imshow extent in Å with the rotation centre (N − 1)/2 at 0."""
    h, v = n_h * voxel_size / 2.0, n_v * voxel_size / 2.0
    return [-h, h, -v, v]


def _grey_range(volume: np.ndarray) -> tuple[float, float]:
    """0.5 and 99.5 percentiles (of a strided subsample of at most ~2 million voxels)."""
    stride = max(1, int(np.ceil((volume.size / 2e6) ** (1 / 3))))
    lo, hi = np.percentile(volume[::stride, ::stride, ::stride], [0.5, 99.5])
    if not hi > lo:
        lo, hi = float(volume.min()), float(volume.max())
        if not hi > lo:
            hi = lo + 1.0
    return float(lo), float(hi)


def orthoslice_figure(
    volumes: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    reference: np.ndarray | None = None,
    voxel_size: float = 1.0,
    slab: int = 4,
) -> Path:
    """Central orthoslices of the reference (first column, when given) and every volume.

    Columns are volumes, rows the XY (tilt-series view, looking down the beam), XZ (the
    missing-wedge view) and YZ planes, each the mean of ``slab`` central voxels
    (:func:`central_slabs`). Axes are in Å from the rotation centre. Each column has its
    own grey scale (the 0.5–99.5 percentiles of its whole volume) and colourbar, because
    methods differ in scale (plain back-projection is not in density units).

    Parameters
    ----------
    volumes : dict
        Name → (Z, Y, X) array; all the same shape.
    path : path
        PNG to write.
    reference : (Z, Y, X) array, optional
    voxel_size : float, Å
    slab : int
        Slab thickness in voxels.

    Returns
    -------
    Path
    """
    cols: dict[str, np.ndarray] = {}
    if reference is not None:
        cols[REFERENCE_LABEL] = np.asarray(reference, dtype=np.float32)
    for name, v in volumes.items():
        cols[name] = np.asarray(v, dtype=np.float32)
    shapes = {v.shape for v in cols.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f"all volumes must share one (Z, Y, X) shape, got {sorted(shapes)}.")
    nz, ny, nx = next(iter(shapes))
    n = len(cols)
    views = (
        ("XY", nx, ny, "x (Å)", "y (Å)"),
        ("XZ", nx, nz, "x (Å)", "z (Å)"),
        ("YZ", ny, nz, "y (Å)", "z (Å)"),
    )
    # Fixed layout in inches (constrained layout is slow for many panels): equal-aspect
    # panels pw wide; y tick labels only on the first column (rows share their extent).
    pw, gap_x, left, right = 1.9, 0.12, 0.85, 0.2
    top, title_h, row_gap, cb_gap, cb_h, bottom = (
        (0.45 if n >= 4 else 0.6),
        0.25,
        0.42,
        0.42,
        0.1,
        0.3,
    )
    heights = [pw * nv / nh for _, nh, nv, _, _ in views]
    fig_w = max(left + n * pw + (n - 1) * gap_x + right, 4.2)
    fig_h = top + title_h + sum(heights) + 3 * row_gap + cb_h + cb_gap + bottom - row_gap
    fig = Figure(figsize=(fig_w, fig_h))

    def box(x_in: float, y_top_in: float, w_in: float, h_in: float) -> list[float]:
        return [x_in / fig_w, 1 - (y_top_in + h_in) / fig_h, w_in / fig_w, h_in / fig_h]

    for j, (name, vol) in enumerate(cols.items()):
        slabs = central_slabs(vol, slab)
        lo, hi = _grey_range(vol)
        x_in = left + j * (pw + gap_x)
        y_in = top + title_h
        im = None
        for i, (view, nh, nv, xl, yl) in enumerate(views):
            ax = fig.add_axes(box(x_in, y_in, pw, heights[i]))
            im = ax.imshow(
                slabs[view],
                cmap="gray",
                vmin=lo,
                vmax=hi,
                origin="lower",
                extent=_extent(nh, nv, voxel_size),
                interpolation="nearest",
                aspect="auto",
            )
            ax.set_xlabel(xl, fontsize=7, labelpad=1)
            ax.tick_params(labelsize=6, length=2, pad=1)
            if j == 0:
                ax.set_ylabel(f"{view}   {yl}", fontsize=8)
            else:
                ax.tick_params(labelleft=False)
            if i == 0:
                ax.set_title(name, fontsize=10, fontweight="bold")
            y_in += heights[i] + row_gap
        cax = fig.add_axes(box(x_in + 0.1 * pw, y_in - row_gap + cb_gap, 0.8 * pw, cb_h))
        cb = fig.colorbar(im, cax=cax, orientation="horizontal")
        cb.ax.tick_params(labelsize=6, length=2, pad=1)
    sep = "\n" if n < 4 else "; "  # narrow figures: title on two lines
    fig.suptitle(
        f"Central orthoslices{sep}({slab}-voxel slabs; voxel {voxel_size:g} Å; "
        "grey scale per column)",
        fontsize=11 if n >= 4 else 9,
        y=1 - 0.08 / fig_h,
        va="top",
    )
    return save_figure(fig, path)


def fsc_figure(curves: Mapping[str, FSCResult], path: str | Path) -> Path:
    """FSC of every method against the reference, with the 0.143, 0.5 and half-bit lines.

    The x axis is spatial frequency in 1/Å (bottom) and the matching resolution in Å (top);
    the half-bit curve is drawn for the shells of the first curve (all curves share the
    volume shape). Legend entries give the 0.143 resolution.
    """
    if not curves:
        raise ValueError("no FSC curves to plot; compare against a reference first.")
    colours = method_colours(list(curves))
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.add_subplot()
    first = next(iter(curves.values()))
    for name, c in curves.items():
        res = c.resolution(0.143)
        lab = f"{name} ({res:.1f} Å)" if math.isfinite(res) else f"{name} (unresolved)"
        ax.plot(c.frequencies, c.correlation, color=colours[name], lw=1.6, label=lab)
    f = first.frequencies
    ax.axhline(0.5, color="0.35", ls="--", lw=1, label="0.5")
    ax.axhline(0.143, color="0.35", ls=":", lw=1.2, label="0.143")
    ax.plot(f, first.half_bit, color="k", ls="-.", lw=1, label="half-bit")
    ax.axhline(0.0, color="0.8", lw=0.8)
    ax.set_xlim(0.0, float(f[-1]))
    ax.set_ylim(-0.2, 1.05)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    ax.set_title("Fourier shell correlation against the reference (0.143 resolution in legend)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right", ncol=2)

    top = ax.twiny()  # resolution scale: ticks at chosen frequencies, labelled 1/f in Å
    nyq = float(f[-1])
    ticks = [nyq * t for t in (0.125, 0.25, 0.5, 0.75, 1.0)]
    top.set_xlim(ax.get_xlim())
    top.set_xticks(ticks)
    top.set_xticklabels([f"{1.0 / t:.3g}" for t in ticks])
    top.set_xlabel("resolution (Å)")
    return save_figure(fig, path)


_PANELS = (  # history key, final-value attribute, title, log y
    ("r_factor", "final_r_factor", "R-factor (RESIRE Eq. 10)", True),
    ("relative_l2", "relative_l2", "relative L2 error", True),
    ("pearson", "pearson", "Pearson correlation", False),
    ("ssim", "ssim", "SSIM", False),
    ("psnr", "psnr", "PSNR (dB)", False),
)


def _on_scale(values: list[float], core: list[float], log: bool) -> list[bool]:
    """Which ``values`` lie within the range of ``core`` widened by its span on each side.

    Keeps one far-off value (plain back-projection is not in density units) from
    flattening every other curve; log panels compare decades.
    """

    def tr(v: np.ndarray) -> np.ndarray:
        if not log:
            return v
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), -np.inf)

    c = tr(np.asarray(core, dtype=float))
    c = c[np.isfinite(c)]
    if c.size == 0:
        return [True] * len(values)
    lo, hi = float(c.min()), float(c.max())
    span = max(hi - lo, 0.5 if log else 0.1 * max(abs(hi), 1e-6))
    t = tr(np.asarray(values, dtype=float))
    return [bool(lo - span <= x <= hi + span) for x in t]


def convergence_figure(
    histories: Mapping[str, list[dict[str, float]]],
    rows: Sequence[Any],
    path: str | Path,
) -> Path:
    """R-factor and (when present) reference metrics against the iteration, every method.

    Iterative methods are lines (markers where the reference metrics were evaluated);
    direct methods (empty history) are horizontal dashed lines at their final values, read
    from ``rows`` (objects with the attributes ``method``, ``final_r_factor`` and, with a
    reference, ``pearson``, ``relative_l2``, ``ssim``, ``psnr``, e.g.
    :class:`~wedge.report.compare.MethodSummary`). A direct method's value far outside the
    range of the iterative curves is listed as "off scale" in the panel instead of drawn.
    The iteration axis is logarithmic.

    Parameters
    ----------
    histories : dict
        Method → per-iteration records (``iteration`` and the panel keys).
    rows : sequence
        Final values per method.
    path : path
        PNG to write.
    """
    from matplotlib.lines import Line2D

    names = [r.method for r in rows]
    colours = method_colours(names)
    finals = {r.method: r for r in rows}
    has_ref = any(getattr(r, "pearson", None) is not None for r in rows)
    panels = _PANELS if has_ref else _PANELS[:1]
    ncols = 3 if has_ref else 2
    nrows = 2 if has_ref else 1
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    max_it = max([len(h) for h in histories.values()] + [1])
    for p, (key, attr, label, logy) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, p + 1)
        curves: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {}
        direct: dict[str, float] = {}
        for name in names:
            hist = [h for h in histories.get(name, []) if key in h]
            if hist:
                it = np.array([h["iteration"] for h in hist])
                val = np.array([h[key] for h in hist])
                curves[name] = (it, val, len(hist) < len(histories[name]))
            else:
                final = getattr(finals[name], attr, None)
                if final is not None and math.isfinite(final):
                    direct[name] = float(final)
        core = [float(v) for _, val, _ in curves.values() for v in val] or list(direct.values())
        shown = dict(zip(direct, _on_scale(list(direct.values()), core, logy), strict=True))
        for name, (it, val, sparse) in curves.items():
            ax.plot(it, val, color=colours[name], lw=1.5, marker="o" if sparse else None, ms=3)
        for name, v in direct.items():
            if shown[name]:
                ax.axhline(v, color=colours[name], ls="--", lw=1.2)
        off = [f"{n} = {direct[n]:.3g}" for n in direct if not shown[n]]
        if off:
            ax.text(
                0.02,
                0.02,
                "off scale: " + ", ".join(off),
                transform=ax.transAxes,
                fontsize=7,
                color="0.3",
                va="bottom",
            )
        if max_it > 1:
            ax.set_xscale("log")
            ax.set_xlim(1, max_it)
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    legend_ax = fig.add_subplot(nrows, ncols, nrows * ncols)
    legend_ax.axis("off")
    handles, labels = [], []
    for n in names:
        iterative = bool(histories.get(n))
        handles.append(Line2D([], [], color=colours[n], lw=1.5, ls="-" if iterative else "--"))
        labels.append(f"{n} ({len(histories[n])} it.)" if iterative else f"{n} (direct)")
    legend_ax.legend(handles, labels, loc="center", fontsize=9, frameon=False)
    note = "; markers: evaluations against the reference" if has_ref else ""
    fig.suptitle(f"Convergence (dashed: direct methods{note})", fontsize=11)
    return save_figure(fig, path)
