"""Subtomogram averaging: the constrained reconstruction model (CRM) and two baselines.

Han, Li, Yang, Zhang and Gao, "Constrained reconstruction model" (2020): one object
``h`` shared by every copy, a background per copy, solved by sparse SART, sparse Kaczmarz
or SIRT (:func:`crm`); compared against the simple average (:func:`simple_average`) and
the masked Fourier average (:func:`masked_fourier_average`). See ``docs/average.md``.
"""

from .baselines import AverageOptions, masked_fourier_average, simple_average, wedge_mask
from .crm import SOLVERS, CRMOptions, crm
from .poses import Resampler, default_support, extract_operator, place_operator
from .result import AverageResult

__all__ = [
    "crm",
    "CRMOptions",
    "SOLVERS",
    "simple_average",
    "masked_fourier_average",
    "AverageOptions",
    "AverageResult",
    "wedge_mask",
    "place_operator",
    "extract_operator",
    "default_support",
    "Resampler",
]
