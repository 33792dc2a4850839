"""wedge's multislice against abTEM (independent simulator): exit-wave and HRTEM images.

abTEM is NOT a wedge dependency. Install it in a separate environment and point this script
at that interpreter; the abTEM half runs there (subprocess), the wedge half here, in one run:

    python -m venv /tmp/abtem-venv && /tmp/abtem-venv/bin/pip install abtem
    .venv/bin/python validation/abtem_agreement.py --abtem-python /tmp/abtem-venv/bin/python

Specimens: a small Au crystal (fcc, a = 4.078 Å, 4×4×4 cubic cells) and a nanoparticle cut
from the Pd@Pt model ../shared/data/pdpt-atomic-models/EPB.xyz (atoms within 12 Å of the
centre). Both codes: Lobato parametrisation, 300 kV, the same pixel size, slice thickness,
in-slab ("infinite") projection, 2/3 antialiasing band limit, plane wave. Reported: Pearson
correlation of exit-wave intensities and of defocused images (Cs = 1 mm, Δf = 500 Å
underfocus) and time per slice of each code.
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
import json, sys, time
import numpy as np
import abtem, ase
cfg = json.loads(sys.argv[1])
abtem.config.set({"device": "cpu", "fft": "fftw" if False else "numpy"})
out = {}
for name, spec in cfg["specimens"].items():
    d, dz, n, ns = cfg["pixel"], cfg["dz"], spec["n"], spec["n_slices"]
    pos = np.array(spec["positions"]) + [(n - 1) / 2 * d, (n - 1) / 2 * d, ns * dz / 2]
    atoms = ase.Atoms(numbers=spec["numbers"], positions=pos, cell=[n * d, n * d, ns * dz])
    pot = abtem.Potential(atoms, gpts=(n, n), slice_thickness=dz, parametrization="lobato",
                          projection=cfg["projection"], device="cpu")
    wave = abtem.PlaneWave(energy=cfg["energy"], device="cpu")
    ew = wave.multislice(pot).compute()  # warm-up (numba compilation)
    t = time.perf_counter()
    ew = wave.multislice(pot).compute()
    t = time.perf_counter() - t
    ctf = abtem.CTF(energy=cfg["energy"], defocus=cfg["defocus"], Cs=cfg["cs"])
    img = ew.apply_ctf(ctf).intensity().compute().array
    out[name] = dict(exit=np.abs(ew.array) ** 2, image=img, t_slice=t / ns,
                     proj=pot.build().compute().array)
np.savez(cfg["out"], **{f"{k}_{f}": v for k, d in out.items() for f, v in d.items()})
print(abtem.__version__)
"""


def _specimens() -> dict:
    from wedge.atoms.xyz import read_xyz

    a = 4.078
    base = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    cells = np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    au = ((cells + base[None]).reshape(-1, 3) * a) - 2 * a + a / 4
    np_path = ROOT.parent / "shared" / "data" / "pdpt-atomic-models" / "EPB.xyz"
    m = read_xyz(np_path)
    c = m.positions.mean(0)
    keep = np.linalg.norm(m.positions - c, axis=1) < 12.0
    return {
        "au_crystal": dict(positions=au.tolist(), numbers=[79] * len(au), n=144, n_slices=24),
        "pdpt_nanoparticle": dict(
            positions=(m.positions[keep] - c).tolist(),
            numbers=m.numbers[keep].tolist(),
            n=160,
            n_slices=26,
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--abtem-python", default="/tmp/abtem-venv/bin/python")
    ap.add_argument("--pixel", type=float, default=0.2)
    ap.add_argument("--dz", type=float, default=1.0)
    ap.add_argument(
        "--projection",
        default="finite",
        choices=["finite", "infinite"],
        help="abTEM potential projection ('finite': real-space integrals, exact "
        "point values; 'infinite': Fourier-space, smoother)",
    )
    args = ap.parse_args()

    import torch

    from wedge.atoms.potential import slice_potentials
    from wedge.multislice import slab_images
    from wedge.optics import Microscope

    torch.set_num_threads(max(1, torch.get_num_threads()))
    specs = _specimens()
    energy, cs, df = 300e3, 1e7, 500.0
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dict(
            specimens=specs,
            pixel=args.pixel,
            dz=args.dz,
            energy=energy,
            cs=cs,
            defocus=df,
            out=str(Path(tmp) / "abtem.npz"),
            projection=args.projection,
        )
        res = subprocess.run(
            [args.abtem_python, "-c", ABTEM_SIDE, json.dumps(cfg)], capture_output=True, text=True
        )
        if res.returncode:
            sys.exit(f"abTEM side failed:\n{res.stderr[-3000:]}")
        ab_version = res.stdout.strip().splitlines()[-1]
        # abTEM indexes arrays (x, y); wedge (y, x)
        ref = {
            k: np.swapaxes(v, -1, -2) if v.ndim >= 2 else v for k, v in np.load(cfg["out"]).items()
        }
    mic = Microscope(energy=energy, cs=cs)
    print(
        f"abTEM {ab_version} vs wedge; pixel {args.pixel} Å, slice {args.dz} Å, 300 kV, "
        f"Cs 1 mm, defocus {df} Å; abTEM projection {args.projection!r}; "
        f"threads {torch.get_num_threads()}"
    )
    print(
        f"{'specimen':20s} {'atoms':>6s} {'grid':>9s} {'slices':>6s} {'r(exit |ψ|²)':>13s} "
        f"{'r(image)':>9s} {'r(proj V)':>9s} {'wedge ms/slice':>15s} {'abTEM ms/slice':>15s}"
    )
    for name, s in specs.items():
        n, ns = s["n"], s["n_slices"]
        slabs = slice_potentials(
            np.array(s["positions"]), s["numbers"], (ns, n, n), args.pixel, args.dz
        )
        slab_images(slabs, args.pixel, args.dz, [df], mic, return_exit_wave=True)  # warm-up
        t = time.perf_counter()
        ew = slab_images(slabs, args.pixel, args.dz, [df], mic, return_exit_wave=True)
        t = (time.perf_counter() - t) / ns
        img = slab_images(slabs, args.pixel, args.dz, [df], mic)[0]
        r_exit = np.corrcoef(np.abs(ew).ravel() ** 2, ref[f"{name}_exit"].ravel())[0, 1]
        r_img = np.corrcoef(img.ravel(), np.squeeze(ref[f"{name}_image"]).ravel())[0, 1]
        r_proj = np.corrcoef(slabs.sum(0).ravel(), ref[f"{name}_proj"].sum(0).ravel())[0, 1]
        print(
            f"{name:20s} {len(s['numbers']):6d} {n:4d}x{n:<4d} {ns:6d} {r_exit:13.5f} "
            f"{r_img:9.5f} {r_proj:9.5f} {1e3 * t:15.2f} {1e3 * ref[name + '_t_slice']:15.2f}"
        )


if __name__ == "__main__":
    main()
