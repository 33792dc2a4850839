"""How CRM's gain in Table 1 (Han et al. 2020) depends on the surroundings and the support.

The paper reports CRM +3.7 dB over the simple average on Shepp–Logan "stained by black
blocks"; ``average_table1.py`` measures +0.5 dB. The paper does not give the blocks'
number, size or intensity, nor the support it used, so this script varies both on the
Table 1 set-up (3 copies, ±50° in 3° steps, SART 20 × 0.2, ASTRA projections):

* Shepp–Logan among 0, 10 or 30 blocks of intensity U(0.2, 1) or U(1, 3) (the phantom's
  own values lie in [0, 1]), with the default support (inscribed circle), two seeds;
* every dataset with the inscribed circle and with a tight support (the truth's
  footprint ``object > 0.02`` dilated by 1 or 4 pixels), given to all three methods
  (the averages multiply their result by it, CRM constrains ``h`` to it).

Prints PSNR (dB) of each method against the object and CRM's gain over the simple
average.

    OMP_NUM_THREADS=1 .venv/bin/python validation/average_background.py [--size 65]
"""

from __future__ import annotations

import argparse

import numpy as np
from average_phantoms import make_copies, scores
from scipy.ndimage import binary_dilation

from wedge.average import crm, masked_fourier_average, simple_average

METHODS = {"simple": simple_average, "masked": masked_fourier_average, "crm": crm}
BLOCKS = [(0, 0.0, 0.0), (10, 0.2, 1.0), (30, 0.2, 1.0), (10, 1.0, 3.0), (30, 1.0, 3.0)]


def psnrs(copies, poses, obj, support) -> dict[str, float]:
    out = {}
    for name, fn in METHODS.items():
        r = fn(copies, poses, obj.shape, iterations=20, relaxation=0.2, support=support)
        out[name] = scores(r.object, obj)["psnr"]
    return out


def row(label: str, values: list[dict[str, float]]) -> None:
    mean = {k: float(np.mean([v[k] for v in values])) for k in METHODS}
    cells = " ".join(f"{mean[k]:7.2f}" for k in METHODS)
    print(f"{label:42s} {cells} {mean['crm'] - mean['simple']:+7.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=65, help="object edge (copy edge = 1.5×)")
    args = ap.parse_args()
    angles = np.arange(-50, 51, 3.0)
    kw = {"n_obj": args.size, "n_copy": int(args.size * 1.5) | 1}
    print(f"{'case':42s} {'simple':>7s} {'masked':>7s} {'crm':>7s} {'gain':>7s}")
    for count, low, high in BLOCKS:
        values = []
        for seed in (0, 1):
            copies, poses, obj = make_copies(
                "shepp", 3, angles, blocks=(count, low, high), seed=seed, **kw
            )
            values.append(psnrs(copies, poses, obj, None))
        row(f"shepp, {count} blocks U({low:g}, {high:g}), circle", values)
    for kind in ("shepp", "ribosome", "ribosome0"):
        copies, poses, obj = make_copies(kind, 3, angles, **kw)
        for dilation in (4, 1):
            support = binary_dilation(obj > 0.02, iterations=dilation)
            row(
                f"{kind}, tight support (dilated {dilation} px)",
                [psnrs(copies, poses, obj, support)],
            )


if __name__ == "__main__":
    main()
