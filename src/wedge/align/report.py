"""What ``wedge align`` writes: IMOD ``.xf`` and ``.tlt``, the aligned ``.ali`` stack, and a
small report (a PNG of the shifts per tilt and of the R-factor per stage, and the same
figures as JSON). Every file is written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io.angles import write_angles
from ..io.atomic import atomic_output
from ..io.imod import write_ali, write_xf, xf_from_alignment
from .coarse import AlignmentResult

__all__ = ["write_alignment_outputs", "plot_alignment"]


def plot_alignment(result: AlignmentResult, path: Path) -> Path:
    """PNG: shifts (dx, dy) against tilt angle, and the R-factor after each stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.series
    order = np.argsort(s.angles)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    a.plot(s.angles[order], result.shifts[order, 0], "o-", ms=3, label="dx")
    a.plot(s.angles[order], result.shifts[order, 1], "s-", ms=3, label="dy")
    a.set(xlabel="tilt (°)", ylabel="shift (px)", title=f"axis {result.tilt_axis_angle:.2f}°")
    a.legend()
    stages = [h for h in result.history if "r_factor" in h]
    if stages:
        b.plot([h["stage"] for h in stages], [h["r_factor"] for h in stages], "o-")
        b.set(ylabel="SIRT R-factor", title="re-projection R-factor per stage")
    else:
        b.axis("off")
        b.text(0.5, 0.5, "R-factor not computed (--no-quality)", ha="center")
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def write_alignment_outputs(
    result: AlignmentResult, out_dir: Path, stem: str, *, write_ali: bool = True
) -> list[Path]:
    """Write ``<stem>.xf``, ``<stem>.tlt``, ``<stem>.ali`` (unless ``write_ali`` is False),
    ``<stem>_alignment.png`` and ``<stem>_alignment.json`` into ``out_dir``."""
    s = result.series
    axes = result.tilt_axis_angle if result.tilt_axis_angles is None else result.tilt_axis_angles
    xf = xf_from_alignment(result.shifts, axes, s.image_shape)
    paths = [write_xf(out_dir / f"{stem}.xf", xf)]
    tlt = out_dir / f"{stem}.tlt"
    write_angles(tlt, s.angles)
    paths.append(tlt)
    if write_ali:
        paths.append(_write_ali(out_dir / f"{stem}.ali", s, xf))
    paths.append(plot_alignment(result, out_dir / f"{stem}_alignment.png"))
    summary = {
        "tilt_axis_angle_deg": result.tilt_axis_angle,
        "tilt_axis_angles_deg": None
        if result.tilt_axis_angles is None
        else result.tilt_axis_angles.tolist(),
        "angles_deg": s.angles.tolist(),
        "shifts_px": result.shifts.tolist(),
        "history": result.history,
        "provenance": list(s.provenance),
    }
    js = out_dir / f"{stem}_alignment.json"
    with atomic_output(js) as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=float))
    paths.append(js)
    return paths


def _write_ali(path: Path, series, xf) -> Path:  # noqa: ANN001
    write_ali(path, series.images, xf, pixel_size=series.pixel_size)
    return path
