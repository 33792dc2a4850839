"""Slab readers and writers for out-of-core reconstruction (:mod:`wedge.outofcore`).

A tilt series is read Y slab by Y slab without loading its images: MRC stacks are
memory-mapped, ``.npy`` files opened with ``mmap_mode="r"`` and OME-Zarr stores read
chunk-wise, and the pages of each slab are released after it is read
(``madvise(MADV_DONTNEED)``), so the process's resident set does not grow with the file.
The output volume is a sparse, preallocated float32 MRC written Y slab by Y slab with
positional writes (or an OME-Zarr store, :mod:`wedge.io.zarr`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["StackInfo", "open_stack", "open_volume"]


# ------------------------------------------------------------------------------ inputs
class _Source:
    """A tilt series readable Y slab by Y slab: ``read(y0, y1) -> (n, y1 - y0, X) float32``."""

    shape: tuple[int, int, int]

    def read(self, y0: int, y1: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _ArraySource(_Source):
    """Anything sliceable with a shape: NumPy arrays, ``np.memmap``, zarr arrays."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.shape = tuple(int(s) for s in array.shape)  # type: ignore[assignment]

    def read(self, y0: int, y1: int) -> np.ndarray:
        out = np.array(self.array[:, y0:y1, :], dtype=np.float32)  # a writable copy
        mm = getattr(self.array, "_mmap", None)  # np.memmap (np.load with mmap_mode)
        if isinstance(mm, mmap.mmap):
            _release(mm)
        return out


class _MrcSource(_Source):
    """A memory-mapped MRC stack; the pages of each slab are released after reading."""

    def __init__(self, path: Path) -> None:
        import mrcfile

        from .mrc import read_mrc

        content = read_mrc(path, header_only=True)  # validates, refuses truncated files
        with mrcfile.open(path, mode="r", header_only=True, permissive=True) as m:
            offset = 1024 + int(m.header.nsymbt)
        self.shape = tuple(int(s) for s in content.shape)  # type: ignore[assignment]
        self._file = open(path, "rb")  # noqa: SIM115  (closed by close())
        self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self._array: np.ndarray | None = np.ndarray(
            self.shape, dtype=content.dtype, buffer=self._mm, offset=offset
        )

    def read(self, y0: int, y1: int) -> np.ndarray:
        assert self._array is not None
        out = np.array(self._array[:, y0:y1, :], dtype=np.float32)
        _release(self._mm)
        return out

    def close(self) -> None:
        self._array = None
        with contextlib.suppress(BufferError, ValueError):
            self._mm.close()
        self._file.close()


def _accumulate(stats: np.ndarray, block: np.ndarray) -> None:
    from .zarr import _accumulate as acc

    acc(stats, block)


def _release(mm: mmap.mmap) -> None:
    """Drop the mapping's resident pages (the data stays in the page cache and the file)."""
    if hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mm.madvise(mmap.MADV_DONTNEED)


@dataclasses.dataclass
class StackInfo:
    """What :func:`open_stack` found: the slab reader and the acquisition facts."""

    source: _Source
    angles: np.ndarray
    pixel_size: float
    shifts: np.ndarray | None
    tilt_axis_angle: float
    euler: np.ndarray | None
    description: str


def open_stack(
    path: str | os.PathLike[str], angles: Any = None, pixel_size: float | None = None
) -> StackInfo:
    """Open a tilt series for slab reading without loading its images.

    MRC stacks are memory-mapped, ``.npy`` files opened with ``mmap_mode="r"`` and OME-Zarr
    stores read chunk-wise; angles, pixel size and tilt axis are found as
    :func:`wedge.io.read_tiltseries` finds them.
    """
    from .formats import load
    from .stacks import _check_dims, _resolve
    from .zarr import is_zarr_path, read_ome_zarr

    p = Path(path)
    if is_zarr_path(p):
        arr, voxel = read_ome_zarr(p)
        if angles is None:
            raise ValueError(
                f"an OME-Zarr stack ({p.name}) records no tilt angles; pass angles= (a .tlt "
                "file or an array in degrees)."
            )
        ang = _angles_argument(angles)
        if ang.size != arr.shape[0]:
            raise ValueError(
                f"{ang.size} tilt angles were given but {p.name} holds {arr.shape[0]} images."
            )
        _check_dims(p, tuple(arr.shape))
        px = float(pixel_size) if pixel_size is not None else voxel
        return StackInfo(_ArraySource(arr), ang, px, None, 0.0, None, f"OME-Zarr {p}")
    content = load(p, header_only=True)
    _check_dims(p, content.shape)
    res = _resolve(p, content, angles, pixel_size, None)
    if res.problem:
        raise ValueError(res.problem)
    if content.format == "MRC":
        source: _Source = _MrcSource(p)
    elif content.format == "NumPy":
        source = _ArraySource(np.load(p, mmap_mode="r", allow_pickle=False))
    else:
        raise ValueError(
            f"out-of-core reconstruction reads MRC, .npy or OME-Zarr stacks, not "
            f"{content.format} ({p.name}); convert it first (wedge preprocess -o stack.mrc)."
        )
    return StackInfo(
        source,
        np.asarray(res.angles, dtype=np.float64),
        float(res.pixel_size),
        content.shifts,
        float(res.tilt_axis_angle),
        content.euler,
        f"{p} ({content.format}, {content.dtype}); tilt angles from {res.angles_where}",
    )


