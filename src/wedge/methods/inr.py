"""``inr``: implicit-neural-representation tomography with joint pose learning.

Lim, Casert, McCray, Lee, Barnum, Dionne, Ophus, "Self-supervised electron tomography with
implicit neural representations" (quantEM), §4.1. The volume is an H-Siren network of the
normalised coordinates (:mod:`wedge.inr.field`), each detector pixel is the line integral
of the field along its ray (:mod:`wedge.inr.rays`), and the network weights and, with
``pose=True``, each image's z₁, z₃, δx, δy are fitted by Adam on Smooth-L1 + α·TV
(:mod:`wedge.inr.train`). docs/inr.md has the details, studies and sizes.

``iterations`` counts **epochs** (one pass over every training pixel); the default is
:data:`DEFAULT_EPOCHS`. A hold-out split is always used: the runner option ``holdout``
(fraction of pixels withheld, in (0, 0.5]) defaults to 0.2 here when left unset (None),
0 is refused, and the volume of the lowest hold-out error is returned. Under ``torchrun`` (an
initialised default process group) training is data-parallel (:mod:`wedge.inr.distributed`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import torch

from ..inr.distributed import current
from ..inr.rays import n_samples
from ..problem import Problem
from ..runner import RunOptions, RunResult, data_weight
from ..runner import run as run_iterations
from .registry import register_method

__all__ = ["INROptions", "inr", "DEFAULT_EPOCHS", "DEFAULT_HOLDOUT", "training_bytes"]

#: default number of epochs (``iterations``)
DEFAULT_EPOCHS = 40
#: hold-out fraction used when the runner's ``holdout`` is left unset (None)
DEFAULT_HOLDOUT = 0.2


@dataclasses.dataclass
class INROptions:
    """Options of the ``inr`` method.

    Parameters
    ----------
    width, depth : int
        Hidden units per layer and hidden (sine) layers of the H-Siren; the paper's
        4 × 512 by default. ``width=128, depth=3`` is the CPU size (docs/inr.md).
    lr : float
        Adam learning rate of the network weights (paper: 8e-6).
    pose_lr : float
        Adam learning rate of the pose, in degrees (z₁, z₃) and pixels (δ) (paper: 5e-2).
    pose_angle_lr : float or None
        Adam learning rate of the angles (z₁, z₃ and the common axis offset), degrees per
        step; None uses ``pose_lr`` (the paper's single pose rate).
    pose_angles : {"per_image", "axis", "both"}
        Which angles ``pose=True`` learns: "per_image" z₁ and z₃ of every image (the
        paper's); "axis" one in-plane tilt-axis offset common to all images, added to every
        z₁, and no per-image angles; "both" the common offset and the per-image z₁, z₃.
        The common offset goes beyond the paper (docs/inr.md, "Pose").
    warmup_epochs : int
        Linear learning-rate warm-up; cosine annealing to 0 after it.
    batch_size : int
        Rays per optimiser step per process (global batch = batch_size × ranks).
    loss : {"smooth_l1", "l2"}
        Pixel loss: Smooth-L1 (Eq. 8 with the crossover at |x| = β) or squared error.
    beta : float
        Smooth-L1 crossover β, in units of the normalised images (b / c, c the 99.9th
        percentile of |b|).
    tv_weight : float
        α of Eq. 6 (0 disables TV).
    tv_points : int
        Points per global batch at which |∇φ| is evaluated for the TV term.
    pose : bool
        Learn z₁, z₃ (degrees) and δx, δy (pixels) of every image (needs ≥ 3 images).
    pose_start : int
        Epoch at which pose learning starts.
    sample_step : float
        Distance between samples along a ray, in voxels, once the ramp is over.
    ramp_epochs : int
        Epochs over which the sample count ramps up linearly (0: full from the start).
    ramp_factor : float
        The first epoch samples every ``sample_step × ramp_factor`` voxels (≥ 1).
    lr_scaling : {"none", "sqrt"}
        "sqrt" multiplies both learning rates by √(ranks) (the paper's multi-GPU rule).
    render_chunk : int
        Points per network call when rendering the volume.
    """

    width: int = 512
    depth: int = 4
    lr: float = 8e-6
    pose_lr: float = 5e-2
    pose_angle_lr: float | None = None
    pose_angles: Literal["per_image", "axis", "both"] = "per_image"
    warmup_epochs: int = 10
    batch_size: int = 1024
    loss: Literal["smooth_l1", "l2"] = "smooth_l1"
    beta: float = 0.07
    tv_weight: float = 1e-4
    tv_points: int = 1024
    pose: bool = False
    pose_start: int = 5
    sample_step: float = 1.0
    ramp_epochs: int = 5
    ramp_factor: float = 4.0
    lr_scaling: Literal["none", "sqrt"] = "none"
    render_chunk: int = 1 << 16

    def __post_init__(self) -> None:
        for name in ("width", "depth", "batch_size", "tv_points", "render_chunk"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"inr option {name} must be a positive integer, got {v!r}.")
        for name in ("warmup_epochs", "pose_start", "ramp_epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"inr option {name} must be an integer ≥ 0, got {v!r}.")
        for name in ("lr", "pose_lr", "beta", "sample_step"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"inr option {name} must be a positive number, got {v!r}.")
        v = self.pose_angle_lr
        if v is not None and not (
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        ):
            raise ValueError(
                f"inr option pose_angle_lr must be a positive number or None (use pose_lr), "
                f"got {v!r}."
            )
        if not (isinstance(self.tv_weight, int | float) and self.tv_weight >= 0):
            raise ValueError(f"inr option tv_weight must be ≥ 0, got {self.tv_weight!r}.")
        if not (isinstance(self.ramp_factor, int | float) and self.ramp_factor >= 1):
            raise ValueError(f"inr option ramp_factor must be ≥ 1, got {self.ramp_factor!r}.")
        if self.loss not in ("smooth_l1", "l2"):
            raise ValueError(f"inr option loss must be 'smooth_l1' or 'l2', got {self.loss!r}.")
        if self.pose_angles not in ("per_image", "axis", "both"):
            raise ValueError(
                f"inr option pose_angles must be 'per_image', 'axis' or 'both', got "
                f"{self.pose_angles!r}."
            )
        if self.lr_scaling not in ("none", "sqrt"):
            raise ValueError(
                f"inr option lr_scaling must be 'none' or 'sqrt', got {self.lr_scaling!r}."
            )


def training_bytes(volume_shape: tuple[int, int, int], options: INROptions) -> int:
    """Memory of training beyond the volumes and images: weights with Adam moments and
    gradients, and one batch's saved activations (every sample of every ray, an upper
    bound: points outside the box are not evaluated), TV's double backward included."""
    w, d = options.width, options.depth
    n_par = 4 * w + (d - 1) * (w * w + w) + w + 1
    points = options.batch_size * n_samples(volume_shape, options.sample_step)
    per_point = 4 * (4 * w * d + 16)  # pre-activation, sinh/sin, softplus, coordinates
    tv = options.tv_points * 4 * (8 * w * d)
    return int(16 * n_par + points * per_point + tv)


def _extra_bytes(volume_shape: tuple[int, int, int], options: Any) -> int:
    return training_bytes(volume_shape, options)


def _holdout(run: RunOptions) -> RunOptions:
    if run.holdout is None:
        return dataclasses.replace(run, holdout=DEFAULT_HOLDOUT)
    if not 0.0 < run.holdout <= 0.5:
        raise ValueError(
            f"inr needs a hold-out fraction in (0, 0.5] for its early stopping, got "
            f"{run.holdout}; pass holdout=0.2 (the paper's 80/20 split) or leave it unset."
        )
    return run


@register_method(
    "inr",
    INROptions,
    "implicit neural representation (H-Siren) with pose learning (Lim et al.)",
    kind="model",
    default_iterations=DEFAULT_EPOCHS,
    work_volumes=3.0,
    work_images=4.0,
    extra_bytes=_extra_bytes,
)
def inr(
    problem: Problem,
    iterations: int,
    x0: torch.Tensor | None = None,
    callbacks: tuple = (),
    *,
    options: INROptions,
    run: RunOptions,
) -> RunResult:
    """Train an H-Siren on the series for ``iterations`` epochs (see the module docstring).

    Returns the volume (line-integral density per voxel length, wedge's units) at the
    lowest hold-out error and, with ``pose=True``, the refined acquisition parameters.

    Raises
    ------
    ValueError
        A focal series, ``refine=`` (use ``pose=True``), ``pose=True`` with fewer than 3
        images, a hold-out fraction outside (0, 0.5], an ``x0`` (a network has no voxel
        start), or a warm-up as long as the run.
    """
    from ..inr.train import INRTraining

    series = problem.series
    if series.is_focal_series:
        raise ValueError(
            "inr reconstructs projections (n, Y, X), not a focal series; average each tilt's "
            "focal series first."
        )
    if problem.refine:
        raise ValueError(
            "inr learns its own pose (z1, z3, dx, dy per image) with pose=True; drop refine=."
        )
    if options.pose and series.n_tilts < 3:
        raise ValueError(
            f"pose=True needs at least 3 images to tell pose from volume, got "
            f"{series.n_tilts}; set pose=False."
        )
    if x0 is not None:
        raise ValueError("inr starts from a random network and takes no x0; drop x0=.")
    run = _holdout(run)
    if options.warmup_epochs >= iterations and iterations > 1:
        raise ValueError(
            f"warmup_epochs ({options.warmup_epochs}) must be shorter than the run "
            f"({iterations} epochs); lower warmup_epochs or raise iterations."
        )
    ranks = current()
    if ranks.rank > 0 and run.checkpoint is not None:  # one file per rank
        run = dataclasses.replace(run, checkpoint=f"{run.checkpoint}.rank{ranks.rank}")
    images = problem.images()
    weight = data_weight(images, run)
    assert weight is not None
    alg = INRTraining(problem, options, weight, ranks, seed=run.seed)
    alg.total_epochs = iterations
    x = torch.zeros(problem.volume_shape, device=problem.device)
    result = run_iterations(alg, x, iterations, run, callbacks, name="inr")
    best = alg.last_state["best_x"] if alg.last_state is not None else result.x
    params = alg.parameters_out() if options.pose else None
    return dataclasses.replace(result, x=best, parameters=params)
