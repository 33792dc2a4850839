"""The iteration runner shared by every iterative method in wedge.

An iterative method is an :class:`Iteration`: ``init(x0)`` makes a state (a dict of
tensors, always holding the volume under ``"x"``) and ``step(state, k)`` advances it by
one iteration. :func:`run` drives it and owns everything around the maths: progress
bar, per-iteration history, callbacks that may stop the run, early stopping on the
relative change, hold-out early stopping, checkpoints and resume.

Hold-out (the INR paper's early stopping, usable by every method): a random fraction of
detector pixels is withheld from the fit (their weight is zero in the algorithm's data
term); their re-projection error is tracked and the run stops once it has risen for
``patience`` iterations, returning the volume at its minimum.

Checkpoints are written atomically every ``checkpoint_every`` iterations; ``run`` with
the same ``checkpoint`` path resumes from it, and a resumed run gives the same volume as
an uninterrupted one (the state holds everything the next step needs, the hold-out
patience counter included). A checkpoint records what it belongs to (the method, its
options, the geometry, a digest of the data, the hold-out and seed) and is refused, with a
sentence saying what differs, for any other run. It is read with
``torch.load(weights_only=True)``: tensors, numbers, strings and containers of them only
(network weights and optimiser states are such), never arbitrary pickled objects.

Methods with a nonlinear or learned forward model use the same runner: their
:class:`Iteration` has no linear ``op`` and implements :meth:`Iteration.predict` (the
images of the current state, for the R-factor and the hold-out error) and
:meth:`Iteration.identity` (what a checkpoint must match).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ._options import coerce_field, option_fields
from .projectors.base import Projector

__all__ = [
    "Iteration",
    "RunOptions",
    "RunResult",
    "run",
    "Callback",
    "data_weight",
    "data_digest",
    "load_checkpoint",
]

#: ``callback(record, x) -> bool | None``; returning True stops the run after this iteration.
Callback = Callable[[dict[str, float], torch.Tensor], "bool | None"]


class Iteration:
    """Base class of an iterative algorithm on a projector ``op`` and data ``b``.

    ``weight`` is a data-shaped tensor of 0/1 (or None): the pixels the algorithm may fit.
    Subclasses set ``self.op``, ``self.data``, ``self.weight`` through this constructor and
    implement :meth:`init` and :meth:`step`. A state may cache ``"ax"`` (= A x for the
    state's ``"x"``) so that the runner's R-factor costs no extra projection.
    """

    def __init__(
        self, op: Projector | None, data: torch.Tensor, weight: torch.Tensor | None
    ) -> None:
        self.op = op
        self.data = data
        self.weight = weight

    def init(self, x0: torch.Tensor) -> dict[str, Any]:
        raise NotImplementedError

    def step(self, state: dict[str, Any], k: int) -> dict[str, Any]:
        raise NotImplementedError

    def predict(self, state: dict[str, Any]) -> torch.Tensor:
        """The model images of ``state`` (data-shaped): ``A x`` for a linear method.

        Nonlinear methods override this (and may cache the result as ``state["ax"]``)."""
        if self.op is None:
            raise NotImplementedError("an Iteration without a linear op must define predict().")
        return self.op.forward(state["x"])

    def identity(self) -> dict[str, str]:
        """What a checkpoint of this algorithm must match, besides the data and the method:
        by default the geometry of ``op``. Nonlinear methods add their model's facts."""
        if self.op is None:
            return {}
        return {"geometry": repr(self.op.geometry.to("cpu"))}


@dataclasses.dataclass
class RunOptions:
    """How to run an iterative method (independent of the method's own options).

    Parameters
    ----------
    progress : bool
        Show a progress bar.
    tol : float or None
        Stop when ‖x_k − x_{k−1}‖ / ‖x_k‖ falls below ``tol``.
    holdout : float or None
        Fraction of detector pixels withheld for hold-out early stopping; 0 disables it,
        None (unset) leaves it to the method (off everywhere except ``inr``, whose default
        is 0.2).
    patience : int
        Iterations of rising hold-out error tolerated before stopping.
    checkpoint : path or None
        Checkpoint file; an existing one is resumed from.
    checkpoint_every : int
        Iterations between checkpoints.
    reference : array or None
        Ground-truth volume; its metrics (Pearson, relative L2, PSNR, SSIM) join the history
        every ``reference_every`` iterations.
    reference_every : int
    seed : int
        Seed of the hold-out mask and any random draw of the method (image order, R-free).
    identity : mapping of str to str, optional
        Facts a checkpoint must match besides those the runner records itself (geometry,
        data digest, hold-out, seed): :func:`wedge.reconstruct` fills in the method and its
        options. Callers of a method function may set their own.
    """

    progress: bool = True
    tol: float | None = None
    holdout: float | None = None
    patience: int = 3
    checkpoint: str | Path | None = None
    checkpoint_every: int = 10
    reference: Any = None
    reference_every: int = 1
    seed: int = 0
    identity: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        for name, (tp, _) in option_fields(type(self)).items():
            object.__setattr__(self, name, coerce_field("runner", name, tp, getattr(self, name)))
        if self.holdout is not None and not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"holdout must be a fraction in [0, 1), got {self.holdout}.")
        if self.tol is not None and not self.tol > 0:
            raise ValueError(f"tol must be positive, got {self.tol}.")
        if self.checkpoint_every < 1 or self.patience < 1 or self.reference_every < 1:
            raise ValueError("checkpoint_every, patience and reference_every must be ≥ 1.")


