"""What a method with a nonlinear or learned forward model receives: a :class:`Problem`."""

from __future__ import annotations

import dataclasses

import torch

from ._backend import as_tensor
from .geometry import Geometry
from .parameters import AcquisitionParameters
from .projectors.options import ProjectorOptions
from .tiltseries import TiltSeries

__all__ = ["Problem"]


@dataclasses.dataclass(frozen=True)
class Problem:
    """A reconstruction problem as :func:`wedge.reconstruct` hands it to a ``kind="model"``
    method (see :mod:`wedge.methods.registry` and docs/nonlinear.md).

    Attributes
    ----------
    series : TiltSeries
        The whole input: images (n, Y, X) or (n, n_defocus, Y, X), angles, shifts, euler,
        in-plane axis angle, defocus, microscope, pixel size — nothing pre-rotated.
    volume_shape : (Z, Y, X)
        The volume to reconstruct, in voxels of ``series.pixel_size``.
    device : torch.device
    projector : ProjectorOptions
        Typed options for any projector the method builds.
    refine : tuple of str
        Acquisition parameters to refine (names from :data:`wedge.parameters.REFINABLE`),
        already validated against the series.
    """

    series: TiltSeries
    volume_shape: tuple[int, int, int]
    device: torch.device
    projector: ProjectorOptions = ProjectorOptions()
    refine: tuple[str, ...] = ()

    def images(self) -> torch.Tensor:
        """The images as a float32 tensor on :attr:`device` (any rank)."""
        return as_tensor(self.series.images, self.device)

    def geometry(self) -> Geometry:
        """The series' geometry for :attr:`volume_shape`, on :attr:`device`."""
        return self.series.geometry(self.volume_shape).to(self.device)

    def parameters(self) -> AcquisitionParameters:
        """Fresh tensors of the acquisition parameters, those in :attr:`refine` requiring grad."""
        return AcquisitionParameters(self.series, self.refine, self.device)
