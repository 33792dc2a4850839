"""RESIRE on the authors' own data: the amorphous test object (with truth) and the Ta film.

Usage::

    .venv/bin/python validation/resire_real_data.py [--iterations 100] [--ta-iterations 30]
        [--skip-ta] [--data ../shared/data]

Part 1 (resire-sample-with-truth): 41 projections of a 64³ amorphous volume. The
authors' volume is read as ``Vol.transpose(2, 1, 0)`` (Z, Y, X), the images as
``Projs.transpose(2, 1, 0)``, the angles negated, and the authors' N/2 rotation centre is
matched by per-image shifts ``dx = ½(1 − cos θ − sin θ)`` (their u = (x − N/2)cos θ +
(z − N/2) sin θ + N/2). Their stored reconstruction (``DERIVED_…npy``) is in the same
MATLAB order and is transposed likewise. Acceptance: Pearson ≥ 0.973 and relative L2 ≤
0.215 against the truth, correlation ≥ 0.98 with the authors' result.

Part 2 (ta-film-experimental, sub-area 1): extended-object RESIRE (46 refined Euler
angles; the sign convention of the Euler angles is picked by re-projecting the authors'
sub-volume and comparing with the measured images) and its correlation with the authors'
500-iteration RESIRE sub-volume.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.io as sio
import torch

import wedge
from wedge.methods import resire as _resire  # noqa: F401  (registers "resire")
from wedge.metrics import pearson, relative_l2

ROOT = Path(__file__).resolve().parents[1]


def authors_sample(data: Path):
    base = data / "resire-sample-with-truth"
    pkg = base / "2_RESIRE_package"
    images = sio.loadmat(pkg / "input/sample_projections_amorphous.mat")["Projs"]
    angles = sio.loadmat(pkg / "input/sample_angles_amorphous.mat")["angles"]
    truth = sio.loadmat(pkg / "output/ground_truth_amorphous_vol.mat")["Vol"]
    authors = np.load(base / "DERIVED_sample_amorphous_res_reconstruction.npy")
    euler = -np.asarray(angles, np.float64)
    th = np.deg2rad(euler[:, 1])
    shifts = np.c_[0.5 * (1 - np.cos(th) - np.sin(th)), np.zeros_like(th)]
    return (
        images.transpose(2, 1, 0).astype(np.float32),
        euler,
        shifts,
        truth.transpose(2, 1, 0).astype(np.float32),
        authors.transpose(2, 1, 0).astype(np.float32),
    )


def part1(data: Path, iterations: int) -> dict:
    images, euler, shifts, truth, authors = authors_sample(data)
    out = {}
    for model in ("fourier", "voxel"):
        series = wedge.TiltSeries(images, euler[:, 1], euler=euler, shifts=shifts)
        t0 = time.perf_counter()
        rec = wedge.reconstruct(
            series, "resire", iterations=iterations, model=model, device="cpu", progress=False
        )
        x = rec.volume
        out[model] = {
            "iterations": iterations,
            "pearson_truth": pearson(x, truth),
            "relative_l2_truth": relative_l2(x, truth),
            "pearson_authors": pearson(x, authors),
            "r_factor": rec.history[-1]["r_factor"],
            "seconds": time.perf_counter() - t0,
        }
        print(model, json.dumps(out[model]), flush=True)
    out["authors_vs_truth"] = {
        "pearson": pearson(authors, truth),
        "relative_l2": relative_l2(authors, truth),
    }
    return out


def _ta_convention(images: np.ndarray, ref: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Pick the Euler sign convention whose re-projection of ``ref`` best matches ``images``."""
    best, best_e = -2.0, None
    for name, e in {
        "negate all": -angle,
        "negate theta": angle * np.array([1, -1, 1]),
        "as stored": angle.copy(),
        "swap phi/psi, negate": -angle[:, ::-1],
    }.items():
        p = wedge.project(ref, euler=e, model="fourier", device="cpu", oversampling=2.0)
        r = pearson(p, images)
        print(f"  Ta convention {name!r}: Pearson(reprojection of authors, measured) = {r:.4f}")
        if r > best:
            best, best_e = r, e
    return best_e


def part2(data: Path, iterations: int) -> dict:
    base = data / "ta-film-experimental"
    angle = sio.loadmat(base / "angles_euler_deg.mat")["angle"].astype(np.float64)
    proj = sio.loadmat(base / "projections/Projections_area1.mat")["Proj_sub"]
    ref = sio.loadmat(base / "resire_reconstructions/ReconObj_sub1.mat")["reconstruction"]
    images = proj.transpose(2, 1, 0).astype(np.float32)  # (46, Y, X)
    ref = ref.transpose(2, 1, 0).astype(np.float32)  # (Z, Y, X)
    euler = _ta_convention(images, ref, angle)
    series = wedge.TiltSeries(images, euler[:, 1], euler=euler, pixel_size=0.3216)
    out = {}
    for ext in (True, False):
        t0 = time.perf_counter()
        rec = wedge.reconstruct(
            series,
            "resire",
            iterations=iterations,
            model="fourier",
            device="cpu",
            volume_shape=ref.shape,
            extended_object=ext,
            step=1.0,
            progress=False,
        )
        key = "extended" if ext else "cube"
        out[key] = {
            "iterations": iterations,
            "pearson_authors": pearson(rec.volume, ref),
            "r_factor": rec.history[-1]["r_factor"],
            "seconds": time.perf_counter() - t0,
        }
        print("Ta", key, json.dumps(out[key]), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--ta-iterations", type=int, default=30)
    ap.add_argument("--skip-ta", action="store_true")
    ap.add_argument("--skip-sample", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    res = {}
    if not a.skip_sample:
        res["resire_sample"] = part1(a.data, a.iterations)
    if not a.skip_ta:
        res["ta_film_sub1"] = part2(a.data, a.ta_iterations)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
