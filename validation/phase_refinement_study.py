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

Two more cases (not run by default):

``shifts-coarse``
    The shifts of the ``shifts`` case, but first a coarse alignment by cross-correlation
    and centre of mass (:func:`wedge.align.coarse_align`, no stretching, low-pass
    ``--coarse-lowpass``) of a projection-like signal, −log of each tilt's focal-series
    mean; then the grid search and the gradient as in ``shifts``. Shift errors are given
    with the mean removed (as ``shifts``, which ``align_shifts`` treats as the gauge) and
    with a 3D translation of the object removed too (dx − (a cos θ + b sin θ + c) and
    dy − its mean, a, b, c fitted).
``focal``
    Within-tilt shifts (focal alignment) uniform in ±``--focal-error`` px per component,
    each tilt's mean removed: refined by gradient (``refine=["focal_shifts"]``), and by a
    per-image grid search (``align_shifts(per_image=True)``, ``--focal-rounds`` rounds)
    followed by the gradient.

``defocus-grid``
    The defocus errors of ``defocus`` (the same draw, from its own generator), first searched per
    image on a grid (``wedge.methods.phase.align.align_defocus``: ``--defocus-rounds``
    rounds of 5 iterations then a search over ±``--defocus-radius`` Å in
    ``--defocus-step`` Å around each image's current value; the short reconstructions
    and the search by ``--defocus-method``, on images low-passed by exp(−q²/(2σ²)) with
    σ = ``--defocus-lowpass`` 1/Å if given; ``--defocus-keep-mean``: the mean defocus held
    at the given one), then ``refine=["defocus"]`` as ``defocus``.
    Reports the RMS error after each round (and its mean over all images: the common
    offset) and after the gradient.

``--shift-seed`` draws the shifts of ``shifts`` and ``shifts-coarse`` from their own
generator, so both cases see the same shifts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from phase_particle_study import _specimen, simulate  # noqa: E402


def _shift_errors(got: np.ndarray, true: np.ndarray, angles: np.ndarray) -> dict:
    """RMS per component (px) of got − true: mean removed, and 3D translation removed."""
    e = np.asarray(got, float) - true
    e = e - e.mean(0)
    t = np.deg2rad(angles)
    basis = np.stack([np.cos(t), np.sin(t), np.ones_like(t)], 1)
    ex = e[:, 0] - basis @ np.linalg.lstsq(basis, e[:, 0], rcond=None)[0]
    return {
        "mean_removed": round(float(np.sqrt((e**2).mean())), 3),
        "translation_removed": round(float(np.sqrt((ex**2 + e[:, 1] ** 2).mean() / 2)), 3),
    }


def _coarse(series, lowpass: float):
    """Cross-correlation + centre-of-mass shifts of −log of each tilt's focal-series mean."""
    import wedge
    from wedge.align import coarse_align

    proj = -np.log(np.clip(series.images.mean(1), 1e-3, None)).astype(np.float32)
    lin = wedge.TiltSeries(proj, series.angles, pixel_size=series.pixel_size)
    res = coarse_align(lin, axis=False, xcorr=True, com=True, stretch=False, lowpass=lowpass)
    sh = res.series.shifts
    return series.replace(shifts=sh - sh.mean(0))


