"""Parameter recovery on abTEM data: defocus, C3, shifts and tilt offsets refined by gradient.

    .venv/bin/python validation/phase_refinement_study.py --abtem-python /tmp/abtem-venv/bin/python

The Pd@Pt particle of validation/phase_particle_study.py (same abTEM simulation) is given to
``multislice`` with wrong acquisition parameters: per-image defocus offsets of
``--defocus-error`` Å (default ±200 Å = ±20 nm, random signs; the defocus values are
scaled down 5× from Ren's, so ±40 Å is the scaled equivalent), C3 20 % too large, image
shifts of a few pixels (grid search by ``wedge.methods.phase.align.align_shifts``, then
gradient), per-tilt angle offsets of ±1°
(mean removed). For each: the residual parameter error and the reconstruction (Pearson, FSC
0.143 against the truth potential) without and with refinement, and with the true values.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from phase_particle_study import _specimen, simulate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--abtem-python", default="/tmp/abtem-venv/bin/python")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--pixel", type=float, default=0.4)
    ap.add_argument("--dz", type=float, default=0.8)
    ap.add_argument("--radius", type=float, default=10.0)
    ap.add_argument("--tilts", type=int, default=60)
    ap.add_argument("--defocus", type=float, nargs="+", default=[40.0, 90.0, 200.0])
    ap.add_argument("--cs", type=float, default=1e6)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--defocus-error", type=float, default=200.0, help="± per image, Å")
    ap.add_argument("--cases", nargs="+", default=["defocus", "c3", "shifts", "tilt"])
    ap.add_argument("--out", default="validation/phase_refinement_study.json")
    args = ap.parse_args()

    import torch

    import wedge
    from wedge.atoms.potential import potential_volume
    from wedge.methods.phase.align import align_shifts
    from wedge.metrics import pearson
    from wedge.metrics.fsc import fsc
    from wedge.models import shift_images
    from wedge.optics import Microscope

    pos, z = _specimen(args.radius)
    angles = -90.0 + 180.0 * np.arange(args.tilts) / args.tilts
    imgs, version = simulate(args, pos, z, angles, args.defocus)
    d, n = args.pixel, args.n
    truth = potential_volume(pos, z, (n, n, n), d)
    mic = Microscope(energy=300e3, cs=args.cs)
    df = np.tile(args.defocus, (args.tilts, 1))
    series = wedge.TiltSeries(imgs, angles, pixel_size=d, defocus=df, microscope=mic)
    rng = np.random.default_rng(0)
    kw = dict(iterations=args.iterations, progress=False, regulariser="tv", weight=0.5)

    def quality(vol):
        return {
            "pearson": round(float(pearson(vol, truth)), 4),
            "fsc_0143_A": round(float(fsc(vol, truth, voxel_size=d).resolution(0.143)), 3),
        }

    out = {"abtem": version, "true": quality(wedge.reconstruct(series, "multislice", **kw).volume)}
    print("true parameters", out["true"], flush=True)
    for case in args.cases:
        res = {}
        if case == "defocus":
            err = args.defocus_error
            wrong = series.replace(defocus=df + rng.choice([-1.0, 1.0], df.shape) * err)
            rec = wedge.reconstruct(wrong, "multislice", refine=["defocus"], **kw)
            res["start_rms_A"] = err
            res["end_rms_A"] = round(float(np.sqrt(((rec.series.defocus - df) ** 2).mean())), 2)
        elif case == "c3":
            wrong = series.replace(microscope=Microscope(energy=300e3, cs=1.2 * args.cs))
            rec = wedge.reconstruct(wrong, "multislice", refine=["c3"], **kw)
            res["start_error_A"] = 0.2 * args.cs
            res["end_error_A"] = round(float(rec.series.microscope.cs - args.cs), 1)
        elif case == "shifts":
            true = rng.uniform(-3, 3, (args.tilts, 2))
            true -= true.mean(0)
            moved = shift_images(torch.tensor(imgs), torch.tensor(true)).numpy()
            wrong = series.replace(images=moved)
            aligned, rounds = align_shifts(wrong, rounds=4, iterations=5)
            rec = wedge.reconstruct(aligned, "multislice", refine=["shifts"], **kw)
            got = rec.series.shifts - rec.series.shifts.mean(0)
            res["start_rms_px"] = round(float(np.sqrt((true**2).mean())), 3)
            res["grid_rms_px"] = [
                round(float(np.sqrt(((h - true) ** 2).mean())), 3) for h in rounds
            ]
            res["end_rms_px"] = round(float(np.sqrt(((got - true) ** 2).mean())), 3)
        elif case == "tilt":
            off = rng.choice([-1.0, 1.0], args.tilts)
            off -= off.mean()
            wrong = series.replace(angles=angles + off)
            rec = wedge.reconstruct(wrong, "multislice", refine=["tilt"], **kw)
            err = rec.series.angles - angles
            err -= err.mean()
            res["start_rms_deg"] = round(float(np.sqrt((off**2).mean())), 3)
            res["end_rms_deg"] = round(float(np.sqrt((err**2).mean())), 3)
        else:
            raise SystemExit(f"unknown case {case}")
        res["without_refinement"] = quality(wedge.reconstruct(wrong, "multislice", **kw).volume)
        res["with_refinement"] = quality(rec.volume)
        out[case] = res
        print(case, json.dumps(res), flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
