"""Reconstruction methods, one module per family, registered in :mod:`.registry`."""

from . import backprojection  # noqa: F401  (registers "bp")
from .constraints import Constraints
from .registry import METHODS, MethodInfo, get_method, methods, register_method

__all__ = ["METHODS", "MethodInfo", "Constraints", "get_method", "methods", "register_method"]
