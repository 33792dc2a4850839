"""Several processes (and GPUs, and nodes) on one reconstruction, with ``torch.distributed``.

Start the processes with ``torchrun``. ``wedge reconstruct`` joins the process group
torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) with :func:`init_process_group`: gloo on the CPU, NCCL on CUDA, each rank
on ``cuda:LOCAL_RANK``. A Python program calls :func:`init_process_group` (or
``torch.distributed.init_process_group``) itself; :func:`wedge.reconstruct` and
:func:`wedge.outofcore.reconstruct_out_of_core` then split their work over that group.

What is distributed, and how
----------------------------

=====================================  ==================================================
single-axis methods ``bp fbp wbp sirt  **Y slabs across ranks.** Rank r reconstructs its
sart art resire cgls`` (sparse         own Y rows from the same rows of the images (the
``ray``/``voxel`` projector, no Y      slab decomposition of :mod:`wedge.outofcore`). In
shifts)                                memory the ranks' slabs are summed into the whole
                                       volume on every rank (one all-reduce at the end);
                                       out of core each rank writes its rows into the
                                       shared output file. ``cgls`` all-reduces its two
                                       inner products per iteration in memory, so it equals
                                       the one-process CGLS; out of core it is per slab.
``sirt`` on a general geometry         **Images across ranks.** Rank r holds the whole
(Euler angles, ``ray-3d`` or           volume and its share of the images; each iteration
``fourier`` projector)                 all-reduces the back-projected update
                                       ``Σ_r A_rᵀ R_r (b_r − A_r x)`` (and, once, the
                                       column sums ``Σ_r A_rᵀ 1``), so every rank applies
                                       the same update as one process would.
everything else (``sart``/``art`` on   **Not distributed**: every rank computes the whole
a general geometry, which update       reconstruction (a warning says so). Ren's and
image after image; nonlinear-model     PhaseT3M's sequential per-tilt updates are a
methods)                               different algorithm from a simultaneous update and
                                       are not split across ranks.
=====================================  ==================================================

Collectives are few (one per iteration at most) and carry volumes or scalars. Hold-out
stopping (rank-local errors) and checkpoints (one file, many writers) are refused under a
process group of more than one rank; in slab mode so are stopping tolerances, callbacks
and references (each rank sees only its slab).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import datetime
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .methods.cgls import CGLS
from .runner import Callback, Iteration, RunOptions, RunResult

__all__ = [
    "World",
    "world",
    "init_process_group",
    "maybe_init_from_env",
    "rank_device",
    "check_device",
    "slab_range",
    "run_linear",
    "ImageParallelSIRT",
]

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place in the process group (rank 0 of 1 without one)."""

    rank: int = 0
    size: int = 1

    @property
    def active(self) -> bool:
        return self.size > 1

    def _device(self) -> torch.device:
        """Where collective buffers live: NCCL needs CUDA tensors, gloo CPU ones."""
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_reduce(self, t: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """``t`` reduced over the ranks in place (and returned); float64 stays float64."""
        if not self.active:
            return t
        red = {"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}
        dev = self._device()
        if t.device == dev:
            dist.all_reduce(t, op=red[op])
            return t
        buf = t.to(dev)
        dist.all_reduce(buf, op=red[op])
        t.copy_(buf)
        return t

    def all_ok(self, ok: bool) -> bool:
        """Whether every rank reports ``ok`` (an all-reduce of one flag)."""
        flag = torch.tensor([1.0 if ok else 0.0], dtype=torch.float64)
        return bool(self.all_reduce(flag, "min").item() == 1.0)

    def reduce_stats(self, stats: np.ndarray) -> np.ndarray:
        """(min, max, sum, sum², count) of the ranks' output values combined."""
        s = torch.as_tensor(np.asarray(stats, dtype=np.float64).copy())
        lo, hi, rest = s[:1].clone(), s[1:2].clone(), s[2:].clone()
        self.all_reduce(lo, "min")
        self.all_reduce(hi, "max")
        self.all_reduce(rest, "sum")
        return torch.cat([lo, hi, rest]).numpy()

    def sum_figures(self, figures: dict[str, Any], iterations: int, n_images: int) -> dict:
        """Per-iteration squared residuals and per-image R-factor sums summed over ranks."""
        if not self.active:
            return figures
        sizes = {"sq": iterations, "fit": n_images, "b": n_images}
        out = {}
        for key, size in sizes.items():
            v = np.zeros(size) if key not in figures else np.asarray(figures[key], np.float64)
            t = torch.zeros(size, dtype=torch.float64)
            t[: v.size] = torch.as_tensor(v[:size])
            out[key] = self.all_reduce(t).numpy()
        if iterations == 0:
            out.pop("sq")
            out.pop("fit")
        return out


def world() -> World:
    """The current process group as a :class:`World` (rank 0 of 1 when there is none)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def check_device(device: str | torch.device | None) -> None:
    """Refuse, in one sentence, a device string torch does not know or a GPU that is absent."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'.") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"device={str(device)!r} was requested but torch sees no CUDA device; use "
                "device='cpu'."
            )
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"device {dev} does not exist: torch sees {count} CUDA device(s), cuda:0 to "
                f"cuda:{count - 1}."
            )
    elif dev.type != "cpu":
        raise ValueError(f"device {dev} is not supported; use 'cpu' or 'cuda'.")


