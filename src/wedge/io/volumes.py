"""Reading and writing volumes (Z, Y, X) with their voxel size (Å)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .formats import file_format, load, write_hdf5, write_npy, write_tiff
from .mrc import write_mrc

__all__ = ["read_volume", "read_volume_with_voxel", "write_volume"]


def read_volume_with_voxel(path: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
    """Read a 3D volume as float32 (Z, Y, X) and its voxel size in Å.

    Formats by suffix as :func:`wedge.io.read_tiltseries` (HDF5: dataset ``volume``, else
    the first 3D dataset). The voxel size comes from an FEI extended header, else the size
    the format records (MRC ``cella/mx``, HDF5 ``voxel_size``, TIFF metadata), else 1.0.
    MRC sections are Z, rows Y, columns X.
    """
    p = Path(path)
    content = load(p)
    if len(content.shape) != 3:
        raise ValueError(
            f"{p.name} holds {len(content.shape)}D data of shape {content.shape}; a volume "
            "must be 3D (Z, Y, X)."
        )
    voxel = content.header_pixel or content.stored_pixel or 1.0
    return np.ascontiguousarray(content.data, dtype=np.float32), float(voxel)


def read_volume(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a 3D volume as a float32 (Z, Y, X) array; see :func:`read_volume_with_voxel`."""
    return read_volume_with_voxel(path)[0]


def _as_numpy(volume: Any) -> np.ndarray:
    if hasattr(volume, "detach") and hasattr(volume, "cpu"):  # torch tensor
        volume = volume.detach().cpu().numpy()
    return np.asarray(volume)


def write_volume(path: str | os.PathLike[str], volume: Any, voxel_size: float = 1.0) -> Path:
    """Write a 3D (Z, Y, X) volume as float32, atomically; returns ``path``.

    MRC (space group 1, voxel size in the header), ``.npy`` (voxel size not stored),
    TIFF (voxel size in the JSON metadata) or HDF5 (datasets ``volume`` and ``voxel_size``).

    Parameters
    ----------
    path : str or path-like
    volume : array or torch tensor (Z, Y, X), real and finite
    voxel_size : float, Å
    """
    p = Path(path)
    fmt = file_format(p)
    vol = _as_numpy(volume)
    if vol.ndim != 3:
        raise ValueError(
            f"a volume must be a 3D (Z, Y, X) array; got {vol.ndim} dimensions with shape "
            f"{vol.shape}."
        )
    if not np.issubdtype(vol.dtype, np.number) or np.iscomplexobj(vol):
        raise ValueError(f"a volume must hold real numbers, got dtype {vol.dtype}.")
    if not np.all(np.isfinite(vol)):
        raise ValueError(
            f"the volume contains {int(np.count_nonzero(~np.isfinite(vol)))} NaN or Inf "
            "values; replace them before writing."
        )
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise ValueError(f"voxel_size must be a positive number of Å, got {voxel_size}.")
    vol = np.ascontiguousarray(vol, dtype=np.float32)
    if fmt == "MRC":
        write_mrc(p, vol, voxel_size, image_stack=False)
    elif fmt == "TIFF":
        write_tiff(p, vol, {"voxel_size": float(voxel_size)})
    elif fmt == "HDF5":
        write_hdf5(p, {"volume": vol, "voxel_size": float(voxel_size)})
    else:
        write_npy(p, vol)
    return p
