"""Comparison reports: run several methods on one series, measure, plot, write HTML.

- :func:`compare` → :class:`ComparisonResult` (``report.html``, PNG figures, ``metrics.json``).
- :func:`demo`: the vesicle phantom compared across every registered method.
- :mod:`.figures`: orthoslices, FSC and convergence figures usable on their own.
"""

from .compare import ComparisonResult, MethodSummary, SeriesSummary, compare
from .demo import DEMO_ITERATIONS, demo
from .figures import convergence_figure, fsc_figure, orthoslice_figure
from .html import text_table, write_report
from .memory import PeakMemory

__all__ = [
    "DEMO_ITERATIONS",
    "ComparisonResult",
    "MethodSummary",
    "PeakMemory",
    "SeriesSummary",
    "compare",
    "convergence_figure",
    "demo",
    "fsc_figure",
    "orthoslice_figure",
    "text_table",
    "write_report",
]
