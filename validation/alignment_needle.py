"""Needle (experimental HAADF-STEM): wedge's alignment against ETSpy's, on real data.

Run: ``.venv/bin/python validation/alignment_needle.py [--png docs/img/needle_orthoslices.png]``

Data: ``../shared/data/needle-haadf-stem/HAADF.mrc`` (77 tilts ±76°, 256², tilt axis along
image X) and ``DERIVED_etspy_alignment.txt`` (the shifts ETSpy applied; wedge's convention
measures d = −those). Steps: ``prepare(series.replace(tilt_axis_angle=90))`` →
``align`` (coarse with ``stretch=False``: a needle turning about its own axis does not widen
as 1/cos β; then projection matching) → SIRT.

Reported:

* RMS difference of wedge's shifts from ETSpy's after removing the mean difference (a global
  offset) per component;
* re-projection R-factors of SIRT (same iterations, same thickness) with (a) no alignment,
  (b) wedge's shifts and α, (c) ETSpy's shifts at α = 90° (as ETSpy used them), (d) ETSpy's
  shifts at wedge's α, (e) wedge's coarse stage alone. The R-factor is the runner's
  (RESIRE Eq. 10, in the axis frame of each run). Only runs at the same α compare
  cleanly: at exactly 90° the in-plane rotation of the images is exact, elsewhere it is
  bilinear and smooths the data, which lowers the R-factor (docs/alignment.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import wedge
from wedge._cpuinfo import machine_line
from wedge.align import align, centre_shifts
from wedge.preprocess import prepare, rotate_shifts

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "needle-haadf-stem"


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(a, dtype=np.float64) ** 2)))


def _thickness(series: wedge.TiltSeries) -> int:
    """Needle diameter estimate: the widest extent across the axis (image Y) of any image's
    profile above 5% of its peak, +25%, rounded up to 8 (the needle turns about its own
    axis, so its width across the axis is its diameter at every tilt)."""
    widths = []
    for img in series.images:
        prof = np.clip(img, 0, None).sum(axis=1)
        on = np.flatnonzero(prof > 0.05 * prof.max())
        widths.append(on[-1] - on[0] + 1)
    return int(np.ceil(1.25 * max(widths) / 8) * 8)


def _ortho(ax_row, vol: np.ndarray, title: str) -> None:
    z, y, x = (s // 2 for s in vol.shape)
    vmax = np.percentile(vol, 99.9)
    for ax, sl, name in zip(
        ax_row, (vol[z], vol[:, y], vol[:, :, x]), ("Z (XY)", "Y (XZ)", "X (YZ)"), strict=True
    ):
        ax.imshow(sl, cmap="gray", vmin=0, vmax=vmax)
        ax.set_title(f"{title}: {name}", fontsize=8)
        ax.axis("off")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4, help="projection-matching rounds")
    ap.add_argument("--match-iterations", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=30, help="SIRT for the comparison")
    ap.add_argument("--png", type=Path, default=None)
    args = ap.parse_args()
    print(machine_line())
    t0 = time.perf_counter()
    raw = wedge.read_tiltseries(DATA / "HAADF.mrc")
    etspy = np.loadtxt(DATA / "DERIVED_etspy_alignment.txt")
    assert np.allclose(etspy[:, 0], raw.angles)
    ref = -etspy[:, [2, 1]]  # ETSpy applied (axis 1 = y, axis 2 = x) → wedge's (dx, dy)
    series = prepare(raw.replace(tilt_axis_angle=90.0))
    thick = _thickness(series)
    print(f"prepared {series.images.shape}; thickness from the profile: {thick} voxels")

    res = align(
        series,
        coarse_options={"stretch": False},
        match_rounds=args.rounds,
        match_options={"iterations": args.match_iterations, "thickness": thick},
    )
    t_align = time.perf_counter() - t0
    for h in res.history:
        keys = ("stage", "round", "shift_change_rms", "r_factor")
        print(
            "  ",
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items() if k in keys},
        )
    print(f"alpha {res.tilt_axis_angle:.2f} deg; align {t_align:.0f} s")

    coarse = align(series, coarse_options={"stretch": False}, match_rounds=0)

    def gauge_free(shifts: np.ndarray) -> np.ndarray:
        """Difference from ETSpy in the axis frame, less what no data fix: an object
        translation (a constant along the axis, a·cos β + b·sin β across it) and the
        constant across it (the two alignments put the axis at different offsets)."""
        d = rotate_shifts(shifts - ref, res.tilt_axis_angle)
        b = np.deg2rad(series.angles)
        design = np.stack([np.ones_like(b), np.cos(b), np.sin(b)], 1)
        d[:, 0] -= design @ np.linalg.lstsq(design, d[:, 0], rcond=None)[0]
        d[:, 1] -= d[:, 1].mean()
        return d

    diff = gauge_free(res.shifts)
    print(
        f"wedge − ETSpy (axis frame, translation and axis offset removed): RMS across "
        f"{_rms(diff[:, 0]):.3f} px, along {_rms(diff[:, 1]):.3f} px; largest "
        f"{np.abs(diff[:, 0]).max():.3f} / {np.abs(diff[:, 1]).max():.3f} px"
    )
    d2 = gauge_free(coarse.shifts)
    print(f"  coarse stage alone: RMS across {_rms(d2[:, 0]):.3f}, along {_rms(d2[:, 1]):.3f} px")

    runs = {
        "none": series.replace(shifts=None, tilt_axis_angle=90.0),
        "wedge": res.series,
        "wedge coarse": coarse.series,
        "etspy@90": series.replace(shifts=ref, tilt_axis_angle=90.0),
        f"etspy@{res.tilt_axis_angle:.1f}": series.replace(
            shifts=ref, tilt_axis_angle=res.tilt_axis_angle
        ),
        # ETSpy's shifts moved by the same centring gauge as wedge's (centre_shifts)
        f"etspy centred@{res.tilt_axis_angle:.1f}": series.replace(
            shifts=centre_shifts(ref, series.angles, res.tilt_axis_angle),
            tilt_axis_angle=res.tilt_axis_angle,
        ),
        "wedge, xcorr gauge": series.replace(
            shifts=align(
                series,
                coarse_options={"stretch": False, "centre": False},
                match_rounds=args.rounds,
                match_options={"iterations": args.match_iterations, "thickness": thick},
            ).shifts,
            tilt_axis_angle=res.tilt_axis_angle,
        ),
    }
    recs = {}
    for name, s in runs.items():
        rec = wedge.reconstruct(
            s, "sirt", iterations=args.iterations, thickness=thick, progress=False
        )
        recs[name] = rec
        print(
            f"SIRT {args.iterations} it., thickness {thick}, {name:>12}: R-factor "
            f"{rec.history[-1]['r_factor']:.5f}"
        )
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 3, figsize=(7.5, 4.6))
        _ortho(axes[0], recs["none"].volume, "no alignment")
        _ortho(axes[1], recs["wedge"].volume, "wedge align")
        fig.tight_layout()
        args.png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.png, dpi=72)
        print(f"wrote {args.png} ({args.png.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
