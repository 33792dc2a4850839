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
        if not np.all(np.isfinite(pos)):
            raise ValueError("atom positions contain NaN or Inf; give finite x, y, z in Å.")
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


def _columns(comment: str, where: str) -> tuple[int, int]:
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
        try:
            col += int(width)
        except ValueError:
            raise ValueError(
                f"{where}, line 2: extended-XYZ Properties {m.group(1)!r} give the width of "
                f"{name!r} as {width!r}; each property is name:type:width with a whole-number "
                "width."
            ) from None
    if species is None or pos is None:
        raise ValueError(
            f"{where}, line 2: extended XYZ Properties {m.group(1)!r} lack 'species' or 'pos'; "
            "name the element and position columns."
        )
    return species, pos


def _atom_count(first: str, where: str) -> int:
    token = first.split()[0] if first.split() else ""
    try:
        n = int(token)
    except ValueError:
        raise ValueError(
            f"{where}, line 1: expected the atom count (a whole number), got {first.strip()!r}; "
            "an XYZ file starts with the number of atoms, then a comment line."
        ) from None
    if n < 0:
        raise ValueError(
            f"{where}, line 1: the atom count is {n}; it must be 0 or more (the number of "
            "atom lines that follow the comment line)."
        )
    return n


def _check_after_frame(lines: list[str], n: int, where: str) -> None:
    """Refuse non-blank lines after the ``n`` atom lines: more atoms or a second frame."""
    extra = [(i, ln) for i, ln in enumerate(lines[2 + n :], start=3 + n) if ln.strip()]
    if not extra:
        return
    lineno, text = extra[0]
    token = text.split()[0]
    if token.lstrip("+-").isdigit() and len(text.split()) == 1:
        raise ValueError(
            f"{where}, line {lineno}: a second frame starts here; wedge reads single-frame XYZ "
            "files, so keep one frame per file (e.g. split the trajectory with ASE)."
        )
    raise ValueError(
        f"{where}, line {lineno}: {len(extra)} non-blank line(s) follow the {n} atom lines "
        f"announced on line 1; fix the atom count or remove the extra lines."
    )


def _parse_atoms(
    rows: list[str], s_col: int, p_col: int, where: str
) -> tuple[list[str], np.ndarray]:
    need = max(s_col + 1, p_col + 3)
    symbols: list[str] = []
    pos = np.empty((len(rows), 3), dtype=np.float64)
    for i, text in enumerate(rows):
        lineno = i + 3
        cols = text.split()
        if len(cols) < need:
            raise ValueError(
                f"{where}, line {lineno}: expected {need} columns ('El x y z'), got "
                f"{text.strip()!r}; each atom line holds an element and x y z in Å."
            )
        for k, axis in enumerate("xyz"):
            value = cols[p_col + k]
            try:
                pos[i, k] = float(value)
            except ValueError:
                raise ValueError(
                    f"{where}, line {lineno}: {axis} = {value!r} is not a number; "
                    "positions are x y z in Å."
                ) from None
            if not np.isfinite(pos[i, k]):
                raise ValueError(
                    f"{where}, line {lineno}: {axis} = {value!r} is not finite; "
                    "give finite x y z in Å."
                )
        symbols.append(cols[s_col])
    return symbols, pos


def read_xyz(path: str | os.PathLike) -> AtomicModel:
    """Read a plain or extended XYZ file into an :class:`AtomicModel`.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    AtomicModel

    Raises
    ------
    ValueError
        A missing or non-text file, an atom count that is not a whole number >= 0, too few
        atom lines, a short line, a non-numeric or non-finite coordinate, an unknown element,
        or anything but blank lines after the announced atoms. Messages name the file and
        the line.

    Notes
    -----
    One frame per file: wedge reads single-frame XYZ, and a multi-frame (trajectory) file
    is refused rather than silently reduced to its first frame. Trailing blank lines are
    ignored.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"XYZ file {str(p)!r} does not exist; check the path.")
    try:
        lines = p.read_text().splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{p} is not a text file; an XYZ file is plain text.") from None
    if not lines or not lines[0].strip():
        raise ValueError(
            f"{p}, line 1: the file is empty or starts with a blank line; an XYZ file starts "
            "with the number of atoms."
        )
    n = _atom_count(lines[0], str(p))
    comment = lines[1].strip() if len(lines) > 1 else ""
    rows = lines[2 : 2 + n]
    if len(rows) < n:
        raise ValueError(
            f"{p}: line 1 announces {n} atoms but only {len(rows)} atom line(s) follow the "
            "comment line; fix the atom count or add the missing lines."
        )
    _check_after_frame(lines, n, str(p))
    s_col, p_col = _columns(comment, str(p))
    symbols, pos = _parse_atoms(rows, s_col, p_col, str(p))
    first_line: dict[str, int] = {}
    for i, sym in enumerate(symbols):
        first_line.setdefault(sym, i + 3)
    for sym, lineno in first_line.items():
        try:
            if sym.upper() != "X":
                atomic_number(int(sym) if sym.isdigit() else sym)
        except ValueError as exc:
            raise ValueError(f"{p}, line {lineno}: {exc}") from None
    return AtomicModel.from_symbols(pos, symbols, comment)


def _write_text(path: Path, text: str) -> None:
    from ..io.atomic import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(text)


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
