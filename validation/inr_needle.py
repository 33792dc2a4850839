"""INR with pose learning on the experimental needle (HAADF-STEM), shifts against ETSpy's.

Run: ``.venv/bin/python validation/inr_needle.py --bin 4 --epochs 30 [--png FILE.png]``

Data: ``../shared/data/needle-haadf-stem/HAADF.mrc`` (77 tilts ±76°, 256², tilt axis along
image X, so α = 90°) and ``DERIVED_etspy_alignment.txt`` (the shifts ETSpy applied; wedge's
convention measures d = −those, as validation/alignment_needle.py). Steps:
``prepare(series.replace(tilt_axis_angle=90))`` (wedge.preprocess: background, hot pixels,
normalisation), binning by ``--bin``, wedge's coarse alignment (cross-correlation, no
stretching, α kept at 90°: at 32² the common-line estimate of α is unreliable) as the
start, then ``inr`` with ``pose=True`` (z₁, z₃, δ learned; the INR takes α through its
nominal rotations, no image rotation). Thickness: ``--thickness``
voxels of the binned grid.

Reported: RMS difference from ETSpy's shifts (scaled to the binned pixels, each component's
mean difference removed: a global offset) for the coarse start and for the INR's learned
shifts; the INR's and a SIRT's (coarse shifts) re-projection R-factors on the fitted
pixels.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import wedge
from wedge._cpuinfo import machine_line
from wedge.align import align
from wedge.preprocess import bin_images, prepare

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "needle-haadf-stem"


def _rms_offset_removed(d: np.ndarray) -> tuple[float, float]:
    d = d - d.mean(axis=0)
    return float(np.sqrt(np.mean(d[:, 0] ** 2))), float(np.sqrt(np.mean(d[:, 1] ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", type=int, default=4)
    ap.add_argument("--thickness", type=int, default=None, help="default: image width / 2")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--png", type=Path, default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(machine_line(args.threads))
    t0 = time.perf_counter()
    raw = wedge.read_tiltseries(DATA / "HAADF.mrc")
    etspy = np.loadtxt(DATA / "DERIVED_etspy_alignment.txt")
    ref = -etspy[:, [2, 1]] / args.bin  # ETSpy applied (axis 1 = y, axis 2 = x) → (dx, dy)
    series = bin_images(prepare(raw.replace(tilt_axis_angle=90.0)), factor=args.bin)
    thick = args.thickness or series.image_shape[1] // 2
    coarse = align(series, coarse_options={"stretch": False, "axis": False}, match_rounds=0)
    start = series.replace(shifts=coarse.shifts, tilt_axis_angle=coarse.tilt_axis_angle)
    print(f"{series.images.shape}, α {coarse.tilt_axis_angle:.2f}°, thickness {thick}")
    rec = wedge.reconstruct(
        start, "inr", thickness=thick, iterations=args.epochs, width=args.width,
        depth=args.depth, lr=args.lr, pose=True, pose_start=5, patience=args.epochs,
        progress=False, device=args.device,
    )  # fmt: skip
    sirt = wedge.reconstruct(start, "sirt", thickness=thick, iterations=30, progress=False)
    c = _rms_offset_removed(coarse.shifts - ref)
    i = _rms_offset_removed(np.asarray(rec.series.shifts) - ref)
    print(f"coarse − ETSpy (offset removed): RMS dx {c[0]:.3f}, dy {c[1]:.3f} binned px")
    print(f"INR    − ETSpy (offset removed): RMS dx {i[0]:.3f}, dy {i[1]:.3f} binned px")
    print(
        f"INR: {len(rec.history)} epochs, stopped {rec.stopped}, R-factor "
        f"{rec.history[-1]['r_factor']:.4f}, hold-out {rec.history[-1]['holdout_error']:.4f}; "
        f"SIRT (coarse shifts) R-factor {sirt.history[-1]['r_factor']:.4f}; "
        f"{time.perf_counter() - t0:.0f} s"
    )
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 3, figsize=(10, 3.2))
        for a, vol, name in ((ax[0], rec.volume, "INR"), (ax[1], sirt.volume, "SIRT")):
            sl = vol[:, vol.shape[1] // 2]
            a.imshow(sl, cmap="gray", vmin=0, vmax=np.percentile(sl, 99.9))
            a.set_title(f"{name}: central slice across the axis", fontsize=8)
            a.axis("off")
        d = np.asarray(rec.series.shifts) - ref
        d0 = coarse.shifts - ref
        ax[2].plot(series.angles, d0[:, 1] - d0[:, 1].mean(), "o", ms=3, label="coarse dy")
        ax[2].plot(series.angles, d[:, 1] - d[:, 1].mean(), ".-", label="INR dy")
        ax[2].set_xlabel("tilt (°)")
        ax[2].set_ylabel("− ETSpy, offset removed (px)")
        ax[2].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.png, dpi=80)


if __name__ == "__main__":
    main()