def _focal_run(series, grid, iterations: int):
    """multislice with refine=["shifts", "focal_shifts"] from the grid-search result (or
    refine=["focal_shifts"] from zero): (volume, refined focal shifts)."""
    import torch

    from wedge.methods import get_method
    from wedge.methods.phase import PhaseOptions
    from wedge.problem import Problem
    from wedge.runner import RunOptions

    refine, focal = ("focal_shifts",), None
    if grid is not None:
        refine, focal = ("shifts", "focal_shifts"), grid - grid.mean(1, keepdims=True)
        series = series.replace(shifts=grid.mean(1))
    n = series.image_shape[1]
    problem = Problem(series, (n, n, n), torch.device("cpu"), refine=refine)
    opts = PhaseOptions(regulariser="tv", weight=0.5, focal_shifts=focal)
    res = get_method("multislice").function(
        problem, iterations, None, (), options=opts, run=RunOptions(progress=False)
    )
    return res.x.numpy(), res.parameters.focal_shifts.detach().numpy()


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
    ap.add_argument("--cache", default=None, help="folder to keep and reuse abTEM images in")
    ap.add_argument("--shift-seed", type=int, default=None)
    ap.add_argument("--coarse-lowpass", type=float, default=0.1, help="cycles/pixel")
    ap.add_argument("--focal-error", type=float, default=1.0, help="± px per component")
    ap.add_argument("--focal-rounds", type=int, default=3, help="grid rounds of `focal`")
    ap.add_argument("--defocus-rounds", type=int, default=4, help="grid rounds, defocus-grid")
    ap.add_argument("--defocus-radius", type=float, default=300.0, help="± search, Å")
    ap.add_argument("--defocus-step", type=float, default=10.0, help="search step, Å")
    ap.add_argument("--defocus-method", default="multislice", help="of the grid rounds")
    ap.add_argument("--defocus-keep-mean", action="store_true", help="align_defocus keep_mean")
    ap.add_argument(
        "--defocus-lowpass", type=float, default=None, help="σ 1/Å of the grid rounds' images"
    )
    args = ap.parse_args()

    import torch

    import wedge
    from wedge.atoms.potential import potential_volume
    from wedge.methods.phase.align import align_defocus, align_shifts
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
        elif case == "defocus-grid":
            err = args.defocus_error
            own = np.random.default_rng(0)  # the draw of `defocus` when that runs first/alone
            wrong = series.replace(defocus=df + own.choice([-1.0, 1.0], df.shape) * err)
            rms = lambda a: round(float(np.sqrt(((a - df) ** 2).mean())), 2)  # noqa: E731
            aligned, rounds = align_defocus(
                wrong, method=args.defocus_method, rounds=args.defocus_rounds, iterations=5,
                radius=args.defocus_radius, step=args.defocus_step, lowpass=args.defocus_lowpass,
                keep_mean=args.defocus_keep_mean, regulariser="tv", weight=0.5,
            )  # fmt: skip
            rec = wedge.reconstruct(aligned, "multislice", refine=["defocus"], **kw)
            res["start_rms_A"] = err
            res["grid_rms_A"] = [rms(h) for h in rounds]
            res["grid_mean_error_A"] = [round(float((h - df).mean()), 2) for h in rounds]
            res["end_rms_A"] = rms(rec.series.defocus)
            res["end_mean_error_A"] = round(float((rec.series.defocus - df).mean()), 2)
            res["grid_only"] = quality(wedge.reconstruct(aligned, "multislice", **kw).volume)
        elif case == "c3":
            wrong = series.replace(microscope=Microscope(energy=300e3, cs=1.2 * args.cs))
            rec = wedge.reconstruct(wrong, "multislice", refine=["c3"], **kw)
            res["start_error_A"] = 0.2 * args.cs
            res["end_error_A"] = round(float(rec.series.microscope.cs - args.cs), 1)
        elif case in ("shifts", "shifts-coarse"):
            gen = rng if args.shift_seed is None else np.random.default_rng(args.shift_seed)
            true = gen.uniform(-3, 3, (args.tilts, 2))
            true -= true.mean(0)
            moved = shift_images(torch.tensor(imgs), torch.tensor(true)).numpy()
            wrong = series.replace(images=moved)
            res["start_rms_px"] = _shift_errors(true, true * 0, angles)
            start = wrong
            if case == "shifts-coarse":
                start = _coarse(wrong, args.coarse_lowpass)
                res["coarse_rms_px"] = _shift_errors(start.shifts, true, angles)
            aligned, rounds = align_shifts(start, rounds=4, iterations=5)
            rec = wedge.reconstruct(aligned, "multislice", refine=["shifts"], **kw)
            res["grid_rms_px"] = [_shift_errors(h, true, angles) for h in rounds]
            res["end_rms_px"] = _shift_errors(rec.series.shifts, true, angles)
        elif case == "focal":
            true = rng.uniform(-args.focal_error, args.focal_error, (args.tilts, df.shape[1], 2))
            true -= true.mean(1, keepdims=True)
            flat = torch.tensor(imgs).reshape(-1, n, n)
            moved = shift_images(flat, torch.tensor(true.reshape(-1, 2))).reshape(imgs.shape)
            wrong = series.replace(images=moved.numpy())
            rms = lambda a: round(float(np.sqrt((a**2).sum(-1).mean())), 3)  # noqa: E731
            vol, got = _focal_run(wrong, None, args.iterations)
            res["start_rms_px"] = rms(true)
            res["gradient_rms_px"] = rms(got - true)
            res["gradient"] = quality(vol)
            _, rounds = align_shifts(wrong, rounds=args.focal_rounds, iterations=5, per_image=True)
            grid = rounds[-1]
            res["grid_rms_px"] = [rms(h - h.mean(1, keepdims=True) - true) for h in rounds]
            res["grid_tilt_rms_px"] = rms(grid.mean(1))
            vol, got = _focal_run(wrong, grid, args.iterations)
            res["end_rms_px"] = rms(got - true)
            rec = argparse.Namespace(volume=vol)
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
