"""Plain back-projection: ``Aᵀ b``, the unfiltered adjoint, scaled per tilt."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from ..projectors.base import Projector
from ..runner import Callback, RunOptions, RunResult
from .registry import register_method

__all__ = ["BPOptions", "bp"]


@dataclasses.dataclass
class BPOptions:
    """Options of plain back-projection (none yet: it is ``Aᵀ b / n``)."""


@register_method(
    "bp",
    BPOptions,
    "plain (unfiltered) back-projection Aᵀb / n",
    iterative=False,
    work_volumes=0,
    work_images=0,
)
def bp(
    op: Projector,
    data: torch.Tensor,
    iterations: int | None = None,
    x0: torch.Tensor | None = None,
    callbacks: Sequence[Callback] = (),
    *,
    options: BPOptions | None = None,
    run: RunOptions | None = None,
) -> RunResult:
    """Back-project ``data`` and divide by the number of images.

    The result is blurred (the 1/|k| transfer of back-projection); it is the pipeline's
    smoke test and the starting point of filtered methods.
    """
    x = op.adjoint(data) / data.shape[0]
    return RunResult(x=x, history=[], stopped="direct", iterations=0)
