"""Forward models with refinable acquisition parameters: one registry, one gradient test.

A forward model maps a volume and :class:`~wedge.parameters.AcquisitionParameters` to the
images of a tilt series, differentiably in both. Methods with a nonlinear or learned model
(``kind="model"`` in :mod:`wedge.methods.registry`) build their loss on one of these and
step the volume and the refined parameters by the gradients.

============== =================================== ====================================
name           images                              gradient
============== =================================== ====================================
``ray-3d``     line integrals (n, Y, X)            autograd through trilinear sampling
``fourier``    Fourier-slice projections (n, Y, X) autograd through the FFTs and sampling
``multislice`` HRTEM intensities (n, k, Y, X)      Ren et al. Algorithm 2 (hand-written)
                                                   for the volume and H (defocus, C3);
                                                   autograd for the pose and shifts
============== =================================== ====================================

Each :class:`ForwardModel` may name a ``reference``: the same maths written with plain
torch operations only. ``tests/test_models.py`` checks, for every registered model, that
the gradients of ``images`` with respect to the volume and every parameter it is
differentiable in equal those of the reference (or, without one, finite differences via
``torch.autograd.gradcheck`` in float64).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from .parameters import AcquisitionParameters

__all__ = ["ForwardModel", "FORWARD_MODELS", "register_model", "get_model", "shift_images"]

ImagesFn = Callable[[torch.Tensor, AcquisitionParameters, dict[str, Any]], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class ForwardModel:
    """A registered forward model.

    Attributes
    ----------
    name : str
    images : callable
        ``images(volume, parameters, settings) -> tensor``; ``settings`` holds the model's
        fixed inputs (detector shape, pixel size, microscope, numerical options).
    parameters : tuple of str
        The acquisition parameters gradients reach (names of
        :data:`wedge.parameters.REFINABLE`).
    reference : callable or None
        The same maths in plain torch operations (autograd only), for the gradient test.
    """

    name: str
    images: ImagesFn
    parameters: tuple[str, ...]
    reference: ImagesFn | None = None


#: name → :class:`ForwardModel`
FORWARD_MODELS: dict[str, ForwardModel] = {}


def register_model(model: ForwardModel) -> ForwardModel:
    """Add ``model`` to :data:`FORWARD_MODELS` (names are unique)."""
    if model.name in FORWARD_MODELS:
        raise ValueError(f"a forward model named {model.name!r} is already registered.")
    FORWARD_MODELS[model.name] = model
    return model


def get_model(name: str) -> ForwardModel:
    """The registered model ``name``; a clear error listing the known names otherwise."""
    try:
        return FORWARD_MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown forward model {name!r}; known: {', '.join(sorted(FORWARD_MODELS))}."
        ) from None


def shift_images(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Translate images (n, ..., Y, X) by (dx, dy) pixels each (n, 2), by a Fourier phase ramp.

    Periodic (what leaves one edge enters the other); differentiable in ``shifts``. The
    image moves by +dx along X and +dy along Y, as ``TiltSeries.shifts`` means.
    """
    ny, nx = images.shape[-2:]
    dev = images.device
    fy = torch.fft.fftfreq(ny, device=dev, dtype=torch.float64)
    fx = torch.fft.fftfreq(nx, device=dev, dtype=torch.float64)
    sh = shifts.to(torch.float64)
    extra = (1,) * (images.ndim - 3)
    ph = fx[None, None, :] * sh[:, 0, None, None] + fy[None, :, None] * sh[:, 1, None, None]
    ramp = torch.exp(-2j * torch.pi * ph).reshape(sh.shape[0], *extra, ny, nx)
    spec = torch.fft.fft2(images.to(torch.float64)) * ramp
    return torch.fft.ifft2(spec).real.to(images.dtype)


# ---------------------------------------------------------------------------- ray-3d, fourier
def _ray3d(volume: torch.Tensor, p: AcquisitionParameters, s: dict[str, Any]) -> torch.Tensor:
    from .projectors.general import project_rays

    dt = volume.dtype
    return project_rays(
        volume, p.matrices(dt), p.shifts.to(dt), s["detector_shape"], s.get("ray_step", 0.5)
    )


def _fourier(volume: torch.Tensor, p: AcquisitionParameters, s: dict[str, Any]) -> torch.Tensor:
    from .projectors.fourier import fourier_slice_project

    dt = volume.dtype
    return fourier_slice_project(
        volume, p.matrices(dt), p.shifts.to(dt), s["detector_shape"], s.get("oversampling", 3.0)
    )


_POSE = ("shifts", "tilt", "phi", "psi", "tilt_axis")
register_model(ForwardModel("ray-3d", _ray3d, _POSE))
register_model(ForwardModel("fourier", _fourier, _POSE))


