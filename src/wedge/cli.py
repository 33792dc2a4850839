"""The ``wedge`` command line: a thin layer over the Python API.

Every subcommand parses its arguments, calls one API function and prints a short summary.
Bad input ends with one line ``wedge: error: …`` and exit status 2, never a traceback;
warnings print as ``wedge: warning: …``. Outputs are written atomically.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._cli_common import UsageError, _parse_set, _refuse_overwrite, _stack_inputs
from ._cli_stream import _reconstruct_out_of_core, _save_volume, _streamed

__all__ = ["main", "build_parser"]


# ---------------------------------------------------------------------------- commands
def cmd_info(args: argparse.Namespace) -> None:
    import numpy as np

    from .io import describe
    from .tiltseries import _check_angles_degrees

    info = describe(args.file)
    for key, value in info.items():
        if key == "angles" and value is not None:
            a = np.asarray(value)
            _check_angles_degrees(a)
            value = f"{a.size} angles, {a.min():.2f}..{a.max():.2f}°"
        print(f"{key:>14}: {value}")


def cmd_methods(args: argparse.Namespace) -> None:
    from .methods import METHODS
    from .methods.registry import describe_options
    from .projectors.options import ProjectorOptions

    width = max(len(n) for n in METHODS)
    for name in sorted(METHODS):
        info = METHODS[name]
        kind = f"iterative, default {info.default_iterations} it." if info.iterative else "direct"
        model = "nonlinear model" if info.kind == "model" else f"projector {info.default_model}"
        print(f"{name:<{width}}  {info.summary}  ({kind}; {model})")
        for line in describe_options(info.options):
            print(f"{'':<{width}}    --set {line}")
    print("\nprojector options (--projector KEY=VALUE), for every linear method:")
    for line in describe_options(ProjectorOptions):
        print(f"    {line}")


def cmd_simulate(args: argparse.Namespace) -> None:
    from .phantoms import make_phantom
    from .simulate import SimulationOptions, save_simulation, simulate_tiltseries

    if args.hrtem:
        _simulate_hrtem(args)
        return
    if args.phantom.endswith(".xyz"):
        raise UsageError("an atomic model (.xyz) needs --hrtem (multislice HRTEM simulation).")
    n = args.size
    volume = make_phantom(args.phantom, (args.thickness or n, n, n))
    opts = SimulationOptions(
        tilt_range=(args.tilt_range[0], args.tilt_range[1]),
        step=args.step,
        dose=args.dose,
        shift_sigma=args.shift_sigma,
        tilt_axis_error=args.tilt_axis_error,
        angle_sigma=args.angle_sigma,
        seed=args.seed,
    )
    result = simulate_tiltseries(volume, opts, pixel_size=args.pixel_size)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    paths = save_simulation(result, args.output, stem=args.stem)
    for label, p in paths.items():
        print(f"{label:>8}: {p}")


def _simulate_hrtem(args: argparse.Namespace) -> None:
    from .hrtem import hrtem_tilt_series, write_hrtem_series
    from .optics import Microscope

    if not args.phantom.endswith(".xyz"):
        raise UsageError("--hrtem needs an atomic model: --phantom MODEL.xyz.")
    mic = Microscope(energy=args.energy * 1e3, cs=args.cs * 1e7)
    series = hrtem_tilt_series(
        args.phantom,
        tilt_range=(args.tilt_range[0], args.tilt_range[1]),
        tilt_step=args.step,
        defocus=args.defocus,
        microscope=mic,
        voxel_size=args.pixel_size,
        dose=args.dose,
        seed=args.seed,
    )
    for p in write_hrtem_series(series, args.output):
        print(p)


def cmd_reconstruct(args: argparse.Namespace) -> None:
    from .api import reconstruct
    from .io import read_tiltseries
    from .methods import get_method
    from .projectors.options import ProjectorOptions

    get_method(args.method)  # an unknown name fails before any file is read
    if _streamed(args):  # --memory, an OME-Zarr stack, torchrun: wedge.outofcore
        return _reconstruct_out_of_core(args)
    if (args.align_rounds or args.no_stretch or args.com) and not args.align:
        raise ValueError("--align-rounds, --no-stretch and --com apply with --align: add it.")
    inputs = _stack_inputs(args.stack, args.angles)
    _refuse_overwrite({"output": args.output, "checkpoint": args.checkpoint}, inputs)
    _refuse_overwrite({"output": args.output}, {"checkpoint": args.checkpoint})
    projector = ProjectorOptions.from_mapping(_parse_set(args.projector, "--projector"))
    series = read_tiltseries(args.stack, angles=args.angles, pixel_size=args.pixel_size)
    if args.tilt_axis_angle is not None:
        import dataclasses

        series = dataclasses.replace(series, tilt_axis_angle=args.tilt_axis_angle)
    print(f"read {series!r}")
    if series.source:
        print(series.source)
    if args.align:
        series = _align_for_reconstruction(series, args)
    options = _parse_set(args.set)
    if args.checkpoint:
        options["checkpoint"] = args.checkpoint
    rec = reconstruct(
        series,
        args.method,
        thickness=args.thickness,
        iterations=args.iterations,
        model=args.model,
        device=args.device,
        progress=not args.quiet,
        projector=projector,
        **options,
    )
    out = _save_volume(rec, args)
    if out is None:  # another rank writes the output
        return
    msg = f"wrote {out} {rec.volume.shape} on {rec.device} in {rec.elapsed_s:.1f} s"
    if rec.history:
        msg += f", final R-factor {rec.history[-1]['r_factor']:.4f} ({rec.stopped})"
    print(msg)


def _align_for_reconstruction(series: Any, args: argparse.Namespace) -> Any:
    """``reconstruct --align``: the alignment of ``wedge align`` (coarse stage, then
    ``--align-rounds`` rounds of projection matching at the run's thickness), in memory."""
    from .align import align

    coarse = {"stretch": not args.no_stretch, "com": args.com, "quality": False}
    match = {"thickness": args.thickness} if args.thickness else {}
    result = align(
        series,
        match_rounds=args.align_rounds,
        coarse_options=coarse,
        match_options=match,
        device=args.device,
    )
    _print_alignment_history(result.history)
    return result.series


def _print_alignment_history(history: Sequence[dict[str, Any]]) -> None:
    for rec in history:
        figures = ", ".join(
            f"{k} {v:.4g}" for k, v in rec.items() if k != "stage" and isinstance(v, float)
        )
        print(f"  {rec['stage']:>6}: {figures}")


def _read_stack(args: argparse.Namespace) -> Any:
    """The series of ``args.stack`` with the command's angles, pixel size and axis angle."""
    from .io import read_tiltseries

    series = read_tiltseries(
        args.stack,
        angles=args.angles,
        pixel_size=args.pixel_size,
        tilt_axis_angle=args.tilt_axis_angle,
    )
    print(f"read {series!r}")
    return series


def cmd_preprocess(args: argparse.Namespace) -> None:
    from .io import write_tiltseries
    from .preprocess import prepare

    tlt = str(Path(args.output).with_suffix(".tlt"))
    _refuse_overwrite(
        {"output": args.output, "angle file written beside the output": tlt},
        _stack_inputs(args.stack, args.angles),
    )
    series = _read_stack(args)
    out = prepare(
        series,
        degree=args.degree,
        outlier_threshold=args.outlier_threshold or None,
        normalize=not args.no_normalize,
        bin_factor=args.bin,
    )
    for line in out.provenance[len(series.provenance) :]:
        print(f"  {line}")
    path = write_tiltseries(args.output, out)
    print(f"wrote {path} {out.images.shape} (pixel {out.pixel_size:g} Å)")


def cmd_align(args: argparse.Namespace) -> None:
    from .align import align, coarse_align
    from .align.report import write_alignment_outputs

    out = Path(args.output)
    inputs = _stack_inputs(args.stack, args.angles)
    stem = Path(args.stack).stem
    planned = {f"output {p.name}": str(out / p.name) for p in _align_outputs(out, stem)}
    _refuse_overwrite(planned, inputs)
    series = _read_stack(args)
    coarse = {
        "axis": not args.keep_axis,
        "xcorr": True,
        "com": args.com,
        "stretch": not args.no_stretch,
        "quality": not args.no_quality,
    }
    if args.interleaved:
        from .align import interleaved_subsets

        coarse["subsets"] = interleaved_subsets(series.angles, args.interleaved)
    if args.match_rounds:
        match = {"thickness": args.thickness} if args.thickness else {}
        result = align(
            series,
            match_rounds=args.match_rounds,
            coarse_options=coarse,
            match_options=match,
            device=args.device,
        )
    else:
        result = coarse_align(series, device=args.device, **coarse)
    _print_alignment_history(result.history)
    out.mkdir(parents=True, exist_ok=True)
    for path in write_alignment_outputs(result, out, stem, write_ali=not args.no_ali):
        print(f"wrote {path}")


def _align_outputs(out: Path, stem: str) -> list[Path]:
    return [
        out / f"{stem}{s}" for s in (".xf", ".tlt", ".ali", "_alignment.png", "_alignment.json")
    ]


def cmd_demo(args: argparse.Namespace) -> None:
    from .report import demo, text_table

    result = demo(args.output, progress=not args.quiet)
    print(text_table(result))
    print(f"report: {result.report}")


def cmd_compare(args: argparse.Namespace) -> None:
    from .io import read_tiltseries, read_volume
    from .report import compare, text_table

    inputs = _stack_inputs(args.stack, args.angles)
    inputs["reference volume"] = args.reference
    _refuse_overwrite({"output directory": args.output}, inputs)
    series = read_tiltseries(args.stack, angles=args.angles, pixel_size=args.pixel_size)
    reference = read_volume(args.reference) if args.reference else None
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    result = compare(
        series,
        names,
        reference=reference,
        out_dir=args.output,
        thickness=args.thickness,
        device=args.device,
        progress=not args.quiet,
    )
    print(text_table(result))
    print(f"report: {result.report}")


def cmd_refine_angles(args: argparse.Namespace) -> None:
    from .align import RefineOptions, refine_angles_file

    _refuse_overwrite({"output": args.output}, _stack_inputs(args.stack, args.angles))
    which = None if args.refine is None else tuple(a.strip() for a in args.refine.split(","))
    opts = RefineOptions(
        search_range=args.range,
        step=args.step,
        angles=which,
        refine_shifts=args.shifts,
        search=args.search,
        rounds=args.rounds,
        iterations=args.iterations,
    )
    out = refine_angles_file(
        args.stack, args.angles, args.output, thickness=args.thickness, options=opts,
        device=args.device,
    )  # fmt: skip
    print(f"wrote refined angles to {out}")


def cmd_trace(args: argparse.Namespace) -> None:
    from .atoms import trace_file

    _refuse_overwrite({"output": args.output}, {"input volume": args.volume})
    symbols = tuple(x.strip() for x in args.symbols.split(",")) if args.symbols else None
    atoms = trace_file(
        args.volume, args.output, voxel_size=args.voxel_size, n_species=args.species,
        symbols=symbols,
    )  # fmt: skip
    print(f"wrote {args.output}: {len(atoms.positions)} atoms")


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wedge", description="Electron tomography reconstruction (NumPy/torch, CPU or GPU)."
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what is read and from where")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("info", help="shape, dtype, pixel size and angles of a file")
    s.add_argument("file")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("methods", help="list the reconstruction methods")
    s.set_defaults(func=cmd_methods)

    s = sub.add_parser("simulate", help="phantom → MRC tilt series + .tlt + truth volume")
    s.add_argument(
        "--phantom",
        default="vesicle",
        help="shepp-logan, vesicle, materials, or an .xyz atomic model (with --hrtem)",
    )
    s.add_argument("--size", type=int, default=64, help="phantom Y and X size in voxels")
    s.add_argument("--thickness", type=int, default=None, help="phantom Z size (default: size)")
    s.add_argument(
        "--tilt-range", type=float, nargs=2, default=(-60.0, 60.0), metavar=("MIN", "MAX")
    )
    s.add_argument("--step", type=float, default=2.0, help="tilt step in degrees")
    s.add_argument("--dose", type=float, default=None, help="electrons per pixel per image")
    s.add_argument("--shift-sigma", type=float, default=0.0, help="random shifts, pixels")
    s.add_argument("--tilt-axis-error", type=float, default=0.0, help="in-plane axis error, deg")
    s.add_argument("--angle-sigma", type=float, default=0.0, help="recorded-angle error, deg")
    s.add_argument("--pixel-size", type=float, default=1.0, help="Å")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--stem", default="sim", help="file name stem")
    s.add_argument(
        "--hrtem", action="store_true", help="HRTEM tilt + focal series of --phantom MODEL.xyz"
    )
    s.add_argument(
        "--defocus", type=float, nargs="+", default=[0.0], help="HRTEM defocus values, Å"
    )
    s.add_argument("--energy", type=float, default=300.0, help="HRTEM beam energy, keV")
    s.add_argument("--cs", type=float, default=0.0, help="HRTEM spherical aberration, mm")
    s.add_argument("-o", "--output", required=True, help="output directory")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("reconstruct", help="reconstruct a tilt series")
    s.add_argument("stack", help="MRC/ST/ALI/TIFF/HDF5/.npy tilt series")
    s.add_argument("--angles", default=None, help=".tlt/.rawtlt/.mdoc (default: found beside)")
    s.add_argument("--method", default="sirt", help="see `wedge methods`")
    s.add_argument("--iterations", type=int, default=None)
    s.add_argument("--thickness", type=int, default=None, help="Z size in voxels (default X)")
    s.add_argument("--pixel-size", type=float, default=None, help="Å (default: from the file)")
    s.add_argument("--tilt-axis-angle", type=float, default=None, help="deg CCW from image Y")
    s.add_argument("--model", default=None, help="projector: ray, voxel or fourier")
    s.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    s.add_argument(
        "--memory", default=None, help="budget, e.g. 2GB: stream Y slabs out of core (MRC/.zarr)"
    )
    s.add_argument("--overwrite", action="store_true", help="replace an existing .zarr output")
    s.add_argument("--checkpoint", default=None, help="checkpoint file (resumed if present)")
    s.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a method option"
    )
    s.add_argument(
        "--projector",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a projector option: n_sub, ray_step or oversampling (see `wedge methods`)",
    )
    s.add_argument(
        "--align",
        action="store_true",
        help="align first, as `wedge align` does (tilt-axis angle and shifts; not saved)",
    )
    s.add_argument(
        "--align-rounds",
        type=int,
        default=0,
        help="with --align: rounds of projection matching after the coarse stage",
    )
    s.add_argument("--no-stretch", action="store_true", help="with --align: no cosine stretch")
    s.add_argument("--com", action="store_true", help="with --align: centre-of-mass stage")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.add_argument("-o", "--output", required=True, help="output volume (.mrc; never an input)")
    s.set_defaults(func=cmd_reconstruct)

    s = sub.add_parser(
        "preprocess", help="background, outliers, mass normalisation (and binning) of a stack"
    )
    s.add_argument("stack", help="raw tilt series (MRC/ST/TIFF/HDF5/.npy)")
    s.add_argument("--angles", default=None, help=".tlt/.rawtlt/.mdoc (default: found beside)")
    s.add_argument("--pixel-size", type=float, default=None, help="Å (default: from the file)")
    s.add_argument("--tilt-axis-angle", type=float, default=None, help="deg CCW from image Y")
    s.add_argument("--degree", type=int, default=3, help="Bernstein background degree (0-8)")
    s.add_argument(
        "--outlier-threshold", type=float, default=8.0, help="robust σ for hot pixels (0: off)"
    )
    s.add_argument("--no-normalize", action="store_true", help="skip mass normalisation")
    s.add_argument("--bin", type=int, default=1, help="integer binning factor (default 1)")
    s.add_argument("-o", "--output", required=True, help="output stack (.mrc; .tlt beside)")
    s.set_defaults(func=cmd_preprocess)

    s = sub.add_parser(
        "align", help="coarse alignment: tilt-axis angle and shifts → .xf, .tlt, .ali, report"
    )
    s.add_argument("stack", help="tilt series (preprocessed: see `wedge preprocess`)")
    s.add_argument("--angles", default=None, help=".tlt/.rawtlt/.mdoc (default: found beside)")
    s.add_argument("--pixel-size", type=float, default=None, help="Å (default: from the file)")
    s.add_argument(
        "--tilt-axis-angle", type=float, default=None, help="starting axis angle, deg CCW from Y"
    )
    s.add_argument("--keep-axis", action="store_true", help="do not estimate the axis angle")
    s.add_argument("--com", action="store_true", help="centre-of-mass stage (isolated object)")
    s.add_argument(
        "--no-stretch", action="store_true", help="no cosine stretching (needles, pillars)"
    )
    s.add_argument("--no-quality", action="store_true", help="skip the SIRT R-factor per stage")
    s.add_argument(
        "--match-rounds",
        type=int,
        default=0,
        help="rounds of projection matching after the coarse stage (default 0: coarse only)",
    )
    s.add_argument(
        "--thickness", type=int, default=None, help="volume Z size for projection matching"
    )
    s.add_argument(
        "--interleaved",
        type=int,
        default=0,
        metavar="K",
        help="K interleaved tilt series merged in one stack: one tilt axis per subset",
    )
    s.add_argument("--no-ali", action="store_true", help="do not write the aligned stack")
    s.add_argument("--device", default=None)
    s.add_argument("-o", "--output", required=True, help="output directory")
    s.set_defaults(func=cmd_align)

    s = sub.add_parser("compare", help="run several methods and write an HTML report")
    s.add_argument("stack")
    s.add_argument("--angles", default=None)
    s.add_argument("--reference", default=None, help="ground-truth volume (MRC)")
    s.add_argument("--methods", default="fbp,sirt", help="comma-separated method names")
    s.add_argument("--thickness", type=int, default=None)
    s.add_argument("--pixel-size", type=float, default=None)
    s.add_argument("--device", default=None)
    s.add_argument("-q", "--quiet", action="store_true")
    s.add_argument("-o", "--output", required=True, help="output directory")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("demo", help="simulate a vesicle, compare every method, write a report")
    s.add_argument("-q", "--quiet", action="store_true")
    s.add_argument("-o", "--output", default="demo-out", help="output directory")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("refine-angles", help="refine tilt angles (RESIRE's procedure)")
    s.add_argument("stack")
    s.add_argument("--angles", required=True, help="starting angles (.tlt/.rawtlt/.mdoc)")
    s.add_argument("--range", type=float, default=3.0, help="search ±range, degrees")
    s.add_argument("--step", type=float, default=0.5, help="coarse search step, degrees")
    s.add_argument(
        "--refine",
        default=None,
        help="Euler angles to refine, e.g. theta or phi,theta,psi (default: what the output "
        "holds: theta for .tlt/.rawtlt)",
    )
    s.add_argument("--shifts", action="store_true", help="also refine in-plane shifts")
    s.add_argument("--search", default="brute", help="brute or gradient")
    s.add_argument("--rounds", type=int, default=5, help="reconstruct-and-search rounds")
    s.add_argument("--iterations", type=int, default=50, help="RESIRE iterations per round")
    s.add_argument("--thickness", type=int, default=None)
    s.add_argument("--device", default=None)
    s.add_argument("-o", "--output", required=True, help="new angle file (never the input)")
    s.set_defaults(func=cmd_refine_angles)

    s = sub.add_parser("trace", help="trace atoms in a reconstructed volume → XYZ")
    s.add_argument("volume", help="reconstructed volume (MRC/TIFF/HDF5/.npy)")
    s.add_argument("--voxel-size", type=float, default=None, help="Å (default: from the file)")
    s.add_argument("--species", type=int, default=1, help="number of species to classify")
    s.add_argument("--symbols", default=None, help="element symbols, lightest first: O,Si")
    s.add_argument("-o", "--output", required=True, help="output .xyz")
    s.set_defaults(func=cmd_trace)

    from .average.cli import add_average_parser

    add_average_parser(sub)  # wedge average: subtomogram averaging (CRM)

    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wedge`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="wedge: %(message)s"
    )

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        print(f"wedge: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        try:
            args.func(args)
        except BrokenPipeError:  # output piped into `head` and the like
            return 0
        except MemoryError:
            print(
                "wedge: error: out of memory: the reconstruction did not fit in the free "
                "memory; use a smaller volume (--thickness, binned images) or a larger machine.",
                file=sys.stderr,
            )
            return 2
        except (ValueError, TypeError, OSError, KeyError, RuntimeError) as exc:
            msg = str(exc) or type(exc).__name__
            if isinstance(exc, FileNotFoundError) and exc.filename:
                msg = f"no such file: {exc.filename}"
            if "out of memory" in msg.lower():  # torch.OutOfMemoryError (CUDA) and friends
                msg = (
                    f"out of memory on the device ({msg.splitlines()[0]}); use a smaller volume "
                    "(--thickness, binned images) or --device cpu."
                )
            print(f"wedge: error: {msg.splitlines()[0] if msg else msg}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("wedge: interrupted", file=sys.stderr)
            return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
