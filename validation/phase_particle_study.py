"""Multislice vs single-slice phase-retrieval tomography on abTEM-simulated HRTEM tilt series.

The data come from abTEM (an independent multislice code: its own potential integration,
slicing and propagation), not from wedge's forward model. abTEM is NOT a wedge dependency:
install it in a separate environment and point this script at that interpreter (the abTEM
half runs there in a subprocess):

    python -m venv /tmp/abtem-venv && /tmp/abtem-venv/bin/pip install abtem
    .venv/bin/python validation/phase_particle_study.py --abtem-python /tmp/abtem-venv/bin/python

Specimens (atoms within ``--radius`` Å of the centre of ../shared/data/pdpt-atomic-models/
EPB.xyz, a Pd@Pt particle): ``heavy`` with the file's species (Pd, Pt), ``light`` with every
atom made carbon (a weak phase object of the same shape). Per tilt (about y, wedge's
convention R = Y(θ)) the rotated atoms go to abTEM (Lobato, ``projection="finite"``, slices
of ``--dz`` Å, cell = the reconstruction box so the exit surfaces coincide), a plane wave at
300 kV, and a CTF per defocus with C3 and envelopes for a 10 Å rms focal spread and a
0.2 mrad rms angular spread (quasi-coherent: abTEM's envelope functions, not an incoherent
sum). Shot noise: Poisson counts at ``--dose`` e⁻/Å² in total over the series (0: none).

Each series is reconstructed by ``multislice`` and ``singleslice`` with the same options
(coherent model, as Ren et al.) and scored against the truth potential
(wedge.atoms.potential_volume of the untilted atoms): Pearson, FSC 0.143 resolution, and
atom tracing (wedge.atoms.trace, classify_species, compare: Ren's Table 1 columns). Writes
a JSON summary and a figure of central slices and FSC curves.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

ABTEM_SIDE = r"""
import json, sys
import numpy as np
import abtem, ase
cfg = json.loads(sys.argv[1])
abtem.config.set({"device": "cpu"})
pos_all = np.load(cfg["positions"])
numbers = np.array(cfg["numbers"])
n, d, dz = cfg["n"], cfg["pixel"], cfg["dz"]
thick = n * d
out = np.empty((pos_all.shape[0], len(cfg["defocus"]), n, n), np.float32)
for i, pos in enumerate(pos_all):
    p = pos + [(n - 1) / 2 * d, (n - 1) / 2 * d, thick / 2]
    atoms = ase.Atoms(numbers=numbers, positions=p, cell=[n * d, n * d, thick])
    pot = abtem.Potential(atoms, gpts=(n, n), slice_thickness=dz, parametrization="lobato",
                          projection="finite", device="cpu")
    ew = abtem.PlaneWave(energy=cfg["energy"], device="cpu").multislice(pot)
    for j, df in enumerate(cfg["defocus"]):
        ctf = abtem.CTF(energy=cfg["energy"], defocus=df, Cs=cfg["cs"],
                        focal_spread=cfg["focal_spread"], angular_spread=cfg["angular_spread"])
        out[i, j] = np.asarray(ew.apply_ctf(ctf).intensity().compute().array).T
