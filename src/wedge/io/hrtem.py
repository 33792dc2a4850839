"""On-disk layout of an HRTEM tilt + focal series: writer and reader.

A series of ``n_tilts`` orientations with ``n_defocus`` images each lives in one directory
(described for people in docs/multislice.md, "On-disk layout of an HRTEM tilt + focal
series"):

* ``images.mrc``: float32 MRC image stack (n_tilts·n_defocus, Y, X), tilt-major: image
  ``k = i_tilt · n_defocus + i_defocus``; voxel size = pixel size.
* ``angles.tlt``: one tilt angle (degrees, about image Y) per tilt, IMOD's format.
* ``hrtem.json``: the sidecar (format ``wedge-hrtem-series``, version 2): file names, counts,
  image order, pixel size (Å), the full defocus table (n_tilts × n_defocus, Å, positive
  underfocus, measured from the exit surface of the volume box), Euler angles when the
  orientations are not pure tilts, tilt-axis angle, dose and the microscope parameters with
  their units in the key names.
* ``defocus.txt``: the same defocus table as text (one row per tilt), for people; the JSON
  is what the reader uses.
* ``truth_potential.mrc`` (simulations only): the specimen potential (Z, Y, X) in V.

Version 1 sidecars (written by earlier wedge versions: no ``format`` key, microscope keys
without units, the defocus list only in ``defocus.txt``) are still read.

Every file is written atomically (:func:`wedge.io.atomic.atomic_output`), the sidecar last,
so a reader never sees a sidecar without its images.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..optics import Microscope
from ..tiltseries import TiltSeries
from .angles import read_angles, write_angles
from .atomic import atomic_output
from .mrc import read_mrc, write_mrc

__all__ = ["SIDECAR", "FORMAT_ID", "write_hrtem", "find_hrtem_sidecar", "read_hrtem"]

SIDECAR = "hrtem.json"
FORMAT_ID = "wedge-hrtem-series"
VERSION = 2
_ORDER = "tilt-major"
_REFERENCE = "exit"

# Microscope field -> unit written into the JSON key ("cs" -> "cs_A")
_MIC_UNITS = {
    "energy": "eV",
    "cs": "A",
    "c5": "A",
    "astigmatism": "A",
    "astigmatism_angle": "deg",
    "aperture": "mrad",
    "cc": "A",
    "energy_spread": "eV",
    "focal_spread": "A",
    "illumination_semiangle": "mrad",
}


# ---------------------------------------------------------------------------- microscope
def _microscope_to_json(mic: Microscope) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(mic):
        if f.name not in _MIC_UNITS:  # a new Microscope field must get a unit here
            raise ValueError(f"no unit is defined for Microscope.{f.name}; add it to _MIC_UNITS.")
        value = getattr(mic, f.name)
        out[f"{f.name}_{_MIC_UNITS[f.name]}"] = None if value is None else float(value)
    return out


def _microscope_from_json(entry: Any, where: Path) -> Microscope:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: 'microscope' must be an object of parameters with units.")
    kwargs: dict[str, Any] = {}
    for key, value in entry.items():
        name = next((n for n, u in _MIC_UNITS.items() if key in (f"{n}_{u}", n)), None)
        if name is None:
            raise ValueError(
                f"{where}: unknown microscope parameter {key!r}; known are "
                f"{', '.join(f'{n}_{u}' for n, u in _MIC_UNITS.items())}."
            )
        kwargs[name] = value
    try:
        return Microscope(**kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: invalid microscope parameters ({err}).") from None


# ---------------------------------------------------------------------------- writing
def _write_text(path: Path, text: str) -> Path:
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_hrtem(
    out_dir: str | os.PathLike[str],
    images: Any,
    angles: Any,
    defocus: Any,
    *,
    pixel_size: float,
    microscope: Microscope,
    euler: Any = None,
    tilt_axis_angle: float = 0.0,
    dose: float | None = None,
    truth: Any = None,
) -> list[Path]:
    """Write an HRTEM tilt + focal series in wedge's on-disk layout (module docstring).

    Parameters
    ----------
    out_dir : directory, created if absent
    images : (n_tilts, n_defocus, Y, X) intensities (vacuum 1)
    angles : (n_tilts,) tilt angles in degrees
    defocus : (n_defocus,) or (n_tilts, n_defocus) Å, positive underfocus, from the exit
        surface of the volume box; a 1-D list is the same focal series at every tilt
    pixel_size : Å
    microscope : :class:`wedge.optics.Microscope`
    euler : (n_tilts, 3) (φ, θ, ψ) degrees, optional; stored only when it differs from pure
        tilts (0, θ, 0)
    tilt_axis_angle : degrees, counter-clockwise from image Y
    dose : e⁻/Å² per image, or None (noise-free)
    truth : (Z, Y, X) potential in V, optional (written as ``truth_potential.mrc``)

    Returns
    -------
    list of Path
        images.mrc, [truth_potential.mrc,] angles.tlt, defocus.txt, hrtem.json.
    """
    imgs = np.asarray(images, dtype=np.float32)
    if imgs.ndim != 4:
        raise ValueError(f"images must be (n_tilts, n_defocus, Y, X), got shape {imgs.shape}.")
    n_t, n_d, ny, nx = imgs.shape
    ang = np.asarray(angles, dtype=np.float64).reshape(-1)
    if ang.size != n_t:
        raise ValueError(f"{ang.size} angles were given for {n_t} tilts; give one per tilt.")
    df = np.asarray(defocus, dtype=np.float64)
    if df.ndim == 1 and df.size == n_d:
        df = np.broadcast_to(df, (n_t, n_d))
    if df.shape != (n_t, n_d) or not np.all(np.isfinite(df)):
        raise ValueError(
            f"defocus has shape {df.shape}; give ({n_d},) or ({n_t}, {n_d}) finite values in Å."
        )
    eul = None
    if euler is not None:
        eul = np.asarray(euler, dtype=np.float64)
        if eul.shape != (n_t, 3) or not np.allclose(eul[:, 1], ang):
            raise ValueError(
                f"euler must be ({n_t}, 3) (phi, theta, psi) degrees with theta = the angles."
            )
        if not np.any(eul[:, [0, 2]]):
            eul = None  # pure tilts: angles.tlt says it all
    if not (np.isfinite(pixel_size) and pixel_size > 0):
        raise ValueError(f"pixel_size must be a positive number of Å, got {pixel_size}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    px = float(pixel_size)
    files = [write_mrc(out / "images.mrc", imgs.reshape(n_t * n_d, ny, nx), px, image_stack=True)]
    if truth is not None:
        vol = np.asarray(truth, dtype=np.float32)
        files.append(write_mrc(out / "truth_potential.mrc", vol, px, image_stack=False))
    files.append(write_angles(out / "angles.tlt", ang))
    rows = "".join(" ".join(f"{v:.6f}" for v in row) + "\n" for row in df)
    header = "# defocus (Å, positive underfocus, from the exit surface): one row per tilt\n"
    files.append(_write_text(out / "defocus.txt", header + rows))
    meta = {
        "format": FORMAT_ID,
        "version": VERSION,
        "images": "images.mrc",
        "angles": "angles.tlt",
        "truth": "truth_potential.mrc" if truth is not None else None,
        "n_tilts": n_t,
        "n_defocus": n_d,
        "image_shape": [ny, nx],
        "image_order": _ORDER,
        "pixel_size_A": px,
        "tilt_axis_angle_deg": float(tilt_axis_angle),
        "defocus_A": df.tolist(),
        "defocus_convention": "positive underfocus",
        "defocus_reference": _REFERENCE,
        "euler_deg": None if eul is None else eul.tolist(),
        "dose_per_image_e_per_A2": None if dose is None else float(dose),
        "microscope": _microscope_to_json(microscope),
    }
    files.append(_write_text(out / SIDECAR, json.dumps(meta, indent=2) + "\n"))
    return files


# ---------------------------------------------------------------------------- reading
def find_hrtem_sidecar(path: str | os.PathLike[str]) -> Path | None:
    """The ``hrtem.json`` describing ``path``, or None.

    ``path`` may be the series directory, the sidecar itself, or the image stack with the
    sidecar beside it (the sidecar must name that stack).
    """
    p = Path(path)
    if p.is_dir():
        side = p / SIDECAR
        return side if side.is_file() else None
    if p.name == SIDECAR:
        return p
    side = p.parent / SIDECAR
    if not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return side  # the reader reports what is wrong with it
    named = meta.get("images", "images.mrc") if isinstance(meta, dict) else "images.mrc"
    return side if named == p.name else None


def _positive_int(meta: dict[str, Any], key: str, side: Path) -> int:
    v = meta.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{side}: {key!r} must be a positive whole number, got {v!r}.")
    return v


def _table(meta: dict[str, Any], key: str, shape: tuple[int, int], side: Path) -> np.ndarray:
    try:
        a = np.asarray(meta[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{side}: {key!r} must be a table of numbers.") from None
    if a.shape != shape or not np.all(np.isfinite(a)):
        raise ValueError(
            f"{side}: {key!r} has shape {a.shape} but n_tilts and n_defocus need a finite "
            f"{shape[0]} × {shape[1]} table; fix the table or the counts."
        )
    return a


def read_hrtem(
    path: str | os.PathLike[str],
    angles: Any = None,
    pixel_size: float | None = None,
    *,
    tilt_axis_angle: float | None = None,
) -> TiltSeries:
    """Read an HRTEM tilt + focal series written by :func:`write_hrtem`.

    Parameters
    ----------
    path : the series directory, its ``hrtem.json``, or its ``images.mrc``
    angles : (n_tilts,) degrees or an angle file, optional; replaces ``angles.tlt``
    pixel_size : Å, optional; replaces the sidecar's
    tilt_axis_angle : degrees, optional; replaces the sidecar's

    Returns
    -------
    TiltSeries
        images (n_tilts, n_defocus, Y, X) float32, angles (n_tilts,) degrees, defocus
        (n_tilts, n_defocus) Å (positive underfocus, from the exit surface of the volume box),
        ``microscope``, and ``euler`` when the sidecar holds one.

    Raises
    ------
    ValueError
        One sentence naming the file, the problem and the fix: unreadable sidecar, counts
        that do not match the stack, the angle file or the defocus table, unknown image
        order or defocus reference.
    """
    side = find_hrtem_sidecar(path)
    if side is None:
        raise ValueError(f"{path} is not an HRTEM series: no {SIDECAR} found for it.")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{side} is not readable JSON ({err}); rewrite the sidecar.") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{side} must hold a JSON object describing the series.")
    fmt, version = meta.get("format", FORMAT_ID), meta.get("version", 1)
    if fmt != FORMAT_ID or version not in (1, VERSION):
        raise ValueError(
            f"{side} describes format {fmt!r} version {version!r}; this wedge reads "
            f"{FORMAT_ID!r} versions 1 and {VERSION}."
        )
    n_t = _positive_int(meta, "n_tilts", side)
    n_d = _positive_int(meta, "n_defocus", side)
    if meta.get("image_order", _ORDER) != _ORDER:
        raise ValueError(
            f"{side}: image_order {meta.get('image_order')!r} is not supported; the stack must "
            f"be {_ORDER} (image i_tilt·n_defocus + i_defocus)."
        )
    if meta.get("defocus_reference", _REFERENCE) != _REFERENCE:
        raise ValueError(
            f"{side}: defocus_reference {meta.get('defocus_reference')!r} is not supported; "
            "store the defocus measured from the exit surface of the volume box ('exit')."
        )
    folder = side.parent
    stack = folder / str(meta.get("images", "images.mrc"))
    content = read_mrc(stack)
    n_img = content.shape[0] if len(content.shape) == 3 else 1
    if len(content.shape) != 3 or n_img != n_t * n_d:
        raise ValueError(
            f"{stack.name} holds {n_img} images of shape {content.shape[-2:]} but {side.name} "
            f"declares {n_t} tilts × {n_d} defocus values = {n_t * n_d}; correct n_tilts / "
            f"n_defocus in {side.name} or use the stack written with it."
        )
    ny, nx = content.shape[1:]
    shape = meta.get("image_shape")
    if shape is not None and list(shape) != [ny, nx]:
        raise ValueError(
            f"{side.name} declares images of {shape} pixels but {stack.name} holds "
            f"{[ny, nx]}; use the stack written with this sidecar."
        )
    if angles is None:
        ang_file = folder / str(meta.get("angles", "angles.tlt"))
        ang, ang_where = read_angles(ang_file), ang_file.name
    elif isinstance(angles, str | os.PathLike):
        ang, ang_where = read_angles(angles), str(angles)
    else:
        ang, ang_where = np.asarray(angles, dtype=np.float64).reshape(-1), "the angles argument"
    if ang.size != n_t:
        raise ValueError(
            f"{ang_where} gives {ang.size} tilt angles but {side.name} declares {n_t} tilts; "
            "give one angle (degrees) per tilt."
        )
    if "defocus_A" in meta:
        df = _table(meta, "defocus_A", (n_t, n_d), side)
    else:  # version 1: the focal series in defocus.txt, the same at every tilt
        listed = np.loadtxt(folder / "defocus.txt", dtype=np.float64, ndmin=1)
        if listed.ndim == 1 and listed.size == n_d:
            listed = np.broadcast_to(listed, (n_t, n_d))
        df = _table({"defocus.txt": listed}, "defocus.txt", (n_t, n_d), side)
    euler = None
    if meta.get("euler_deg") is not None:
        euler = _table(meta, "euler_deg", (n_t, 3), side)
        if not np.allclose(euler[:, 1], ang):
            raise ValueError(
                f"{side.name}: the theta column of euler_deg differs from the tilt angles in "
                f"{ang_where}; the two must agree."
            )
    mic = _microscope_from_json(meta.get("microscope", {}), side)
    px = meta.get("pixel_size_A") if pixel_size is None else pixel_size
    if (
        isinstance(px, bool)
        or not isinstance(px, int | float)
        or not (math.isfinite(px) and px > 0)
    ):
        raise ValueError(f"{side}: pixel_size_A must be a positive number of Å, got {px!r}.")
    axis = meta.get("tilt_axis_angle_deg", 0.0) if tilt_axis_angle is None else tilt_axis_angle
    data = np.asarray(content.data, dtype=np.float32).reshape(n_t, n_d, ny, nx)
    dose = meta.get("dose_per_image_e_per_A2")
    source = (
        f"HRTEM tilt + focal series: {n_t} tilts × {n_d} defocus values from {stack} "
        f"({_ORDER}); tilt angles from {ang_where}; defocus table, microscope and pixel size "
        f"{float(px):g} Å from {side.name}; dose "
        f"{'none (noise-free)' if dose is None else f'{dose:g} e-/Å² per image'}."
    )
    return TiltSeries(
        data,
        ang,
        pixel_size=float(px),
        euler=euler,
        tilt_axis_angle=float(axis),
        defocus=df,
        microscope=mic,
        source=source,
    )
