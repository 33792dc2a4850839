"""The projector interface and its registry.

A projector is a linear map ``A`` from a volume (Z, Y, X) to a tilt series (n, Y, X)
together with its exact adjoint ``Aᵀ``. Every projector registers itself here under a
name; one parametrised test checks the adjoint of every registered projector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch

from ..geometry import Geometry

__all__ = ["Projector", "PROJECTORS", "register_projector"]

#: name → projector class; filled by :func:`register_projector`.
PROJECTORS: dict[str, type[Projector]] = {}


def register_projector(name: str) -> Callable[[type[Projector]], type[Projector]]:
    """Class decorator that adds a projector class to :data:`PROJECTORS` under ``name``."""

    def deco(cls: type[Projector]) -> type[Projector]:
        if name in PROJECTORS:
            raise ValueError(f"a projector named {name!r} is already registered.")
        cls.name = name
        PROJECTORS[name] = cls
        return cls

    return deco


class Projector:
    """A forward/adjoint pair bound to one :class:`~wedge.geometry.Geometry`.

    Subclasses implement :meth:`_forward` and :meth:`_adjoint` on float32 tensors on
    ``self.device``; the public methods check shapes and move data.

    Attributes
    ----------
    geometry : Geometry
    volume_shape : (Z, Y, X)
    data_shape : (n, Y, X)
    device : torch.device
    """

    name: ClassVar[str] = ""
    #: whether the projector is differentiable with respect to the pose (Euler angles, shifts)
    pose_differentiable: ClassVar[bool] = False

    def __init__(self, geometry: Geometry) -> None:
        self.geometry = geometry
        self.volume_shape: tuple[int, int, int] = geometry.volume_shape
        self.data_shape: tuple[int, int, int] = geometry.data_shape
        self.device = torch.device(geometry.device)

    # -- to implement ---------------------------------------------------------------
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- public ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project a (Z, Y, X) volume to (n, Y, X) images (line integrals, voxel units)."""
        if tuple(x.shape) != self.volume_shape:
            raise ValueError(
                f"volume has shape {tuple(x.shape)} but the projector expects {self.volume_shape}."
            )
        return self._forward(x.to(self.device, torch.float32))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Back-project (n, Y, X) images to a (Z, Y, X) volume: the exact adjoint of forward."""
        if tuple(y.shape) != self.data_shape:
            raise ValueError(
                f"images have shape {tuple(y.shape)} but the projector expects {self.data_shape}."
            )
        return self._adjoint(y.to(self.device, torch.float32))

    __call__ = forward

    def adjoint_chunks(self, y: torch.Tensor):
        """Yield ``(y0, y1, block)`` with ``block = (Aᵀ y)[:, y0:y1, :]``.

        The default yields the whole adjoint as one block; projectors that can produce it
        slab by slab (the sparse single-axis ones) override this to save memory.
        """
        if tuple(y.shape) != self.data_shape:
            raise ValueError(
                f"images have shape {tuple(y.shape)} but the projector expects {self.data_shape}."
            )
        yield 0, self.volume_shape[1], self._adjoint(y.to(self.device, torch.float32))

    def with_geometry(self, geometry: Geometry) -> Projector:
        """A projector of the same class and options on another geometry (a subset of
        images, a wider volume, …)."""
        opts = {k: getattr(self, k) for k in ("n_sub", "step", "oversampling") if hasattr(self, k)}
        return type(self)(geometry, **opts)

    def norm_estimate(self, iterations: int = 20, seed: int = 0) -> float:
        """Operator norm ‖A‖₂ by power iteration on AᵀA."""
        g = torch.Generator(device="cpu").manual_seed(seed)
        x = torch.rand(self.volume_shape, generator=g).to(self.device)
        s = 0.0
        for _ in range(iterations):
            x = self._adjoint(self._forward(x))
            s = float(torch.linalg.vector_norm(x))
            if s == 0:
                return 0.0
            x = x / s
        return s**0.5

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.geometry!r})"


def autograd_adjoint(
    forward: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    volume_shape: tuple[int, ...],
) -> torch.Tensor:
    """Exact adjoint of a real-linear ``forward`` as its vector-Jacobian product with ``y``.

    For a linear map the VJP ``Jᵀy`` *is* ``Aᵀy``; torch's backward passes of
    ``grid_sample`` and the FFTs are the transposes of their forward passes, so the result
    matches the forward to float32 rounding (checked by the dot-product test).
    """
    with torch.enable_grad():
        x = torch.zeros(volume_shape, device=y.device, dtype=y.dtype, requires_grad=True)
        out = forward(x)
        (g,) = torch.autograd.grad(out, x, grad_outputs=y)
    return g