np.save(cfg["out"], out)
print(abtem.__version__)
"""


def _specimen(radius: float) -> tuple[np.ndarray, np.ndarray]:
    from wedge.atoms.xyz import read_xyz

    m = read_xyz(ROOT.parent / "shared" / "data" / "pdpt-atomic-models" / "EPB.xyz")
    c = m.positions.mean(0)
    keep = np.linalg.norm(m.positions - c, axis=1) < radius
    return m.positions[keep] - c, m.numbers[keep]


def simulate(args, pos, numbers, angles, defocus):
    """abTEM images (n_tilts, n_defocus, Y, X) of the atoms rotated to every tilt.

    With ``args.cache`` (a folder) the images are kept there under a digest of everything
    that went into them, and reused."""
    import hashlib

    import torch

    from wedge.geometry import euler_to_matrix

    e = torch.zeros((angles.size, 3), dtype=torch.float64)
    e[:, 1] = torch.as_tensor(angles)
    rot = euler_to_matrix(torch.deg2rad(e)).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "pos.npy", np.einsum("nij,aj->nai", rot, pos))
        cfg = dict(
            positions=str(Path(tmp) / "pos.npy"), numbers=[int(z) for z in numbers], n=args.n,
            pixel=args.pixel, dz=args.dz, energy=300e3, cs=args.cs, defocus=list(defocus),
            focal_spread=10.0, angular_spread=0.2, out=str(Path(tmp) / "img.npy"),
        )  # fmt: skip
        cache = getattr(args, "cache", None)
        if cache:
            key = {k: v for k, v in cfg.items() if k not in ("positions", "out")}
            h = hashlib.sha256(json.dumps(key, sort_keys=True).encode())
            h.update(np.ascontiguousarray(np.einsum("nij,aj->nai", rot, pos)).tobytes())
            hit = Path(cache) / f"abtem_{h.hexdigest()[:16]}.npz"
            if hit.exists():
                z = np.load(hit)
                return z["images"], str(z["version"])
        res = subprocess.run(
            [args.abtem_python, "-c", ABTEM_SIDE, json.dumps(cfg)], capture_output=True, text=True
        )
        if res.returncode:
            sys.exit(f"abTEM side failed:\n{res.stderr[-3000:]}")
        images, version = np.load(cfg["out"]), res.stdout.strip().splitlines()[-1]
        if cache:
            Path(cache).mkdir(parents=True, exist_ok=True)
            np.savez(hit, images=images, version=version)
        return images, version


def wedge_fourier(vol, truth, tilt_range):
    """Power and correlation of the Fourier coefficients inside the missing wedge
    (|angle of (k_z, k_x) from the k_x axis| > tilt_range, away from the k_y axis; 0.05 <
    |k| < 0.5 cycles/voxel), reconstruction against truth (PhaseT3M Supp. Fig. S1)."""
    n = vol.shape[0]
    k = np.fft.fftfreq(n)
    kz, ky, kx = np.meshgrid(k, k, k, indexing="ij")
    kk = np.sqrt(kz**2 + ky**2 + kx**2)
    ang = np.degrees(np.arctan2(np.abs(kz), np.abs(kx)))
    mask = (ang > tilt_range) & (kk > 0.05) & (kk < 0.5) & (np.hypot(kz, kx) > 0.02)
    fr, ft = np.fft.fftn(vol)[mask], np.fft.fftn(truth)[mask]
    corr = np.real(np.vdot(fr, ft)) / np.sqrt(np.vdot(fr, fr).real * np.vdot(ft, ft).real)
    return {
        "wedge_power_ratio": round(float(np.sum(np.abs(fr) ** 2) / np.sum(np.abs(ft) ** 2)), 4),
        "wedge_fourier_corr": round(float(corr), 4),
    }


def score(vol, truth, pos, numbers, d):
    from wedge.atoms import AtomicModel, TraceOptions, classify_species, compare, trace
    from wedge.metrics import pearson
    from wedge.metrics.fsc import fsc

    out = {
        "pearson": round(float(pearson(vol, truth)), 4),
        "fsc_0143_A": round(float(fsc(vol, truth, voxel_size=d).resolution(0.143)), 3),
    }
    try:
        traced = trace(vol, d, TraceOptions(bond_length=2.75))
        species = np.unique(numbers)
        if species.size > 1:
            traced, _ = classify_species(traced, species.size)
        model = AtomicModel(pos, numbers, ("X",) * len(numbers))
        rep = compare(traced, model, radius=1.0)
        out.update(
            found_pct=round(100 * rep.found_fraction, 2),
            false_pos_pct=round(100 * rep.false_positive_fraction, 2),
            species_pct=round(100 * rep.species_correct_fraction, 2),
            position_error_pm=round(float(rep.position_error_rms), 2),
            n_true=int(rep.n_true),
            n_traced=int(rep.n_traced),
        )
    except ValueError as exc:  # nothing traced
        out["tracing"] = str(exc)
    return out


def _name(method: str, weight: float, args) -> str:
    """The method's label; with several weights, the weight too."""
    return method if len(args.weight) == 1 else f"{method} λ={weight:g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--abtem-python", default="/tmp/abtem-venv/bin/python")
    ap.add_argument("--n", type=int, default=64, help="grid size (voxels per side)")
    ap.add_argument("--pixel", type=float, default=0.4, help="voxel = pixel size, Å")
    ap.add_argument("--dz", type=float, default=0.8, help="abTEM slice thickness, Å")
    ap.add_argument("--radius", type=float, default=10.0, help="particle radius, Å")
    ap.add_argument("--tilts", type=int, default=60, help="tilts over 180°")
    ap.add_argument("--tilt-range", type=float, default=90.0, help="±range in degrees")
    ap.add_argument("--defocus", type=float, nargs="+", default=[40.0, 90.0, 200.0])
    ap.add_argument("--cs", type=float, default=1e5, help="C3 in Å (aberration-corrected: small)")
    ap.add_argument("--dose", type=float, default=0.0, help="total e-/Å² (0: infinite)")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--regulariser", default="tv")
    ap.add_argument(
        "--weight", type=float, nargs="+", default=[0.5], help="regulariser weight(s) λ, V"
    )
    ap.add_argument("--no-positivity", action="store_true")
    ap.add_argument("--step", type=float, default=0.5)
    ap.add_argument(
        "--conventional",
        action="store_true",
        help="also SIRT and RESIRE on -log of each tilt's focal-series mean",
    )
    ap.add_argument("--specimens", nargs="+", default=["heavy", "light"])
    ap.add_argument("--methods", nargs="+", default=["multislice", "singleslice"])
    ap.add_argument("--out", default="validation/phase_particle_study.json")
    ap.add_argument("--figure", default="docs/img/phase_particle.png")
    ap.add_argument("--cache", default=None, help="folder to keep and reuse abTEM images in")
    args = ap.parse_args()

    import torch

    import wedge
    from wedge.atoms import AtomicModel
    from wedge.atoms.potential import potential_volume
    from wedge.hrtem import hrtem_tilt_series
    from wedge.optics import Microscope

    pos, numbers = _specimen(args.radius)
    r = args.tilt_range
    angles = np.linspace(-r, r, args.tilts, endpoint=r < 90)
    if r >= 90:
        angles = -90.0 + 180.0 * np.arange(args.tilts) / args.tilts
    d, n = args.pixel, args.n
    mic = Microscope(energy=300e3, cs=args.cs)
    results, vols = {}, {}
    for spec in args.specimens:
        z = numbers if spec == "heavy" else np.full_like(numbers, 6)
        t0 = time.perf_counter()
        imgs, version = simulate(args, pos, z, angles, args.defocus)
        t_sim = time.perf_counter() - t0
        # sanity check of the conventions: wedge's own simulation of the same atoms (coherent)
        own = hrtem_tilt_series(
            AtomicModel(pos, z, ("X",) * len(z)), angles=angles, defocus=args.defocus,
            microscope=mic, voxel_size=d, shape=(n, n, n), n_bin=2,
        ).images  # fmt: skip
        r_data = float(np.corrcoef((imgs - 1).ravel(), (own - 1).ravel())[0, 1])
        if args.dose > 0:
            per = args.dose / imgs.shape[0] / imgs.shape[1] * d * d
            rng = np.random.default_rng(0)
            imgs = (rng.poisson(np.clip(imgs, 0, None) * per) / per).astype(np.float32)
        truth = potential_volume(pos, z, (n, n, n), d)
        series = wedge.TiltSeries(
            imgs, angles, pixel_size=d, defocus=np.asarray(args.defocus), microscope=mic
        )
        for method, weight in ((m, w) for m in args.methods for w in args.weight):
            t0 = time.perf_counter()
            rec = wedge.reconstruct(
                series, method, iterations=args.iterations, progress=False, device="cpu",
                regulariser=args.regulariser, weight=weight, step=args.step,
                positivity=not args.no_positivity,
            )  # fmt: skip
            t_rec = time.perf_counter() - t0
            res = score(rec.volume, truth, pos, z, d)
            if args.tilt_range < 90:
                res.update(wedge_fourier(rec.volume, truth, args.tilt_range))
            res.update(
                seconds=round(t_rec, 1),
                final_loss=round(rec.history[-1]["loss"], 4),
                final_r_factor=round(rec.history[-1]["r_factor"], 5),
            )
            name = _name(method, weight, args)
            results[f"{spec}/{name}"] = res
            vols[(spec, name)] = rec.volume
            print(spec, name, json.dumps(res), flush=True)
        if args.conventional:
            proj = -np.log(np.clip(series.images.mean(1), 1e-3, None))
            lin = wedge.TiltSeries(proj.astype(np.float32), angles, pixel_size=d)
            for method in ("sirt", "resire"):
                t0 = time.perf_counter()
                rec = wedge.reconstruct(lin, method, iterations=50, progress=False, device="cpu")
                res = score(rec.volume, truth, pos, z, d)
                res["seconds"] = round(time.perf_counter() - t0, 1)
                results[f"{spec}/{method}"] = res
                vols[(spec, method)] = rec.volume
                print(spec, method, json.dumps(res), flush=True)
        vols[(spec, "truth")] = truth
        results[f"{spec}/data"] = dict(
            atoms=len(z), abtem=version, simulation_s=round(t_sim, 1),
            r_abtem_vs_wedge_images=round(r_data, 4),
            max_phase_rad=round(float(mic.sigma * truth.sum(0).max() * d), 3),
        )  # fmt: skip
        print(spec, json.dumps(results[f"{spec}/data"]), flush=True)
    summary = dict(
        args=vars(args), angles_deg=[round(float(a), 3) for a in angles],
        threads=torch.get_num_threads(), results=results,
    )  # fmt: skip
    Path(args.out).write_text(json.dumps(summary, indent=1))
    _figure(vols, args, d)


