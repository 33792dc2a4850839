"""``wedge average``: subtomogram averaging of particles picked in a tomogram's tilt series.

Reads the tilt series and a particle table (CSV or RELION STAR), cuts one copy per
particle (:func:`wedge.average.particles.extract_copies`), runs the chosen methods and
writes, into the output directory, ``<method>.mrc`` per method, on request the CRM
backgrounds (``backgrounds/background_NNNN.mrc``), and the report (``report.html``,
``orthoslices.png``, FSC plots, ``metrics.json``). Nothing is written before every
method has finished, so bad input leaves no output behind.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_average_parser", "cmd_average"]

_NAMES = {"crm": "crm", "simple": "simple", "masked": "masked-fourier"}


def add_average_parser(sub: Any) -> None:
    """Register ``wedge average`` on the subparsers of :func:`wedge.cli.build_parser`."""
    s = sub.add_parser("average", help="subtomogram averaging: CRM and the two baselines")
    s.add_argument("stack", help="tilt series of the tomogram (MRC/TIFF/HDF5/.npy)")
    s.add_argument("--angles", default=None, help="angle file (default: found beside the stack)")
    s.add_argument("--pixel-size", type=float, default=None, help="Å (default: from the file)")
    s.add_argument(
        "--particles",
        required=True,
        help="particle table: .csv (x,y,z,phi,theta,psi) or RELION .star",
    )
    s.add_argument("--box", type=int, required=True, help="copy window width in pixels")
    s.add_argument("--thickness", type=int, required=True, help="tomogram thickness in voxels")
    s.add_argument("--object-size", type=int, default=None, help="object box edge (default box//2)")
    s.add_argument(
        "--methods", default="crm,simple,masked", help="comma list of crm, simple, masked"
    )
    s.add_argument("--solver", default="sart", help="CRM solver: sart, kaczmarz or sirt")
    s.add_argument("--iterations", type=int, default=20)
    s.add_argument("--relaxation", type=float, default=0.2)
    s.add_argument("--positivity", action="store_true", help="clip negative values")
    s.add_argument("--reference", default=None, help="reference object volume for FSC")
    s.add_argument("--backgrounds", action="store_true", help="also write the CRM backgrounds")
    s.add_argument("--device", default=None)
    s.add_argument("-o", "--output", required=True, help="output directory")
    s.set_defaults(func=cmd_average)


def cmd_average(args: argparse.Namespace) -> None:
    import numpy as np

    from .._cli_common import UsageError, _refuse_overwrite, _stack_inputs
    from ..io import read_tiltseries, read_volume
    from ..io.volumes import write_volume
    from .baselines import AverageOptions, masked_fourier_average, simple_average
    from .crm import CRMOptions, crm
    from .particles import extract_copies, read_particles
    from .report import summarise, write_average_report

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in _NAMES]
    if not methods or unknown:
        raise UsageError(
            f"--methods takes a comma list of {', '.join(_NAMES)}, got {args.methods!r}."
        )
    inputs = _stack_inputs(args.stack, args.angles)
    inputs.update({"particle table": args.particles, "reference": args.reference})
    _refuse_overwrite({"output directory": args.output}, inputs)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {out} exists and is not a directory; give a directory.")
    series = read_tiltseries(args.stack, angles=args.angles, pixel_size=args.pixel_size)
    table = read_particles(args.particles, pixel_size=series.pixel_size)
    ny, _ = series.image_shape
    box_h = 1 if ny == 1 else args.box
    copies, poses = extract_copies(series, table, (box_h, args.box), thickness=args.thickness)
    size = args.object_size or max(args.box // 2, 1)
    shape = (size, 1, size) if ny == 1 else (size, size, size)
    reference = None
    if args.reference:
        reference = np.asarray(read_volume(args.reference), np.float32)
        if reference.shape != shape:
            raise UsageError(
                f"the reference has shape {reference.shape} but the object is {shape}; "
                "give --object-size to match it."
            )
    common = {"iterations": args.iterations, "relaxation": args.relaxation, "device": args.device}
    results = {}
    for m in methods:
        if m == "crm":
            results["crm"] = crm(
                copies, poses, shape, solver=args.solver, return_backgrounds=args.backgrounds,
                options=CRMOptions(positivity=args.positivity), **common,
            )  # fmt: skip
        else:
            fn = simple_average if m == "simple" else masked_fourier_average
            results[_NAMES[m]] = fn(
                copies, poses, shape, options=AverageOptions(positivity=args.positivity),
                **common,
            )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    for name, r in results.items():
        write_volume(out / f"{name}.mrc", r.object, voxel_size=series.pixel_size)
    if args.backgrounds and "crm" in results and results["crm"].backgrounds is not None:
        (out / "backgrounds").mkdir(exist_ok=True)
        for i, g in enumerate(results["crm"].backgrounds):
            write_volume(out / "backgrounds" / f"background_{i:04d}.mrc", np.asarray(g))
    report = write_average_report(results, out, reference=reference, voxel_size=series.pixel_size)
    summary = summarise(results, reference, series.pixel_size)
    print(f"{len(copies)} copies, object {shape}")
    for name, rec in summary["methods"].items():
        extra = "".join(f", {k} {rec[k]:.4g}" for k in ("psnr", "pearson", "fsc_0.5_A") if k in rec)
        rms = rec.get("rms_reprojection_error", float("nan"))
        print(f"{name}: RMS re-projection error {rms:.4g}{extra}")
    print(f"report: {report}")
