"""The two averaging baselines that CRM is compared against (Han et al., 2020, §4).

Both reconstruct every copy on its own (SART, SIRT or Kaczmarz from zero, wedge's
``wedge.methods.algebraic``), bring each reconstruction into the object's canonical frame
with the copy's pose (:func:`wedge.average.poses.extract_operator`: object voxel ``p``
takes the copy's value at ``R p + t``, trilinear) and combine them:

``simple_average`` (Eq. 4)
    ``ĥ = s ⊙ (1/N) Σᵢ Eᵢ fᵢ``, ``s`` the support.
``masked_fourier_average`` (Schmid & Booth 2008; Förster et al. 2005)
    ``ĥ = s ⊙ F⁻¹[ Σᵢ Mᵢ F(Eᵢ fᵢ) / Σᵢ Mᵢ ]`` over the Fourier voxels where ``Σᵢ Mᵢ > 0``
    (zero elsewhere). ``Mᵢ`` is copy ``i``'s measured region in the object frame (see
    :func:`wedge_mask`). The extracted box is transformed unmasked; the support is
    applied to the result.

Only object-sized accumulators and one copy are resident at a time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .._backend import resolve_device
from ..geometry import Geometry
from ..methods.algebraic import (
    ARTOptions,
    SARTOptions,
    SIRTOptions,
    art,
    sart,
    sirt,
)
from ..projectors import make_projector
from ..runner import RunOptions
from ..tiltseries import TiltSeries
from .crm import _check_common
from .poses import extract_operator, place_operator, pose_matrices
from .result import AverageProblem, AverageResult, prepare

__all__ = ["AverageOptions", "simple_average", "masked_fourier_average", "wedge_mask", "METHODS"]

#: per-copy reconstruction methods of the baselines
METHODS = ("sart", "sirt", "kaczmarz")


@dataclasses.dataclass
class AverageOptions:
    """Options of the baselines' per-copy reconstructions.

    Parameters
    ----------
    positivity : bool
        Clip each copy's reconstruction at zero after every update.
    model : str
        Projector model (``"ray"``, ``"voxel"``, ``"fourier"``).
    """

    positivity: bool = False
    model: str = "ray"


def wedge_mask(geometry: Geometry, pose: np.ndarray, object_shape: Sequence[int]) -> np.ndarray:
    """Copy's measured Fourier region in the object frame, boolean, ``numpy.fft.fftn`` layout.

    Image ``j`` (rotation ``Mⱼ = Z(α) Rⱼ``) measures the central plane normal to its beam
    direction ``dⱼ = Rᵀ Mⱼᵀ e_z`` in the object frame (Fourier slice theorem; ``R`` the
    pose's rotation). A frequency ``k`` (cycles/voxel, (x, y, z)) counts as measured when
    ``minⱼ |k·dⱼ| ≤ max(½ Fourier voxel, |k| sin δ)``, ``δ`` half the largest angular
    gap between neighbouring directions (1.5° for a 3° tilt step): the planes fill the
    tilt range and nothing beyond it, the usual binary missing-wedge mask.
    """
    shape = tuple(int(v) for v in object_shape)
    m = geometry.matrices().numpy()
    r = pose_matrices(np.asarray(pose, np.float64)[None])[0]
    d = (r.T @ m[:, 2, :].T).T  # (n, 3) beam directions in the object frame
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    if len(d) > 1:
        cos = np.abs(d @ d.T)
        np.fill_diagonal(cos, -1.0)
        gap = np.arccos(np.clip(cos.max(axis=1), -1.0, 1.0))
        delta = 0.5 * float(gap.max()) + 1e-6
    else:
        delta = 0.0
    kz, ky, kx = (np.fft.fftfreq(n) for n in shape)
    k = np.stack(np.meshgrid(kz, ky, kx, indexing="ij"), -1)[..., ::-1]  # (Z, Y, X, (x, y, z))
    big = max(n for n in shape)
    half_voxel = 0.5 / big
    kn = np.linalg.norm(k, axis=-1)
    dist = np.full(shape, np.inf)
    for dj in d:  # a loop over images; each is one vectorised pass over the frequencies
        np.minimum(dist, np.abs(k @ dj), out=dist)
    return dist <= np.maximum(half_voxel, kn * math.sin(delta))


def _method(name: str) -> tuple[Callable[..., Any], Any]:
    if name == "sart":
        return sart, SARTOptions
    if name == "sirt":
        return sirt, SIRTOptions
    if name == "kaczmarz":
        return art, ARTOptions
    raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}.")


def _each_copy(
    problem: AverageProblem,
    method: str,
    iterations: int,
    relaxation: float,
    options: AverageOptions,
    run: RunOptions,
    device: torch.device,
):
    """Yield (i, reconstruction of copy i, its history), one copy at a time."""
    fn, opt_cls = _method(method)
    opts = opt_cls(relaxation=relaxation, positivity=options.positivity)
    per_copy_run = dataclasses.replace(run, reference=None, checkpoint=None)
    for i in range(problem.n_copies):
        series: TiltSeries = problem.copies[i]
        op = make_projector(problem.geometries[i].to(device), options.model)
        b = torch.from_numpy(np.asarray(series.images, np.float32)).to(device)
        res = fn(op, b, iterations, options=opts, run=per_copy_run)
        yield i, res.x, res.history, b.numel()


def _combine_histories(hists: list[list[dict[str, float]]], sizes: list[int]) -> list[dict]:
    out = []
    n = min(len(h) for h in hists)
    for k in range(n):
        sq = sum(h[k]["residual_norm"] ** 2 for h in hists)
        out.append(
            {
                "iteration": float(k + 1),
                "residual_norm": math.sqrt(sq),
                "rms_reprojection_error": math.sqrt(sq / sum(sizes)),
                "r_factor": float(np.mean([h[k]["r_factor"] for h in hists])),
                "time_s": float(sum(h[k]["time_s"] for h in hists)),
            }
        )
    return out


def _average(
    kind: str,
    copies: Sequence[TiltSeries],
    poses: Any,
    object_shape: Sequence[int],
    support: Any,
    method: str,
    iterations: int,
    relaxation: float,
    volume_shape: Any,
    options: AverageOptions | None,
    return_backgrounds: bool,
    run: RunOptions | None,
    device: Any,
) -> AverageResult:
    _check_common(iterations, relaxation)
    _method(method)
    options = options or AverageOptions()
    run = run or RunOptions(progress=False)
    problem = prepare(copies, poses, object_shape, support, volume_shape)
    dev = resolve_device(device)
    shape = problem.object_shape
    acc = torch.zeros(shape, dtype=torch.complex64 if kind == "masked-fourier" else torch.float32)
    weight = torch.zeros(shape)
    hists, sizes, backgrounds = [], [], []
    sup = torch.from_numpy(problem.support.astype(np.float32))
    for i, vol, hist, size in _each_copy(
        problem, method, iterations, relaxation, options, run, dev
    ):
        ext = extract_operator(problem.poses[i], shape, problem.volume_shapes[i], dev)
        obj = ext.forward(vol).cpu()
        if kind == "masked-fourier":
            mask = torch.from_numpy(wedge_mask(problem.geometries[i], problem.poses[i], shape))
            acc += torch.fft.fftn(obj) * mask
            weight += mask
        else:
            acc += obj
        hists.append(hist)
        sizes.append(size)
        if return_backgrounds:
            place = place_operator(problem.poses[i], shape, problem.volume_shapes[i], dev)
            foot = place.forward(sup.to(dev)) > 0
            backgrounds.append((vol * (~foot)).cpu().numpy())
    if kind == "masked-fourier":
        avg = torch.fft.ifftn(torch.where(weight > 0, acc / weight.clamp_min(1), 0)).real
    else:
        avg = acc / problem.n_copies
    obj_np = (avg * sup).numpy().astype(np.float32)
    return AverageResult(
        object=obj_np,
        method=kind,
        history=_combine_histories(hists, sizes),
        support=problem.support,
        backgrounds=backgrounds if return_backgrounds else None,
    )


def simple_average(
    copies: Sequence[TiltSeries],
    poses: Any,
    object_shape: Sequence[int],
    *,
    support: Any = None,
    method: str = "sart",
    iterations: int = 20,
    relaxation: float = 0.2,
    volume_shape: Any = None,
    options: AverageOptions | None = None,
    return_backgrounds: bool = False,
    run: RunOptions | None = None,
    device: str | torch.device | None = None,
) -> AverageResult:
    """Reconstruct every copy, extract the object by its pose and average (Eq. 4).

    Parameters are those of :func:`wedge.average.crm` (copies, poses, object_shape,
    support, iterations, relaxation, volume_shape, run, device), plus ``method``
    (``"sart"``, ``"sirt"`` or ``"kaczmarz"``: wedge's ``sart``, ``sirt``, ``art``, each
    copy from zero) and :class:`AverageOptions`.

    Returns
    -------
    AverageResult
        ``object`` = support ⊙ the mean of the extracted copies; ``history`` combines the
        copies' runner records per iteration (``rms_reprojection_error``: Eq. 25 over all
        copies); ``backgrounds``: each copy's reconstruction with the object's footprint
        zeroed, on request.
    """
    return _average(
        "simple", copies, poses, object_shape, support, method, iterations, relaxation,
        volume_shape, options, return_backgrounds, run, device,
    )  # fmt: skip


def masked_fourier_average(
    copies: Sequence[TiltSeries],
    poses: Any,
    object_shape: Sequence[int],
    *,
    support: Any = None,
    method: str = "sart",
    iterations: int = 20,
    relaxation: float = 0.2,
    volume_shape: Any = None,
    options: AverageOptions | None = None,
    return_backgrounds: bool = False,
    run: RunOptions | None = None,
    device: str | torch.device | None = None,
) -> AverageResult:
    """Average the copies in Fourier space, each weighted by its missing-wedge mask.

    As :func:`simple_average`, but the extracted copies are combined as
    ``F⁻¹[Σᵢ Mᵢ F(Eᵢ fᵢ) / Σᵢ Mᵢ]`` with :func:`wedge_mask` ``Mᵢ`` (zero where no copy
    measured), then multiplied by the support.
    """
    return _average(
        "masked-fourier", copies, poses, object_shape, support, method, iterations,
        relaxation, volume_shape, options, return_backgrounds, run, device,
    )  # fmt: skip