@dataclasses.dataclass
class RunResult:
    """What :func:`run` returns: the volume, the history, and why it stopped."""

    x: torch.Tensor
    history: list[dict[str, float]]
    stopped: str
    iterations: int
    #: refined acquisition parameters (a :class:`wedge.parameters.AcquisitionParameters`),
    #: set by methods that refine them
    parameters: Any = None


def holdout_mask(shape: Sequence[int], fraction: float, seed: int, device: Any) -> torch.Tensor:
    """A 0/1 float mask with ``fraction`` of its pixels set to 0 (withheld), seeded."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(tuple(shape), generator=g) >= fraction).to(device, torch.float32)


def data_weight(data: torch.Tensor, options: RunOptions) -> torch.Tensor | None:
    """The 0/1 data weight of ``options.holdout`` for ``data`` (None when hold-out is off)."""
    if not options.holdout:  # None (unset) or 0
        return None
    return holdout_mask(data.shape, options.holdout, options.seed, data.device)


_CHECKPOINT_FORMAT = "wedge-checkpoint-1"


def data_digest(t: torch.Tensor) -> str:
    """A 128-bit BLAKE2b digest of a tensor's shape, dtype and values (no copy on the CPU)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{tuple(t.shape)} {t.dtype}".encode())
    h.update(t.detach().to("cpu").contiguous().numpy())
    return h.hexdigest()