def _angles_argument(angles: Any) -> np.ndarray:
    from .angles import read_angles

    if isinstance(angles, str | os.PathLike):
        return read_angles(angles)
    return np.asarray(angles, dtype=np.float64).reshape(-1)


# ------------------------------------------------------------------------------ outputs
class _MrcSink:
    """A preallocated (sparse) float32 MRC volume written Y slab by Y slab with pwrite.

    Positional writes of whole rows touch only the bytes of this slab, so ranks on
    different nodes writing disjoint Y ranges into one file on a shared file system never
    share a dirty page of a memory mapping.
    """

    def __init__(self, path: Path, shape: tuple[int, int, int], voxel_size: float, create: bool):
        import mrcfile

        self.path, self.shape = path, shape
        if create:
            with mrcfile.new_mmap(path, shape=shape, mrc_mode=2, overwrite=True) as m:
                m.set_volume()
                m.voxel_size = float(voxel_size)
        with mrcfile.open(path, mode="r", header_only=True) as m:
            self.offset = 1024 + int(m.header.nsymbt)
        self.fd = os.open(path, os.O_RDWR)
        self.stats = np.array([np.inf, -np.inf, 0.0, 0.0, 0.0])  # min, max, sum, sum², count

    def write(self, y0: int, block: np.ndarray) -> None:
        nz, ny, nx = self.shape
        block = np.ascontiguousarray(block, dtype=np.float32)
        for z in range(nz):
            pos = self.offset + 4 * (z * ny + y0) * nx
            os.pwrite(self.fd, memoryview(block[z]).cast("B"), pos)
        _accumulate(self.stats, block)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def finish(self, stats: np.ndarray) -> None:
        """Write the header statistics (min, max, mean, rms) in place and close the file.

        The fields are written at their offsets in the MRC2014 header (the file was made
        by this process's ``mrcfile``, so in native byte order)."""
        from mrcfile.dtypes import HEADER_DTYPE

        mn, mx, total, sq, count = (float(v) for v in stats)
        mean = total / max(count, 1.0)
        rms = math.sqrt(max(sq / max(count, 1.0) - mean * mean, 0.0))
        fields = HEADER_DTYPE.newbyteorder("=").fields
        for name, value in (("dmin", mn), ("dmax", mx), ("dmean", mean), ("rms", rms)):
            dtype, offset = fields[name][:2]
            os.pwrite(self.fd, np.asarray(value, dtype=dtype).tobytes(), offset)
        self.close()


@contextlib.contextmanager
def _mrc_temporary(path: Path, shape, voxel_size, atomic_output) -> Iterator[_MrcSink]:
    with atomic_output(path) as tmp:
        sink = _MrcSink(tmp, shape, voxel_size, create=True)
        try:
            yield sink
        finally:
            sink.close()


def open_volume(path: str | os.PathLike[str]) -> Any:
    """The volume at ``path`` opened lazily: a read-only ``np.memmap`` (MRC) or a
    ``zarr.Array`` (OME-Zarr level 0)."""
    from .zarr import is_zarr_path, read_ome_zarr

    if is_zarr_path(path):
        return read_ome_zarr(path)[0]
    import mrcfile

    with mrcfile.open(path, mode="r", header_only=True, permissive=True) as m:
        h = m.header
        shape = (int(h.nz), int(h.ny), int(h.nx))
        dtype = mrcfile.utils.data_dtype_from_header(h)
        offset = 1024 + int(h.nsymbt)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def _open_sink(path: Path, shape: tuple[int, int, int], zarr_out: bool) -> Any:
    """Another rank's handle on the temporary output rank 0 made."""
    if zarr_out:
        from .zarr import OmeZarrWriter

        return OmeZarrWriter.attach(path)
    return _MrcSink(path, shape, 1.0, create=False)
