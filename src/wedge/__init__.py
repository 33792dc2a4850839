"""wedge: electron tomography reconstruction on one geometry and projector core."""

from .geometry import Geometry
from .tiltseries import AngleUnitWarning, TiltSeries

__version__ = "0.1.0"

__all__ = ["Geometry", "TiltSeries", "AngleUnitWarning", "__version__"]