def rank_device(device: str | torch.device | None) -> str | torch.device | None:
    """The device of this rank: ``cuda:LOCAL_RANK`` for CUDA under torchrun, else ``device``
    (checked by :func:`check_device`)."""
    check_device(device)
    local = os.environ.get("LOCAL_RANK")
    want_cuda = (device is None and torch.cuda.is_available()) or (
        device is not None and torch.device(device).type == "cuda"
    )
    if local is not None and want_cuda and torch.device(device or "cuda").index is None:
        return torch.device("cuda", int(local) % max(1, torch.cuda.device_count()))
    return device


def init_process_group(
    backend: str | None = None,
    device: str | torch.device | None = None,
    timeout_s: float = 600.0,
) -> World:
    """Join the process group that ``torchrun`` describes in the environment.

    Parameters
    ----------
    backend : {"gloo", "nccl"}, optional
        Default: NCCL when this rank computes on CUDA, else gloo.
    device : str, optional
        The compute device (``"cpu"``, ``"cuda"``); decides the default backend.
    timeout_s : float
        How long collectives (and the rendezvous) wait for the other ranks.

    Returns
    -------
    World

    Raises
    ------
    RuntimeError
        One sentence naming the backend, rank and rendezvous address and the cause, when
        the environment lacks torchrun's variables or the group cannot be formed.
    """
    if dist.is_initialized():
        return world()
    missing = [v for v in _TORCHRUN_VARS if v not in os.environ]
    if missing:
        raise RuntimeError(
            f"cannot initialise torch.distributed: {', '.join(missing)} not set; start the "
            "processes with torchrun (torchrun --nproc_per_node=K -m wedge reconstruct …)."
        )
    dev = rank_device(device)
    on_cuda = (dev is None and torch.cuda.is_available()) or (
        dev is not None and torch.device(dev).type == "cuda"
    )
    backend = backend or ("nccl" if on_cuda else "gloo")
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' (CPU) or 'nccl' (CUDA), got {backend!r}.")
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise RuntimeError("the NCCL backend needs CUDA, and torch sees none; use gloo.")
        torch.cuda.set_device(torch.device(dev or "cuda"))
    where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    rank, size = os.environ["RANK"], os.environ["WORLD_SIZE"]
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    except Exception as exc:  # noqa: BLE001  (the causes vary by backend; one message)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(". ")
        raise RuntimeError(
            f"could not initialise the torch.distributed process group (backend {backend}, "
            f"rank {rank} of {size}, rendezvous {where}): {first}; check that every rank uses "
            "the same MASTER_ADDR and MASTER_PORT and that the port is reachable."
        ) from None
    atexit.register(_leave)
    return world()


def _leave() -> None:
    """Leave the process group at exit (a rank that exits without it may abort in gloo's
    teardown when its peer has already gone)."""
    with contextlib.suppress(Exception):
        if dist.is_initialized():
            dist.destroy_process_group()


def maybe_init_from_env(device: str | torch.device | None = None) -> World:
    """Join torchrun's process group when started by torchrun with more than one rank."""
    if dist.is_initialized():
        return world()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return init_process_group(device=device)
    return World()


