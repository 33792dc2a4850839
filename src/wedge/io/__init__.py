"""File input and output: tilt series, volumes, tilt-angle files, atomic writes.

Every writer goes through :func:`atomic_output`, so no file is ever left half-written
under its final name.
"""

from .angles import read_angles, read_mdoc, write_angles, write_mdoc
from .aretomo import AlnAlignment, read_aln
from .atomic import atomic_output
from .formats import SUPPORTED_SUFFIXES
from .imod import (
    alignment_from_xf,
    apply_xf,
    compose_xf,
    invert_xf,
    read_imod_alignment,
    read_xf,
    write_ali,
    write_xf,
    xf_from_alignment,
)
from .stacks import describe, read_tiltseries, write_tiltseries
from .volumes import read_volume, read_volume_with_voxel, write_volume

__all__ = [
    "atomic_output",
    "read_tiltseries",
    "write_tiltseries",
    "read_angles",
    "write_angles",
    "read_mdoc",
    "write_mdoc",
    "read_volume",
    "read_volume_with_voxel",
    "write_volume",
    "describe",
    "SUPPORTED_SUFFIXES",
    "read_xf",
    "write_xf",
    "invert_xf",
    "compose_xf",
    "apply_xf",
    "write_ali",
    "xf_from_alignment",
    "alignment_from_xf",
    "read_imod_alignment",
    "AlnAlignment",
    "read_aln",
]