def run_identity(
    algorithm: Iteration, options: RunOptions, name: str, x0: torch.Tensor
) -> dict[str, str]:
    """What a checkpoint of this run records and must match on resume."""
    ident = {
        "method": name or type(algorithm).__name__,
        "algorithm": type(algorithm).__name__,
        "volume_shape": str(tuple(x0.shape)),
        "data": data_digest(algorithm.data),
        "holdout": repr(options.holdout),
        "seed": repr(options.seed),
    }
    ident.update(algorithm.identity())
    ident.update({k: str(v) for k, v in (options.identity or {}).items()})
    return ident


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    from .io import atomic_output

    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, identity: Mapping[str, str], device: Any) -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``) and check that it belongs to this run.

    Raises
    ------
    ValueError
        The file is not a wedge checkpoint, or it was written by another run (the sentence
        names what differs).
    """
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001  (any unreadable file is reported the same way)
        raise ValueError(
            f"checkpoint {path} is not a wedge checkpoint that can be read safely "
            f"({type(exc).__name__}); delete it or choose another checkpoint path."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(
            f"checkpoint {path} is not a wedge checkpoint (format {_CHECKPOINT_FORMAT} "
            "expected); delete it or choose another checkpoint path."
        )
    saved = payload.get("identity", {})
    differs = [k for k in identity if saved.get(k) != identity[k]]
    differs += [k for k in saved if k not in identity]
    if differs:
        what = []
        for k in differs:
            if k == "data":
                what.append("the data differ (another tilt series or other values)")
            elif len(str(saved.get(k))) + len(str(identity.get(k))) < 120:
                what.append(f"{k} is {saved.get(k)} there but {identity.get(k)} here")
            else:
                what.append(f"{k} differs")
        raise ValueError(
            f"checkpoint {path} belongs to another run: {'; '.join(what)}. Delete it or choose "
            "another checkpoint path."
        )
    return payload


def _r_factor(fit: torch.Tensor, b_abs: torch.Tensor, ok: torch.Tensor) -> float:
    if not bool(ok.any()):
        return 0.0
    num = fit.abs().sum(dim=tuple(range(1, fit.ndim)))
    return float((num[ok] / b_abs[ok]).mean())


def _step_norm(state: dict[str, torch.Tensor], x: torch.Tensor, x_prev: torch.Tensor) -> float:
    """‖x_k − x_{k−1}‖: from the state when the algorithm updated ``x`` in place and reports
    it as ``step_norm``, else computed one Z slab at a time (no volume-sized temporary)."""
    if "step_norm" in state:
        return float(state["step_norm"])
    sq = 0.0
    for z0 in range(0, x.shape[0], 16):
        sq += float(torch.sum((x[z0 : z0 + 16] - x_prev[z0 : z0 + 16]) ** 2))
    return sq**0.5


def _reference_metrics(x: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """The standard metric set; SSIM only where every axis holds its 7-voxel window."""
    from .metrics import compute_metrics, pearson, psnr, relative_l2

    if min(reference.shape) >= 7:
        return compute_metrics(x, reference)
    return {
        "pearson": pearson(x, reference),
        "relative_l2": relative_l2(x, reference),
        "psnr": psnr(x, reference),
    }


def run(
    algorithm: Iteration,
    x0: torch.Tensor,
    iterations: int,
    options: RunOptions | None = None,
    callbacks: Sequence[Callback] = (),
    *,
    name: str = "",
) -> RunResult:
    """Run ``iterations`` iterations of ``algorithm`` from ``x0``.

    History records, per iteration: ``iteration``, ``r_factor`` (RESIRE Eq. 10: per-image
    Σ|Ax − b| / Σ|b| averaged over images, on the fitted pixels), ``residual_norm``
    (‖W(Ax − b)‖), ``rel_change``, ``time_s``, and when enabled ``holdout_error``
    (relative L2 on withheld pixels) and the reference metrics.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations}.")
    opts = options or RunOptions()
    b, w = algorithm.data, algorithm.weight
    held = None if w is None else (1.0 - w)
    ckpt = Path(opts.checkpoint) if opts.checkpoint is not None else None
    reference = None
    if opts.reference is not None:
        reference = torch.as_tensor(opts.reference, dtype=torch.float32, device=x0.device)
        if tuple(reference.shape) != tuple(x0.shape):
            raise ValueError(
                f"reference has shape {tuple(reference.shape)}, the volume {tuple(x0.shape)}."
            )

    start, history, rising = 0, [], 0
    best: tuple[float, torch.Tensor | None, int] = (math.inf, None, 0)
    identity = run_identity(algorithm, opts, name, x0) if ckpt is not None else {}
    if ckpt is not None and ckpt.exists():
        payload = load_checkpoint(ckpt, identity, x0.device)
        state = payload["state"]
        start, history = int(payload["iteration"]), list(payload["history"])
        best, rising = tuple(payload["best"]), int(payload["rising"])  # type: ignore[assignment]
    else:
        state = algorithm.init(x0)

    # RESIRE Eq. 10: the per-image ratio Σ|Ax − b| / Σ|b|, averaged over images
    b_abs = (b.abs() if w is None else (b * w).abs()).sum(dim=tuple(range(1, b.ndim)))
    b_ok = b_abs > 0
    b_held = 0.0 if held is None else float(torch.linalg.vector_norm(b * held)) or 1.0
    stopped = "iterations"
    bar = tqdm(
        total=iterations,
        initial=start,
        desc=name or type(algorithm).__name__,
        disable=not opts.progress,
        leave=False,
    )
    t0 = time.perf_counter()
    k = start
    for k in range(start, iterations):
        x_prev = state["x"]
        state = algorithm.step(state, k)
        x = state["x"]
        x_norm = float(torch.linalg.vector_norm(x)) or 1.0
        ax = state.get("ax")
        if ax is None:
            ax = algorithm.predict(state)
        res = ax - b
        fit = res if w is None else res * w
        rec: dict[str, float] = {
            "iteration": float(k + 1),
            "r_factor": _r_factor(fit, b_abs, b_ok),
            "residual_norm": float(torch.linalg.vector_norm(fit)),
            "rel_change": _step_norm(state, x, x_prev) / x_norm,
            "time_s": time.perf_counter() - t0,
        }
        if held is not None:
            rec["holdout_error"] = float(torch.linalg.vector_norm(res * held)) / b_held
        if reference is not None and (k + 1) % opts.reference_every == 0:
            rec.update(_reference_metrics(x, reference))
        history.append(rec)
        bar.update(1)
        bar.set_postfix(r=f"{rec['r_factor']:.4f}")
        stop = False
        for cb in callbacks:
            stop = bool(cb(rec, x)) or stop
        if held is not None:
            if rec["holdout_error"] < best[0]:
                best, rising = (rec["holdout_error"], x.detach().clone(), k + 1), 0
            else:
                rising += 1
                if rising >= opts.patience:
                    stopped = "holdout"
                    stop = True
        if opts.tol is not None and rec["rel_change"] < opts.tol:
            stopped, stop = "tolerance", True
        if stop and stopped == "iterations":
            stopped = "callback"
        done = stop or k + 1 == iterations
        if ckpt is not None and ((k + 1) % opts.checkpoint_every == 0 or done):
            _save_checkpoint(
                ckpt,
                {
                    "format": _CHECKPOINT_FORMAT,
                    "identity": identity,
                    "state": state,
                    "iteration": k + 1,
                    "history": history,
                    "best": best,
                    "rising": rising,
                },
            )
        if stop:
            break
    bar.close()
    x = state["x"]
    if stopped == "holdout" and best[1] is not None:
        x = best[1]
    return RunResult(x=x, history=history, stopped=stopped, iterations=len(history))
