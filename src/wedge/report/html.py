"""The comparison report: ``report.html`` (and ``metrics.json``) beside the figures.

The page is self-contained apart from its PNGs (inline CSS, no external resources). A small
inline script marks, once the page has loaded, whether every image loaded: each ``<img>``
gets ``data-status="loaded"`` or ``"failed"`` and the element ``#image-status`` holds
``{"total": n, "loaded": k, "failed": [...]}`` as JSON, so a headless browser's DOM dump
shows whether the page rendered completely.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..io import atomic_output

if TYPE_CHECKING:  # pragma: no cover
    from .compare import ComparisonResult

__all__ = ["format_bytes", "render_report", "text_table", "write_report"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em 2em;
       color: #222; max-width: 1600px; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #e3e3e3; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
td.best { font-weight: bold; background: #eef7ee; }
table.inputs td { text-align: left; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; max-width: 1100px; }
.note { font-size: 0.85em; color: #555; max-width: 1100px; }
#image-status { display: none; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var failed = [];
  imgs.forEach(function (im) {
    var ok = im.complete && im.naturalWidth > 0;
    im.setAttribute("data-status", ok ? "loaded" : "failed");
    im.setAttribute("data-natural-width", String(im.naturalWidth));
    if (!ok) { failed.push(im.getAttribute("src")); }
  });
  document.getElementById("image-status").textContent = JSON.stringify(
    {"total": imgs.length, "loaded": imgs.length - failed.length, "failed": failed});
  document.body.setAttribute("data-rendered", "yes");
});
"""


def format_bytes(n: int | None) -> str:
    """``n`` bytes as MiB or GiB; an en dash for None."""
    if n is None:
        return "–"
    if n >= 1 << 30:
        return f"{n / (1 << 30):.2f} GiB"
    return f"{n / (1 << 20):.1f} MiB"


def _num(fmt: str) -> Callable[[Any], str]:
    def f(v: Any) -> str:
        if v is None:
            return "–"
        return fmt.format(v) if math.isfinite(v) else "∞"

    return f


def _resolution(nyquist: float) -> Callable[[Any], str]:
    def f(v: Any) -> str:
        if v is None:
            return "–"
        if not math.isfinite(v):
            return "not resolved"
        if v <= nyquist * (1 + 1e-9):
            return f"≤ {v:.1f}"  # never crossed: limited by sampling
        return f"{v:.1f}"

    return f


# column key, header, formatter, which value is best ("min", "max" or None)
def _columns(nyquist: float) -> list[tuple[str, str, Callable[[Any], str], str | None]]:
    return [
        ("method", "method", str, None),
        ("iterations", "iterations", str, None),
        ("stopped", "stopped by", str, None),
        ("run_time_s", "run time (s)", _num("{:.3g}"), "min"),
        ("peak_memory_bytes", "peak memory", format_bytes, "min"),
        ("final_r_factor", "R-factor", _num("{:.4f}"), "min"),
        ("pearson", "Pearson", _num("{:.4f}"), "max"),
        ("relative_l2", "rel. L2", _num("{:.4f}"), "min"),
        ("psnr", "PSNR (dB)", _num("{:.2f}"), "max"),
        ("ssim", "SSIM", _num("{:.4f}"), "max"),
        ("fsc_0143_A", "FSC 0.143 (Å)", _resolution(nyquist), "min"),
        ("fsc_half_bit_A", "FSC ½-bit (Å)", _resolution(nyquist), "min"),
    ]


def _table_columns(
    result: ComparisonResult,
) -> list[tuple[str, str, Callable[[Any], str], str | None]]:
    cols = _columns(2.0 * result.inputs.pixel_size)
    if not any(r.pearson is not None for r in result.metrics):
        cols = [c for c in cols if c[0] not in {"pearson", "relative_l2", "psnr", "ssim"}]
        cols = [c for c in cols if not c[0].startswith("fsc")]
    return cols


