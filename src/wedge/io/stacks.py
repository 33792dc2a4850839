"""Reading and writing tilt series, and describing image files for ``wedge info``.

Where the metadata comes from, in order of precedence:

* tilt angles: the ``angles`` argument (array in degrees, or a text file) > ``<stem>.tlt``
  > ``<stem>.rawtlt`` > SerialEM ``<name>.mdoc`` / ``<stem>.mdoc`` > angles stored in the
  file itself (FEI extended MRC header, HDF5 ``angles`` or Data Exchange
  ``exchange/theta``, TIFF metadata written by wedge);
* pixel size (Å): the ``pixel_size`` argument > ``.mdoc`` ``PixelSpacing`` > FEI extended
  header > the size the format records (MRC voxel size unless 0 or the 1.0 default, HDF5
  ``pixel_size``, TIFF metadata) > 1.0;
* tilt-axis angle (degrees, CCW from image Y): argument > ``.mdoc`` title line >
  ``Tilt axis angle = a`` MRC label / HDF5 / TIFF metadata > 0.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..tiltseries import TiltSeries
from .angles import find_mdoc, find_sidecar_angles, read_angles, read_mdoc, write_angles, write_mdoc
from .formats import StackContent, file_format, load, write_hdf5, write_npy, write_tiff
from .hrtem import find_hrtem_sidecar, read_hrtem
from .mrc import write_mrc

__all__ = ["read_tiltseries", "write_tiltseries", "describe"]

logger = logging.getLogger("wedge")


@dataclasses.dataclass(frozen=True)
class _Resolved:
    angles: np.ndarray | None
    angles_where: str
    pixel_size: float
    pixel_where: str
    tilt_axis_angle: float
    problem: str  # why no usable angles were found ("" when angles is not None)


def _check_dims(path: Path, shape: tuple[int, ...]) -> None:
    if len(shape) != 3:
        raise ValueError(
            f"{path.name} holds {len(shape)}D data of shape {shape}; a tilt series must be a "
            "3D stack (n_tilts, Y, X)."
        )


def _rel(p: Path, stack: Path) -> str:
    return p.name if p.parent == stack.parent else str(p)


def _resolve(
    path: Path,
    content: StackContent,
    angles: Any,
    pixel_size: float | None,
    tilt_axis_angle: float | None,
) -> _Resolved:
    n = content.shape[0]
    mdoc_path = find_mdoc(path)
    mdoc = read_mdoc(mdoc_path) if mdoc_path is not None else None
    # angles
    ang: np.ndarray | None
    if angles is None:
        side = find_sidecar_angles(path)
        if side is not None:
            ang, where = side.angles, f"{_rel(side.path, path)} beside the stack"
        elif content.angles is not None:
            ang, where = content.angles, content.angles_where
        else:
            ang, where = None, ""
    elif isinstance(angles, str | os.PathLike):
        ang, where = read_angles(angles), f"the file {angles}"
    else:
        ang, where = np.asarray(angles, dtype=np.float64).reshape(-1), "the angles argument"
    problem = ""
    if ang is None:
        problem = (
            f"no tilt angles found for {path.name}: looked for {path.stem}.tlt, "
            f"{path.stem}.rawtlt, {path.name}.mdoc, {path.stem}.mdoc and angles stored in "
            "the file; pass angles= (degrees, an array or a text file with one angle per "
            "line) or put a .tlt file beside the stack."
        )
    elif ang.size != n:
        problem = (
            f"{where} gives {ang.size} tilt angles but {path.name} holds {n} images; give "
            "exactly one angle (degrees) per image."
        )
    # pixel size
    if pixel_size is not None:
        px, pwhere = float(pixel_size), "the pixel_size argument"
    elif mdoc is not None and mdoc.pixel_size is not None:
        px, pwhere = mdoc.pixel_size, f"{_rel(mdoc_path, path)} (PixelSpacing)"
    elif content.header_pixel is not None:
        px, pwhere = content.header_pixel, content.header_pixel_where
    elif content.stored_pixel is not None:
        px, pwhere = content.stored_pixel, content.stored_pixel_where
    else:
        px, pwhere = 1.0, "the default (none recorded; pass pixel_size= in Å)"
    # tilt axis
    if tilt_axis_angle is not None:
        axis = float(tilt_axis_angle)
    elif mdoc is not None and mdoc.tilt_axis_angle is not None:
        axis = mdoc.tilt_axis_angle
    elif content.tilt_axis_angle is not None:
        axis = content.tilt_axis_angle
    else:
        axis = 0.0
    return _Resolved(ang, where, px, pwhere, axis, problem)


def _check_arguments(pixel_size: float | None, tilt_axis_angle: float | None) -> None:
    if pixel_size is not None and not (np.isfinite(pixel_size) and pixel_size > 0):
        raise ValueError(f"pixel_size must be a positive number of Å, got {pixel_size}.")
    if tilt_axis_angle is not None and not np.isfinite(tilt_axis_angle):
        raise ValueError(
            f"tilt_axis_angle must be a finite number of degrees, got {tilt_axis_angle}."
        )


def read_tiltseries(
    path: str | os.PathLike[str],
    angles: Any = None,
    pixel_size: float | None = None,
    *,
    tilt_axis_angle: float | None = None,
) -> TiltSeries:
    """Read a tilt series (n_tilts, Y, X) with its tilt angles, pixel size and tilt axis.

    An HRTEM tilt + focal series in wedge's layout (a directory with ``hrtem.json``; see
    :mod:`wedge.io.hrtem`) is read when ``path`` is that directory, its ``hrtem.json`` or
    the ``images.mrc`` beside it: the result has images (n_tilts, n_defocus, Y, X), defocus
    (n_tilts, n_defocus) Å and the microscope.

    Formats by suffix: MRC (``.mrc .mrcs .st .ali .preali``; mode 1 read as signed int16),
    TIFF stacks (``.tif .tiff``), HDF5 (``.h5 .hdf5``: dataset ``images``, else the Data
    Exchange ``exchange/data``, else the first 3D dataset) and ``.npy``. Images become
    float32. Where angles, pixel size and tilt axis are looked for, and in what order, is
    described in the module docstring; ``TiltSeries.source`` records (and the "wedge"
    logger reports) where each was found.

    Parameters
    ----------
    path : str or path-like
    angles : array (n_tilts,) of degrees, or path to an angle file, optional
    pixel_size : float, Å, optional
    tilt_axis_angle : float, degrees, optional
        In-plane tilt-axis angle, counter-clockwise from image Y (IMOD's rotation angle).

    Returns
    -------
    TiltSeries

    Raises
    ------
    ValueError
        For unreadable or truncated files, 2D or 4D+ data, missing angles or a wrong
        number of angles; for an HRTEM series, a sidecar whose counts do not match the
        stack, the angle file or the defocus table.
    """
    _check_arguments(pixel_size, tilt_axis_angle)
    p = Path(path)
    if find_hrtem_sidecar(p) is not None:
        return read_hrtem(p, angles, pixel_size, tilt_axis_angle=tilt_axis_angle)
    content = load(p)
    _check_dims(p, content.shape)
    res = _resolve(p, content, angles, pixel_size, tilt_axis_angle)
    if res.problem:
        raise ValueError(res.problem)
    euler = content.euler
    if euler is not None and (
        euler.shape != (content.shape[0], 3) or not np.allclose(euler[:, 1], res.angles)
    ):
        logger.warning(
            "%s: ignoring the stored Euler angles, whose theta column disagrees with the tilt "
            "angles from %s.",
            p.name,
            res.angles_where,
        )
        euler = None
    source = (
        f"{content.shape[0]} images from {p} ({content.format}, {content.dtype}"
        f"{'; ' + '; '.join(content.notes) if content.notes else ''}); "
        f"tilt angles from {res.angles_where}; pixel size {res.pixel_size:g} Å from "
        f"{res.pixel_where}; tilt-axis angle {res.tilt_axis_angle:g}°."
    )
    logger.info("read_tiltseries: %s", source)
    return TiltSeries(
        np.asarray(content.data, dtype=np.float32),
        res.angles,
        pixel_size=res.pixel_size,
        shifts=content.shifts,
        euler=euler,
        tilt_axis_angle=res.tilt_axis_angle,
        defocus=content.defocus,
        source=source,
    )


def write_tiltseries(path: str | os.PathLike[str], series: TiltSeries) -> Path:
    """Write ``series`` by suffix, atomically; returns the path of the image file.

    * MRC: float32 image stack (space group 0), voxel size = pixel size, tilt axis as a
      ``Tilt axis angle = a`` label, and ``<stem>.tlt`` beside it.
    * TIFF: float32 multi-page TIFF with pixel size, angles and tilt axis in its JSON
      metadata, and ``<stem>.tlt`` beside it.
    * HDF5: datasets ``images``, ``angles``, ``pixel_size``, ``tilt_axis_angle`` and, when
      set, ``shifts``, ``euler``, ``defocus``.
    * ``.npy``: float32 images, ``<stem>.tlt`` and a SerialEM-style ``<name>.mdoc`` (pixel
      size, tilt axis) beside it.

    Shifts, Euler angles and defocus are kept only by HDF5.
    """
    if not isinstance(series, TiltSeries):
        raise ValueError(f"series must be a wedge.TiltSeries, got {type(series).__name__}.")
    p = Path(path)
    fmt = file_format(p)
    s = series
    if fmt == "MRC":
        write_mrc(p, s.images, s.pixel_size, image_stack=True, tilt_axis_angle=s.tilt_axis_angle)
    elif fmt == "TIFF":
        meta = {
            "pixel_size": s.pixel_size,
            "tilt_axis_angle": s.tilt_axis_angle,
            "angles": [float(a) for a in s.angles],
        }
        write_tiff(p, s.images, meta)
    elif fmt == "HDF5":
        write_hdf5(
            p,
            {
                "images": s.images,
                "angles": s.angles,
                "pixel_size": s.pixel_size,
                "tilt_axis_angle": s.tilt_axis_angle,
                "shifts": s.shifts,
                "euler": s.euler,
                "defocus": s.defocus,
            },
        )
    else:
        write_npy(p, s.images)
        write_mdoc(
            p.with_name(p.name + ".mdoc"),
            s.angles,
            s.pixel_size,
            tilt_axis_angle=s.tilt_axis_angle,
            image_file=p.name,
        )
    if fmt != "HDF5":
        write_angles(p.with_suffix(".tlt"), s.angles)
    return p


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Summarise an image file without loading its data (for ``wedge info``).

    Returns
    -------
    dict
        ``path``, ``format``, ``shape``, ``dtype``, ``kind`` ("tilt series" when angles
        matching the number of images were found, else "volume or image stack"),
        ``pixel_size`` (Å) and ``pixel_size_source``, ``angles`` (degrees, ndarray or None),
        ``angles_source``, ``tilt_axis_angle`` (degrees), ``notes`` (list of str).
    """
    p = Path(path)
    content = load(p, header_only=True)
    info: dict[str, Any] = {
        "path": str(p),
        "format": content.format,
        "shape": content.shape,
        "dtype": str(content.dtype),
        "kind": "volume or image stack",
        "angles": None,
        "angles_source": None,
        "notes": list(content.notes),
    }
    if len(content.shape) != 3:
        info.update(pixel_size=content.stored_pixel or 1.0, pixel_size_source="")
        info["tilt_axis_angle"] = 0.0
        info["notes"].append(f"{len(content.shape)}D data: neither a tilt series nor a volume")
        return info
    res = _resolve(p, content, None, None, None)
    info.update(
        pixel_size=res.pixel_size,
        pixel_size_source=res.pixel_where,
        tilt_axis_angle=res.tilt_axis_angle,
    )
    if res.angles is not None and not res.problem:
        info.update(kind="tilt series", angles=res.angles, angles_source=res.angles_where)
    elif res.angles is not None:
        info["notes"].append(res.problem)
    return info
