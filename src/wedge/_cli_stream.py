"""``wedge reconstruct`` when it streams (``--memory``, an OME-Zarr stack, torchrun):
the command-line side of :mod:`wedge.outofcore` and :mod:`wedge.distributed`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._cli_common import UsageError, _parse_set, _refuse_overwrite, _stack_inputs


def _streamed(args: argparse.Namespace) -> bool:
    """Whether ``reconstruct`` streams Y slabs (:mod:`wedge.outofcore`): with --memory, an
    OME-Zarr stack, or under torchrun for a slab method (it joins the process group first;
    other methods run through the API, split as :mod:`wedge.distributed` says)."""
    from .distributed import maybe_init_from_env
    from .io.zarr import check_zarr_target, is_zarr_path

    if is_zarr_path(args.output) and not args.overwrite:
        check_zarr_target(args.output, False)
    from .outofcore import SLAB_METHODS

    world = maybe_init_from_env(args.device)
    slabs = args.method in SLAB_METHODS and not (args.align or args.tilt_axis_angle)
    return args.memory is not None or is_zarr_path(args.stack) or (world.active and slabs)


def _reconstruct_out_of_core(args: argparse.Namespace) -> None:
    from .distributed import world
    from .memory import format_bytes
    from .outofcore import reconstruct_out_of_core
    from .projectors.options import ProjectorOptions

    given = [f for f, v in (("--align", args.align), ("--checkpoint", args.checkpoint),
                            ("--tilt-axis-angle", args.tilt_axis_angle)) if v]  # fmt: skip
    if given:
        raise UsageError(
            f"{', '.join(given)} cannot be combined with a streamed reconstruction (--memory, "
            "an OME-Zarr stack or torchrun); align the stack first (wedge align) and pass the "
            ".ali."
        )
    _refuse_overwrite({"output": args.output}, _stack_inputs(args.stack, args.angles))
    res = reconstruct_out_of_core(
        args.stack, args.output, args.method, memory=args.memory, thickness=args.thickness,
        iterations=args.iterations, model=args.model, device=args.device,
        projector=ProjectorOptions.from_mapping(_parse_set(args.projector, "--projector")),
        angles=args.angles, pixel_size=args.pixel_size, overwrite=args.overwrite,
        progress=not args.quiet, **_parse_set(args.set),
    )  # fmt: skip
    if world().rank != 0:
        return
    p = res.plan
    ranks = f" on {res.world_size} ranks" if res.world_size > 1 else ""
    msg = (
        f"wrote {res.path} {res.volume_shape} on {res.device}{ranks} in {res.elapsed_s:.1f} s "
        f"({p.n_slabs} Y slabs of {p.width} rows, budget {format_bytes(p.budget)})"
    )
    if res.history and "r_factor" in res.history[-1]:
        msg += f", final R-factor {res.history[-1]['r_factor']:.4f}"
    print(msg)


def _save_volume(rec: Any, args: argparse.Namespace) -> Path | None:
    """Rank 0 writes the volume (the only process without torchrun); None elsewhere."""
    from .distributed import world

    w = world()
    out = rec.save(args.output, overwrite=args.overwrite) if w.rank == 0 else None
    w.barrier()
    return out