def slab_range(ny: int, rank: int, size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous share ``[y0, y1)`` of ``ny`` rows (sizes differ by ≤ 1)."""
    base, extra = divmod(ny, size)
    y0 = rank * base + min(rank, extra)
    return y0, y0 + base + (1 if rank < extra else 0)


# ------------------------------------------------------------------------ in-memory routes
def run_linear(
    info: Any,
    op: Any,
    images: torch.Tensor,
    iterations: int,
    x0: torch.Tensor | None,
    callbacks: Sequence[Callback],
    options: Any,
    run: RunOptions,
) -> RunResult:
    """Run a linear method, split across the process group when there is one (see the
    module notes); without one this is ``info.function(...)`` itself."""
    w = world()
    if not w.active:
        return info.function(op, images, iterations, x0, callbacks, options=options, run=run)
    from .methods.algebraic import _fast_path
    from .outofcore import SLAB_METHODS

    if run.holdout or run.checkpoint is not None:
        raise ValueError(
            "hold-out stopping and checkpoints are not supported under a process group of "
            f"{w.size} ranks (rank-local errors, one file for many writers); run without them."
        )
    if info.name in SLAB_METHODS and _fast_path(op):
        return _slab_parallel(w, info, op, images, iterations, x0, callbacks, options, run)
    if info.name == "sirt":
        return _image_parallel_sirt(w, op, images, iterations, x0, callbacks, options, run)
    warnings.warn(
        f"{info.name} is not distributed on this geometry: each of the {w.size} ranks "
        "computes the whole reconstruction.",
        UserWarning,
        stacklevel=3,
    )
    return info.function(op, images, iterations, x0, callbacks, options=options, run=run)


def _slab_parallel(w, info, op, images, iterations, x0, callbacks, options, run) -> RunResult:
    if callbacks or run.tol is not None or run.reference is not None:
        raise ValueError(
            "callbacks, tol and reference are not supported in slab-parallel runs (each "
            "rank sees only its Y rows); give a number of iterations."
        )
    from .outofcore import _check_options

    _check_options(info, options, {})  # what couples Y rows (resire's TV, extended objects)
    nz, ny, nx = op.volume_shape
    y0, y1 = slab_range(ny, w.rank, w.size)
    full = torch.zeros(op.volume_shape, device=op.device)
    n = op.data_shape[0]
    sums = torch.zeros((2, n), dtype=torch.float64)  # per image Σ|Ax − b|, Σ|b|
    hist: list[dict[str, float]] = []
    stopped = "direct" if not info.iterative else "iterations"
    if y1 > y0:
        geom = op.geometry.replace(volume_shape=(nz, y1 - y0, nx))
        geom = geom.replace(detector_shape=(y1 - y0, op.data_shape[2]))
        sub = op.with_geometry(geom)
        data = images[:, y0:y1, :].contiguous()
        opts = options
        support = getattr(options, "support", None)
        if support is not None:
            opts = dataclasses.replace(options, support=np.asarray(support)[:, y0:y1, :])
        x0_r = None if x0 is None else x0[:, y0:y1, :].contiguous()
        if info.name == "cgls":
            res = _cgls_all_reduce(w, sub, data, iterations, x0_r, opts, run)
        else:
            res = info.function(sub, data, iterations, x0_r, (), options=opts, run=run)
        full[:, y0:y1, :] = res.x
        hist, stopped = res.history, res.stopped
        if info.iterative:
            sums[0] = (sub.forward(res.x) - data).abs().sum(dim=(1, 2)).double().cpu()
            sums[1] = data.abs().sum(dim=(1, 2)).double().cpu()
    elif info.name == "cgls":  # a rank without rows still joins every all-reduce
        _cgls_idle(w, iterations)
    w.all_reduce(full)
    history = _combine(w, hist, iterations if info.iterative else 0, w.all_reduce(sums))
    return RunResult(x=full, history=history, stopped=stopped, iterations=len(history))


def _combine(w: World, hist: list[dict[str, float]], iterations: int, sums: torch.Tensor) -> list:
    """The ranks' histories as one record per iteration: ``iteration``, ``time_s`` and the
    residual norm combined exactly (√Σ r²); the last record also gets the whole series'
    R-factor (RESIRE Eq. 10) from the per-image sums ``sums`` (already all-reduced)."""
    sq = torch.zeros(iterations, dtype=torch.float64)
    for k, rec in enumerate(hist[:iterations]):
        sq[k] = rec.get("residual_norm", 0.0) ** 2
    w.all_reduce(sq)
    out = [
        {"iteration": float(k + 1), "residual_norm": float(sq[k].sqrt()),
         "time_s": hist[k].get("time_s", 0.0) if k < len(hist) else 0.0}
        for k in range(iterations)
    ]  # fmt: skip
    if out:
        ok = sums[1] > 0
        out[-1]["r_factor"] = float((sums[0][ok] / sums[1][ok]).mean()) if bool(ok.any()) else 0.0
    return out


def _cgls_all_reduce(w, op, data, iterations, x0, options, run) -> RunResult:
    from .methods.algebraic import _prepare
    from .runner import run as run_iterations

    data, x0_, weight, cons = _prepare(op, data, iterations, x0, options, run)
    if cons.lower is not None or cons.upper is not None or cons.positivity:
        raise ValueError(
            "cgls with bounds restarts per rank and cannot be split across ranks exactly; "
            "run it without positivity/bounds or in one process."
        )
    alg = _AllReduceCGLS(op, data, weight, cons)
    alg.world = w
    return run_iterations(alg, x0_, iterations, run, (), name="cgls")


def _cgls_idle(w: World, iterations: int) -> None:
    """Join the all-reduces of :class:`_AllReduceCGLS` on a rank without rows."""

    def zero() -> float:
        return float(w.all_reduce(torch.zeros((), dtype=torch.float64)))

    gamma = zero()  # init: γ
    for _ in range(iterations):
        qq = zero()
        if gamma == 0.0 or qq == 0.0:
            continue
        gamma = zero()


class _AllReduceCGLS(CGLS):
    """CGLS whose inner products are summed over the ranks (slab-parallel, exact): every
    rank takes the same α and β, so the ranks' slabs together are the one-process CGLS."""

    world: World

    def _dot(self, a: torch.Tensor) -> torch.Tensor:
        s = torch.sum(a * a).double().reshape(())
        return self.world.all_reduce(s.cpu()).to(a.device, a.dtype)

    def _restart(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        ax = self.op.forward(x)
        s = self._gradient(ax)
        return {"x": x, "ax": ax, "p": s, "gamma": self._dot(s)}

    def step(self, state: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
        p, gamma = state["p"], state["gamma"]
        ap = self.op.forward(p)
        q = ap if self.weight is None else ap * self.weight
        qq = self._dot(q)
        if float(gamma) == 0.0 or float(qq) == 0.0:  # global values: every rank agrees
            return {k_: v.clone() for k_, v in state.items()}
        alpha = gamma / qq
        x = state["x"] + alpha * p
        ax = state["ax"] + alpha * ap
        s = self._gradient(ax)
        gamma_new = self._dot(s)
        return {"x": x, "ax": ax, "p": s + (gamma_new / gamma) * p, "gamma": gamma_new}


# ------------------------------------------------------------------- image-parallel SIRT
class ImageParallelSIRT(Iteration):
    """SIRT with the images split across ranks (ASTRA's SIRT, Gregor & Benson 2008, Eq. 2):

        x ← P(x + λ C Σ_r A_rᵀ W_r R_r (b_r − A_r x)),   C = 1 / Σ_r A_rᵀ 1

    ``op`` and ``data`` are this rank's images; ``R_r`` (inverse ray sums) is local, the
    column sums and each iteration's back-projected update are all-reduced, so every rank
    holds the same ``x`` as one process would (to float32 summation order).
    """

    def __init__(self, op, data, weight, relaxation, constraints, w: World) -> None:
        from .methods.algebraic import _inverse

        super().__init__(op, data, weight)
        self.world = w
        self.relaxation = float(relaxation)
        self.constraints = constraints
        ones = torch.ones(op.volume_shape, device=op.device)
        self.r = _inverse(op.forward(ones))
        if weight is not None:
            self.r = self.r * weight
        self.c = _inverse(w.all_reduce(op.adjoint(torch.ones(op.data_shape, device=op.device))))

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return self.constraints.apply(x) if self.constraints.active else x

    def init(self, x0: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self._project(x0.contiguous().clone())
        return {"x": x, "ax": self.op.forward(x)}

    def step(self, state: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
        update = self.op.adjoint(self.r * (self.data - state["ax"]))
        self.world.all_reduce(update)
        x_old = state["x"]
        x = self._project(x_old + self.relaxation * self.c * update)
        return {"x": x, "ax": self.op.forward(x), "step_norm": torch.linalg.vector_norm(x - x_old)}


def _image_parallel_sirt(w, op, images, iterations, x0, callbacks, options, run) -> RunResult:
    from .methods.algebraic import _prepare
    from .runner import run as run_iterations

    data, x0_, weight, cons = _prepare(op, images, iterations, x0, options, run)
    idx = np.array_split(np.arange(op.data_shape[0]), w.size)[w.rank]
    if idx.size == 0:
        raise ValueError(
            f"{w.size} ranks for {op.data_shape[0]} images: every rank needs at least one "
            "image; use fewer ranks."
        )
    sub = op.with_geometry(op.geometry[idx])
    local_w = None if weight is None else weight[idx]
    alg = ImageParallelSIRT(sub, data[idx], local_w, options.relaxation, cons, w)
    return run_iterations(alg, x0_, iterations, run, callbacks, name="sirt")
