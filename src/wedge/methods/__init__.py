"""Reconstruction methods, one module per family, registered in :mod:`.registry`.

========  =================================================================
module    methods
========  =================================================================
backprojection  ``bp``
fbp       ``fbp``, ``wbp`` (filtered / weighted back-projection)
algebraic ``art``, ``sart``, ``sirt``
cgls      ``cgls``
========  =================================================================
"""

from . import algebraic, backprojection, cgls, fbp  # noqa: F401  (register the methods)
from .algebraic import ARTOptions, IterativeOptions, SARTOptions, SIRTOptions
from .cgls import CGLSOptions
from .constraints import Constraints
from .fbp import FILTERS, FBPOptions
from .registry import METHODS, MethodInfo, get_method, methods, register_method

__all__ = [
    "METHODS",
    "MethodInfo",
    "Constraints",
    "ARTOptions",
    "CGLSOptions",
    "FBPOptions",
    "FILTERS",
    "IterativeOptions",
    "SARTOptions",
    "SIRTOptions",
    "get_method",
    "methods",
    "register_method",
]
