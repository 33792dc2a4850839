"""Figs. 7, 9, 10 and 11 of Han et al. (2020) in 2D, at reduced size (ASTRA projections).

Studies (``--study``):

* ``copies`` (Fig. 7): 3 … 49 copies, ±50° in 3° steps, SART 20 × 0.2, both datasets;
* ``tilt`` (Fig. 9): 11 copies, tilt range ±30° … ±70° in 3° steps;
* ``noise`` (Fig. 10): ribosome0 (``--dataset``), Gaussian noise on the projections at SNR 1, 5, 10,
  SART 40 × 0.2, masked Fourier average against CRM (sparse SART), plus CRM's SIRT
  variant (40 iterations, relaxation 1.9: all copies per update, which averages the noise);
* ``convergence`` (Fig. 11): 49 copies, RMS re-projection error (Eq. 25, exact, after every
  iteration) of CRM-SART and of separate per-copy SART, 80 iterations.

``--blocks copy`` reads the paper's SART literally ("SART only updates the solution once per
copy after solving all the projections of a copy", §2; Eq. 19 on one copy's rows): CRM
runs ``CRMOptions(block="copy")`` and the averages reconstruct each copy with wedge's SIRT,
whose update is Eq. 19 for one copy. The default, ``--blocks image``, updates after every
image (Andersen & Kak's SART, wedge's ``sart``) in all three methods.

Each writes docs/img/average_<study>.png (``_copyblocks`` appended with ``--blocks copy``)
and prints its numbers (and a JSON with --json).

    OMP_NUM_THREADS=1 .venv/bin/python validation/average_sensitivity.py --study copies
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from average_phantoms import make_copies, sart_keywords, scores

from wedge.average import CRMOptions, crm, masked_fourier_average, simple_average

ROOT = Path(__file__).resolve().parents[1]
ALL = {"simple": simple_average, "masked": masked_fourier_average, "crm": crm}
#: shepp among blocks; ribosome among noise in [0, 0.6]; ribosome0 among zero-mean noise
DATASETS = ("shepp", "ribosome", "ribosome0")


def _run(methods, copies, poses, obj, iterations=20, blocks="image"):
    """Scores of each method; ``blocks``: SART updates per image, or once per copy
    (:func:`average_phantoms.sart_keywords`)."""
    out = {}
    for name in methods:
        if name == "crm-sirt":  # the supplement's SIRT variant, relaxation 1.9
            r = crm(copies, poses, obj.shape, solver="sirt", iterations=iterations, relaxation=1.9)
        else:
            kw = sart_keywords(name, blocks)
            r = ALL[name](copies, poses, obj.shape, iterations=iterations, relaxation=0.2, **kw)
        out[name] = scores(r.object, obj)
    return out


def study_copies(args):
    angles = np.arange(-50, 51, 3.0)
    res = {}
    for kind in DATASETS:
        res[kind] = {}
        for n in args.counts:
            copies, poses, obj = make_copies(kind, n, angles, n_obj=args.size, n_copy=args.copy)
            res[kind][n] = _run(ALL, copies, poses, obj, blocks=args.blocks)
            print(kind, n, {m: round(v["psnr"], 2) for m, v in res[kind][n].items()}, flush=True)
    return res, "number of copies"


def study_tilt(args):
    res = {}
    for kind in DATASETS:
        res[kind] = {}
        for top in args.ranges:
            angles = np.arange(-top, top + 1, 3.0)
            copies, poses, obj = make_copies(kind, 11, angles, n_obj=args.size, n_copy=args.copy)
            res[kind][top] = _run(ALL, copies, poses, obj, blocks=args.blocks)
            print(
                kind, top, {m: round(v["psnr"], 2) for m, v in res[kind][top].items()}, flush=True
            )
    return res, "tilt range ± (degrees)"


def study_noise(args):
    angles = np.arange(-50, 51, 3.0)
    res = {}
    for snr in (1.0, 5.0, 10.0):
        key = f"SNR {snr:g}"
        res[key] = {}
        for n in args.counts:
            copies, poses, obj = make_copies(
                args.dataset, n, angles, n_obj=args.size, n_copy=args.copy, snr=snr
            )
            methods = ["masked", "crm", "crm-sirt"] if args.blocks == "image" else ALL
            res[key][n] = _run(methods, copies, poses, obj, iterations=40, blocks=args.blocks)
            print(key, n, {m: round(v["psnr"], 2) for m, v in res[key][n].items()}, flush=True)
    return res, "number of copies"


def study_convergence(args):
    angles = np.arange(-50, 51, 3.0)
    res = {}
    for kind in ("shepp", "ribosome0"):
        copies, poses, obj = make_copies(kind, args.n, angles, n_obj=args.size, n_copy=args.copy)
        t0 = time.perf_counter()
        c = crm(
            copies, poses, obj.shape, iterations=args.iterations, relaxation=0.2,
            options=CRMOptions(exact_residual=True, block=args.blocks),
        )  # fmt: skip
        t1 = time.perf_counter()
        s = simple_average(
            copies, poses, obj.shape, iterations=args.iterations, relaxation=0.2,
            **sart_keywords("simple", args.blocks),
        )  # fmt: skip
        t2 = time.perf_counter()
        res[kind] = {
            "crm": [h["rms_reprojection_error"] for h in c.history],
            "sart": [h["rms_reprojection_error"] for h in s.history],
            "seconds": {"crm": t1 - t0, "sart": t2 - t1},
        }
        for name in ("crm", "sart"):
            e = np.array(res[kind][name])
            within = int(np.argmax(e <= e[-1] * 1.01)) + 1
            print(
                f"{kind} {name}: final RMS {e[-1]:.4f}, within 1% of it after {within} iterations"
            )
    return res, "iteration"


def _plot(res, xlabel, study, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.0 * len(res)), layout="constrained")
    FigureCanvasAgg(fig)
    if study == "convergence":
        axes = fig.subplots(1, len(res), squeeze=False)[0]
        for ax, (kind, d) in zip(axes, res.items(), strict=True):
            for name in ("sart", "crm"):
                ax.plot(np.arange(1, len(d[name]) + 1), d[name], label=name)
            ax.set_yscale("log")
            ax.set(title=kind, xlabel=xlabel, ylabel="RMS re-projection error (Eq. 25)")
            ax.legend()
        fig.set_size_inches(11, 3.6)
    else:
        axes = fig.subplots(len(res), 3, squeeze=False)
        for row, (kind, d) in zip(axes, res.items(), strict=True):
            xs = list(d)
            for j, metric in enumerate(("psnr", "ssim", "pcc")):
                for name in d[xs[0]]:
                    row[j].plot(xs, [d[x][name][metric] for x in xs], "o-", label=name)
                row[j].set(title=f"{kind}: {metric.upper()}", xlabel=xlabel)
                row[j].legend(fontsize=8)
    fig.savefig(path, dpi=80)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", choices=["copies", "tilt", "noise", "convergence"], required=True)
    ap.add_argument("--size", type=int, default=65)
    ap.add_argument("--counts", type=lambda s: [int(v) for v in s.split(",")], default=None)
    ap.add_argument("--ranges", type=lambda s: [int(v) for v in s.split(",")], default=None)
    ap.add_argument("--n", type=int, default=49)
    ap.add_argument("--iterations", type=int, default=80)
    ap.add_argument("--dataset", default="ribosome0", help="noise study: ribosome or ribosome0")
    ap.add_argument(
        "--blocks", choices=["image", "copy"], default="image",
        help="SART blocks: one update per image (Andersen & Kak) or per copy (Eq. 19/23)",
    )  # fmt: skip
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    args.copy = int(args.size * 1.5) | 1
    if args.counts is None:
        args.counts = [3, 7, 15, 31, 49] if args.study == "copies" else [3, 11, 31, 61]
    args.ranges = args.ranges or [30, 40, 50, 60, 70]
    fn = {
        "copies": study_copies,
        "tilt": study_tilt,
        "noise": study_noise,
        "convergence": study_convergence,
    }[args.study]
    t0 = time.perf_counter()
    res, xlabel = fn(args)
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=float))
    suffix = "" if args.blocks == "image" else "_copyblocks"
    _plot(res, xlabel, args.study, ROOT / f"docs/img/average_{args.study}{suffix}.png")


if __name__ == "__main__":
    main()
