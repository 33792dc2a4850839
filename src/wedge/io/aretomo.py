"""AreTomo alignment files (``.aln``): the global alignment, in wedge's conventions.

AreTomo publishes no specification of ``.aln``; the layout below is the one its writers
produce (``CSaveAlignFile::mSaveHeader/mSaveGlobal`` in AreTomo2 and AreTomo3,
github.com/czimaginginstitute): ``#`` header lines (``RawSize = nx ny nz``,
``NumPatches``, ``DarkFrame = frame section tilt`` per removed image, in AreTomo3 also
``AlphaOffset``, ``BetaOffset``, ``Thickness``), the column header
``# SEC ROT GMAG TX TY SMEAN SFIT SCALE BASE TILT``, one row of ten numbers per kept image,
then optionally ``# Local Alignment`` and patch rows (not read here).

Meaning of the columns, and how sure this module is:

* ``ROT`` (degrees): the tilt-axis angle; ``TX, TY`` (pixels): the image's shift;
  ``TILT`` (degrees): the tilt angle. Certain (the writer prints ``GetTiltAxis``,
  ``GetShift`` and ``GetTilt``).
* Signs: AreTomo's own IMOD export (``CSaveXF`` in AreTomo2) turns a row into the ``.xf``
  line ``A = R(−ROT)``, ``D = R(−ROT)·(−TX, −TY)`` (``R`` counter-clockwise). With
  :func:`wedge.io.imod.alignment_from_xf` that is exactly wedge's ``tilt_axis_angle = ROT``
  and ``shifts = (TX, TY)``. This rests on AreTomo's exporter being right about its own
  numbers and on IMOD's centre (pixel index (N − 1)/2); it was not checked against images
  aligned by AreTomo.
* ``SEC``: which image of the raw stack a row describes. AreTomo2's examples count from 0,
  a published AreTomo3 file counts from 1; undocumented, so this module reports it as
  written and does not index a stack with it.
* Units of ``TX, TY``: pixels of the stack AreTomo aligned (``RawSize``); whether a binned
  run (``-AtBin``) rescales them is not documented.
* ``GMAG, SMEAN, SFIT, SCALE, BASE`` are written as constants (1, 1, 1, 1, 0) by both
  writers; ``GMAG`` other than 1 (a magnification) is refused.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

__all__ = ["AlnAlignment", "read_aln"]

_RAW_SIZE_RE = re.compile(r"^#\s*RawSize\s*=\s*(\d+)\s+(\d+)\s+(\d+)")
_DARK_RE = re.compile(r"^#\s*DarkFrame\s*=\s*(-?\d+)\s+(-?\d+)\s+(\S+)")
#: GMAG is written as 1.00000 (5 decimals); anything further from 1 is a real magnification.
_GMAG_TOL = 1e-5


@dataclasses.dataclass(frozen=True)
class AlnAlignment:
    """The global alignment of an AreTomo ``.aln`` file, rows in file order.

    Attributes
    ----------
    sections : ndarray (n,), int
        ``SEC`` as written: the raw-stack image of each row (0- or 1-based depending on the
        AreTomo version; see the module docstring).
    angles : ndarray (n,), degrees
        ``TILT``.
    shifts : ndarray (n, 2), pixels
        ``(TX, TY)``: wedge's (dx, dy), the translation of each raw image.
    tilt_axis_angles : ndarray (n,), degrees
        ``ROT`` per row: wedge's ``tilt_axis_angle`` (counter-clockwise from image Y).
    raw_size : tuple (nx, ny, nz) or None
        ``RawSize`` of the stack AreTomo read.
    dark_sections : ndarray (k,), int
        The ``DarkFrame`` section numbers (images AreTomo left out), as written.
    """

    sections: np.ndarray
    angles: np.ndarray
    shifts: np.ndarray
    tilt_axis_angles: np.ndarray
    raw_size: tuple[int, int, int] | None
    dark_sections: np.ndarray

    @property
    def tilt_axis_angle(self) -> float:
        """The common tilt-axis angle (degrees): circular mean of ``tilt_axis_angles``."""
        a = np.radians(self.tilt_axis_angles)
        return float(np.degrees(np.arctan2(np.sin(a).sum(), np.cos(a).sum())))


def read_aln(path: str | os.PathLike[str]) -> AlnAlignment:
    """Read the global alignment of an AreTomo ``.aln`` file in wedge's conventions.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    AlnAlignment
        Tilt angles, shifts (dx, dy) in pixels and tilt-axis angles in degrees, one row per
        image AreTomo kept.

    Raises
    ------
    ValueError
        No global-alignment rows, a row without the ten columns, non-finite values, or a
        ``GMAG`` (magnification) other than 1, which wedge cannot represent.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"alignment file {p} does not exist.")
    raw_size: tuple[int, int, int] | None = None
    darks: list[int] = []
    rows: list[list[float]] = []
    for i, raw in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if re.match(r"^#\s*Local\s+Alignment", line, re.IGNORECASE):
                break
            m = _RAW_SIZE_RE.match(line)
            if m:
                raw_size = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
            m = _DARK_RE.match(line)
            if m:
                darks.append(int(m.group(2)))
            continue
        parts = line.split()
        if len(parts) != 10:
            raise ValueError(
                f"{p}, line {i}: expected the 10 columns SEC ROT GMAG TX TY SMEAN SFIT SCALE "
                f"BASE TILT, found {len(parts)}; is this an AreTomo .aln file?"
            )
        try:
            rows.append([float(v) for v in parts])
        except ValueError:
            raise ValueError(f"{p}, line {i}: {line!r} is not ten numbers.") from None
    if not rows:
        raise ValueError(f"{p} has no global-alignment rows (SEC ROT GMAG TX TY ... TILT).")
    table = np.array(rows)
    if not np.all(np.isfinite(table)):
        raise ValueError(f"{p} contains NaN or Inf alignment values.")
    gmag = table[:, 2]
    if np.any(np.abs(gmag - 1) > _GMAG_TOL):
        k = int(np.argmax(np.abs(gmag - 1)))
        raise ValueError(
            f"{p}: row {k + 1} has GMAG {gmag[k]:g}, a magnification wedge's alignment cannot "
            "represent; rescale that image first or align it in another program."
        )
    return AlnAlignment(
        sections=table[:, 0].astype(np.int64),
        angles=table[:, 9].copy(),
        shifts=table[:, 3:5].copy(),
        tilt_axis_angles=table[:, 1].copy(),
        raw_size=raw_size,
        dark_sections=np.array(darks, dtype=np.int64),
    )
