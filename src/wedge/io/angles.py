"""Tilt-angle files: IMOD ``.tlt``/``.rawtlt``, plain text, CSV and SerialEM ``.mdoc``.

All angles are degrees. A ``.tlt`` holds one angle per line (IMOD's format); an ``.mdoc``
(SerialEM autodoc) holds ``key = value`` lines, with one ``[ZValue = k]`` section per image
carrying ``TiltAngle`` and usually ``PixelSpacing`` (Å).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from pathlib import Path

import numpy as np

from .atomic import atomic_output

__all__ = [
    "read_angles",
    "write_angles",
    "Mdoc",
    "read_mdoc",
    "write_mdoc",
    "SidecarAngles",
    "find_sidecar_angles",
    "find_mdoc",
    "sidecar_candidates",
]

_CSV_NAMES = ("tilt_angle", "tiltangle", "tilt angle", "tilt", "angle", "angles", "theta")
_TILT_AXIS_RE = re.compile(r"tilt\s*axis\s*angle\s*=\s*([-+0-9.eE]+)", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Mdoc:
    """What wedge uses from a SerialEM ``.mdoc`` file.

    Attributes
    ----------
    angles : ndarray (n,), degrees
        ``TiltAngle`` of each ``[ZValue = k]`` section, ordered by k.
    pixel_size : float or None, Å
        ``PixelSpacing`` (first section, else the global value).
    tilt_axis_angle : float or None, degrees
        "Tilt axis angle" from a ``[T = ...]`` title line (counter-clockwise from image Y,
        as IMOD's rotation angle), when present.
    """

    angles: np.ndarray
    pixel_size: float | None
    tilt_axis_angle: float | None


def _parse_float(text: str, path: Path, what: str) -> float:
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        raise ValueError(f"{path}: {what} value {text!r} is not a number.") from None


def read_mdoc(path: str | os.PathLike[str]) -> Mdoc:
    """Parse a SerialEM ``.mdoc``: tilt angles per ``[ZValue]`` section, pixel spacing, axis.

    Parameters
    ----------
    path : str or path-like
        The ``.mdoc`` file.

    Returns
    -------
    Mdoc
    """
    p = Path(path)
    text = p.read_text(encoding="utf-8", errors="replace")
    global_pixel: float | None = None
    axis: float | None = None
    sections: dict[int, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            inner = line[1:-1]
            key, _, value = inner.partition("=")
            key = key.strip()
            if key == "ZValue":
                k = int(_parse_float(value, p, "ZValue"))
                current = sections.setdefault(k, {})
            else:
                current = None
                if key == "T":
                    m = _TILT_AXIS_RE.search(value)
                    if m and axis is None:
                        axis = float(m.group(1))
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if current is not None:
            current[key] = value
        elif key == "PixelSpacing":
            global_pixel = _parse_float(value, p, "PixelSpacing")
    if not sections:
        raise ValueError(f"{p} has no [ZValue = k] sections, so it lists no tilt angles.")
    order = sorted(sections)
    missing = [k for k in order if "TiltAngle" not in sections[k]]
    if missing:
        raise ValueError(f"{p}: section [ZValue = {missing[0]}] has no TiltAngle line.")
    angles = np.array([_parse_float(sections[k]["TiltAngle"], p, "TiltAngle") for k in order])
    pixel = global_pixel
    first = sections[order[0]]
    if "PixelSpacing" in first:
        pixel = _parse_float(first["PixelSpacing"], p, "PixelSpacing")
    if pixel is not None and not pixel > 0:
        pixel = None
    return Mdoc(angles=angles, pixel_size=pixel, tilt_axis_angle=axis)


def write_mdoc(
    path: str | os.PathLike[str],
    angles: np.ndarray,
    pixel_size: float,
    *,
    tilt_axis_angle: float = 0.0,
    image_file: str = "",
) -> Path:
    """Write a minimal SerialEM-style ``.mdoc`` (atomically) that :func:`read_mdoc` reads back.

    Parameters
    ----------
    path : str or path-like
    angles : array (n,), degrees
    pixel_size : float, Å
    tilt_axis_angle : float, degrees (IMOD rotation angle, CCW from image Y)
    image_file : str
        Name of the image stack the file describes.
    """
    ang = np.asarray(angles, dtype=np.float64).reshape(-1)
    out = io.StringIO()
    out.write(f"PixelSpacing = {pixel_size:.6g}\n")
    if image_file:
        out.write(f"ImageFile = {image_file}\n")
    out.write(f"\n[T = wedge   Tilt axis angle = {tilt_axis_angle:.6g}, binning = 1]\n")
    for k, a in enumerate(ang):
        out.write(f"\n[ZValue = {k}]\nTiltAngle = {a:.6f}\nPixelSpacing = {pixel_size:.6g}\n")
    final = Path(path)
    with atomic_output(final) as tmp:
        tmp.write_text(out.getvalue(), encoding="utf-8")
    return final


def _read_csv(p: Path) -> np.ndarray:
    rows = [r for r in csv.reader(p.read_text(encoding="utf-8").splitlines()) if any(r)]
    if not rows:
        raise ValueError(f"{p} is empty; it should hold one tilt angle (degrees) per row.")
    try:
        [float(c) for c in rows[0] if c.strip()]
        header = None
    except ValueError:
        header = [c.strip().lower() for c in rows[0]]
        rows = rows[1:]
    if header is not None:
        col = next((header.index(n) for n in _CSV_NAMES if n in header), None)
        if col is None:
            raise ValueError(
                f"{p}: none of the columns {header} is named like a tilt angle "
                f"({', '.join(_CSV_NAMES)}); rename the angle column."
            )
    elif len(rows[0]) == 1:
        col = 0
    else:
        raise ValueError(
            f"{p} has {len(rows[0])} columns and no header; add a header naming the tilt-angle "
            "column (e.g. 'angle') or keep one angle per row."
        )
    try:
        return np.array([float(r[col]) for r in rows])
    except (ValueError, IndexError):
        raise ValueError(f"{p}: a row has no numeric value in the tilt-angle column.") from None


def _read_lines(p: Path) -> np.ndarray:
    values = []
    for i, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 1:
            raise ValueError(
                f"{p}, line {i}: expected one tilt angle per line, found {len(parts)} values."
            )
        try:
            values.append(float(parts[0]))
        except ValueError:
            raise ValueError(f"{p}, line {i}: {parts[0]!r} is not a number.") from None
    return np.array(values, dtype=np.float64)


def read_angles(path: str | os.PathLike[str]) -> np.ndarray:
    """Read tilt angles (degrees) from a ``.tlt``, ``.rawtlt``, ``.txt``, ``.csv`` or ``.mdoc``.

    Text files hold one angle per line (blank lines and ``#`` comments ignored). A CSV
    holds one column, or has a header naming the angle column (``angle``, ``tilt``,
    ``theta``, ...). An ``.mdoc`` gives the ``TiltAngle`` of each ``[ZValue]`` section.

    Returns
    -------
    ndarray (n,), float64, degrees
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"angle file {p} does not exist.")
    suffix = p.suffix.lower()
    if suffix == ".mdoc":
        angles = read_mdoc(p).angles
    elif suffix == ".csv":
        angles = _read_csv(p)
    else:
        angles = _read_lines(p)
    if angles.size == 0:
        raise ValueError(f"{p} holds no tilt angles; it should list one angle (degrees) per line.")
    if not np.all(np.isfinite(angles)):
        raise ValueError(f"{p} contains NaN or Inf tilt angles.")
    return angles


def write_angles(path: str | os.PathLike[str], angles: np.ndarray) -> Path:
    """Write tilt angles (degrees), one per line as IMOD's ``.tlt``, atomically.

    Values are written with 6 decimals (1e-6° round-trip precision).
    """
    ang = np.asarray(angles, dtype=np.float64)
    if ang.ndim != 1 or ang.size == 0:
        raise ValueError(f"angles must be a non-empty 1D array of degrees, got shape {ang.shape}.")
    if not np.all(np.isfinite(ang)):
        raise ValueError("angles contain NaN or Inf; write finite tilt angles (degrees).")
    final = Path(path)
    with atomic_output(final) as tmp:
        tmp.write_text("".join(f"{a:10.6f}\n" for a in ang), encoding="utf-8")
    return final


# ----------------------------------------------------------------------------
# discovery beside a stack


@dataclasses.dataclass(frozen=True)
class SidecarAngles:
    """Tilt angles (degrees) found in a file beside a stack."""

    angles: np.ndarray
    path: Path
    kind: str  # "tlt", "rawtlt" or "mdoc"


def sidecar_candidates(stack: Path) -> list[tuple[str, Path]]:
    """Side-car files looked for, in order: ``<stem>.tlt``, ``<stem>.rawtlt``, ``<name>.mdoc``,
    ``<stem>.mdoc``."""
    return [
        ("tlt", stack.with_suffix(".tlt")),
        ("rawtlt", stack.with_suffix(".rawtlt")),
        ("mdoc", stack.with_name(stack.name + ".mdoc")),
        ("mdoc", stack.with_suffix(".mdoc")),
    ]


def find_mdoc(stack: Path) -> Path | None:
    """The SerialEM ``.mdoc`` beside ``stack`` (``<name>.mdoc``, else ``<stem>.mdoc``), if any."""
    for kind, cand in sidecar_candidates(stack):
        if kind == "mdoc" and cand.is_file():
            return cand
    return None


def find_sidecar_angles(stack: Path) -> SidecarAngles | None:
    """The first angle file found beside ``stack`` (see :func:`sidecar_candidates`), or None."""
    for kind, cand in sidecar_candidates(stack):
        if cand.is_file():
            return SidecarAngles(angles=read_angles(cand), path=cand, kind=kind)
    return None
