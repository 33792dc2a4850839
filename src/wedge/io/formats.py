"""Low-level readers and writers by file suffix: MRC family, TIFF, HDF5 and NumPy ``.npy``.

Each reader returns a :class:`StackContent`: the array as stored (or only its shape and
dtype) plus whatever metadata the file itself holds. Deciding between those and side-car
files (``.tlt``, ``.mdoc``) is done by :mod:`wedge.io.stacks`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import tifffile

from .atomic import atomic_output
from .mrc import MRC_SUFFIXES, read_mrc

__all__ = [
    "StackContent",
    "TIFF_SUFFIXES",
    "HDF5_SUFFIXES",
    "NPY_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "file_format",
    "load",
    "write_tiff",
    "write_hdf5",
    "write_npy",
]

TIFF_SUFFIXES = (".tif", ".tiff")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
NPY_SUFFIXES = (".npy",)
SUPPORTED_SUFFIXES = MRC_SUFFIXES + TIFF_SUFFIXES + HDF5_SUFFIXES + NPY_SUFFIXES


@dataclasses.dataclass
class StackContent:
    """A file's array and the metadata stored inside it.

    Attributes
    ----------
    data : ndarray or None
        The array as stored (None when only the header was read).
    shape, dtype : the array's shape and on-disk dtype.
    format : str
        "MRC", "TIFF", "HDF5" or "NumPy".
    angles : ndarray or None, degrees
        Tilt angles stored in the file; ``angles_where`` says where.
    header_pixel : float or None, Å
        Pixel size from acquisition metadata (FEI extended header); ``header_pixel_where``.
    stored_pixel : float or None, Å
        Pixel size the file format records (MRC voxel size if not the 0/1 default, HDF5 or
        TIFF metadata); ``stored_pixel_where``.
    tilt_axis_angle : float or None, degrees
    shifts, euler, defocus : ndarray or None
    """

    data: np.ndarray | None
    shape: tuple[int, ...]
    dtype: np.dtype
    format: str
    angles: np.ndarray | None = None
    angles_where: str = ""
    header_pixel: float | None = None
    header_pixel_where: str = ""
    stored_pixel: float | None = None
    stored_pixel_where: str = ""
    tilt_axis_angle: float | None = None
    shifts: np.ndarray | None = None
    euler: np.ndarray | None = None
    defocus: np.ndarray | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


def file_format(path: Path) -> str:
    """The format family of ``path`` by suffix; ValueError for an unsupported one."""
    suffix = path.suffix.lower()
    if suffix in MRC_SUFFIXES:
        return "MRC"
    if suffix in TIFF_SUFFIXES:
        return "TIFF"
    if suffix in HDF5_SUFFIXES:
        return "HDF5"
    if suffix in NPY_SUFFIXES:
        return "NumPy"
    raise ValueError(
        f"{path.name}: unsupported file type {suffix!r}; use one of "
        f"{', '.join(SUPPORTED_SUFFIXES)}."
    )


# ----------------------------------------------------------------------------
# readers


def _load_mrc(path: Path, header_only: bool) -> StackContent:
    m = read_mrc(path, header_only=header_only)
    out = StackContent(data=m.data, shape=m.shape, dtype=m.dtype, format="MRC")
    out.tilt_axis_angle = m.tilt_axis_angle
    if m.permissive:
        out.notes.append("non-standard MRC header read permissively")
    if m.fei is not None:
        out.angles, out.angles_where = m.fei.angles, f"the {m.fei.kind} extended MRC header"
        if m.fei.pixel_size is not None:
            out.header_pixel = m.fei.pixel_size
            out.header_pixel_where = f"the {m.fei.kind} extended MRC header"
    if m.voxel_size > 0 and not np.isclose(m.voxel_size, 1.0):
        out.stored_pixel, out.stored_pixel_where = m.voxel_size, "the MRC header voxel size"
    return out


def _first_3d_dataset(f: h5py.File) -> str | None:
    found: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if not found and isinstance(obj, h5py.Dataset) and obj.ndim == 3:
            found.append(name)

    f.visititems(visit)
    return found[0] if found else None


def _h5_value(f: h5py.File, name: str) -> np.ndarray | None:
    obj = f.get(name)
    if isinstance(obj, h5py.Dataset) and np.issubdtype(obj.dtype, np.number):
        return np.asarray(obj[()], dtype=np.float64)
    return None


def _load_hdf5(path: Path, header_only: bool) -> StackContent:
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not a readable HDF5 file ({err}).") from None
    with f:
        name = None
        for cand in ("images", "exchange/data", "volume"):
            if isinstance(f.get(cand), h5py.Dataset):
                name = cand
                break
        if name is None:
            name = _first_3d_dataset(f)
        if name is None:
            raise ValueError(
                f"{path} holds no 3D dataset; store the stack as a dataset named 'images' "
                "(n_tilts, Y, X)."
            )
        ds = f[name]
        if not np.issubdtype(ds.dtype, np.number):
            raise ValueError(f"{path}: dataset '{name}' is not numeric (dtype {ds.dtype}).")
        try:
            data = None if header_only else ds[()]
        except OSError as err:
            raise ValueError(f"{path}: dataset '{name}' cannot be read ({err}).") from None
        out = StackContent(
            data=data,
            shape=tuple(int(s) for s in ds.shape),
            dtype=np.dtype(ds.dtype),
            format="HDF5",
        )
        out.notes.append(f"dataset '{name}'")
        for cand in ("angles", "exchange/theta"):
            value = _h5_value(f, cand)
            if value is not None:
                out.angles, out.angles_where = value.reshape(-1), f"HDF5 dataset '{cand}'"
                break
        for cand in ("pixel_size", "voxel_size"):
            value = _h5_value(f, cand)
            if value is None and cand in ds.attrs:
                value = np.asarray(ds.attrs[cand], dtype=np.float64)
            if value is not None and value.size == 1 and float(value) > 0:
                out.stored_pixel = float(value.reshape(()))
                out.stored_pixel_where = f"HDF5 '{cand}'"
                break
        axis = _h5_value(f, "tilt_axis_angle")
        out.tilt_axis_angle = None if axis is None else float(axis.reshape(()))
        out.shifts = _h5_value(f, "shifts")
        out.euler = _h5_value(f, "euler")
        out.defocus = _h5_value(f, "defocus")
    return out


def _load_tiff(path: Path, header_only: bool) -> StackContent:
    try:
        tif = tifffile.TiffFile(path)
    except (tifffile.TiffFileError, OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable TIFF file ({err}).") from None
    with tif:
        series = tif.series[0]
        if "S" in series.axes:
            raise ValueError(
                f"{path} holds colour (RGB) images (axes {series.axes}); tilt series and "
                "volumes must be single-channel grey-scale stacks."
            )
        try:
            data = None if header_only else series.asarray()
        except (tifffile.TiffFileError, ValueError, OSError, IndexError) as err:
            raise ValueError(
                f"{path} is not a complete, readable TIFF file ({err}); check that it was "
                "fully copied or written."
            ) from None
        out = StackContent(
            data=data,
            shape=tuple(int(s) for s in series.shape),
            dtype=np.dtype(series.dtype),
            format="TIFF",
        )
        meta = tif.shaped_metadata[0] if tif.shaped_metadata else {}
    if isinstance(meta, dict):
        if meta.get("angles") is not None:
            out.angles = np.asarray(meta["angles"], dtype=np.float64).reshape(-1)
            out.angles_where = "the TIFF metadata"
        for key in ("pixel_size", "voxel_size"):
            if isinstance(meta.get(key), int | float) and meta[key] > 0:
                out.stored_pixel, out.stored_pixel_where = float(meta[key]), "the TIFF metadata"
                break
        if isinstance(meta.get("tilt_axis_angle"), int | float):
            out.tilt_axis_angle = float(meta["tilt_axis_angle"])
    return out


def _load_npy(path: Path, header_only: bool) -> StackContent:
    try:
        arr = np.load(path, mmap_mode="r" if header_only else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(
            f"{path} is not a complete, readable .npy file ({err}); check that it was fully "
            "copied or written."
        ) from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{path} does not hold a single array.")
    shape, dtype = tuple(int(s) for s in arr.shape), arr.dtype
    data = None if header_only else arr
    del arr
    return StackContent(data=data, shape=shape, dtype=dtype, format="NumPy")


def load(path: Path, *, header_only: bool = False) -> StackContent:
    """Read ``path`` by suffix: the array (unless ``header_only``) and stored metadata."""
    fmt = file_format(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    reader = {"MRC": _load_mrc, "TIFF": _load_tiff, "HDF5": _load_hdf5, "NumPy": _load_npy}
    out = reader[fmt](path, header_only)
    if not np.issubdtype(out.dtype, np.number) or np.issubdtype(out.dtype, np.complexfloating):
        raise ValueError(f"{path} holds {out.dtype} data; wedge needs real numbers.")
    return out


# ----------------------------------------------------------------------------
# writers (atomic)


def write_tiff(path: Path, data: np.ndarray, metadata: dict[str, Any]) -> Path:
    """Write float32 (Z, Y, X) ``data`` as a multi-page TIFF with JSON ``metadata``."""
    json.dumps(metadata)  # fail early on anything not JSON-serialisable
    with atomic_output(path) as tmp:
        tifffile.imwrite(
            tmp,
            np.ascontiguousarray(data, dtype=np.float32),
            photometric="minisblack",
            metadata={"axes": "ZYX", **metadata},
        )
    return path


def write_hdf5(path: Path, datasets: dict[str, Any]) -> Path:
    """Write ``datasets`` (name -> array or scalar; None skipped) to a new HDF5 file."""
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["creator"] = "wedge"
            for name, value in datasets.items():
                if value is not None:
                    f.create_dataset(name, data=value)
    return path


def write_npy(path: Path, data: np.ndarray) -> Path:
    """Write ``data`` as float32 ``.npy``."""
    with atomic_output(path) as tmp:
        np.save(tmp, np.ascontiguousarray(data, dtype=np.float32), allow_pickle=False)
    return path
