"""The averaging report: orthoslices side by side, FSC between methods and against a
reference, and the numbers as JSON; a small self-contained HTML page beside the PNGs."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_output
from ..metrics import compute_metrics, fsc
from .result import AverageResult

__all__ = ["write_average_report", "summarise"]


def _flat(v: np.ndarray) -> np.ndarray:
    """A (Z, 1, X) object as its (Z, X) image, for FSC (FRC) and SSIM."""
    v = np.asarray(v, np.float32)
    return v[:, 0, :] if v.ndim == 3 and v.shape[1] == 1 else v


def _fsc(a: np.ndarray, b: np.ndarray, voxel_size: float) -> Any:
    return fsc(_flat(a), _flat(b), voxel_size=voxel_size)


def summarise(
    results: Mapping[str, AverageResult], reference: np.ndarray | None, voxel_size: float
) -> dict[str, Any]:
    """Numbers of the report: per method the final Eq. 25 RMS error and, with a reference,
    PSNR/SSIM/PCC and FSC 0.5 / 0.143 resolutions (Å); FSC 0.5 between every pair."""
    out: dict[str, Any] = {"methods": {}, "pairs": {}}
    names = list(results)
    for name, r in results.items():
        rec: dict[str, Any] = {}
        if r.history:
            rec["rms_reprojection_error"] = r.history[-1].get("rms_reprojection_error")
        if reference is not None:
            rec.update(compute_metrics(_flat(r.object), _flat(reference)))
            c = _fsc(r.object, reference, voxel_size)
            rec["fsc_0.5_A"] = c.resolution(0.5)
            rec["fsc_0.143_A"] = c.resolution(0.143)
        out["methods"][name] = rec
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            c = _fsc(results[a].object, results[b].object, voxel_size)
            out["pairs"][f"{a} vs {b}"] = c.resolution(0.5)
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "unresolved" if not math.isfinite(v) else f"{v:.4g}"
    return html.escape(str(v))


def write_average_report(
    results: Mapping[str, AverageResult],
    out_dir: str | Path,
    *,
    reference: np.ndarray | None = None,
    voxel_size: float = 1.0,
) -> Path:
    """Write ``orthoslices.png``, ``fsc.png`` (against the reference), ``fsc_pairs.png``,
    ``metrics.json`` and ``report.html`` into ``out_dir`` (created if absent); returns the
    HTML path. Every file is written atomically."""
    from ..report.figures import fsc_figure, orthoslice_figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vols = {k: r.object for k, r in results.items()}
    orthoslice_figure(vols, out / "orthoslices.png", reference=reference, voxel_size=voxel_size)
    figures = ["orthoslices.png"]
    if reference is not None:
        curves = {k: _fsc(v, reference, voxel_size) for k, v in vols.items()}
        fsc_figure(curves, out / "fsc.png")
        figures.append("fsc.png")
    names = list(vols)
    pairs = {
        f"{a} vs {b}": _fsc(vols[a], vols[b], voxel_size)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }
    if pairs:
        fsc_figure(pairs, out / "fsc_pairs.png")
        figures.append("fsc_pairs.png")
    summary = summarise(results, reference, voxel_size)
    with atomic_output(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=float))
    rows = []
    keys = sorted({k for m in summary["methods"].values() for k in m})
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    for name, m in summary["methods"].items():
        cells = "".join(f"<td>{_fmt(m.get(k, ''))}</td>" for k in keys)
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    pair_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in summary["pairs"].items()
    )
    imgs = "".join(f'<figure><img src="{f}" alt="{f}"></figure>' for f in figures)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>wedge average</title>
<style>body{{font-family:sans-serif;margin:1.5em}}
td,th{{padding:.2em .6em;border-bottom:1px solid #ddd}}
img{{max-width:100%}}</style></head><body><h1>wedge average</h1>
<h2>Methods</h2><table><tr><th>method</th>{head}</tr>{"".join(rows)}</table>
<h2>FSC 0.5 between methods (Å)</h2><table>{pair_rows}</table>
<h2>Figures</h2>{imgs}</body></html>"""
    path = out / "report.html"
    with atomic_output(path) as tmp:
        tmp.write_text(page)
    return path
