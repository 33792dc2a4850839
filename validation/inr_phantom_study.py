"""INR against SIRT on the dense phantom: missing wedge, tilt step, dose, pose (Lim et al. §2).

Run (one study at a time; each case trains one INR):
``.venv/bin/python validation/inr_phantom_study.py --study step --values 20 --size 48``

Data, independent of wedge's projectors: :func:`wedge.phantoms.dense` (membrane, pyramid,
cheese wedge, spiky sea mine, atom grid; values in [0, 1]) projected slice by slice (Y) by
ASTRA's 2D parallel ``linear`` projector (ASTRA's angle is wedge's −β). Studies:

* ``wedge``: tilts every ``--step`` degrees over ±(90 − v/2), v the missing wedge (degrees);
* ``step``: tilts every v degrees over (−90, 90);
* ``dose``: tilts every ``--step`` degrees over (−90, 90) and Poisson noise of Eq. 10,
  ``Poisson(im · v) / v``, v in counts per pixel (the images are line integrals of the
  phantom in voxel lengths, as the paper's);
* ``pose``: tilts every ``--step`` degrees over ±70°, the tilt axis turned by v degrees in
  the image plane and random shifts (σ = ``--shift`` px), applied to the projections by one
  cubic spline per image; the series says α = 0 and no shifts. INR with ``pose=True``
  from epoch ``--pose-start``, angles ``--pose-angles`` (``per_image``, ``axis``, ``both``);
  reported: the axis residual (mean in-plane angle of ``R_eff R_trueᵀ``, = mean z₁ + α),
  the mean rotation error (angle of ``R_eff R_trueᵀ``) and the shift error (RMS, after
  removing the shifts a 3D translation of the volume explains:
  ``wedge.inr.rays.remove_translation``), SSIM of the INR with pose learning to the truth
  and to the INR of the aligned series (trained once, same settings), and of the SIRT on
  the misaligned series.

Baselines: wedge's SIRT (``--sirt-iterations``) with positivity and plain. Metric: SSIM to
the truth over the whole volume (:func:`wedge.metrics.ssim`, 7-voxel uniform window,
data range of the truth), and Pearson. Times: wall and CPU (``process_time``,
all threads) of the INR. The INR history (per epoch: time, hold-out error, SSIM) gives the
time to the SSIM plateau (first epoch within 1% of the best SSIM).
Writes a JSON file and a figure of the central XZ slices (the missing wedge vertical).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import wedge  # noqa: E402
from conftest import astra_project, misaligned_images  # noqa: E402
from wedge._cpuinfo import machine_line
from wedge.metrics import pearson, ssim
from wedge.phantoms import dense


def case_series(study: str, v: float, args: argparse.Namespace, vol: np.ndarray):
    rng = np.random.default_rng(args.seed)
    truth = {}
    if study == "wedge":
        half = 90.0 - v / 2
        ang = np.arange(-half, half + 1e-9, args.step)
    elif study == "step":
        ang = np.arange(-90.0, 90.0 - 1e-9, v) + (0.0 if v >= 90 else 0.0)
    else:
        ang = np.arange(-90.0, 90.0 - 1e-9, args.step)
    if study == "pose":
        ang = np.arange(-70.0, 70.0 + 1e-9, args.step)
    proj = astra_project(vol, ang)
    if study == "dose":
        proj = (rng.poisson(np.clip(proj, 0, None) * v) / v).astype(np.float32)
    if study == "pose":
        sh = rng.normal(0, args.shift, (ang.size, 2))
        sh -= sh.mean(0)
        proj = misaligned_images(proj, v, sh)
        truth = {"alpha": v, "shifts": sh}
    return wedge.TiltSeries(proj, ang), truth


def pose_errors(series: wedge.TiltSeries, truth: dict) -> dict[str, float]:
    import torch

    from wedge.geometry import rotation_y, rotation_z
    from wedge.parameters import AcquisitionParameters

    p = AcquisitionParameters(series)
    ang = torch.tensor(np.asarray(series.angles), dtype=torch.float64)
    a = torch.deg2rad(torch.tensor(truth["alpha"], dtype=torch.float64))
    true = rotation_z(a) @ rotation_y(torch.deg2rad(ang))
    with torch.no_grad():
        rel = p.matrices(torch.float64) @ true.transpose(1, 2)
        tr = rel.diagonal(dim1=1, dim2=2).sum(-1)
        err = torch.rad2deg(torch.acos(((tr - 1) / 2).clamp(-1, 1)))
        # in-plane (about the beam) part of R_eff R_trueᵀ: −(z₁ + α) for z₃ = 0
        inplane = torch.rad2deg(torch.atan2(rel[:, 1, 0], rel[:, 0, 0]))
    from wedge.inr.rays import remove_translation

    d = remove_translation(p.shifts.detach() - torch.tensor(truth["shifts"]), true).numpy()
    return {
        "axis_residual_deg": float(-inplane.mean()),
        "axis_residual_deg_sd": float(inplane.std()),
        "rotation_error_deg_mean": float(err.mean()),
        "shift_error_px_rms": float(np.sqrt((d**2).sum(1).mean())),
    }


def score(x: np.ndarray, vol: np.ndarray) -> dict[str, float]:
    rng_ = float(vol.max() - vol.min())
    return {"ssim": ssim(x, vol, data_range=rng_), "pearson": pearson(x, vol)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", choices=["wedge", "step", "dose", "pose"], required=True)
    ap.add_argument("--values", default="20", help="comma-separated study values")
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--step", type=float, default=2.0, help="tilt step of wedge/dose/pose")
    ap.add_argument("--shift", type=float, default=1.5, help="σ of random shifts, px (pose)")
    ap.add_argument("--pose-start", type=int, default=5, help="epoch pose learning starts")
    ap.add_argument("--pose-angles", default="per_image", choices=["per_image", "axis", "both"])
    ap.add_argument("--pose-angle-lr", type=float, default=None, help="angle lr, deg/step")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--sirt-iterations", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="inr_study.json")
    ap.add_argument("--figure", default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    vol = dense((args.size,) * 3)
    print(machine_line(), f"| torch threads {args.threads} | load {os.getloadavg()[0]:.1f}")
    rows, slices = [], []
    common = dict(
        iterations=args.epochs, width=args.width, depth=args.depth, lr=args.lr,
        batch_size=args.batch, progress=False, device=args.device, reference=vol,
        patience=args.epochs,
    )  # fmt: skip
    aligned = None
    if args.study == "pose":  # the INR of the aligned series (no axis error, no shifts)
        s0, _ = case_series("pose", 0.0, argparse.Namespace(**{**vars(args), "shift": 0.0}), vol)
        aligned = wedge.reconstruct(s0, "inr", **common).volume
        print(f"aligned INR: SSIM {score(aligned, vol)['ssim']:.3f}", flush=True)
    for v in (float(s) for s in args.values.split(",")):
        s, truth = case_series(args.study, v, args, vol)
        t0 = time.perf_counter()
        sirt_p = wedge.reconstruct(
            s, "sirt", iterations=args.sirt_iterations, positivity=True, progress=False,
            device=args.device, reference=vol,
        )  # fmt: skip
        t_sirt = time.perf_counter() - t0
        sirt = wedge.reconstruct(
            s, "sirt", iterations=args.sirt_iterations, progress=False, device=args.device
        )
        opts = dict(common)
        if args.study == "pose":
            opts.update(
                pose=True, pose_start=args.pose_start, pose_angles=args.pose_angles,
                pose_angle_lr=args.pose_angle_lr,
            )  # fmt: skip
        t0, c0 = time.perf_counter(), time.process_time()
        rec = wedge.reconstruct(s, "inr", **opts)
        t_inr, c_inr = time.perf_counter() - t0, time.process_time() - c0
        hist = [
            {k: h[k] for k in ("iteration", "time_s", "holdout_error", "ssim", "r_factor")}
            for h in rec.history
        ]
        best = max(h["ssim"] for h in hist)
        plateau = next(h for h in hist if h["ssim"] >= 0.99 * best)
        sirt_hist = sirt_p.history
        s_best = max(h["ssim"] for h in sirt_hist)
        s_plateau = next(h for h in sirt_hist if h["ssim"] >= 0.99 * s_best)
        row = {
            "study": args.study, "value": v, "n_images": s.n_tilts, "size": args.size,
            "inr": score(rec.volume, vol), "sirt_positivity": score(sirt_p.volume, vol),
            "sirt": score(sirt.volume, vol), "inr_seconds": t_inr, "inr_cpu_seconds": c_inr,
            "sirt_seconds": t_sirt,
            "inr_stopped": rec.stopped, "inr_epochs_run": len(hist),
            "inr_plateau": {"epoch": plateau["iteration"], "time_s": plateau["time_s"]},
            "sirt_plateau": {"iteration": s_plateau["iteration"], "time_s": s_plateau["time_s"]},
            "inr_history": hist,
        }  # fmt: skip
        if args.study == "pose":
            row["pose"] = pose_errors(rec.series, truth)
            row["inr_vs_aligned_inr"] = score(rec.volume, aligned)
            row["aligned_inr"] = score(aligned, vol)
        rows.append(row)
        mid = args.size // 2
        slices.append((v, vol[:, mid, :], rec.volume[:, mid, :], sirt_p.volume[:, mid, :], row))
        print(
            f"{args.study}={v:g}: {s.n_tilts} images | INR SSIM {row['inr']['ssim']:.3f} "
            f"({t_inr:.0f} s wall, {c_inr:.0f} s CPU, plateau at epoch {plateau['iteration']:.0f}, "
            f"{plateau['time_s']:.0f} s) | SIRT+pos {row['sirt_positivity']['ssim']:.3f} "
            f"({t_sirt:.1f} s) | SIRT {row['sirt']['ssim']:.3f}"
            + (f" | pose {row['pose']}" if "pose" in row else ""),
            flush=True,
        )
    meta = {"machine": machine_line(), "args": vars(args), "load_1min": os.getloadavg()[0]}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(3, len(slices), figsize=(3 * len(slices), 9), squeeze=False)
        for j, (v, t, a, b, row) in enumerate(slices):
            for i, (img, name) in enumerate(
                [(t, "truth"), (a, f"INR {row['inr']['ssim']:.3f}"),
                 (b, f"SIRT+pos {row['sirt_positivity']['ssim']:.3f}")]
            ):  # fmt: skip
                ax[i, j].imshow(img, cmap="gray", vmin=0, vmax=1)
                ax[i, j].set_title(f"{args.study}={v:g}: {name}", fontsize=9)
                ax[i, j].axis("off")
        fig.suptitle("central XZ slices (Z vertical: the missing wedge direction)")
        fig.tight_layout()
        fig.savefig(args.figure, dpi=90)


if __name__ == "__main__":
    main()
