"""Real-space constraints shared by iterative methods: positivity, bounds, support."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

__all__ = ["Constraints"]


@dataclasses.dataclass
class Constraints:
    """Projection onto a convex set applied after every update.

    Parameters
    ----------
    positivity : bool
        Clip negative values to zero.
    lower, upper : float or None
        Bounds on every voxel.
    support : array (Z, Y, X) of bool/0-1, or None
        Voxels outside the support are set to zero.
    """

    positivity: bool = False
    lower: float | None = None
    upper: float | None = None
    support: Any = None

    def __post_init__(self) -> None:
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"lower bound {self.lower} exceeds upper bound {self.upper}.")

    def check(self, volume_shape: tuple[int, ...]) -> None:
        """Fail before any work if the support mask does not fit the volume."""
        if self.support is not None:
            shape = tuple(self.support.shape)
            if shape != tuple(volume_shape):
                raise ValueError(
                    f"the support mask has shape {shape} but the volume is {tuple(volume_shape)}; "
                    "give a mask of the volume's (Z, Y, X) shape."
                )

    @property
    def active(self) -> bool:
        return (
            self.positivity
            or self.lower is not None
            or self.upper is not None
            or self.support is not None
        )

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` with the constraints enforced (a new tensor when any is active)."""
        lo = self.lower
        if self.positivity:
            lo = 0.0 if lo is None else max(lo, 0.0)
        if lo is not None or self.upper is not None:
            x = x.clamp(min=lo, max=self.upper)
        if self.support is not None:
            s = torch.as_tensor(self.support, device=x.device).to(x.dtype)
            x = x * s
        return x
