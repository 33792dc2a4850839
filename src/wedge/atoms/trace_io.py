"""``wedge trace``: trace the volume in a file and write the atoms as XYZ."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .tracing import TracedAtoms, TraceOptions, trace


def _read_volume(path: Path) -> tuple[np.ndarray, float | None]:
    """Volume (Z, Y, X) and the voxel size its file records (None when it records none)."""
    from ..io.formats import load  # wedge's reader: MRC, TIFF, HDF5, NumPy

    content = load(path)
    voxel = content.header_pixel or content.stored_pixel
    return np.asarray(content.data), (float(voxel) if voxel else None)


def trace_file(
    volume_path: str | Path,
    out_xyz: str | Path,
    voxel_size: float | None = None,
    n_species: int = 1,
    *,
    symbols: Sequence[str] | None = None,
    feature: str = "intensity",
    options: TraceOptions | None = None,
) -> TracedAtoms:
    """Trace the volume in a file and write the atoms as XYZ (the ``wedge trace`` command).

    Parameters
    ----------
    volume_path : path
        A volume (Z, Y, X) in any format :mod:`wedge.io` reads (MRC, TIFF, HDF5, .npy).
    out_xyz : path
        Output XYZ: element symbol and x, y, z in Å about the volume centre.
    voxel_size : float, optional
        Å per voxel; required when the file records none (MRC voxel size 0 or 1 counts as
        none).
    n_species : int
        Species to classify by a Gaussian mixture of intensities (1: no classification).
    symbols : sequence of str, optional
        One element symbol per species, lightest first, e.g. ("O", "Si"). Required when
        ``n_species > 1``; default "X" (unknown) for one species.
    feature : {"intensity", "height", "intensity+width"}
        What the species are classified by.
    options : TraceOptions, optional

    Returns
    -------
    TracedAtoms, with species set.
    """
    from .classify import classify_species

    if isinstance(n_species, bool) or not isinstance(n_species, (int, np.integer)) or n_species < 1:
        raise ValueError(f"n_species must be a whole number >= 1, got {n_species!r}.")
    if symbols is None and n_species > 1:
        raise ValueError(
            f"give one element symbol per species, lightest first (e.g. symbols=('O', 'Si')) "
            f"for n_species={n_species}."
        )
    syms = tuple(symbols) if symbols is not None else ("X",)
    if len(syms) != n_species:
        raise ValueError(f"{len(syms)} symbols given for n_species={n_species}; give one each.")
    from .potential import atomic_number

    for sym in syms:
        if sym != "X":
            atomic_number(sym)  # raises ValueError naming an unknown element
    path = Path(volume_path)
    if not path.is_file():
        raise ValueError(f"volume file {path} does not exist.")
    volume, recorded = _read_volume(path)
    if voxel_size is None and recorded is None:
        raise ValueError(
            f"{path.name} records no voxel size: pass voxel_size in Å "
            "(CLI: wedge trace VOLUME --voxel-size 0.35 -o atoms.xyz)."
        )
    traced = trace(volume, voxel_size if voxel_size is not None else recorded, options)
    traced, _ = classify_species(traced, n_species, feature=feature, symbols=syms)  # type: ignore[arg-type]
    _write_xyz(Path(out_xyz), traced, f"traced from {path.name} by wedge.atoms.trace")
    return traced


def _write_xyz(path: Path, traced: TracedAtoms, comment: str) -> None:
    """XYZ with element symbols, unknown species ("X") as X; written atomically."""
    from .xyz import AtomicModel, write_xyz

    model = AtomicModel.from_symbols(traced.positions, list(traced.element_symbols), comment)
    write_xyz(path, model)
