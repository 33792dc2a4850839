"""Out-of-core single-axis reconstruction: Y slabs streamed from disk to disk under a budget.

For tilts about Y on the sparse single-axis projectors (``model="ray"`` or ``"voxel"``),
every XZ slice of the volume sees only the same Y row of every image: ``A`` is one 2D
system matrix applied to each Y column (:mod:`wedge.projectors.single_axis`). A method
whose update acts column by column therefore reconstructs a slab of Y rows
``[y0, y1)`` from the images' rows ``[y0, y1)`` alone, and the volume is the slabs side by
side. This module runs the registered method on one slab at a time, reading the slab's
image rows from a memory-mapped stack and writing its volume rows into the output, so that
peak memory is set by a budget, not by the volume.

Methods, and how the slab result relates to the in-memory one:

=========================  ==============================================================
``bp fbp wbp``             equal (row filter along X, per-tilt weights)
``sirt``                   equal (row sums ``A·1`` and column sums ``Aᵀ·1`` do not depend
                           on Y)
``sart art``               equal (per-image sums and norms do not depend on Y; the image
                           order depends only on the iteration and ``seed``)
``resire``                 equal with a Radon projector (the step ``t/(n·N)`` is global);
                           ``regularization="tv"`` couples Y rows and is refused
``cgls``                   *per-slab CGLS*: the same least-squares problem, separable in
                           Y, but each slab runs its own conjugate-gradient recursion (the
                           in-memory CGLS shares ``α``, ``β`` across the volume), so the
                           iterates differ before convergence
=========================  ==============================================================

Memory model (bytes; checked before any work, refused with the amount needed)::

    need(w) = F · M + w · (4·n·X_det·(1 + I) + 4·Z·X·(2 + V)) + T

``M`` is the system matrix pair ``A``, ``Aᵀ`` (:func:`wedge.memory.projector_bytes`, an
upper estimate, about 1.4 × the built pair), ``F`` = 2.5 (3 for ``sart``/``art``, which
keep per-image transposes) covers the matrix, its build peak and the heap fragmentation it
leaves (measured: up to 54 MB above the baseline with a 17 MB estimate, a 12.8 MB built
pair and 12 MB of slab), ``w`` the slab width in Y rows, ``V`` and ``I`` the method's working
volumes and images (its registry entry), ``T`` the projector's Y-chunk temporaries. The
slab width is the largest ``w`` with ``need(w) ≤ budget``; ``w < 1`` is refused.

Files: the input is memory-mapped (MRC, ``.npy``) or read chunk-wise (OME-Zarr); the pages
of each slab are released after it is read (``madvise(MADV_DONTNEED)``), so the process's
resident set does not grow with the file. The output is a sparse, preallocated temporary
MRC (or OME-Zarr store) beside the target, written by positional writes of each slab's
rows, and renamed onto the target only when complete (:func:`wedge.io.atomic_output`): the
output is complete or absent. Under an initialised ``torch.distributed`` process group the
Y slabs are shared among the ranks (:mod:`wedge.distributed`), each rank writing its own
rows into the same temporary file.

The slab readers and writers are in :mod:`wedge.io.slabs` and the slab planning in
:mod:`wedge._slabplan`; their public names (:func:`open_stack`, :func:`open_volume`,
:func:`plan_slabs`, :class:`SlabPlan`) are importable from here as well.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._backend import resolve_device
from ._slabplan import SlabPlan, parse_size, plan_slabs
from .geometry import Geometry
from .io.slabs import (
    StackInfo,
    _ArraySource,
    _mrc_temporary,
    _open_sink,
    _Source,
    open_stack,
    open_volume,
)
from .memory import available_bytes
from .methods.registry import MethodInfo, build_options, get_method, resolve_iterations
from .projectors import make_projector
from .projectors.options import ProjectorOptions, projector_name
from .runner import RunOptions
from .tiltseries import TiltSeries

__all__ = [
    "SLAB_METHODS",
    "SAFE_FRACTION",
    "SlabPlan",
    "OutOfCoreResult",
    "parse_memory",
    "default_budget",
    "plan_slabs",
    "reconstruct_out_of_core",
    "open_stack",
    "open_volume",
]

#: methods that can stream Y slabs (see the module notes for how each relates to in-memory)
SLAB_METHODS: tuple[str, ...] = ("bp", "fbp", "wbp", "sirt", "sart", "art", "cgls", "resire")
#: fraction of psutil's available memory used when no budget is given
SAFE_FRACTION = 0.5
_RUN_ALLOWED = ("progress", "seed")


# ------------------------------------------------------------------------------ the budget
def parse_memory(memory: str | int | float | None) -> int:
    """A memory budget in bytes from ``"512MB"``, ``"2GB"``, ``"1.5GiB"`` or a byte count.

    Decimal units (kB, MB, GB, TB = 10³ⁿ bytes, as :func:`wedge.memory.format_bytes`
    prints them) and binary ones (KiB, MiB, GiB, TiB); case and spaces do not matter.
    None gives :func:`default_budget`.
    """
    if memory is None:
        return default_budget()
    return parse_size(memory)


def default_budget() -> int:
    """``SAFE_FRACTION`` of the memory psutil reports available now."""
    return int(SAFE_FRACTION * available_bytes(torch.device("cpu")))


# ------------------------------------------------------------------------------ the job
@dataclasses.dataclass
class OutOfCoreResult:
    """What :func:`reconstruct_out_of_core` returns (the volume itself is in ``path``).

    Attributes
    ----------
    path : Path
    volume_shape : (Z, Y, X)
    method : str
    plan : SlabPlan
        The slab width used and the memory model's figures.
    history : list of dict
        One record per iteration: ``iteration`` and ``residual_norm`` (‖Ax − b‖ over the
        whole volume, exact); the last also ``r_factor`` (RESIRE Eq. 10 over the whole
        series). Empty for direct methods.
    elapsed_s : float
    device : str
        Where the slabs were computed.
    world_size : int
        Processes that shared the slabs.
    voxel_size : float, Å
    """

    path: Path
    volume_shape: tuple[int, int, int]
    method: str
    plan: SlabPlan
    history: list[dict[str, float]]
    elapsed_s: float
    device: str
    world_size: int
    voxel_size: float


@dataclasses.dataclass
class _Job:
    info: MethodInfo
    options: Any
    iterations: int
    proj_name: str
    proj_kw: dict[str, Any]
    volume_shape: tuple[int, int, int]
    angles: np.ndarray
    dx: np.ndarray
    voxel_size: float
    device: torch.device
    run: RunOptions
    support: Any
    detector_x: int


def _check_series_geometry(
    angles: np.ndarray, shifts: Any, tilt_axis_angle: float, euler: Any
) -> np.ndarray:
    """The X shifts; refuses what the slab decomposition cannot represent."""
    if euler is not None:
        e = np.asarray(euler, dtype=np.float64)
        if np.any(e[:, 0] != 0) or np.any(e[:, 2] != 0):
            raise ValueError(
                "out-of-core reconstruction needs a single-axis series (tilts about Y); this "
                "one has Euler angles φ or ψ, which mix Y rows: reconstruct it in memory."
            )
    if tilt_axis_angle:
        raise ValueError(
            f"out-of-core reconstruction needs the tilt axis along image Y, but the "
            f"tilt-axis angle is {tilt_axis_angle:g}°; rotate the stack first (an aligned "
            "stack, e.g. the .ali that `wedge align` writes)."
        )
    sh = np.zeros((angles.size, 2)) if shifts is None else np.asarray(shifts, dtype=np.float64)
    if np.any(sh[:, 1] != 0):
        raise ValueError(
            "out-of-core reconstruction cannot apply shifts along Y (they mix Y rows of "
            "different slabs); apply them to the stack first (the aligned .ali stack of "
            "`wedge align`)."
        )
    return sh[:, 0]


def _check_options(info: MethodInfo, opts: Any, run_kw: dict[str, Any]) -> None:
    if info.name not in SLAB_METHODS:
        raise ValueError(
            f"method {info.name!r} cannot run out of core (it couples Y rows or has no "
            f"Radon projector); out-of-core methods: {', '.join(SLAB_METHODS)}."
        )
    refused = sorted(k for k in run_kw if k not in _RUN_ALLOWED)
    if refused:
        raise ValueError(
            f"{', '.join(refused)} cannot be used out of core (each slab runs on its own, "
            "and stopping rules, checkpoints and references need the whole volume); give "
            "a number of iterations instead."
        )
    if info.name == "resire":
        if opts.regularization == "tv":
            raise ValueError(
                "resire with regularization='tv' couples neighbouring Y rows and cannot run "
                "out of core; use 'l1' or 'none', or reconstruct in memory."
            )
        if opts.extended_object:
            raise ValueError(
                "resire with extended_object=True widens the volume along Y and cannot run "
                "out of core; reconstruct in memory."
            )


def _slab_geometry(job: _Job, w: int) -> Geometry:
    nz, _, nx = job.volume_shape
    euler = np.zeros((job.angles.size, 3))
    euler[:, 1] = job.angles
    shifts = None
    if np.any(job.dx):
        shifts = np.stack([job.dx, np.zeros_like(job.dx)], 1)
    return Geometry(
        (nz, w, nx),
        (w, job.detector_x),
        euler,
        shifts=shifts,
        voxel_size=job.voxel_size,
        device=str(job.device),
    )


def _run_slab(job: _Job, images: np.ndarray, y0: int, y1: int) -> tuple[np.ndarray, dict]:
    """Reconstruct rows [y0, y1): the volume block (Z, w, X) and the figures to combine."""
    geom = _slab_geometry(job, y1 - y0)
    op = make_projector(geom, job.proj_name, **job.proj_kw)
    _trim_heap()  # the first slab builds the system matrix: return its temporaries
    data = torch.from_numpy(images).to(job.device)
    opts = job.options
    if job.support is not None:
        opts = dataclasses.replace(opts, support=np.asarray(job.support[:, y0:y1, :]))
    norms: list[float] = []

    def record(rec: dict[str, float], x: torch.Tensor) -> bool:
        norms.append(rec["residual_norm"])
        return False

    result = job.info.function(op, data, job.iterations, None, (record,), options=opts, run=job.run)
    figures: dict[str, Any] = {"sq": np.square(np.asarray(norms, dtype=np.float64))}
    if job.info.iterative:  # per-image Σ|Ax − b| and Σ|b|: the whole series' R-factor
        res = (op.forward(result.x) - data).abs().sum(dim=(1, 2)).double().cpu().numpy()
        figures.update(fit=res, b=data.abs().sum(dim=(1, 2)).double().cpu().numpy())
    return result.x.detach().to("cpu", torch.float32).numpy(), figures


def _stream(job: _Job, source: _Source, sink: Any, rows: range, width: int, bar: Any) -> dict:
    """Run every slab of ``rows`` (a range of Y starts); returns summed figures."""
    total: dict[str, Any] = {}
    ny = job.volume_shape[1]
    for y0 in rows:
        y1 = min(ny, y0 + width)
        block, figures = _run_slab(job, source.read(y0, y1), y0, y1)
        sink.write(y0, block)
        del block
        _trim_heap()
        for k, v in figures.items():
            total[k] = v if k not in total else total[k] + v
        if bar is not None:
            bar.update(y1 - y0)
    return total


def _trim_heap() -> None:
    """Return freed heap memory to the OS (glibc ``malloc_trim``) between slabs.

    Freed slab buffers otherwise stay in the heap (glibc raises its mmap threshold after
    the first large free), and the resident set would creep above the live memory."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None on other C libraries."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _history(figures: dict[str, Any], iterations: int, iterative: bool) -> list[dict[str, float]]:
    if not iterative or "sq" not in figures:
        return []
    sq = np.asarray(figures["sq"], dtype=np.float64)
    hist = [
        {"iteration": float(k + 1), "residual_norm": float(math.sqrt(v))} for k, v in enumerate(sq)
    ]
    if hist and "fit" in figures:
        ok = figures["b"] > 0
        hist[-1]["r_factor"] = float(np.mean(figures["fit"][ok] / figures["b"][ok]))
    return hist[:iterations]


