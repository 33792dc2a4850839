"""wedge: electron tomography reconstruction on one geometry and projector core.

NumPy in, NumPy out: every public function also accepts torch tensors and returns them
on their device. Conventions (axes, angles, centres, units) are in docs/conventions.md.
"""

from . import align, atoms, methods, metrics, phantoms, projectors, simulate
from .api import Reconstruction, reconstruct
from .geometry import Geometry
from .io import read_tiltseries, read_volume, write_tiltseries, write_volume
from .methods.registry import list_methods
from .projectors import backproject, project
from .tiltseries import AngleUnitWarning, TiltSeries

__version__ = "0.1.0"

__all__ = [
    "AngleUnitWarning",
    "align",
    "atoms",
    "Geometry",
    "Reconstruction",
    "TiltSeries",
    "backproject",
    "list_methods",
    "methods",
    "metrics",
    "phantoms",
    "project",
    "projectors",
    "read_tiltseries",
    "read_volume",
    "reconstruct",
    "simulate",
    "write_tiltseries",
    "write_volume",
    "__version__",
]