def text_table(result: ComparisonResult) -> str:
    """The metrics table as aligned plain text (for a terminal)."""
    cols = _table_columns(result)
    rows = [dataclasses.asdict(r) for r in result.metrics]
    cells = [[h for _, h, _, _ in cols]] + [[fmt(r[k]) for k, _, fmt, _ in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]

    def fmt_row(row: list[str]) -> str:
        parts = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts)

    lines = [fmt_row(row) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _metrics_table(result: ComparisonResult) -> str:
    cols = _table_columns(result)
    rows = [dataclasses.asdict(r) for r in result.metrics]
    best: dict[str, float] = {}
    for key, _, _, sense in cols:
        if sense is None:
            continue
        vals = [r[key] for r in rows if r[key] is not None and math.isfinite(r[key])]
        if len(rows) > 1 and vals:
            best[key] = min(vals) if sense == "min" else max(vals)
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _, _ in cols)
    body = []
    for r in rows:
        cells = []
        for key, _, fmt, _ in cols:
            v = r[key]
            cls = ' class="best"' if key in best and v == best[key] else ""
            cells.append(f"<td{cls}>{html.escape(fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="metrics"><tr>{head}</tr>\n' + "\n".join(body) + "</table>"


def _inputs_table(result: ComparisonResult) -> str:
    s = result.inputs
    rows = [
        ("tilt range", f"{s.tilt_min:g}° … {s.tilt_max:g}°"),
        ("number of tilts", str(s.n_tilts)),
        ("image shape (Y, X)", f"{s.image_shape[0]} × {s.image_shape[1]} px"),
        ("volume shape (Z, Y, X)", " × ".join(map(str, s.volume_shape)) + " voxels"),
        ("pixel (voxel) size", f"{s.pixel_size:g} Å"),
        ("tilt-axis angle", f"{s.tilt_axis_angle:g}°"),
        ("reference", "given" if result.fsc else "none"),
        ("source", s.source or "–"),
    ]
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="inputs">{body}</table>'


_CAPTIONS = {
    "orthoslices": "Central orthoslices: XY (the view down the beam), XZ (across the tilt axis: "
    "the missing wedge elongates features along z) and YZ, each the mean of a few central "
    "voxels. Axes in Å from the rotation centre; grey scale per column.",
    "fsc": "Fourier shell correlation of each reconstruction with the reference, with the "
    "0.5, 0.143 and half-bit thresholds; the legend gives the 0.143 resolution.",
    "convergence": "R-factor against the data (RESIRE Eq. 10) and, with a reference, metrics "
    "against it per iteration; direct methods are dashed horizontal lines.",
}


def render_report(result: ComparisonResult, *, title: str) -> str:
    """The report page as a string (image paths relative to the report's folder)."""
    folder = result.report.parent
    figs = []
    for name, path in result.figures.items():
        rel = Path(os.path.relpath(Path(path).resolve(), folder.resolve())).as_posix()
        cap = _CAPTIONS.get(name, name)
        figs.append(
            f'<figure id="fig-{html.escape(name)}"><img src="{html.escape(rel)}" '
            f'alt="{html.escape(name)} figure"><figcaption>{html.escape(cap)}</figcaption>'
            "</figure>"
        )
    kinds = sorted({r.memory_kind for r in result.metrics})
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from .. import __version__

    notes = (
        "Run time: wall time of <code>wedge.reconstruct</code> including projector set-up, "
        "excluding the per-iteration evaluations against the reference. Peak memory ("
        + html.escape(", ".join(kinds))
        + "): on CUDA the peak of <code>torch.cuda.max_memory_allocated</code>; on the CPU "
        "the rise of the process's resident set size during the run. R-factor: the final "
        "volume re-projected with the ray projector, for every method alike. FSC "
        "resolutions marked ≤ never fell below the threshold up to Nyquist. Bold: best in "
        "the column."
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p class="note">wedge {html.escape(__version__)} · {now} ·
methods: {html.escape(", ".join(r.method for r in result.metrics))}</p>
<h2>Inputs</h2>
{_inputs_table(result)}
<h2>Metrics</h2>
{_metrics_table(result)}
<p class="note">{notes}</p>
<h2>Figures</h2>
{"".join(figs)}
<pre id="image-status">pending</pre>
<script>{_SCRIPT}</script>
</body>
</html>
"""


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_report(result: ComparisonResult, *, title: str = "wedge comparison") -> Path:
    """Write ``result.report`` (HTML) and ``metrics.json`` beside it, each atomically.

    ``metrics.json`` holds the inputs, the table (non-finite numbers as null) and each
    method's convergence records.
    """
    page = render_report(result, title=title)
    payload = {
        "inputs": dataclasses.asdict(result.inputs),
        "metrics": [{k: _json_safe(v) for k, v in row.items()} for row in result.table()],
        "convergence": {
            m: [{k: _json_safe(v) for k, v in h.items()} for h in hist]
            for m, hist in result.convergence.items()
        },
    }
    with atomic_output(result.report.with_name("metrics.json")) as tmp:
        tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    with atomic_output(result.report) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return result.report
