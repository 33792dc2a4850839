"""The user-facing reconstruction API: :func:`reconstruct` over the method registry."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ._backend import as_tensor, resolve_device
from ._options import coerce_field, option_fields
from .distributed import rank_device, run_linear
from .geometry import Geometry
from .memory import check_memory, estimate_memory
from .methods.registry import MethodInfo, build_options, get_method, resolve_iterations
from .parameters import check_refine
from .preprocess import rotate_images, rotate_shifts
from .problem import Problem
from .projectors import make_projector
from .projectors.options import ProjectorOptions, projector_name
from .runner import Callback, RunOptions, RunResult
from .tiltseries import TiltSeries

__all__ = ["Reconstruction", "reconstruct"]


@dataclasses.dataclass
class Reconstruction:
    """The result of :func:`reconstruct`.

    Attributes
    ----------
    volume : ndarray (Z, Y, X) float32
        Line-integral density in the units of the images per voxel length.
    history : list of dict
        Per-iteration figures (see :func:`wedge.runner.run`); empty for direct methods.
    method : str
    options : dataclass
        The method's options as used.
    geometry : Geometry
    voxel_size : float, Å
    elapsed_s : float
    stopped : str
        Why the run ended: ``"iterations"``, ``"tolerance"``, ``"holdout"``, ``"callback"``
        or ``"direct"``.
    peak_memory_bytes : int or None
        Peak CUDA memory of the run (None on CPU).
    series : TiltSeries or None
        The input series carrying the refined acquisition parameters (the input itself,
        unchanged, where nothing was refined): ready to reconstruct again or save.
    device : str or None
        The device the reconstruction ran on (``"cpu"``, ``"cuda:0"``, …).
    path : Path or None
        Where an out-of-core run (``out=``) wrote the volume; ``volume`` then reads it
        lazily (a read-only ``np.memmap`` for MRC, a ``zarr.Array`` for OME-Zarr).
    """

    volume: np.ndarray
    history: list[dict[str, float]]
    method: str
    options: Any
    geometry: Geometry
    voxel_size: float
    elapsed_s: float
    stopped: str
    peak_memory_bytes: int | None = None
    series: TiltSeries | None = None
    device: str | None = None
    path: Any = None

    def save(self, path: Any, overwrite: bool = False) -> Any:
        """Write the volume with the voxel size: MRC by default, OME-Zarr for ``.zarr``
        (an existing store is refused unless ``overwrite``)."""
        from .io import write_volume
        from .io.zarr import is_zarr_path, write_ome_zarr

        if is_zarr_path(path):
            return write_ome_zarr(path, self.volume, self.voxel_size, overwrite=overwrite)
        return write_volume(path, self.volume, voxel_size=self.voxel_size)


def _identity(info: MethodInfo, opts: Any, projector: str | None, popts: Any) -> dict[str, str]:
    """The method facts a checkpoint must match (options with arrays reduced to digests)."""
    from .runner import data_digest

    fields = {}
    for f in dataclasses.fields(opts):
        v = getattr(opts, f.name)
        if v is not None and not isinstance(v, bool | int | float | str | tuple):
            v = "array " + data_digest(as_tensor(v, "cpu"))
        fields[f.name] = v
    return {"method": info.name, "options": repr(fields), "projector": f"{projector} {popts!r}"}


def _run_options(info: MethodInfo, given: dict[str, Any]) -> RunOptions:
    if "checkpoint" in given and given["checkpoint"] is not None and not info.iterative:
        warnings.warn(
            f"{info.name} is a direct method: the checkpoint {given['checkpoint']} is ignored.",
            UserWarning,
            stacklevel=3,
        )
        given = {k: v for k, v in given.items() if k != "checkpoint"}
    fields = option_fields(RunOptions)
    checked = {k: coerce_field("runner", k, fields[k][0], v) for k, v in given.items()}
    return RunOptions(**checked)


def _single_axis_images(series: TiltSeries, images: torch.Tensor, geom: Geometry):
    """Undo an in-plane tilt-axis angle α by rotating the images by −α, so that the fast
    single-axis projector applies. Shifts measured in the unrotated images rotate with
    them: the measured image is the ideal one moved by s, so the rotated image is the ideal
    single-axis one moved by Z(−α) s."""
    images = rotate_images(images, series.tilt_axis_angle)
    changes: dict[str, Any] = {"tilt_axis_angle": 0.0}
    if geom.shifts is not None:
        changes["shifts"] = rotate_shifts(geom.shifts_array, series.tilt_axis_angle)
    return images, geom.replace(**changes)


def reconstruct(
    series: TiltSeries,
    method: str = "sirt",
    *,
    thickness: int | None = None,
    volume_shape: Sequence[int] | None = None,
    iterations: int | None = None,
    model: str | None = None,
    device: str | torch.device | None = None,
    x0: Any = None,
    callbacks: Sequence[Callback] = (),
    projector: ProjectorOptions | None = None,
    refine: Sequence[str] | str | None = None,
    memory: str | int | None = None,
    out: Any = None,
    **options: Any,
) -> Reconstruction:
    """Reconstruct a volume from a tilt series with a registered method.

    Parameters
    ----------
    series : TiltSeries
    method : str
        A name from :func:`wedge.list_methods` (``wedge methods`` on the command line).
    thickness : int, optional
        Z size in voxels; defaults to the image width X.
    volume_shape : (Z, Y, X), optional
        Overrides ``thickness`` (e.g. a volume wider than the detector).
    iterations : int, optional
        For iterative methods; defaults to the method's default.
    model : {"ray", "voxel", "fourier"}, optional
        Projector model; defaults to the method's default.
    device : str, optional
        ``"cpu"`` or ``"cuda"``; CUDA when present by default.
    x0 : array (Z, Y, X), optional
        Initial volume for iterative methods.
    callbacks : sequence of callables
        ``callback(record, x) -> bool``; True stops the run.
    projector : ProjectorOptions, optional
        Numerical options of the projector (``n_sub``, ``ray_step``, ``oversampling``).
    refine : sequence of str, optional
        Acquisition parameters to refine jointly with the volume (names in
        :data:`wedge.parameters.REFINABLE`); only methods with a nonlinear model
        (``kind="model"``) refine. The refined values come back in ``result.series``.
    memory : str or int, optional
        A memory budget (``"512MB"``, ``"2GB"``): reconstruct out of core, Y slab by Y
        slab (:mod:`wedge.outofcore`; single-axis methods with a Radon projector). Needs
        ``out``.
    out : path, optional
        Output file (``.mrc`` or ``.zarr``) of an out-of-core run; the budget defaults to
        a safe fraction of the available memory.
    **options
        The method's options (its dataclass fields) and the runner's
        (:class:`~wedge.runner.RunOptions` fields: ``progress``, ``tol``, ``holdout``,
        ``checkpoint``, ``reference``, …). Values are checked against the fields' types.

    Returns
    -------
    Reconstruction
        ``volume`` is float32 (wedge computes in float32 whatever the input dtype).

    Raises
    ------
    ValueError
        Bad options or shapes; :class:`wedge.memory.InsufficientMemoryError` (a ValueError)
        when the run cannot fit in the free memory — both before any work starts.

    Notes
    -----
    A series with an in-plane tilt-axis angle α and otherwise single-axis geometry has
    its images rotated by −α first (:func:`wedge.preprocess.rotate_images`) so that the
    fast single-axis projector applies; its shifts are rotated with them, so that shifts
    mean the same on this path as on the general (Euler) path.
    """
    if not isinstance(series, TiltSeries):
        raise TypeError("series must be a wedge.TiltSeries (see wedge.read_tiltseries).")
    if memory is not None or out is not None:
        return _out_of_core(series, method, memory, out, locals(), options)
    info = get_method(method)
    run_kw = {k: options.pop(k) for k in list(options) if k in option_fields(RunOptions)}
    opts = build_options(info, options)
    if projector is None:
        projector = ProjectorOptions()
    elif isinstance(projector, dict):
        projector = ProjectorOptions.from_mapping(projector)
    elif not isinstance(projector, ProjectorOptions):
        raise TypeError("projector must be a wedge.projectors.ProjectorOptions.")
    names = check_refine(refine, series)
    if names and info.kind != "model":
        raise ValueError(
            f"method {method!r} refines no acquisition parameters; use `wedge refine-angles` "
            "(wedge.align.refine_angles) or a method with a nonlinear model."
        )
    iterations = resolve_iterations(info, iterations)
    if info.kind == "linear" and series.is_focal_series:
        raise ValueError(
            f"method {method!r} reconstructs projections (n, Y, X), but the series holds a "
            f"focal series {series.shape}; use a multislice method or average each tilt's "
            "focal series first."
        )
    dev = resolve_device(rank_device(device))
    geom = series.geometry(
        tuple(volume_shape) if volume_shape is not None else None, thickness=thickness
    )
    fast = bool(series.tilt_axis_angle and series.euler is None)
    proj_name = None
    if info.kind == "linear":
        proj_name = projector_name(model or info.default_model, geom.is_single_axis or fast)
        proj_kw = projector.kwargs_for(proj_name)
    extra = info.extra_bytes(geom.volume_shape, opts) if info.extra_bytes else 0
    estimate = estimate_memory(
        geom.volume_shape,
        series.shape,
        work_volumes=info.work_volumes,
        work_images=info.work_images,
        projector=proj_name,
        n_sub=projector.n_sub,
        oversampling=projector.oversampling,
        extra=extra,
    )
    check_memory(estimate, dev, f"{method} on a {geom.volume_shape} volume")
    run_opts = _run_options(info, run_kw)
    run_opts = dataclasses.replace(
        run_opts,
        identity={**(run_opts.identity or {}), **_identity(info, opts, proj_name, projector)},
    )
    if x0 is not None:
        x0 = as_tensor(x0, dev)
        if tuple(x0.shape) != geom.volume_shape:
            raise ValueError(
                f"x0 has shape {tuple(x0.shape)} but the volume is {geom.volume_shape}."
            )
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    if info.kind == "model":
        problem = Problem(series, geom.volume_shape, dev, projector, names)
        result: RunResult = info.function(
            problem, iterations, x0, tuple(callbacks), options=opts, run=run_opts
        )
    else:
        images = as_tensor(series.images, dev)
        if fast:
            images, geom = _single_axis_images(series, images, geom)
        geom = geom.to(dev)
        op = make_projector(geom, proj_name, **proj_kw)
        result = run_linear(info, op, images, iterations, x0, tuple(callbacks), opts, run_opts)
    elapsed = time.perf_counter() - t0
    peak = int(torch.cuda.max_memory_allocated(dev)) if dev.type == "cuda" else None
    params = getattr(result, "parameters", None)
    return Reconstruction(
        volume=result.x.detach().cpu().numpy().astype(np.float32, copy=False),
        history=result.history,
        method=method,
        options=opts,
        geometry=geom.to(dev),
        voxel_size=series.pixel_size,
        elapsed_s=elapsed,
        stopped=result.stopped,
        peak_memory_bytes=peak,
        series=series if params is None else params.to_series(series),
        device=str(dev),
    )


def _out_of_core(series, method, memory, out, given, options) -> Reconstruction:
    """The ``memory=``/``out=`` route of :func:`reconstruct` (see :mod:`wedge.outofcore`)."""
    from .outofcore import open_volume, reconstruct_out_of_core

    if out is None:
        raise ValueError("memory= reconstructs out of core and needs out= (an .mrc or .zarr path).")
    unsupported = ["x0"] if given["x0"] is not None else []
    unsupported += [k for k in ("refine", "callbacks") if given[k]]
    if unsupported:
        raise ValueError(f"{', '.join(unsupported)} cannot be used out of core.")
    res = reconstruct_out_of_core(
        series, out, method, memory=memory, thickness=given["thickness"],
        volume_shape=given["volume_shape"], iterations=given["iterations"],
        model=given["model"], device=given["device"], projector=given["projector"], **options,
    )  # fmt: skip
    return Reconstruction(
        volume=open_volume(res.path),
        history=res.history,
        method=res.method,
        options=None,
        geometry=series.geometry(res.volume_shape),
        voxel_size=res.voxel_size,
        elapsed_s=res.elapsed_s,
        stopped="direct" if not res.history else "iterations",
        series=series,
        device=res.device,
        path=res.path,
    )
