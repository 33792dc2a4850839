"""The result of an averaging method, and the checks every method runs before any work."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..geometry import Geometry
from ..tiltseries import TiltSeries
from .poses import check_poses, default_support, place_operator, support_inside

__all__ = ["AverageResult", "AverageProblem", "prepare"]


@dataclasses.dataclass
class AverageResult:
    """What :func:`~wedge.average.crm` and the averaging baselines return.

    Attributes
    ----------
    object : ndarray (Z, Y, X), float32
        The object in its canonical frame (zero outside the support).
    method : str
        ``"crm"``, ``"simple"`` or ``"masked-fourier"``.
    history : list of dict
        One record per iteration from :func:`wedge.runner.run` (for the baselines: the
        records of the copies' runs combined per iteration). ``rms_reprojection_error`` is
        Eq. 25 of Han et al. over every image of every copy.
    backgrounds : list of ndarray (copy volume) or None
        Per copy, on request: what lies outside the object's footprint (CRM: ``gᵢ``;
        baselines: the copy's own reconstruction with the footprint set to zero). Arrays
        may be memory-mapped ``.npy`` files when the run streamed them to disk.
    support : ndarray (Z, Y, X), bool
    stopped : str
        Why the run stopped (the runner's reason; baselines: ``"iterations"``).
    """

    object: np.ndarray
    method: str
    history: list[dict[str, float]]
    support: np.ndarray
    backgrounds: list[np.ndarray] | None = None
    stopped: str = "iterations"


@dataclasses.dataclass
class AverageProblem:
    """Validated inputs shared by every method (built by :func:`prepare`)."""

    copies: Sequence[TiltSeries]
    poses: np.ndarray
    object_shape: tuple[int, int, int]
    support: np.ndarray
    volume_shapes: list[tuple[int, int, int]]
    geometries: list[Geometry]

    @property
    def n_copies(self) -> int:
        return len(self.volume_shapes)


def _shape3(shape: Any, name: str) -> tuple[int, int, int]:
    try:
        s = tuple(int(v) for v in shape)
        ok = len(s) == 3 and all(v >= 1 for v in s) and all(int(v) == v for v in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be three positive whole numbers (Z, Y, X), got {shape!r}.")
    return s  # type: ignore[return-value]


def _volume_shapes(shapes: list[tuple[int, int]], volume_shape: Any) -> list[tuple[int, int, int]]:
    if volume_shape is None:
        return [(nx, ny, nx) for ny, nx in shapes]
    vs = np.asarray(volume_shape, dtype=object)
    if vs.ndim == 1:
        one = _shape3(volume_shape, "volume_shape")
        if len(set(shapes)) > 1:
            raise ValueError(
                f"the copies have different image sizes {sorted(set(shapes))}, so one "
                f"volume_shape {one} cannot fit them all; give one volume_shape per copy."
            )
        return [one] * len(shapes)
    if vs.ndim != 2 or vs.shape[0] != len(shapes):
        raise ValueError(
            f"volume_shape must be one (Z, Y, X) or one per copy ({len(shapes)} rows), "
            f"got shape {vs.shape}."
        )
    return [_shape3(v, f"volume_shape[{i}]") for i, v in enumerate(volume_shape)]


def prepare(
    copies: Sequence[TiltSeries],
    poses: Any,
    object_shape: Any,
    support: Any = None,
    volume_shape: Any = None,
) -> AverageProblem:
    """Check everything before any work; raise one clear sentence for each bad input.

    Refused: no copies; something that is not a :class:`TiltSeries` (or a focal series);
    a pose table whose rows do not match the copies; copies that mix 2D (Y = 1) and 3D
    images; one ``volume_shape`` for copies of different image sizes; a support that is
    not a boolean mask of ``object_shape``, is empty, or whose footprint fills a whole copy
    volume (nothing left for the background); a pose that puts part of the support outside
    its copy's volume.
    """
    n = len(copies)
    if n < 1:
        raise ValueError("no copies were given; pass a list of TiltSeries, one per copy.")
    obj = _shape3(object_shape, "object_shape")
    p = check_poses(poses, n)
    shapes: list[tuple[int, int]] = []
    geoms_series = []
    for i in range(n):
        s = copies[i]
        if not isinstance(s, TiltSeries):
            raise ValueError(
                f"copy {i} is a {type(s).__name__}, not a wedge.TiltSeries; wrap each copy's "
                "images and angles in TiltSeries(images, angles)."
            )
        if s.is_focal_series:
            raise ValueError(f"copy {i} is a focal series; averaging takes (n, Y, X) images.")
        shapes.append(s.image_shape)
        geoms_series.append(s)
        del s
    flat = {sh[0] == 1 for sh in shapes}
    if len(flat) > 1:
        raise ValueError(
            "some copies are 2D (images of height 1) and others 3D; all copies must be of "
            "one kind (crop or pad the images so they match)."
        )
    vshapes = _volume_shapes(shapes, volume_shape)
    if support is None:
        sup = default_support(obj)
    else:
        sup = np.asarray(support)
        if sup.shape != obj:
            raise ValueError(
                f"the support has shape {sup.shape} but the object is {obj}; give a boolean "
                "mask of object_shape."
            )
        if sup.dtype != bool:
            if not np.all((sup == 0) | (sup == 1)):
                raise ValueError("the support must be a boolean (0/1) mask.")
            sup = sup.astype(bool)
    if not sup.any():
        raise ValueError(
            "the support is empty; give a mask with the object's voxels set (default: the "
            "inscribed sphere)."
        )
    geoms = []
    for i, (s, vs) in enumerate(zip(geoms_series, vshapes, strict=True)):
        inside, worst = support_inside(p[i], sup, vs)
        if not inside:
            raise ValueError(
                f"the pose of copy {i} puts the object {worst:.1f} voxels outside its volume "
                f"{vs}; check the position (x, y, z) in that pose row, or give a larger "
                "volume_shape."
            )
        geoms.append(s.geometry(vs))
    n_sup = int(sup.sum())
    for i, vs in enumerate(vshapes):
        if 2 * n_sup < int(np.prod(vs)):  # the footprint is about the support's size
            continue
        foot = place_operator(p[i], obj, vs).forward(torch.from_numpy(sup.astype(np.float32)))
        if bool((foot > 0).all()):
            raise ValueError(
                f"the support covers the whole volume of copy {i}, leaving no background; "
                "give a smaller support or a larger volume_shape."
            )
    return AverageProblem(copies, p, obj, sup, vshapes, geoms)
