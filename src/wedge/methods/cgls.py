"""CGLS: conjugate gradients on the normal equations ``Aᵀ W A x = Aᵀ W b``.

Standard CGLS (Hestenes & Stiefel 1952; Björck, *Numerical Methods for Least Squares
Problems*, Alg. 7.4.1) on the volume (Z, Y, X), with ``A`` the projector, ``b`` the
(n, Y, X) tilt series (line integrals, voxel units) and ``W`` the 0/1 hold-out weight.
With a support mask ``S`` the operator is ``A S`` (still a linear least-squares problem,
solved exactly by CG). Per iteration, with ``r = W (b − A x)``, ``s = S Aᵀ r``::

    q = W A p;  α = γ / ‖q‖²;  x ← x + α p;  ax ← ax + α A p
    s = S Aᵀ W (b − ax);  γ' = ‖s‖²;  p ← s + (γ'/γ) p;  γ ← γ'

The state (``x``, ``ax = A x``, ``p``, ``gamma``) holds everything the next step needs,
so a checkpointed run resumes exactly. Positivity and bounds are not part of CG: when
given they are applied after each step and, whenever they change ``x``, the search
direction restarts from the projected gradient (projected, restarted CG). CGLS has no
relaxation: its step is the exact line minimiser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from ..projectors.base import Projector
from ..runner import Callback, Iteration, RunOptions, RunResult
from ..runner import run as run_iterations
from .algebraic import _prepare
from .constraints import Constraints
from .registry import register_method

__all__ = ["CGLSOptions", "CGLS", "cgls"]


@dataclasses.dataclass
class CGLSOptions:
    """Options of ``cgls``.

    Parameters
    ----------
    positivity : bool
        Clip negative voxels after each step (restarts the search direction).
    lower, upper : float or None
        Bounds (same restart rule).
    support : array (Z, Y, X) or None
        0/1 mask; solved exactly as the operator ``A S``.
    """

    positivity: bool = False
    lower: float | None = None
    upper: float | None = None
    support: Any = None

    def __post_init__(self) -> None:
        self.constraints()

    def constraints(self) -> Constraints:
        return Constraints(self.positivity, self.lower, self.upper, self.support)


class CGLS(Iteration):
    """CGLS iteration; ``constraints.support`` becomes the operator mask ``S``."""

    def __init__(
        self,
        op: Projector,
        data: torch.Tensor,
        weight: torch.Tensor | None,
        constraints: Constraints | None = None,
    ) -> None:
        super().__init__(op, data, weight)
        cons = constraints or Constraints()
        self.mask = None
        if cons.support is not None:
            self.mask = torch.as_tensor(cons.support, device=op.device).to(torch.float32)
        self.bounds = dataclasses.replace(cons, support=None)

    def _masked(self, v: torch.Tensor) -> torch.Tensor:
        return v if self.mask is None else v * self.mask

    def _gradient(self, ax: torch.Tensor) -> torch.Tensor:
        r = self.data - ax
        if self.weight is not None:
            r = r * self.weight
        return self._masked(self.op.adjoint(r))

    def _restart(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        ax = self.op.forward(x)
        s = self._gradient(ax)
        gamma = torch.sum(s * s)
        return {"x": x, "ax": ax, "p": s, "gamma": gamma}

    def init(self, x0: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self._masked(x0.clone())
        if self.bounds.active:
            x = self.bounds.apply(x)
        return self._restart(x)

    def step(self, state: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
        p, gamma = state["p"], state["gamma"]
        ap = self.op.forward(p)
        q = ap if self.weight is None else ap * self.weight
        qq = torch.sum(q * q)
        if float(gamma) == 0.0 or float(qq) == 0.0:  # converged: nothing left to fit
            return {k_: v.clone() for k_, v in state.items()}
        alpha = gamma / qq
        x = state["x"] + alpha * p
        ax = state["ax"] + alpha * ap
        if self.bounds.active:
            xp = self.bounds.apply(x)
            if not torch.equal(xp, x):
                return self._restart(xp)
        s = self._gradient(ax)
        gamma_new = torch.sum(s * s)
        p = s + (gamma_new / gamma) * p
        return {"x": x, "ax": ax, "p": p, "gamma": gamma_new}


@register_method(
    "cgls",
    CGLSOptions,
    "CGLS: conjugate gradients on the normal equations",
    default_iterations=20,
    work_volumes=4,
    work_images=3,
)
def cgls(
    op: Projector,
    data: torch.Tensor,
    iterations: int = 20,
    x0: torch.Tensor | None = None,
    callbacks: Sequence[Callback] = (),
    *,
    options: CGLSOptions | None = None,
    run: RunOptions | None = None,
) -> RunResult:
    """Least-squares reconstruction ``min ‖W(A S x − b)‖²`` by CGLS (see the module notes).

    CGLS converges fast but also fits noise: stop it early (``iterations``, ``tol`` or the
    hold-out option of :class:`~wedge.runner.RunOptions`).
    """
    options, run = options or CGLSOptions(), run or RunOptions()
    data, x0, weight, cons = _prepare(op, data, iterations, x0, options, run)
    return run_iterations(CGLS(op, data, weight, cons), x0, iterations, run, callbacks, name="cgls")
