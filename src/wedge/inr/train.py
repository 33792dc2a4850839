"""INR training as a :class:`wedge.runner.Iteration`: one runner iteration is one epoch.

An epoch visits every training pixel once, in seeded random order, in global batches of
``batch_size × ranks`` rays (one ray per detector pixel, :mod:`.rays`). Per batch:

* the predicted pixel is the line integral of the field (Eq. 7's I_pred), in units of the
  normalised images ``b / c`` (c: the 99.9th percentile of |b|), with the sample count
  ramped from ``⌈L / (step·ramp_factor)⌉`` at epoch 0 to ``⌈L / step⌉`` at ``ramp_epochs``
  (L the box diagonal);
* the loss is Eq. 6, ``L_pixel + α L_TV``. L_pixel is the mean over the batch of
  Smooth-L1 with the crossover at |x| = β (``0.5 x²/β`` for ``|x| < β``, ``|x| − β/2``
  otherwise: the continuous form; Eq. 8 as printed tests ``|x| < 1``, which jumps at 1),
  or of ``x²`` with ``loss="l2"``. L_TV (Eq. 9) is the mean of ``|∇_r φ|`` (autograd, r in
  normalised box coordinates) over ``tv_points`` points drawn at random among the batch's
  samples (points outside the box count zero);
* Adam (two groups: network ``lr``, pose ``pose_lr``) with one learning-rate factor:
  linear warm-up over ``warmup_epochs``, then cosine annealing to 0 at the last epoch;
  pose learning starts at epoch ``pose_start``.

After the epoch the held-out pixels are predicted (midpoint samples, full count), the
field is rendered to the voxel grid (the state's ``"x"``) and the runner records the
history; the state keeps the volume of the lowest hold-out error, which the method returns.
The images the runner scores (``state["ax"]``) hold, on training pixels, the predictions
made while training during the epoch and, on held-out pixels, the end-of-epoch ones.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..geometry import rotation_z
from ..parameters import AcquisitionParameters
from ..problem import Problem
from ..runner import Iteration
from .distributed import Ranks
from .field import HSiren
from .rays import Pose, RayGeometry, line_integrals, matrix_to_euler, n_samples
from .render import render_volume

if TYPE_CHECKING:
    from ..methods.inr import INROptions

__all__ = ["INRTraining", "lr_factor", "samples_at", "data_scale"]

#: bytes of one activation tensor when predicting whole images (bounds the rays per call)
_EVAL_BYTES = 1 << 28


def lr_factor(epoch: float, warmup: int, total: int) -> float:
    """Learning-rate factor at (fractional) ``epoch`` ∈ [0, total): warm-up, then cosine."""
    if warmup > 0 and epoch < warmup:
        return min(1.0, epoch / warmup)
    span = max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (epoch - warmup) / span)))


def samples_at(epoch: int, full: int, start: int, ramp_epochs: int) -> int:
    """Samples per ray at ``epoch``: linear from ``start`` to ``full`` over ``ramp_epochs``."""
    if ramp_epochs <= 0 or epoch >= ramp_epochs:
        return full
    return int(round(start + (full - start) * epoch / ramp_epochs))


def data_scale(images: torch.Tensor) -> float:
    """The normalisation c of the images: the 99.9th percentile of |b| (1 if that is 0)."""
    flat = images.detach().reshape(-1).abs().float()
    flat = flat[:: max(1, flat.numel() // 1_000_000)]
    c = float(torch.quantile(flat, 0.999))
    return c if c > 0 else 1.0


class INRTraining(Iteration):
    """The INR method on the shared runner (see the module docstring).

    Parameters
    ----------
    problem : Problem
    options : INROptions
    weight : tensor (n, Y, X)
        0/1 training mask (the runner's hold-out split).
    ranks : Ranks
        This process's rank and the world size (one process by default).
    seed : int
        Seeds the network initialisation, the ray order, the jitter and the TV points.
    """

    def __init__(
        self,
        problem: Problem,
        options: INROptions,
        weight: torch.Tensor,
        ranks: Ranks | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(None, problem.images(), weight)
        ranks = Ranks() if ranks is None else ranks
        self.problem, self.options, self.ranks, self.seed = problem, options, ranks, seed
        self.total_epochs = 1
        dev = problem.device
        self.geom = RayGeometry(problem.volume_shape, problem.series.image_shape)
        self.scale = data_scale(self.data)
        self.target = (self.data / self.scale).reshape(-1)
        # predicted normalised pixel = Σ φ h · 2/m  (box side 2 over m voxels)
        self.unit = 2.0 / max(problem.volume_shape)
        flat_w = weight.reshape(-1)
        self.train_idx = torch.nonzero(flat_w > 0.5).squeeze(1)
        self.held_idx = torch.nonzero(flat_w <= 0.5).squeeze(1)
        self.held = (1.0 - weight).reshape(self.data.shape)
        self.b_held = float(torch.linalg.vector_norm(self.data * self.held)) or 1.0
        self.s_full = n_samples(problem.volume_shape, options.sample_step)
        self.s_start = min(
            self.s_full, n_samples(problem.volume_shape, options.sample_step * options.ramp_factor)
        )
        gen = torch.Generator().manual_seed(seed)
        self.net = HSiren(options.width, options.depth, generator=gen).to(dev)
        params = AcquisitionParameters(problem.series, (), dev)
        self.nominal_tilt = params.tilt.detach()
        self.pose = Pose(
            params.matrices(torch.float64).detach(),
            params.shifts.detach(),
            axis=options.pose_angles in ("axis", "both"),
            per_image=options.pose_angles in ("per_image", "both"),
        )
        self._init_output_bias()
        self.lr_mult = math.sqrt(ranks.world) if options.lr_scaling == "sqrt" else 1.0
        self.opt: torch.optim.Adam | None = None
        self.last_state: dict[str, Any] | None = None

    # ---------------------------------------------------------------- runner contract
    def identity(self) -> dict[str, str]:
        """Geometry, world size and the number of epochs (the schedule depends on it)."""
        return {
            "geometry": repr(self.problem.geometry().to("cpu")),
            "ranks": str(self.ranks.world),
            "epochs": str(self.total_epochs),
        }

    def init(self, x0: torch.Tensor) -> dict[str, Any]:
        return {
            "x": x0,
            "net": self.net.state_dict(),
            "pose": self.pose.state_dict(),
            "best_x": x0.clone(),
            "best_err": torch.tensor(math.inf),
            "field_scale": torch.tensor(self.scale * self.unit),
        }

    def predict(self, state: dict[str, Any]) -> torch.Tensor:
        self._live(state)
        idx = torch.arange(self.target.numel(), device=self.target.device)
        return (self._evaluate(idx) * self.scale).reshape(self.data.shape)

    def step(self, state: dict[str, Any], k: int) -> dict[str, Any]:
        self._live(state)
        assert self.opt is not None
        o, dev = self.options, self.target.device
        b_global = o.batch_size * self.ranks.world
        n_train = self.train_idx.numel()
        steps = max(1, math.ceil(n_train / b_global))
        s_k = samples_at(k, self.s_full, self.s_start, o.ramp_epochs)
        learn_pose = o.pose and k >= o.pose_start
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + k)
        perm = torch.randperm(n_train, generator=gen).to(dev)
        ax = torch.zeros_like(self.target)
        for j in range(steps):
            batch = self.train_idx[perm[j * b_global : (j + 1) * b_global]]
            nb = batch.numel()
            jitter = torch.rand(nb, generator=gen).to(dev)
            tv_ray = torch.randint(0, nb, (o.tv_points,), generator=gen).to(dev)
            tv_k = torch.randint(0, s_k, (o.tv_points,), generator=gen).to(dev)
            f = lr_factor(k + j / steps, o.warmup_epochs, self.total_epochs)
            for group in self.opt.param_groups:
                group["lr"] = group["base_lr"] * self.lr_mult * f
            mine = self.ranks.share(nb)
            m, delta = self.pose.effective()
            if not learn_pose:
                m, delta = m.detach(), delta.detach()
            self.opt.zero_grad(set_to_none=True)
            t, h = self.geom.points(batch[mine], m, delta, s_k, jitter[mine])
            pred = line_integrals(self.net, t, h) * self.unit
            res = pred - self.target[batch[mine]]
            if o.loss == "l2":
                pix = (res * res).sum()
            else:
                pix = F.smooth_l1_loss(res, torch.zeros_like(res), beta=o.beta, reduction="sum")
            loss = pix / nb
            if o.tv_weight > 0:
                loss = loss + o.tv_weight * self._tv(t, tv_ray, tv_k, mine) / o.tv_points
            loss.backward()
            self.ranks.sum_grads(self.opt.param_groups[0]["params"])
            if learn_pose:
                self.ranks.sum_grads(self.pose.parameters())
            self.opt.step()
            if learn_pose:
                self.pose.fix_gauge()
            ax[batch[mine]] = pred.detach()
        held = self.held_idx[self.ranks.share(self.held_idx.numel())]
        ax[held] = self._evaluate(held)
        self.ranks.sum_(ax)
        ax = (ax * self.scale).reshape(self.data.shape)
        x = self.render(self.problem.volume_shape)
        err = float(torch.linalg.vector_norm((ax - self.data) * self.held)) / self.b_held
        best_x, best_err = state["best_x"], state["best_err"]
        if err < float(best_err):
            best_x, best_err = x.clone(), torch.tensor(err)
        self.last_state = {
            "x": x,
            "ax": ax,
            "net": self.net.state_dict(),
            "pose": self.pose.state_dict(),
            "adam": self.opt.state_dict(),
            "best_x": best_x,
            "best_err": best_err,
            "field_scale": torch.tensor(self.scale * self.unit),
        }
        return self.last_state

    # ---------------------------------------------------------------- pieces
    @torch.no_grad()
    def _init_output_bias(self) -> None:
        """Start the field near the data's mean density: the output bias is set so that
        ``softplus(bias)`` = mean(b/c) / mean path length of the rays in the box (the paper
        leaves biases unstated; starting from softplus(0) ≈ 0.69 everywhere costs epochs)."""
        idx = self.train_idx[:: max(1, self.train_idx.numel() // 4096)]
        m, delta = self.pose.effective()
        t, h = self.geom.points(idx, m, delta, self.s_full, None)
        path = float(line_integrals(lambda p: torch.ones_like(p[:, 0]), t, h).mean()) * self.unit
        rho = float(self.target[idx].mean()) / path if path > 0 else 0.0
        rho = min(max(rho, 1e-3), 20.0)
        self.net.out.bias.fill_(math.log(math.expm1(rho)))

    def _live(self, state: dict[str, Any]) -> None:
        """Build the optimiser and load the state (the first step, also after a resume)."""
        if self.opt is not None:
            return
        self.net.load_state_dict(state["net"])
        self.pose.load_state_dict(state["pose"])
        o = self.options
        groups = [{"params": list(self.net.parameters()), "base_lr": o.lr}]
        if o.pose:
            angle_lr = o.pose_lr if o.pose_angle_lr is None else o.pose_angle_lr
            groups.append({"params": self.pose.angles(), "base_lr": angle_lr})
            groups.append({"params": [self.pose.delta], "base_lr": o.pose_lr})
        for g in groups:
            g["lr"] = g["base_lr"]
        self.opt = torch.optim.Adam(groups)
        if "adam" in state:
            self.opt.load_state_dict(state["adam"])

    def _tv(self, t: torch.Tensor, ray: torch.Tensor, k: torch.Tensor, mine: slice) -> torch.Tensor:
        """Σ |∇φ| over the TV points that fall on this rank's rays (outside the box: 0)."""
        keep = (ray >= mine.start) & (ray < mine.stop)
        pts = t[ray[keep] - mine.start, k[keep]].detach()
        pts = pts[(pts.abs() <= 1.0).all(dim=-1)].requires_grad_(True)
        if pts.shape[0] == 0:
            return t.new_zeros(())
        phi = self.net(pts)
        (g,) = torch.autograd.grad(phi.sum(), pts, create_graph=True)
        return torch.sqrt((g * g).sum(-1) + 1e-12).sum()

    @torch.no_grad()
    def _evaluate(self, idx: torch.Tensor) -> torch.Tensor:
        """Normalised predicted pixels of flat indices ``idx`` (midpoints, full sampling)."""
        m, delta = self.pose.effective()
        rays = max(1, _EVAL_BYTES // (4 * self.options.width * self.s_full))
        out = []
        for a in range(0, idx.numel(), rays):
            t, h = self.geom.points(idx[a : a + rays], m, delta, self.s_full, None)
            out.append(line_integrals(self.net, t, h) * self.unit)
        if not out:
            return self.target.new_zeros(0)
        return torch.cat(out)

    def render(self, shape: tuple[int, int, int]) -> torch.Tensor:
        """The field on a (Z, Y, X) grid in wedge's units (line-integral density per voxel)."""
        zs = self.ranks.share(shape[0])
        vol = render_volume(
            self.net,
            shape,
            width=self.options.width,
            device=self.target.device,
            chunk=self.options.render_chunk,
            z_range=(zs.start, zs.stop),
        )
        self.ranks.sum_(vol)
        return vol * (self.scale * self.unit)

    def parameters_out(self) -> AcquisitionParameters:
        """The refined acquisition parameters: R_eff as wedge Euler angles (α kept), δ as
        shifts."""
        p = AcquisitionParameters(self.problem.series, (), self.target.device)
        with torch.no_grad():
            r = self.pose.rotations()
            alpha = torch.deg2rad(p.tilt_axis.detach())
            e = matrix_to_euler(rotation_z(-alpha).to(r) @ r, self.nominal_tilt)
            p.phi.copy_(e[:, 0])
            p.tilt.copy_(e[:, 1])
            p.psi.copy_(e[:, 2])
            p.shifts.copy_(self.pose.delta)
        return p