# ---------------------------------------------------------------------------- multislice
def _multislice_pose(p: AcquisitionParameters) -> torch.Tensor:
    """Euler angles (n, 3) degrees of each tilt with the in-plane axis folded into φ:
    Z(α) Z(φ) Y(θ) X(ψ) = Z(α + φ) Y(θ) X(ψ)."""
    e = p.euler()
    return torch.cat([e[:, :1] + p.tilt_axis, e[:, 1:]], dim=1)


def _transfer(
    p: AcquisitionParameters, i: int, shape: tuple[int, int], n_z: int, s: dict[str, Any], opts: Any
) -> torch.Tensor:
    """H (k, Y, X) of tilt ``i``, differentiable in its defocus row and in C3."""
    from .multislice import _short_slab_correction
    from .optics import aberration_phase, aperture_mask, spatial_frequencies

    d, mic = s["voxel_size"], s["microscope"]
    lam = mic.wavelength
    qy, qx = spatial_frequencies(shape, d, p.defocus.device)
    df = p.defocus[i]
    if opts.defocus_reference == "center":
        df = df + n_z * d / 2
    chi = aberration_phase(qy, qx, df, dataclasses.replace(mic, cs=0.0))
    q2 = qx**2 + qy**2
    chi = chi + torch.pi * lam * q2 * (0.5 * p.c3 * lam**2 * q2)
    h = aperture_mask(qy, qx, mic) * torch.exp(-1j * chi)
    extra = _short_slab_correction(shape, n_z, d, lam, opts, p.defocus.device)
    if extra is not None:
        h = h * extra
    return h.to(torch.complex64)


def _multislice(volume: torch.Tensor, p: AcquisitionParameters, s: dict[str, Any]) -> torch.Tensor:
    """HRTEM images (n, k, Y, X): per tilt, the volume rotated to the tilt's pose, multislice
    with Ren's hand-written gradient (volume and transfer function), one image per defocus,
    then the image shift."""
    from .multislice import MultisliceOptions, _Multislice, _setup, _slabs_from_volume

    if p.defocus is None or p.c3 is None:
        raise ValueError("the multislice model needs defocus values and a microscope.")
    opts = s.get("options") or MultisliceOptions()
    d, mic = s["voxel_size"], s["microscope"]
    shape, n_z = tuple(volume.shape[1:]), volume.shape[0]
    prop, _ = _setup(shape, n_z, d, 0.0, mic, opts, volume.device)
    pose = _multislice_pose(p)
    psi0 = torch.ones(shape, dtype=torch.complex64, device=volume.device)
    out = []
    for i in range(pose.shape[0]):
        slabs = _slabs_from_volume(volume.to(torch.float32), d, pose[i], opts)
        h = _transfer(p, i, shape, n_z, s, opts)
        out.append(
            _Multislice.apply(slabs, psi0, prop, h, mic.sigma, opts.absorption, opts.checkpoint)
        )
    return shift_images(torch.stack(out), p.shifts)


def _multislice_reference(
    volume: torch.Tensor, p: AcquisitionParameters, s: dict[str, Any]
) -> torch.Tensor:
    """The same images by plain autograd: rotate, bin, transmit, propagate, H, |·|²."""
    from .multislice import MultisliceOptions, _setup, bin_slices, rotate_volume

    opts = s.get("options") or MultisliceOptions()
    pose = _multislice_pose(p)
    d, mic = s["voxel_size"], s["microscope"]
    shape, n_z = tuple(volume.shape[1:]), volume.shape[0]
    prop, _ = _setup(shape, n_z, d, 0.0, mic, opts, volume.device)
    out = []
    for i in range(pose.shape[0]):
        w = bin_slices(rotate_volume(volume, pose[i]), opts.n_bin) * d
        if opts.mode == "single":
            w = w.sum(0, keepdim=True)
        psi = torch.ones(shape, dtype=torch.complex64, device=volume.device)
        for m in range(w.shape[0]):
            t = torch.polar(torch.exp(-mic.sigma * opts.absorption * w[m]), mic.sigma * w[m])
            psi = torch.fft.ifft2(torch.fft.fft2(t * psi) * prop)
        img = torch.fft.ifft2(torch.fft.fft2(psi)[None] * _transfer(p, i, shape, n_z, s, opts))
        out.append(img.real**2 + img.imag**2)
    return shift_images(torch.stack(out), p.shifts)


register_model(
    ForwardModel(
        "multislice",
        _multislice,
        (*_POSE, "defocus", "c3"),
        reference=_multislice_reference,
    )
)
