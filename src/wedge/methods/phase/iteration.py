"""The outer iteration of multislice phase-retrieval tomography (one sweep over the tilts).

Schemes (``PhaseOptions.scheme``):

``ren``  Ren et al. (2020) Algorithm 3: for each tilt k in turn, the loss gradient of that
         tilt's focal series with respect to the rotated, binned volume (Algorithm 2) is
         back-rotated by the adjoint of the rotation and binning (R†B†, line 10) and
         subtracted from the momentum point U with step α; after the sweep,
         V⁽ˢ⁾ = prox(U) (TV by FGP or L1 soft threshold, positivity, support; line 12), then
         Nesterov: β⁽ˢ⁺¹⁾ = (1 + √(1 + 4β⁽ˢ⁾²))/2,
         U⁽ˢ⁺¹⁾ = V⁽ˢ⁾ + ((β⁽ˢ⁾ − 1)/β⁽ˢ⁺¹⁾)(V⁽ˢ⁾ − V⁽ˢ⁻¹⁾). Starts from zero with β⁽¹⁾ = 1.
``gd``   PhaseT3M Algorithm 1: the same per-tilt gradient step, positivity (and support)
         after each tilt, no momentum (the prox, if any, after the sweep).
``adam`` Adam on the per-tilt gradients (learning rate ``step`` in V), positivity after each
         tilt.

Step α (``ren``, ``gd``): α = step / L_k with L_k = c·k·Z·(σd)², the weak-phase estimate of
the largest curvature of one tilt's loss with respect to the voxels of a beam column
(k defocus images, Z voxels, each changing the image amplitude by at most σd; c = 2 for the
amplitude loss, 8 for intensity, 4 for Poisson). ``step = 1`` is the linearised 1/L.

Refined acquisition parameters get their gradients from the same sweeps (summed over the
tilts) and take one Adam step per outer iteration, with learning rates ``REFINE_LR`` ×
``refine_lr`` decaying by ``refine_decay`` per iteration (so a parameter can travel at most
about lr/(1 − decay) in total: 10 × lr for the default 0.9).

``focal_shifts`` (n, k, 2) px translate each image of a tilt's focal series on top of the
tilt's ``shifts`` (focal alignment). Gauge: a common translation of a tilt's k images is
the tilt's ``shifts``, so the focal shifts' mean over each tilt's images is held at its
starting value (zero by default): their gradient is projected onto mean-zero per tilt
before the Adam step and the values are projected back after it.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ...multislice import MultisliceOptions
from ...parameters import AcquisitionParameters
from ...problem import Problem
from ...runner import Iteration
from .frame import _POSE_NAMES, BeamFrame
from .prox import soft_threshold, tv_prox_fgp

__all__ = ["PhaseIteration", "LOSS_CURVATURE", "REFINE_LR"]

#: c of the step normalisation L_k = c·k·Z·(σd)² per loss
LOSS_CURVATURE = {"amplitude": 2.0, "intensity": 8.0, "poisson": 4.0}

#: Adam learning rates of the refined parameters per outer iteration (× ``refine_lr``), in
#: their own units: px, degrees, Å; C3 relative to its starting value
REFINE_LR = {
    "shifts": 0.2,
    "tilt": 0.1,
    "phi": 0.1,
    "psi": 0.1,
    "tilt_axis": 0.1,
    "defocus": 20.0,
    "c3": 0.02,
    "focal_shifts": 0.2,
}

_EPS = 1e-6


class PhaseIteration(Iteration):
    """One outer iteration = one sequential sweep over every tilt (see the module notes).

    The runner's data are the measured amplitudes √I (n, k, Y, X), so its ``r_factor`` is
    the amplitude R-factor Σ|√Î − √I| / Σ√I and ``residual_norm`` is ‖√Î − √I‖. By default
    the predictions it scores are those made during the sweep (each tilt just before its
    own update, as Ren's cost curves); ``exact_history`` scores V⁽ˢ⁾ with one more forward
    pass per iteration.
    """

    def __init__(
        self,
        problem: Problem,
        options: Any,
        weight: torch.Tensor | None,
        mode: str,
        n_bin: int,
        meas: torch.Tensor,
    ) -> None:
        amp = torch.sqrt(meas)
        super().__init__(None, amp, weight)
        self.problem, self.options, self.mode = problem, options, mode
        self.meas = meas
        s = problem.series
        self.params = AcquisitionParameters(
            s, problem.refine, problem.device, focal_shifts=getattr(options, "focal_shifts", None)
        )
        fs = self.params.focal_shifts
        #: the per-tilt mean of the focal shifts, held fixed (the gauge against ``shifts``)
        self.focal_mean = None if fs is None else fs.detach().mean(1, keepdim=True).clone()
        ms = MultisliceOptions(
            n_bin=n_bin,
            mode="single" if mode == "singleslice" else "multislice",
            checkpoint=options.wave_checkpoint,
        )
        self.frame = BeamFrame(
            problem.volume_shape, s.pixel_size, s.microscope, ms, options.padding, problem.device
        )
        self.n, self.k = meas.shape[0], meas.shape[1]
        sd = s.microscope.sigma * s.pixel_size
        curv = LOSS_CURVATURE[options.loss] * self.k * problem.volume_shape[0] * sd * sd
        self.alpha = options.step / curv
        self.support = None
        if options.support is not None:
            self.support = torch.as_tensor(options.support, device=problem.device).to(torch.float32)
        self.refine_pose = any(n in problem.refine for n in _POSE_NAMES)
        self.popt: torch.optim.Optimizer | None = None
        self.last_loss = math.nan

    # ------------------------------------------------------------------ identity
    def identity(self) -> dict[str, str]:
        s = self.problem.series
        return {
            "mode": self.mode,
            "refine": str(self.problem.refine),
            "angles": repr(s.euler_angles().round(6).tolist()),
            "pixel_size": repr(s.pixel_size),
            "n_bin": repr(self.frame.opts.n_bin),
        }

    # ------------------------------------------------------------------ pieces
    def _loss(self, pred: torch.Tensor, i: int, per_image: bool = False) -> torch.Tensor:
        """Data loss of tilt ``i``'s predicted images ``pred`` (..., k, Y, X): summed, or
        per image (..., k) with ``per_image``."""
        m = self.meas[i]
        kind = self.options.loss
        if kind == "amplitude":  # Ren eq. 5
            val = (torch.sqrt(pred.clamp(min=0) + _EPS) - torch.sqrt(m)) ** 2
        elif kind == "intensity":
            val = (pred - m) ** 2
        else:  # Poisson deviance in units of the normalised intensity (dose factor dropped)
            p = pred.clamp(min=0) + _EPS
            val = p - m - m * torch.log(p / (m + _EPS))
        if self.weight is not None:
            val = val * self.weight[i]
        return val.sum((-2, -1)) if per_image else val.sum()

    def _constrain(self, v: torch.Tensor) -> torch.Tensor:
        if self.options.positivity:
            v = v.clamp(min=0)
        if self.support is not None:
            v = v * self.support
        return v

    def _prox(self, u: torch.Tensor) -> torch.Tensor:
        """Ren Algorithm 3 line 12: the regulariser's prox with positivity, then support."""
        o = self.options
        lam = o.prox_weight
        if o.regulariser == "tv" and lam > 0:
            v = tv_prox_fgp(u, lam, o.tv_iterations, nonnegative=o.positivity)
        elif o.regulariser == "l1" and lam > 0:
            v = soft_threshold(u, lam, nonnegative=o.positivity)
        else:
            v = u.clamp(min=0) if o.positivity else u
        return v * self.support if self.support is not None else v

    def _live(self, state: dict[str, Any]) -> None:
        """Rebuild the parameter optimiser (also after a resume) from the state."""
        if self.popt is not None or not self.params.refine:
            return
        self.params.load_state_dict(state["params"])
        groups = []
        for name in self.params.refine:
            t = getattr(self.params, name)
            lr = REFINE_LR[name] * self.options.refine_lr
            if name == "c3":
                lr *= max(abs(float(t.detach())), 1e4)
            groups.append({"params": [t], "lr": lr, "base_lr": lr})
        self.popt = torch.optim.Adam(groups)
        if "popt" in state:
            self.popt.load_state_dict(state["popt"])

    def _focal_gauge(self, grad: bool) -> None:
        """Project the focal shifts' gradient (``grad``) or values onto the gauge: each
        tilt's mean over its images stays at :attr:`focal_mean`."""
        fs = self.params.focal_shifts
        if fs is None or not fs.requires_grad:
            return
        with torch.no_grad():
            if grad and fs.grad is not None:
                fs.grad.sub_(fs.grad.mean(1, keepdim=True))
            elif not grad:
                fs.sub_(fs.mean(1, keepdim=True) - self.focal_mean)

    # ------------------------------------------------------------------ Iteration
    def init(self, x0: torch.Tensor) -> dict[str, Any]:
        x = x0.to(torch.float32)
        state: dict[str, Any] = {
            "x": x,
            "u": x.clone(),
            "beta": torch.tensor(1.0, dtype=torch.float64),
            "params": self.params.state_dict(),
        }
        if self.options.scheme == "adam":
            state["m"] = torch.zeros_like(x)
            state["v"] = torch.zeros_like(x)
            state["t"] = torch.tensor(0, dtype=torch.int64)
        return state

    def step(self, state: dict[str, Any], k: int) -> dict[str, Any]:
        self._live(state)
        o = self.options
        refine_now = bool(self.params.refine) and k + 1 >= o.refine_after
        pose_now = self.refine_pose and refine_now
        u = state["u"].clone()
        m, v = (state["m"].clone(), state["v"].clone()) if o.scheme == "adam" else (None, None)
        t_adam = int(state["t"]) if o.scheme == "adam" else 0
        ax = torch.empty_like(self.data) if not o.exact_history else None
        if self.popt is not None:
            self.popt.zero_grad()
        total = 0.0
        for i in range(self.n):
            leaf = u.detach().requires_grad_(True)
            with torch.enable_grad():
                pred = self.frame.images(leaf, self.params, i, pose_now)
                loss = self._loss(pred, i)
                loss.backward()
            g = leaf.grad
            total += float(loss.detach())
            if ax is not None:
                ax[i] = torch.sqrt(pred.detach().clamp(min=0))
            with torch.no_grad():
                if o.scheme == "adam":
                    t_adam += 1
                    m.mul_(0.9).add_(g, alpha=0.1)
                    v.mul_(0.999).addcmul_(g, g, value=0.001)
                    mh = m / (1 - 0.9**t_adam)
                    vh = v / (1 - 0.999**t_adam)
                    u = self._constrain(u - o.step * mh / (torch.sqrt(vh) + 1e-12))
                else:
                    u = u - self.alpha * g
                    if o.scheme == "gd":
                        u = self._constrain(u)
        if self.popt is not None:
            if refine_now:
                decay = o.refine_decay ** (k + 1 - o.refine_after)
                for grp in self.popt.param_groups:
                    grp["lr"] = grp["base_lr"] * decay
                self._focal_gauge(grad=True)
                self.popt.step()
                self._focal_gauge(grad=False)
            self.popt.zero_grad()
        with torch.no_grad():
            x_new = self._prox(u)
            beta = float(state["beta"])
            if o.scheme == "ren":
                beta_next = (1.0 + math.sqrt(1.0 + 4.0 * beta * beta)) / 2.0
                u_next = x_new + ((beta - 1.0) / beta_next) * (x_new - state["x"])
            else:
                beta_next, u_next = beta, x_new
        self.last_loss = total
        out: dict[str, Any] = {
            "x": x_new,
            "u": u_next,
            "beta": torch.tensor(beta_next, dtype=torch.float64),
            "params": self.params.state_dict(),
        }
        if ax is not None:
            out["ax"] = ax
        if o.scheme == "adam":
            out.update(m=m, v=v, t=torch.tensor(t_adam, dtype=torch.int64))
        if self.popt is not None:
            out["popt"] = self.popt.state_dict()
        return out

    def predict(self, state: dict[str, Any]) -> torch.Tensor:
        """Amplitudes √Î (n, k, Y, X) of V⁽ˢ⁾ = ``state["x"]`` (one forward pass)."""
        out = torch.empty_like(self.data)
        with torch.no_grad():
            for i in range(self.n):
                out[i] = torch.sqrt(self.frame.images(state["x"], self.params, i, False).clamp(0))
        return out

    def loss(self, volume: torch.Tensor) -> float:
        """The total data loss of ``volume`` over every tilt (no gradient)."""
        total = 0.0
        with torch.no_grad():
            for i in range(self.n):
                total += float(self._loss(self.frame.images(volume, self.params, i, False), i))
        return total