@contextlib.contextmanager
def _output(path: Path, shape, voxel_size, overwrite, chunk_y, dist) -> Iterator[Any]:
    """The sink in a temporary beside ``path`` (created by rank 0 and shared), renamed
    onto ``path`` by rank 0 when every rank has finished; removed on any failure."""
    from .io.atomic import atomic_output
    from .io.zarr import create_ome_zarr, is_zarr_path

    zarr_out = is_zarr_path(path)
    if dist.rank == 0:
        ctx = (
            create_ome_zarr(path, shape, voxel_size, chunk_y=chunk_y, overwrite=overwrite)
            if zarr_out
            else _mrc_temporary(path, shape, voxel_size, atomic_output)
        )
    else:
        ctx = contextlib.nullcontext(None)
    with ctx as made:
        name = dist.broadcast_object(None if made is None else str(made.path))
        sink = made
        if sink is None:
            sink = _open_sink(Path(name), shape, zarr_out)
        try:
            yield sink
        finally:
            if hasattr(sink, "close"):
                sink.close()


def reconstruct_out_of_core(
    stack: str | os.PathLike[str] | TiltSeries,
    output: str | os.PathLike[str],
    method: str = "sirt",
    *,
    memory: str | int | None = None,
    thickness: int | None = None,
    volume_shape: tuple[int, int, int] | None = None,
    iterations: int | None = None,
    model: str | None = None,
    device: str | torch.device | None = None,
    projector: ProjectorOptions | None = None,
    angles: Any = None,
    pixel_size: float | None = None,
    overwrite: bool = False,
    **options: Any,
) -> OutOfCoreResult:
    """Reconstruct a single-axis tilt series slab by slab into ``output`` under a budget.

    Parameters
    ----------
    stack : path or TiltSeries
        An MRC / ``.npy`` / OME-Zarr stack (memory-mapped or read chunk-wise), or a series
        already in memory (its images may be an ``np.memmap``).
    output : path
        ``.mrc`` (and the other MRC suffixes) or ``.zarr`` / ``.ome.zarr``; never an input.
    method : str
        One of :data:`SLAB_METHODS`.
    memory : str or int, optional
        Budget, e.g. ``"512MB"``; default :func:`default_budget`.
    thickness, volume_shape, iterations, model, device, projector
        As in :func:`wedge.reconstruct`; ``volume_shape[1]`` must equal the images' Y, and
        ``model`` must be ``"ray"`` or ``"voxel"`` (the Fourier projector couples Y rows).
    angles, pixel_size
        For a path: as in :func:`wedge.io.read_tiltseries`.
    overwrite : bool
        Replace an existing OME-Zarr store (an MRC file is always replaced atomically).
    **options
        The method's options, and the runner's ``progress`` and ``seed`` (stopping rules,
        hold-out, checkpoints and references need the whole volume and are refused).

    Returns
    -------
    OutOfCoreResult

    Raises
    ------
    ValueError
        Bad input (see the messages), all before any work; a budget below one slab's need
        raises :class:`wedge.memory.InsufficientMemoryError` naming the amount needed.
    """
    from .distributed import rank_device, world
    from .io.zarr import check_zarr_target, is_zarr_path

    t0 = time.perf_counter()
    info = get_method(method)
    run_kw = {
        k: options.pop(k)
        for k in list(options)
        if k in {f.name for f in dataclasses.fields(RunOptions)}
    }
    opts = build_options(info, options)
    _check_options(info, opts, run_kw)
    out = Path(output)
    zarr_out = is_zarr_path(out)
    if not zarr_out:
        from .io.formats import file_format

        if file_format(out) != "MRC":
            raise ValueError(
                f"out-of-core output must be MRC (.mrc, .rec, …) or OME-Zarr (.zarr), not "
                f"{out.name}."
            )
    if zarr_out:
        check_zarr_target(out, overwrite)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"cannot write {out}: the directory {out.parent} does not exist.")
    if projector is None:
        projector = ProjectorOptions()
    elif isinstance(projector, dict):
        projector = ProjectorOptions.from_mapping(projector)
    dev = resolve_device(rank_device(device))
    budget = parse_memory(memory)
    if isinstance(stack, TiltSeries):
        if stack.is_focal_series:
            raise ValueError(
                "out-of-core reconstruction takes projections (n, Y, X), not a focal series."
            )
        if not isinstance(stack.images, np.ndarray):
            raise TypeError("out of core, the series' images must be a NumPy array or np.memmap.")
        st = StackInfo(
            _ArraySource(stack.images),
            np.asarray(stack.angles, dtype=np.float64),
            float(stack.pixel_size),
            stack.shifts,
            float(stack.tilt_axis_angle),
            stack.euler,
            "the series given",
        )
    else:
        if Path(stack).resolve() == out.resolve():
            raise ValueError(f"the output {out} is the input stack; choose another output path.")
        st = open_stack(stack, angles, pixel_size)
    try:
        return _reconstruct(
            st,
            out,
            info,
            opts,
            run_kw,
            budget,
            dev,
            projector,
            model,
            thickness,
            volume_shape,
            iterations,
            overwrite,
            world(),
            t0,
        )
    finally:
        st.source.close()


