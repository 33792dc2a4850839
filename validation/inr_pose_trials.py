"""Trials on joint pose learning of an in-plane tilt-axis error (docs/inr.md, "Pose").

The slow test's case: ASTRA projections of the ``materials`` phantom (``--size``³), tilts
every 10° over ±70°, turned by an in-plane axis error ``--alpha`` and moved by random
shifts (σ = 1 px, seed 3, mean removed; the series says α = 0 and no shifts).

Two modes:

* ``joint`` (default): ``inr`` with ``pose=True`` and the given options (``--set k=v``);
  prints per epoch the residual axis error (mean effective z₁ + α, degrees), the spread
  of z₁, the shift error (RMS after removing the translation gauge,
  :func:`wedge.inr.rays.remove_translation`) and the SSIM of the epoch's volume to the
  truth. ``--aligned`` trains on the aligned series (α = 0, no shifts, no pose) instead.
  ``--save-volume`` keeps the returned volume, ``--save-epochs`` the volumes of some
  epochs (``NAME_epK.npy``).
* ``fixed``: the pose alone (Adam, lr 0.05, 200 steps of 1024 rays, Smooth-L1, as the
  unit test) against a *fixed* volume (trilinear field): the truth, a blurred truth, SIRT
  with positivity of the aligned and of the misaligned series, and any ``--volumes``
  given; once with the per-image angles and the common offset, once with the common
  offset alone. Tells whether a volume lets the pose find α.
* ``profile``: SIRT with positivity (100 iterations) of the misaligned series told an
  axis of 0 … 5° (wedge's ``tilt_axis_angle``), with the true shifts and with none: the
  re-projection R-factor and the SSIM to the truth (how much the axis shows at this size),
  and wedge's common-line estimate (:func:`wedge.align.estimate_tilt_axis`).

Examples::

    .venv/bin/python validation/inr_pose_trials.py --set pose_start=0 --save-volume base.npy
    .venv/bin/python validation/inr_pose_trials.py --set pose_start=0 --set pose_angles=axis
    .venv/bin/python validation/inr_pose_trials.py fixed --volumes base.npy
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import wedge  # noqa: E402
from conftest import astra_project, misaligned_images  # noqa: E402
from wedge.geometry import rotation_y, rotation_z  # noqa: E402
from wedge.inr import Pose, RayGeometry, line_integrals, n_samples  # noqa: E402
from wedge.inr import train as inr_train  # noqa: E402
from wedge.inr.rays import remove_translation  # noqa: E402
from wedge.metrics import ssim  # noqa: E402
from wedge.parameters import AcquisitionParameters  # noqa: E402
from wedge.phantoms import materials  # noqa: E402


def case(size: int, alpha: float, aligned: bool = False):
    """Truth volume, tilt angles, true shifts and the misaligned images (``aligned``: no
    axis error and no shifts, through the same interpolation)."""
    rng = np.random.default_rng(3)
    vol = materials((size,) * 3)
    ang = np.arange(-70.0, 71.0, 10.0)
    shifts = rng.normal(0, 1.0, (ang.size, 2))
    shifts -= shifts.mean(0)
    if aligned:
        shifts[:], alpha = 0.0, 0.0
    return vol, ang, shifts, misaligned_images(astra_project(vol, ang), alpha, shifts)


def _value(v: str):
    if v in ("True", "False"):
        return v == "True"
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def joint(args: argparse.Namespace) -> None:
    alpha = 0.0 if args.aligned else args.alpha
    vol, ang, shifts, img = case(args.size, alpha, args.aligned)
    kw = dict(iterations=40, lr=1e-3, width=64, depth=3, warmup_epochs=3, patience=100)
    kw.update(pose=not args.aligned, pose_start=3, progress=False)
    kw.update({k: _value(v) for k, v in (a.split("=", 1) for a in args.set)})
    true = rotation_z(torch.deg2rad(torch.tensor(alpha, dtype=torch.float64))) @ rotation_y(
        torch.deg2rad(torch.tensor(ang))
    )
    step = inr_train.INRTraining.step
    keep = {int(e) for e in args.save_epochs.split(",")} if args.save_epochs else set()

    def logged(self, state, k):  # the method's epoch, then the pose and volume errors
        out = step(self, state, k)
        with torch.no_grad():
            z1 = self.pose.z1_total().detach()
            d = remove_translation(self.pose.delta.detach() - torch.tensor(shifts), true)
        x = out["x"].cpu().numpy()
        if k in keep and args.save_volume:
            np.save(args.save_volume.replace(".npy", f"_ep{k}.npy"), x)
        print(
            f"epoch {k:2d} | axis residual {float(z1.mean()) + alpha:+.3f}° | z1 sd "
            f"{float(z1.std()):.3f}° | shift RMS {float(d.pow(2).sum(1).mean().sqrt()):.3f} px"
            f" | SSIM {ssim(x, vol, data_range=1.0):.3f}",
            flush=True,
        )
        return out

    inr_train.INRTraining.step = logged
    t0 = time.perf_counter()
    rec = wedge.reconstruct(wedge.TiltSeries(img, ang), "inr", **kw)
    wall = time.perf_counter() - t0
    if args.save_volume:
        np.save(args.save_volume, rec.volume)
    print(f"options {kw}")
    print(
        f"returned volume SSIM {ssim(rec.volume, vol, data_range=1.0):.3f} | {wall:.0f} s "
        f"wall | load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def fixed(args: argparse.Namespace) -> None:
    import scipy.ndimage as ndi

    vol, ang, shifts, img = case(args.size, args.alpha)
    s = wedge.TiltSeries(img, ang)
    sirt = dict(iterations=100, positivity=True, progress=False)
    volumes = {
        "truth": vol,
        "truth blurred (σ 1 voxel)": ndi.gaussian_filter(vol, 1.0),
        "SIRT+pos, aligned series": wedge.reconstruct(
            wedge.TiltSeries(astra_project(vol, ang), ang), "sirt", **sirt
        ).volume,
        "SIRT+pos, misaligned series": wedge.reconstruct(s, "sirt", **sirt).volume,
    }
    volumes.update({p: np.load(p) for p in args.volumes})
    target = torch.tensor(img).reshape(-1)
    n = args.size
    for name, v in volumes.items():
        grid = torch.tensor(v)[None, None]

        def field(t: torch.Tensor, grid=grid) -> torch.Tensor:
            g = t.reshape(1, -1, 1, 1, 3)
            return F.grid_sample(grid, g, mode="bilinear", align_corners=False).reshape(-1)

        for per_image in (True, False):
            p = AcquisitionParameters(s)
            pose = Pose(p.matrices(torch.float64), p.shifts, axis=True, per_image=per_image)
            geom = RayGeometry(v.shape, (n, n))
            opt = torch.optim.Adam([*pose.angles(), pose.delta], lr=0.05)
            gen = torch.Generator().manual_seed(0)
            for _ in range(200):
                idx = torch.randint(0, target.numel(), (1024,), generator=gen)
                m, d = pose.effective()
                jitter = torch.rand(1024, generator=gen)
                t, h = geom.points(idx, m, d, n_samples(v.shape, 1.0), jitter)
                loss = F.smooth_l1_loss(line_integrals(field, t, h), target[idx], beta=0.07)
                opt.zero_grad()
                loss.backward()
                opt.step()
                pose.fix_gauge()
            z1 = pose.z1_total().detach()
            mode = "per-image + common" if per_image else "common offset only"
            print(
                f"{name:32s} (SSIM {ssim(v, vol, data_range=1.0):.3f}) {mode:19s}: axis "
                f"residual {float(z1.mean()) + args.alpha:+.3f}°, z1 sd {float(z1.std()):.3f}°",
                flush=True,
            )


def profile(args: argparse.Namespace) -> None:
    from wedge.align import estimate_tilt_axis

    vol, ang, shifts, img = case(args.size, args.alpha)
    for a in (0.0, 1.0, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0):
        for given in ("true", "none"):
            s = wedge.TiltSeries(
                img, ang, tilt_axis_angle=a, shifts=shifts if given == "true" else None
            )
            r = wedge.reconstruct(s, "sirt", iterations=100, positivity=True, progress=False)
            print(
                f"axis {a:4.1f}° shifts {given}: R-factor {r.history[-1]['r_factor']:.4f}, "
                f"SSIM {ssim(r.volume, vol, data_range=1.0):.3f}",
                flush=True,
            )
    print(f"common-line estimate {estimate_tilt_axis(wedge.TiltSeries(img, ang)):.2f}°")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", nargs="?", choices=["joint", "fixed", "profile"], default="joint")
    ap.add_argument("--alpha", type=float, default=3.0, help="axis error, degrees")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--set", action="append", default=[], help="inr option key=value")
    ap.add_argument("--aligned", action="store_true", help="joint: the aligned series")
    ap.add_argument("--save-volume", default=None, help="joint: .npy path")
    ap.add_argument("--save-epochs", default="", help="joint: comma-separated epochs")
    ap.add_argument("--volumes", nargs="*", default=[], help="fixed: extra .npy volumes")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    {"joint": joint, "fixed": fixed, "profile": profile}[args.mode](args)


if __name__ == "__main__":
    main()
