"""The H-Siren field: a coordinate network mapping (x, y, z) in [−1, 1]³ to a density ≥ 0.

Lim, Casert et al. (quantEM INR tomography), §4.1.1: a fully connected network with

* input layer ``σᵢ(x) = sin(ω₀ sinh(2x))`` (Eq. 1),
* ``depth − 1`` further hidden layers ``σₕ(x) = sin(ω₀ x)`` (Eq. 2), all ``width`` wide,
* a linear output unit followed by ``softplus`` (Eq. 3), so the density is non-negative,

with ω₀ = 30 and the weights initialised as Eq. 4 (input layer, ``U(−1/n, 1/n)``) and
Eq. 5 (every other layer, ``U(−√(6/n)/ω₀, √(6/n)/ω₀)``), ``n`` the layer's fan-in. The
paper does not state the bias initialisation; biases here follow PyTorch's ``nn.Linear``
rule, ``U(−1/√n, 1/√n)``. ``depth`` counts the hidden (sine) layers: the paper's network
is ``depth=4, width=512``.

Coordinates are normalised over the volume box: a point at (x, y, z) voxels from the
rotation centre (index (N − 1)/2 along each axis) sits at ``2 (x, y, z) / (X, Y, Z)``, so
the box edges (index −0.5 and N − 0.5) are at ±1 and voxel centres at ``(2i + 1)/N − 1``
(``grid_sample``'s ``align_corners=False``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["HSiren", "OMEGA0"]

#: the frequency factor ω₀ of Eqs. 1–2
OMEGA0 = 30.0


class HSiren(nn.Module):
    """H-Siren network ``(…, 3) → (…)`` (see the module docstring for the equations).

    Parameters
    ----------
    width : int
        Hidden units per layer (> 0).
    depth : int
        Hidden sine layers, the input layer included (> 0).
    generator : torch.Generator, optional
        Seeds the initialisation (the same seed gives the same weights on every rank).
    omega0 : float
        ω₀ of Eqs. 1, 2 and 5.
    """

    def __init__(
        self,
        width: int,
        depth: int,
        *,
        generator: torch.Generator | None = None,
        omega0: float = OMEGA0,
    ) -> None:
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
            raise ValueError(f"width must be a positive integer, got {width!r}.")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth <= 0:
            raise ValueError(f"depth must be a positive integer, got {depth!r}.")
        self.width, self.depth, self.omega0 = width, depth, float(omega0)
        sizes = [3] + [width] * depth
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.out = nn.Linear(width, 1)
        with torch.no_grad():
            for i, layer in enumerate([*self.hidden, self.out]):
                n = layer.in_features
                bound = 1.0 / n if i == 0 else math.sqrt(6.0 / n) / self.omega0  # Eq. 4 / 5
                nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
                b = 1.0 / math.sqrt(n)
                nn.init.uniform_(layer.bias, -b, b, generator=generator)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Density at ``coords`` (…, 3) given as normalised (x, y, z); returns shape (…)."""
        h = coords
        for i, layer in enumerate(self.hidden):
            a = layer(h)
            h = torch.sin(self.omega0 * (torch.sinh(2.0 * a) if i == 0 else a))
        return nn.functional.softplus(self.out(h)).squeeze(-1)

    def n_parameters(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters())