def _figure(vols, args, d) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wedge.metrics.fsc import fsc

    specs = args.specimens
    names = [_name(m, w, args) for m in args.methods for w in args.weight]
    cols = ["truth", *names] + (["sirt", "resire"] if args.conventional else [])
    fig, ax = plt.subplots(
        len(specs), len(cols) + 1, figsize=(3.2 * (len(cols) + 1), 3.2 * len(specs))
    )
    ax = np.atleast_2d(ax)
    for i, spec in enumerate(specs):
        t = vols[(spec, "truth")]
        c = t.shape[1] // 2
        for j, name in enumerate(cols):
            v = vols[(spec, name)]
            ax[i, j].imshow(v[:, c - 1 : c + 2].sum(1), cmap="gray")  # z-x slab, 3 voxels thick
            ax[i, j].set_title(f"{spec}: {name}", fontsize=9)
            ax[i, j].axis("off")
        for name in cols[1:]:
            f = fsc(vols[(spec, name)], t, voxel_size=d)
            ax[i, -1].plot(f.frequencies, f.correlation, label=name)
        ax[i, -1].axhline(0.143, color="k", lw=0.5)
        ax[i, -1].set_xlabel("1/Å")
        ax[i, -1].set_title("FSC with the truth", fontsize=9)
        ax[i, -1].legend(fontsize=8)
    fig.tight_layout()
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=90)


if __name__ == "__main__":
    main()
