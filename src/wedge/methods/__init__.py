"""Reconstruction methods, one module per family, registered in :mod:`.registry`.

``wedge.methods`` is this subpackage; the names of the registered methods come from
:func:`wedge.list_methods` (``wedge methods`` on the command line).

========  =================================================================
module    methods
========  =================================================================
backprojection  ``bp``
fbp       ``fbp``, ``wbp`` (filtered / weighted back-projection)
algebraic ``art``, ``sart``, ``sirt``
cgls      ``cgls``
resire    ``resire`` (Pham et al. 2023)
genfire   ``genfire`` (Pryor et al. 2017)
inr       ``inr`` (implicit neural representation, Lim et al.)
phase     ``multislice``, ``singleslice`` (Ren et al. 2020; PhaseT3M)
========  =================================================================
"""

from . import algebraic, backprojection, cgls, fbp, genfire, inr, phase, resire  # noqa: F401
from .algebraic import ARTOptions, IterativeOptions, SARTOptions, SIRTOptions
from .cgls import CGLSOptions
from .constraints import Constraints
from .fbp import FILTERS, FBPOptions
from .genfire import GENFIREOptions
from .registry import METHODS, MethodInfo, get_method, list_methods, register_method
from .resire import RESIREOptions

__all__ = [
    "METHODS",
    "MethodInfo",
    "Constraints",
    "ARTOptions",
    "CGLSOptions",
    "FBPOptions",
    "FILTERS",
    "GENFIREOptions",
    "RESIREOptions",
    "IterativeOptions",
    "SARTOptions",
    "SIRTOptions",
    "get_method",
    "list_methods",
    "register_method",
]
