"""OME-Zarr volumes (OME-NGFF 0.4 multiscales) through the ``zarr`` package.

A volume (Z, Y, X) is written as an OME-Zarr group in Zarr format 2 with NGFF 0.4
metadata, the layout the CryoET Data Portal publishes and napari's OME-Zarr reader opens
chunk by chunk:

* array ``0`` is the full-resolution float32 volume in chunks of up to 64³ voxels;
  arrays ``1``, ``2``, … (when the volume is large enough) are 2× mean-downsampled levels;
* the group attribute ``multiscales`` lists them with axes ``z, y, x`` (type ``space``,
  unit ``angstrom``) and per-level ``scale`` transforms: the voxel size in Å times 2^level.

Reading accepts NGFF 0.4 (``multiscales`` at the top of the attributes) and 0.5 (under
``ome``), and returns the array lazily (``zarr.Array``: slicing reads only the chunks it
needs).

A store is a directory. It is built in a temporary directory beside the target
(``.<name>.wedge-tmp-<pid>-…``) and renamed onto the target only when complete; an
existing store is refused unless ``overwrite=True`` (then the old one is replaced after the
new one is complete).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ZARR_CHUNK",
    "is_zarr_path",
    "check_zarr_target",
    "OmeZarrWriter",
    "create_ome_zarr",
    "write_ome_zarr",
    "read_ome_zarr",
    "read_ome_zarr_volume",
]

#: chunk edge of the full-resolution array (voxels)
ZARR_CHUNK = 64
_MIN_LEVEL_SIZE = 32  # no pyramid level smaller than this along any axis
_MAX_LEVELS = 5


def is_zarr_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a Zarr store (``.zarr`` or ``.ome.zarr``)."""
    return str(path).rstrip("/\\").lower().endswith(".zarr")


