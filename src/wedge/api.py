"""The user-facing reconstruction API: :func:`reconstruct` over the method registry."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ._backend import as_tensor, resolve_device
from .geometry import Geometry
from .methods.registry import build_options, get_method
from .preprocess import rotate_images
from .projectors import make_projector
from .runner import Callback, RunOptions
from .tiltseries import TiltSeries

__all__ = ["Reconstruction", "reconstruct"]

_RUN_FIELDS = {f.name for f in dataclasses.fields(RunOptions)}


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

    def save(self, path: Any) -> Any:
        """Write the volume (MRC by default) with the voxel size in the header."""
        from .io import write_volume

        return write_volume(path, self.volume, voxel_size=self.voxel_size)


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
    **options: Any,
) -> Reconstruction:
    """Reconstruct a volume from a tilt series with a registered method.

    Parameters
    ----------
    series : TiltSeries
    method : str
        A name from :func:`wedge.methods` (``wedge methods`` on the command line).
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
    **options
        The method's options (its dataclass fields) and the runner's
        (:class:`~wedge.runner.RunOptions` fields: ``progress``, ``tol``, ``holdout``,
        ``checkpoint``, ``reference``, …).

    Notes
    -----
    A series with an in-plane tilt-axis angle α and otherwise single-axis geometry has
    its images rotated by −α first (:func:`wedge.preprocess.rotate_images`) so that the
    fast single-axis projector applies.
    """
    if not isinstance(series, TiltSeries):
        raise TypeError("series must be a wedge.TiltSeries (see wedge.read_tiltseries).")
    info = get_method(method)
    run_kw = {k: options.pop(k) for k in list(options) if k in _RUN_FIELDS}
    opts = build_options(info, options)
    run_opts = RunOptions(**run_kw)
    if iterations is None:
        iterations = info.default_iterations
    if info.iterative and (not isinstance(iterations, int | np.integer) or iterations < 1):
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}.")
    dev = resolve_device(device)
    images = as_tensor(series.images, dev)
    geom = series.geometry(
        tuple(volume_shape) if volume_shape is not None else None, thickness=thickness
    )
    if series.tilt_axis_angle and series.euler is None:
        images = rotate_images(images, series.tilt_axis_angle)
        geom = geom.replace(tilt_axis_angle=0.0)
    geom = geom.to(dev)
    if x0 is not None:
        x0 = as_tensor(x0, dev)
        if tuple(x0.shape) != geom.volume_shape:
            raise ValueError(
                f"x0 has shape {tuple(x0.shape)} but the volume is {geom.volume_shape}."
            )
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    op = make_projector(geom, model or info.default_model)
    result = info.function(op, images, iterations, x0, tuple(callbacks), options=opts, run=run_opts)
    elapsed = time.perf_counter() - t0
    peak = int(torch.cuda.max_memory_allocated(dev)) if dev.type == "cuda" else None
    return Reconstruction(
        volume=result.x.detach().cpu().numpy().astype(np.float32, copy=False),
        history=result.history,
        method=method,
        options=opts,
        geometry=geom,
        voxel_size=series.pixel_size,
        elapsed_s=elapsed,
        stopped=result.stopped,
        peak_memory_bytes=peak,
    )
