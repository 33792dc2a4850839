"""Table 1 and Fig. 4/5 of Han et al. (2020) in 2D, at reduced size.

3 copies, ±50° in 3° steps, SART 20 iterations, relaxation 0.2, for the simple average,
the masked Fourier average and CRM (sparse SART). Prints PSNR, SSIM, PCC and the FRC 0.5
resolution (pixels) against the object, writes docs/img/average_table1.png (the three
results of each dataset beside the truth) and a JSON of the numbers.

    OMP_NUM_THREADS=1 .venv/bin/python validation/average_table1.py [--size 65] [--json out.json]
        [--blocks copy --figure docs/img/average_table1_copyblocks.png]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from average_phantoms import make_copies, sart_keywords, scores

from wedge.average import crm, masked_fourier_average, simple_average

ROOT = Path(__file__).resolve().parents[1]
METHODS = {"simple": simple_average, "masked": masked_fourier_average, "crm": crm}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=65, help="object edge (copy edge = 1.5×)")
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument(
        "--blocks", choices=["image", "copy"], default="image",
        help="SART updates per image, or once per copy as the paper words it (the averages "
        "then use wedge's SIRT, Eq. 19 for one copy; CRM block='copy')",
    )  # fmt: skip
    ap.add_argument("--json", default=None)
    ap.add_argument("--figure", default=str(ROOT / "docs/img/average_table1.png"))
    args = ap.parse_args()
    angles = np.arange(-50, 51, 3.0)
    n_copy = int(args.size * 1.5) | 1
    out, images = {}, {}
    for kind in ("shepp", "ribosome", "ribosome0"):
        copies, poses, obj = make_copies(kind, args.copies, angles, n_obj=args.size, n_copy=n_copy)
        out[kind], images[kind] = {}, {"truth": obj[:, 0]}
        for name, fn in METHODS.items():
            t0 = time.perf_counter()
            kw = sart_keywords(name, args.blocks)
            r = fn(copies, poses, obj.shape, iterations=20, relaxation=0.2, **kw)
            out[kind][name] = scores(r.object, obj) | {"seconds": time.perf_counter() - t0}
            images[kind][name] = r.object[:, 0]
    print(f"{'data':9s} {'method':7s} {'PSNR':>6s} {'SSIM':>6s} {'PCC':>6s} {'FRC0.5':>7s}")
    for kind, rows in out.items():
        for name, s in rows.items():
            print(
                f"{kind:9s} {name:7s} {s['psnr']:6.2f} {s['ssim']:6.3f} {s['pcc']:6.3f} "
                f"{s['frc05']:7.2f}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    if args.figure:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 7.6), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(len(images), 4)
        for row, kind in enumerate(images):
            for col, name in enumerate(["truth", "simple", "masked", "crm"]):
                ax = axes[row, col]
                ax.imshow(images[kind][name], cmap="gray", vmin=0, vmax=1)
                ax.set_axis_off()
                label = name if name == "truth" else f"{name} {out[kind][name]['psnr']:.2f} dB"
                ax.set_title(f"{kind}: {label}", fontsize=9)
        fig.savefig(args.figure, dpi=90)


if __name__ == "__main__":
    main()