def check_zarr_target(path: str | os.PathLike[str], overwrite: bool) -> None:
    """Refuse an existing store (or file) at ``path`` unless ``overwrite``; check the parent."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(
            f"{p} already exists; pass overwrite=True (--overwrite on the command line) to "
            "replace it, or choose another name."
        )
    if p.exists() and not p.is_dir():
        raise ValueError(f"{p} exists and is not a Zarr store (a directory); remove it first.")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"cannot write {p}: the directory {p.parent} does not exist.")


def _n_levels(shape: tuple[int, int, int]) -> int:
    levels = 1
    while levels < _MAX_LEVELS and min(shape) // 2**levels >= _MIN_LEVEL_SIZE:
        levels += 1
    return levels


def _multiscales(voxel_size: float, levels: int, name: str) -> list[dict[str, Any]]:
    axes = [{"name": a, "type": "space", "unit": "angstrom"} for a in "zyx"]
    datasets = [
        {
            "path": str(k),
            "coordinateTransformations": [{"type": "scale", "scale": [voxel_size * 2**k] * 3}],
        }
        for k in range(levels)
    ]
    return [
        {
            "version": "0.4",
            "name": name,
            "axes": axes,
            "datasets": datasets,
            "type": "mean",
            "metadata": {"description": "2x2x2 mean downsampling", "writer": "wedge"},
        }
    ]


class OmeZarrWriter:
    """Level 0 of an OME-Zarr volume being written Y slab by Y slab.

    ``write(y0, block)`` stores rows ``[y0, y0 + w)`` of a (Z, w, X) block; ``finish()``
    computes the pyramid and the metadata. ``stats`` accumulates (min, max, sum, sum²,
    count) of what was written.
    """

    def __init__(self, path: Path, array: Any, voxel_size: float) -> None:
        self.path = path
        self.array = array
        self.voxel_size = float(voxel_size)
        self.stats = np.array([np.inf, -np.inf, 0.0, 0.0, 0.0])

    @classmethod
    def attach(cls, path: Path) -> OmeZarrWriter:
        """Open level 0 of a store another process created (for distributed writes)."""
        import zarr

        return cls(Path(path), zarr.open_array(str(Path(path) / "0"), mode="r+"), 1.0)

    def write(self, y0: int, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32)
        self.array[:, y0 : y0 + block.shape[1], :] = block
        _accumulate(self.stats, block)

    def close(self) -> None:
        pass

    def finish(self, stats: np.ndarray | None = None) -> None:
        """Write the 2× pyramid levels (streamed along Y) and the NGFF metadata."""
        import zarr

        group = zarr.open_group(str(self.path), mode="r+")
        shape = tuple(int(s) for s in self.array.shape)
        levels = _n_levels(shape)
        src = self.array
        for k in range(1, levels):
            dst_shape = tuple(s // 2 for s in src.shape)
            dst = group.create_array(
                str(k),
                shape=dst_shape,
                chunks=tuple(min(ZARR_CHUNK, s) for s in dst_shape),
                dtype="float32",
                fill_value=0.0,
            )
            step = 2 * ZARR_CHUNK
            for y0 in range(0, 2 * dst_shape[1], step):
                y1 = min(2 * dst_shape[1], y0 + step)
                blk = np.asarray(src[: 2 * dst_shape[0], y0:y1, : 2 * dst_shape[2]])
                nz, ny, nx = blk.shape
                small = blk.reshape(nz // 2, 2, ny // 2, 2, nx // 2, 2).mean(axis=(1, 3, 5))
                dst[:, y0 // 2 : y1 // 2, :] = small.astype(np.float32)
            src = dst
        group.attrs["multiscales"] = _multiscales(self.voxel_size, levels, self.path.stem)
        if stats is not None and stats[4] > 0:
            mean = float(stats[2] / stats[4])
            group.attrs["wedge"] = {
                "min": float(stats[0]),
                "max": float(stats[1]),
                "mean": mean,
                "voxel_size_angstrom": self.voxel_size,
            }


def _accumulate(stats: np.ndarray, block: np.ndarray) -> None:
    """Add a (Z, w, X) block to running (min, max, sum, sum², count), one Z plane at a
    time in float64 (no float64 copy of the whole block)."""
    if block.size == 0:
        return
    stats[0] = min(stats[0], float(block.min()))
    stats[1] = max(stats[1], float(block.max()))
    for plane in block:
        p64 = plane.astype(np.float64)
        stats[2] += float(p64.sum())
        stats[3] += float(np.dot(p64.ravel(), p64.ravel()))
    stats[4] += block.size


def _temporary_dir(final: Path) -> Path:
    prefix = f".{final.name}.wedge-tmp-{os.getpid()}-"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))


def _move_into_place(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` onto ``final``; an existing ``final`` is moved aside and deleted only
    after the rename (the target never disappears without a replacement)."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.wedge-old-", dir=final.parent))
        os.replace(final, old / "store")
    try:
        os.replace(tmp, final)
    except BaseException:
        if old is not None:
            os.replace(old / "store", final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def create_ome_zarr(
    path: str | os.PathLike[str],
    shape: tuple[int, int, int],
    voxel_size: float = 1.0,
    *,
    chunk_y: int | None = None,
    overwrite: bool = False,
) -> Iterator[OmeZarrWriter]:
    """Yield a writer of a new OME-Zarr volume; the store appears at ``path`` only when the
    body completes (and the pyramid and metadata are written by ``finish``, which the body
    may call itself with statistics, else it is called here).

    Parameters
    ----------
    path : path ending in ``.zarr``
    shape : (Z, Y, X)
    voxel_size : float, Å
    chunk_y : int, optional
        Chunk height along Y (default 64): slab writers align their slabs to it.
    overwrite : bool
        Replace an existing store; otherwise an existing one is refused.
    """
    import zarr

    final = Path(path)
    check_zarr_target(final, overwrite)
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise ValueError(f"voxel_size must be a positive number of Å, got {voxel_size}.")
    shape = tuple(int(s) for s in shape)  # type: ignore[assignment]
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"an OME-Zarr volume must be 3D (Z, Y, X), got shape {shape}.")
    tmp = _temporary_dir(final)
    try:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        cy = min(chunk_y or ZARR_CHUNK, shape[1])
        chunks = (min(ZARR_CHUNK, shape[0]), cy, min(ZARR_CHUNK, shape[2]))
        arr = group.create_array("0", shape=shape, chunks=chunks, dtype="float32", fill_value=0)
        writer = OmeZarrWriter(tmp, arr, voxel_size)
        finished = []
        original = writer.finish

        def finish(stats: np.ndarray | None = None) -> None:
            original(stats)
            finished.append(True)

        writer.finish = finish  # type: ignore[method-assign]
        yield writer
        if not finished:
            original(writer.stats)
        _move_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_ome_zarr(
    path: str | os.PathLike[str],
    volume: Any,
    voxel_size: float = 1.0,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a (Z, Y, X) volume (array or tensor) as an OME-Zarr store; returns ``path``."""
    if hasattr(volume, "detach"):
        volume = volume.detach().cpu().numpy()
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"a volume must be 3D (Z, Y, X), got shape {vol.shape}.")
    if not np.issubdtype(vol.dtype, np.number) or np.iscomplexobj(vol):
        raise ValueError(f"a volume must hold real numbers, got dtype {vol.dtype}.")
    with create_ome_zarr(path, vol.shape, voxel_size, overwrite=overwrite) as w:
        step = ZARR_CHUNK
        for y0 in range(0, vol.shape[1], step):
            w.write(y0, vol[:, y0 : y0 + step, :])
    return Path(path)


