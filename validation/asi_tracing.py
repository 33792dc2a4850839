"""Real-data atom tracing: reconstruct, trace and score against ground-truth atoms.

Part 1, ``asi`` (../shared/data/asi-multislice-with-atoms, NP1: 208 Si atoms, multislice
ADF-STEM, 60 tilts 0..177°, Poisson counts at three doses). The pipeline, per dose:

1. **Orientation.** The MATLAB stack (Nx, Ny, n) becomes wedge's (n, Y, X) by
   ``transpose(2, 1, 0)``; the ground-truth file's (x, y, z) map to wedge's (x, y, z) as
   (y_gt, x_gt, -z_gt), found by correlating projections of the true atoms with the images
   over all axis permutations and signs (printed as a check).
2. **Background subtraction.** The vacuum level of each image is the mean of a 6-pixel frame
   at the border (the particle never reaches it) and is subtracted.
3. **Binning.** 2 x 2 pixel sums (0.195 -> 0.39 Å): atoms 2.3 Å apart stay 6 voxels apart
   and the reconstruction is 8x cheaper.
4. **Reconstruction** with ``wedge.reconstruct``: RESIRE (positivity) when registered, SIRT
   otherwise.
5. **Tracing** with ``wedge.atoms.trace`` (defaults; bond length 2.35 Å for Si) and
   **scoring** with ``wedge.atoms.compare`` (radius 1.0 Å, after the optimal global shift,
   since the authors' frame sits half a voxel off wedge's (N-1)/2 centre).

Part 2, ``resire-sample`` (../shared/data/resire-sample-with-truth): trace the ground-truth
volume, the authors' RESIRE volume and wedge's RESIRE reconstruction of the same projections
and compare the atom counts (and positions, matched within 1.5 voxels). The sample records
no voxel size, so lengths are in voxels (voxel_size = 1).

Run: ``python validation/asi_tracing.py [--part asi|resire-sample|all] [--iterations 30]``.
About 2-4 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.io as sio
from scipy import ndimage

import wedge
from wedge.atoms.evaluation import compare
from wedge.atoms.tracing import TraceOptions, trace

DATA = Path(
    os.environ.get("WEDGE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
ASI = DATA / "asi-multislice-with-atoms" / "NP1_aSi_208"
DOSES = {"8.0e3": "8p0e3", "1.6e4": "1p6e4", "1.6e5": "1p6e5"}
PIXEL = 0.195  # Å


def pick_method() -> str:
    """RESIRE when registered (importing work-in-progress modules if needed), else SIRT."""
    for module in ("resire", "algebraic"):
        try:
            importlib.import_module(f"wedge.methods.{module}")
        except ImportError:
            pass
    from wedge.methods.registry import methods as registered

    names = registered()
    for name in ("resire", "sirt"):
        if name in names:
            return name
    raise SystemExit(f"neither 'resire' nor 'sirt' is registered (have {names}).")


def load_asi(dose: str) -> tuple[np.ndarray, np.ndarray]:
    f = ASI / "1.1_projections" / f"aSi_2nmFosCetr_Dose{DOSES[dose]}_cov35pm_ForBM3D.mat"
    stack = sio.loadmat(f)["Trunc_projections_forBM3D"].astype(np.float32)
    angles = sio.loadmat(ASI / "1.1_projections" / "Si_Angle.mat")["Angle"].astype(float)
    return stack.transpose(2, 1, 0), angles[:, 1]  # (n, Y, X), θ in degrees


def load_truth() -> np.ndarray:
    gt = np.loadtxt(ASI / "1.4_classification_CalRMSD" / "aSi_208atoms_GT.txt", comments="%")
    x, y, z = gt[:, 1], gt[:, 2], gt[:, 3]
    return np.stack([y, x, -z], axis=1)  # wedge (x, y, z), see the module notes


def orientation_check(images: np.ndarray, angles: np.ndarray, gt_xyz: np.ndarray) -> dict:
    """Correlation of smoothed images with point projections of the truth, all 48 frames."""
    n = images.shape[-1]
    c = (n - 1) / 2

    def project(xyz: np.ndarray, theta: float) -> np.ndarray:
        t = np.deg2rad(theta)
        u = xyz[:, 0] * np.cos(t) + xyz[:, 2] * np.sin(t)
        img = np.zeros((n, n))
        iu = np.clip(np.round(u / PIXEL + c).astype(int), 0, n - 1)
        iv = np.clip(np.round(xyz[:, 1] / PIXEL + c).astype(int), 0, n - 1)
        np.add.at(img, (iv, iu), 1.0)
        return ndimage.gaussian_filter(img, 2)

    picks = range(0, len(angles), 10)
    sm = [ndimage.gaussian_filter(images[k], 2).ravel() for k in picks]
    scores = {}
    for perm in itertools.permutations(range(3)):
        for sign in itertools.product((1, -1), repeat=3):
            xyz = gt_xyz[:, perm] * np.array(sign)
            cc = [
                np.corrcoef(project(xyz, angles[k]).ravel(), s)[0, 1]
                for k, s in zip(picks, sm, strict=True)
            ]
            scores[(perm, sign)] = float(np.mean(cc))
    best = max(scores, key=scores.get)
    return {
        "identity_score": scores[((0, 1, 2), (1, 1, 1))],
        "best_frame": str(best),
        "best_score": scores[best],
        "runner_up": sorted(scores.values())[-2],
    }


def preprocess(images: np.ndarray, binning: int = 2) -> np.ndarray:
    frame = np.ones(images.shape[1:], bool)
    frame[6:-6, 6:-6] = False
    out = images - images[:, frame].mean(1)[:, None, None]
    m = out.shape[1] // binning
    out = out[:, : m * binning, : m * binning]
    return out.reshape(len(out), m, binning, m, binning).sum((2, 4))


def reconstruct(images: np.ndarray, angles: np.ndarray, pixel: float, method: str, iterations: int):
    series = wedge.TiltSeries(images, angles, pixel_size=pixel)
    kw = {"iterations": iterations, "progress": False}
    if method == "resire":
        kw["positivity"] = True
    return wedge.reconstruct(series, method, **kw)


def part_asi(method: str, iterations: int) -> list[dict]:
    truth = load_truth()
    rows = []
    for dose in DOSES:
        images, angles = load_asi(dose)
        if dose == "1.6e5":
            print("orientation check:", orientation_check(images, angles, truth), flush=True)
        binned = preprocess(images)
        t0 = time.perf_counter()
        rec = reconstruct(binned, angles, 2 * PIXEL, method, iterations)
        t1 = time.perf_counter()
        traced = trace(rec.volume, 2 * PIXEL, TraceOptions(bond_length=2.35))
        t2 = time.perf_counter()
        rep = compare(traced, (truth, np.full(len(truth), 14)), radius=1.0, align=True)
        row = {
            "dose_e_per_A2": dose,
            "method": method,
            "iterations": iterations,
            **{k: round(v, 2) for k, v in rep.table_row().items()},
            "n_traced": rep.n_traced,
            "n_true": rep.n_true,
            "axis_error_pm_xyz": [round(float(v), 2) for v in rep.axis_error_rms],
            "rmsd_after_shift_pm": round(rep.rmsd_after_shift, 2),
            "shift_A": [round(float(v), 3) for v in rep.shift_applied],
            "mean_bond_traced_A": round(float(np.mean(rep.bonds_traced)), 3),
            "mean_bond_true_A": round(float(np.mean(rep.bonds_true)), 3),
            "reconstruct_s": round(t1 - t0, 1),
            "trace_s": round(t2 - t1, 1),
            "trace_converged": traced.converged,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def part_resire_sample(iterations: int) -> dict:
    # the authors' geometry (angles negated, their N/2 centre as per-image shifts), shared
    # with the RESIRE validation
    from resire_real_data import authors_sample

    images, euler, shifts, truth, authors = authors_sample(DATA)
    series = wedge.TiltSeries(images, euler[:, 1], euler=euler, shifts=shifts)
    method = pick_method()
    rec = wedge.reconstruct(series, method, iterations=iterations, progress=False)
    vols = {"truth": truth, "authors_resire": authors, f"wedge_{method}": rec.volume}
    opts = TraceOptions(bond_length=2.0)  # lengths in voxels (no voxel size recorded)
    traced = {k: trace(v, 1.0, opts) for k, v in vols.items()}
    out = {k: len(t) for k, t in traced.items()}
    ref = traced["truth"]
    for k, t in traced.items():
        if k != "truth":
            rep = compare(t, ref.positions, radius=1.5, align=True)
            out[f"{k}_vs_truth"] = {
                "found_pct": round(100 * rep.found_fraction, 1),
                "false_pos_pct": round(100 * rep.false_positive_fraction, 1),
                "rmsd_voxels": round(rep.rmsd_after_shift / 100, 3),
            }
    print(json.dumps(out), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["asi", "resire-sample", "all"], default="all")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    if not ASI.exists():
        print(f"reference data absent: {ASI}", file=sys.stderr)
        return 1
    method = pick_method()
    print(f"reconstruction method: {method}", flush=True)
    results: dict = {}
    if args.part in ("asi", "all"):
        results["asi_np1"] = part_asi(method, args.iterations)
    if args.part in ("resire-sample", "all"):
        results["resire_sample_counts"] = part_resire_sample(max(args.iterations, 100))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