def _reconstruct(
    st,
    out,
    info,
    opts,
    run_kw,
    budget,
    dev,
    projector,
    model,
    thickness,
    volume_shape,
    iterations,
    overwrite,
    dist,
    t0,
) -> OutOfCoreResult:
    from .io.zarr import ZARR_CHUNK, is_zarr_path
    from .memory import MemoryEstimate, check_memory

    n, ny, nu = st.source.shape
    if st.angles.size != n:
        raise ValueError(f"{st.angles.size} tilt angles for {n} images; give one per image.")
    dx = _check_series_geometry(st.angles, st.shifts, st.tilt_axis_angle, st.euler)
    if volume_shape is not None:
        vs = tuple(int(v) for v in volume_shape)
        if len(vs) != 3 or vs[1] != ny:
            raise ValueError(
                f"volume_shape must be (Z, Y, X) with Y = {ny} (the images' height) out of core, "
                f"got {volume_shape}."
            )
    else:
        vs = (int(thickness or nu), ny, nu)
    if min(vs) < 1:
        raise ValueError(f"the volume shape {vs} must be positive.")
    name = projector_name(model or info.default_model, True)
    if name not in ("ray-sparse", "voxel-sparse"):
        raise ValueError(
            f"out-of-core reconstruction needs a Radon projector (model='ray' or 'voxel'), not "
            f"{model or info.default_model!r}, which couples Y rows."
        )
    iterations = resolve_iterations(info, iterations)
    support = getattr(opts, "support", None)
    if support is not None and tuple(support.shape) != vs:
        raise ValueError(
            f"the support mask has shape {tuple(support.shape)} but the volume is {vs}."
        )
    if support is not None:
        opts = dataclasses.replace(opts, support=None)
    proj_kw = projector.kwargs_for(name)
    zarr_out = is_zarr_path(out)
    chunk_y = min(ZARR_CHUNK, ny) if zarr_out else 1
    plan = plan_slabs(
        vs, (n, ny, nu), info, name, budget, n_sub=proj_kw.get("n_sub"), align=chunk_y
    )
    if dist.size > 1:  # every rank gets rows: slabs no wider than a rank's share
        share = -(-ny // dist.size)
        width = min(plan.width, max(share, chunk_y) if chunk_y > 1 else share)
        if chunk_y > 1 and width >= chunk_y:
            width -= width % chunk_y
        plan = dataclasses.replace(plan, width=width, n_slabs=-(-ny // width))
    if dev.type == "cuda":
        est = MemoryEstimate({"system matrix and one slab": plan.peak_bytes})
        check_memory(est, dev, f"{info.name} slab of {plan.width} Y rows")
    run = RunOptions(progress=False, seed=int(run_kw.get("seed", 0)))
    job = _Job(
        info,
        opts,
        int(iterations),
        name,
        proj_kw,
        vs,
        st.angles,
        dx,
        st.pixel_size,
        dev,
        run,
        support,
        nu,
    )
    # slabs sharing an OME-Zarr chunk (a slab narrower than a chunk) go to the same rank
    unit = max(chunk_y, plan.width)
    mine = [y for y in range(0, ny, plan.width) if (y // unit) % dist.size == dist.rank]
    progress = bool(run_kw.get("progress", False)) and dist.rank == 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=sum(min(ny, y + plan.width) - y for y in mine),
            desc=f"{info.name} slabs",
            leave=False,
        )
    figures: dict[str, Any] = {}
    with _output(out, vs, st.pixel_size, overwrite, chunk_y, dist) as sink:
        error: BaseException | None = None
        try:
            figures = _stream(job, st.source, sink, mine, plan.width, bar)
        except Exception as exc:  # noqa: BLE001  (every rank must learn of a failure)
            error = exc
        if not dist.all_ok(error is None):
            if error is not None:
                raise error
            raise RuntimeError("another rank failed; no output was written.")
        stats = dist.reduce_stats(sink.stats)
        figures = dist.sum_figures(figures, iterations if info.iterative else 0, n)
        if dist.rank == 0:
            sink.finish(stats)
    dist.barrier()  # every rank returns once rank 0 has renamed the output
    if bar is not None:
        bar.close()
    return OutOfCoreResult(
        path=out,
        volume_shape=vs,
        method=info.name,
        plan=plan,
        history=_history(figures, int(iterations), info.iterative),
        elapsed_s=time.perf_counter() - t0,
        device=str(dev),
        world_size=dist.size,
        voxel_size=st.pixel_size,
    )
