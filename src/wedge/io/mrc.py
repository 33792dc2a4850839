"""MRC files (``.mrc .mrcs .st .ali .preali .rec``) through ``mrcfile``.

Reads strictly first (``permissive=False``); a file with a non-standard header (old FEI
and IMOD files lack the ``MAP`` id and machine stamp) is re-read permissively, and only
accepted when its data block is complete. Tilt angles and pixel size are taken from an
FEI extended header when present: the MRC2014 ``FEI1``/``FEI2`` types (``Alpha tilt`` in
degrees, ``Pixel size X`` in metres), or the older FEI layout (128-byte records of 32
float32: record[0] α tilt in degrees, record[11] pixel size in metres) that FEI software
wrote before 2014 (recognised by a label naming FEI).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import mrcfile
import numpy as np

from .atomic import atomic_output

__all__ = ["MRC_SUFFIXES", "MrcContent", "FeiInfo", "read_mrc", "write_mrc"]

MRC_SUFFIXES = (".mrc", ".mrcs", ".st", ".ali", ".preali", ".rec", ".map")
_AXIS_LABEL_RE = re.compile(r"tilt\s*axis\s*angle\s*=\s*([-+0-9.eE]+)", re.IGNORECASE)
_LEGACY_FEI_RECORD = 128  # bytes: 32 float32 per image
_M_TO_A = 1e10


def _f32_round(value: float) -> float:
    """A size read from a float32 header field, rounded to the 6 significant digits it holds."""
    return float(f"{value:.6g}")


@dataclasses.dataclass(frozen=True)
class FeiInfo:
    """Per-image metadata from an FEI extended header (angles degrees, pixel size Å)."""

    angles: np.ndarray
    pixel_size: float | None
    kind: str  # "FEI1", "FEI2" or "legacy FEI"


@dataclasses.dataclass(frozen=True)
class MrcContent:
    """An MRC file's data (as stored; None when only the header was read) and metadata.

    Attributes
    ----------
    data : ndarray or None
        The data block as ``mrcfile`` gives it: (nz, ny, nx) for 3D; mode 1 is signed int16.
    shape : tuple
        Data shape from the header.
    dtype : numpy.dtype
        On-disk data type.
    voxel_size : float
        ``cella.x / mx`` in Å (0 when unset).
    fei : FeiInfo or None
    tilt_axis_angle : float or None
        From a header label ``Tilt axis angle = a`` (SerialEM and wedge write one).
    permissive : bool
        Whether the header was non-standard and had to be read permissively.
    """

    data: np.ndarray | None
    shape: tuple[int, ...]
    dtype: np.dtype
    voxel_size: float
    fei: FeiInfo | None
    tilt_axis_angle: float | None
    permissive: bool


def _legacy_fei(mrc: mrcfile.mrcfile.MrcFile, nz: int) -> FeiInfo | None:
    labels = b" ".join(bytes(x) for x in np.atleast_1d(mrc.header.label)).lower()
    ext = mrc.extended_header
    if ext is None or b"fei" not in labels or ext.nbytes < nz * _LEGACY_FEI_RECORD:
        return None
    order = mrc.header.nx.dtype.str[0]
    order = "<" if order not in "<>" else order
    recs = np.frombuffer(ext.tobytes()[: nz * _LEGACY_FEI_RECORD], dtype=f"{order}f4")
    recs = recs.reshape(nz, _LEGACY_FEI_RECORD // 4).astype(np.float64)
    angles, pixel = recs[:, 0], recs[0, 11]
    px = _f32_round(float(pixel) * _M_TO_A) if 0 < pixel < 1e-5 else None
    if not np.all(np.isfinite(angles)) or np.any(np.abs(angles) > 180):
        return None
    if np.ptp(angles) == 0 and px is None:  # nothing in it looks like FEI metadata
        return None
    return FeiInfo(angles=angles, pixel_size=px, kind="legacy FEI")


def _fei(mrc: mrcfile.mrcfile.MrcFile, nz: int) -> FeiInfo | None:
    exttyp = bytes(mrc.header.exttyp)
    if exttyp in (b"FEI1", b"FEI2"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            table = mrc.indexed_extended_header
        if table is None or "Alpha tilt" not in table.dtype.names:
            return None
        angles = np.asarray(table["Alpha tilt"], dtype=np.float64)[:nz]
        pixel = float(table["Pixel size X"][0]) if "Pixel size X" in table.dtype.names else 0.0
        px = _f32_round(pixel * _M_TO_A) if 0 < pixel < 1e-5 else None
        return FeiInfo(angles=angles, pixel_size=px, kind=exttyp.decode())
    if int(mrc.header.nsymbt) > 0:
        return _legacy_fei(mrc, nz)
    return None


def _axis_from_labels(mrc: mrcfile.mrcfile.MrcFile) -> float | None:
    for label in mrc.get_labels():
        m = _AXIS_LABEL_RE.search(label)
        if m:
            try:
                return float(m.group(1).rstrip(".,"))
            except ValueError:
                continue
    return None


def _content(mrc: mrcfile.mrcfile.MrcFile, header_only: bool, permissive: bool) -> MrcContent:
    h = mrc.header
    shape = (int(h.nz), int(h.ny), int(h.nx))
    dtype = np.dtype(mrcfile.utils.data_dtype_from_header(h))
    data = None
    if not header_only:
        data = mrc.data
        shape = tuple(int(s) for s in data.shape)
    nz = shape[0] if len(shape) == 3 else 1
    return MrcContent(
        data=data,
        shape=shape,
        dtype=dtype,
        voxel_size=_f32_round(float(mrc.voxel_size.x)),
        fei=_fei(mrc, nz),
        tilt_axis_angle=_axis_from_labels(mrc),
        permissive=permissive,
    )


class _Truncated(Exception):
    pass


def _check_size(path: Path, nsymbt: int, content: MrcContent) -> None:
    """A header-only read cannot see a truncated data block: compare the file size."""
    expected = 1024 + nsymbt + int(np.prod(content.shape)) * content.dtype.itemsize
    actual = path.stat().st_size
    if actual < expected:
        raise _Truncated(
            f"{path} is truncated ({actual} bytes, the header promises {expected}); check "
            "that it was fully copied or written."
        )


def read_mrc(path: Path, *, header_only: bool = False) -> MrcContent:
    """Read an MRC file, strictly if possible, else permissively if its data is complete.

    Raises
    ------
    ValueError
        One sentence naming the file and the problem, when it is not a readable, complete
        MRC file.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    try:
        with mrcfile.open(path, mode="r", permissive=False, header_only=header_only) as mrc:
            content = _content(mrc, header_only, permissive=False)
            nsymbt = int(mrc.header.nsymbt)
        if header_only:
            _check_size(path, nsymbt, content)
        return content
    except _Truncated as err:
        raise ValueError(str(err)) from None
    except ValueError as strict_error:
        reason = str(strict_error).rstrip(".")
    problems: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with mrcfile.open(path, mode="r", permissive=True, header_only=header_only) as mrc:
                problems = [str(w.message).rstrip(".") for w in caught]
                ok = header_only or mrc.data is not None
                if ok and mrc.extended_header is not None:
                    content = _content(mrc, header_only, permissive=True)
                    if header_only:
                        _check_size(path, int(mrc.header.nsymbt), content)
                    return content
    except _Truncated as err:
        raise ValueError(str(err)) from None
    except (ValueError, OSError, MemoryError, TypeError) as err:
        problems.append(str(err).rstrip("."))
    fatal = [p for p in problems if "Map ID" not in p and "machine stamp" not in p.lower()]
    detail = fatal[0] if fatal else reason
    raise ValueError(
        f"{path} is not a complete, readable MRC file ({detail}); check that it was fully "
        "copied or written."
    )


def write_mrc(
    path: Path,
    data: np.ndarray,
    voxel_size: float,
    *,
    image_stack: bool,
    tilt_axis_angle: float | None = None,
) -> Path:
    """Write float32 ``data`` (Z, Y, X) as MRC2014 with ``voxel_size`` Å, atomically.

    ``image_stack`` sets space group 0 (a stack of 2D images, e.g. a tilt series);
    otherwise space group 1 (a volume). A ``tilt_axis_angle`` is recorded as a header
    label ``Tilt axis angle = a`` (as SerialEM writes it).
    """
    with atomic_output(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
            if image_stack:
                mrc.set_image_stack()
            else:
                mrc.set_volume()
            mrc.voxel_size = float(voxel_size)
            if tilt_axis_angle is not None:
                mrc.add_label(f"wedge: Tilt axis angle = {tilt_axis_angle:.4f}")
    return path
