"""RESIRE's convergence on the vesicle study against GENFIRE at 150 iterations.

Same data as ``resire_vesicle_study.py`` (41 tilts ±70°, dose 2000, seed 0, ray-projector
simulation). Prints, for RESIRE with the FST and the ray model, the data R-factor, the
Pearson correlation with the model and the smallest per-shell FSC difference to GENFIRE
(150 iterations) at 150, 250 and 400 iterations.

Usage: ``.venv/bin/python validation/resire_vesicle_convergence.py [--data ../shared/data]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import wedge
from wedge.metrics import fsc, pearson
from wedge.simulate import add_poisson_noise

sys.path.insert(0, str(Path(__file__).resolve().parent))
from resire_vesicle_study import load_vesicle  # noqa: E402

CHECKPOINTS = (150, 250, 400)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    args = ap.parse_args()
    vol = load_vesicle(args.data)
    angles = np.arange(-70, 70.01, 3.5)
    clean = wedge.project(vol, angles, model="ray", device="cpu")
    noisy = add_poisson_noise(clean, 2000.0, rng=0).astype(np.float32)
    series = wedge.TiltSeries(noisy, angles)
    gen = wedge.reconstruct(series, "genfire", iterations=150, device="cpu", progress=False)
    g = np.asarray(fsc(gen.volume, vol).correlation)
    print(f"GENFIRE 150: Pearson {pearson(gen.volume, vol):.4f}")
    for model in ("fourier", "ray"):
        rows = []

        def cb(rec, x, rows=rows):
            k = int(rec["iteration"])
            if k in CHECKPOINTS:
                v = x.detach().cpu().numpy()
                gap = float((np.asarray(fsc(v, vol).correlation) - g).min())
                rows.append((k, rec["r_factor"], pearson(v, vol), gap))
            return False

        wedge.reconstruct(
            series, "resire", model=model, iterations=max(CHECKPOINTS), device="cpu",
            progress=False, callbacks=[cb],
        )  # fmt: skip
        for k, r, p, gap in rows:
            print(
                f"RESIRE {model:>7} {k:>4} it: R {r:.4f}  Pearson {p:.4f}  min FSC gap {gap:+.4f}"
            )


if __name__ == "__main__":
    main()
