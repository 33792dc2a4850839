"""Atomic models and XYZ / extended-XYZ files.

Plain XYZ: a count line, a comment line, then ``El x y z`` per atom (Å). Extended XYZ
(ASE / OVITO): the comment line holds ``key=value`` pairs, among them
``Properties=species:S:1:pos:R:3:...`` naming the columns; ``Lattice="..."`` is kept in the
comment. Element columns may hold symbols or atomic numbers.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from ._parameters import SYMBOLS
from .potential import atomic_number

__all__ = ["AtomicModel", "read_xyz", "write_xyz"]


@dataclasses.dataclass(frozen=True, eq=False)
class AtomicModel:
    """A set of atoms.

    Attributes
    ----------
    positions : (n, 3) float64, Å
        Columns (x, y, z) in the file's frame (wedge's x, y, z when used as a specimen).
    numbers : (n,) int64
        Atomic numbers.
    symbols : tuple of str
        Chemical symbols, one per atom.
    comment : str
        The file's comment line.
    """

    positions: np.ndarray
    numbers: np.ndarray
    symbols: tuple[str, ...]
    comment: str = ""

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        num = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        if num.shape[0] != pos.shape[0]:
            raise ValueError(f"{pos.shape[0]} positions but {num.shape[0]} atomic numbers.")
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "numbers", num)
        if np.any((num < 0) | (num > len(SYMBOLS))):
            raise ValueError(f"atomic numbers must lie in 0..{len(SYMBOLS)} (0 = unknown, 'X').")
        object.__setattr__(self, "symbols", tuple("X" if z == 0 else SYMBOLS[z - 1] for z in num))

    @classmethod
    def from_symbols(
        cls, positions: np.ndarray, symbols: list[str], comment: str = ""
    ) -> AtomicModel:
        """Build from chemical symbols (or atomic numbers as strings); "X" is an unknown
        species (atomic number 0), as ``wedge trace`` writes for unclassified atoms."""
        nums = [
            0 if s.strip().upper() == "X" else atomic_number(int(s) if s.isdigit() else s)
            for s in symbols
        ]
        return cls(positions, np.array(nums, dtype=np.int64), (), comment)

    def __len__(self) -> int:
        return int(self.numbers.shape[0])

    def centered(self) -> AtomicModel:
        """The model translated so that the centre of its bounding box is the origin."""
        c = (self.positions.max(0) + self.positions.min(0)) / 2 if len(self) else np.zeros(3)
        return AtomicModel(self.positions - c, self.numbers, (), self.comment)


_PROP_RE = re.compile(r"properties=(\S+)", re.IGNORECASE)


def _columns(comment: str) -> tuple[int, int]:
    """Column indices of the species and of the first position component."""
    m = _PROP_RE.search(comment)
    if not m:
        return 0, 1
    fields = m.group(1).strip('"').split(":")
    col, species, pos = 0, None, None
    for name, _kind, width in zip(fields[0::3], fields[1::3], fields[2::3], strict=False):
        if name.lower() in ("species", "element", "symbols") and species is None:
            species = col
        if name.lower() in ("pos", "positions") and pos is None:
            pos = col
        col += int(width)
    if species is None or pos is None:
        raise ValueError(
            f"extended XYZ Properties {m.group(1)!r} lack 'species' or 'pos'; "
            "name the element and position columns."
        )
    return species, pos


def read_xyz(path: str | os.PathLike) -> AtomicModel:
    """Read a plain or extended XYZ file (first frame) into an :class:`AtomicModel`."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"XYZ file {str(p)!r} does not exist; check the path.")
    lines = p.read_text().splitlines()
    try:
        n = int(lines[0].split()[0])
    except (IndexError, ValueError):
        raise ValueError(f"{p}: the first line must be the atom count.") from None
    comment = lines[1].strip() if len(lines) > 1 else ""
    rows = [ln.split() for ln in lines[2 : 2 + n]]
    if len(rows) < n or any(len(r) < 4 for r in rows):
        raise ValueError(f"{p}: expected {n} atom lines 'El x y z' after the comment line.")
    s_col, p_col = _columns(comment)
    symbols = [r[s_col] for r in rows]
    try:
        pos = np.array([[float(v) for v in r[p_col : p_col + 3]] for r in rows], dtype=np.float64)
    except ValueError:
        raise ValueError(f"{p}: positions must be numbers (x y z in Å).") from None
    return AtomicModel.from_symbols(pos, symbols, comment)


def _write_text(path: Path, text: str) -> None:
    try:
        from ..io.atomic import atomic_output
    except ImportError:
        atomic_output = None
    if atomic_output is not None:
        with atomic_output(path) as tmp:
            Path(tmp).write_text(text)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_xyz(path: str | os.PathLike, model: AtomicModel, *, extended: bool = False) -> None:
    """Write ``model`` as XYZ (atomically: a temporary file renamed into place).

    ``extended=True`` writes an extended-XYZ comment ``Properties=species:S:1:pos:R:3``
    followed by the model's comment.
    """
    p = Path(path)
    comment = model.comment.replace("\n", " ")
    if extended and "properties=" not in comment.lower():
        comment = f"Properties=species:S:1:pos:R:3 {comment}".strip()
    body = "".join(
        f"{s} {x:.6f} {y:.6f} {z:.6f}\n"
        for s, (x, y, z) in zip(model.symbols, model.positions, strict=True)
    )
    _write_text(p, f"{len(model)}\n{comment}\n{body}")
