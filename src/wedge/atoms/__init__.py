"""Atomic models: potentials from atom positions, XYZ files, atom tracing and evaluation.

* :func:`potential_volume` — electrostatic potential (V) of a model on a voxel grid
  (Lobato–Van Dyck or Kirkland parametrisation).
* :func:`read_xyz` / :func:`write_xyz` — plain and extended XYZ.
* :func:`trace` — atom positions (Å), intensities, widths from a reconstructed volume.
* :func:`classify_species` — Gaussian-mixture species classification of traced atoms.
* :func:`compare` — traced vs true atoms: Ren et al. Table 1 columns, per-axis errors,
  RMSD after the optimal shift, bond lengths.
"""

from .classify import SpeciesClassification, classify_species
from .evaluation import ComparisonReport, compare
from .potential import potential_volume, slice_potentials
from .trace_io import trace_file
from .tracing import TracedAtoms, TraceOptions, trace
from .xyz import AtomicModel, read_xyz, write_xyz

__all__ = [
    "AtomicModel",
    "ComparisonReport",
    "SpeciesClassification",
    "TraceOptions",
    "TracedAtoms",
    "classify_species",
    "compare",
    "potential_volume",
    "read_xyz",
    "slice_potentials",
    "trace",
    "trace_file",
    "write_xyz",
]