def _multiscales_of(attrs: dict[str, Any]) -> list[dict[str, Any]] | None:
    if "multiscales" in attrs:
        return attrs["multiscales"]
    ome = attrs.get("ome")
    if isinstance(ome, dict) and "multiscales" in ome:
        return ome["multiscales"]
    return None


def read_ome_zarr(path: str | os.PathLike[str], level: int = 0) -> tuple[Any, float]:
    """Open one level of an OME-Zarr volume lazily: ``(zarr.Array, voxel size in Å)``.

    The voxel size is the level's ``scale`` along X (1.0 when none is recorded; a unit
    other than Å is converted from nm or µm).
    """
    import zarr

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist.")
    try:
        group = zarr.open_group(str(p), mode="r")
    except Exception as exc:  # noqa: BLE001  (zarr raises several kinds)
        raise ValueError(f"{p} is not a readable Zarr group ({type(exc).__name__}).") from None
    ms = _multiscales_of(group.attrs.asdict())
    if not ms:
        raise ValueError(f"{p} has no OME-NGFF 'multiscales' metadata; it is not an OME-Zarr.")
    datasets = ms[0].get("datasets", [])
    if not 0 <= level < len(datasets):
        raise ValueError(f"{p} has {len(datasets)} levels; level {level} does not exist.")
    ds = datasets[level]
    arr = group[ds["path"]]
    voxel = 1.0
    for t in ds.get("coordinateTransformations", []):
        if t.get("type") == "scale":
            voxel = float(t["scale"][-1])
    unit = next((a.get("unit") for a in ms[0].get("axes", []) if a.get("name") == "x"), None)
    voxel *= {"nanometer": 10.0, "micrometer": 1e4}.get(unit or "angstrom", 1.0)
    if len(arr.shape) != 3:
        raise ValueError(f"{p} level {level} is {len(arr.shape)}D; wedge reads 3D (Z, Y, X).")
    if not math.isfinite(voxel) or voxel <= 0:
        voxel = 1.0
    return arr, voxel


def read_ome_zarr_volume(path: str | os.PathLike[str], level: int = 0) -> tuple[np.ndarray, float]:
    """Read one level of an OME-Zarr volume into memory: ``(float32 array, voxel size Å)``."""
    arr, voxel = read_ome_zarr(path, level)
    return np.asarray(arr[...], dtype=np.float32), voxel
