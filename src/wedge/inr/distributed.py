"""Data-parallel INR training with :mod:`torch.distributed` (gloo on CPU, NCCL on GPU).

Every rank holds a replica of the network and the pose, draws the same global batch of
rays (the same seeded permutation on every rank) and evaluates its own slice of it; the
gradients are then summed over ranks (``all_reduce``). The loss of each rank is its share
of the global-batch loss (sums divided by the global counts), so the summed gradient is
exactly the gradient of one process on the whole global batch: with the same learning
rate, training on ``W`` ranks of ``B`` rays equals one process of ``W·B`` rays up to the
order of floating-point sums (tested in ``tests/test_inr_distributed.py``). The paper
(§4.1.2) instead keeps ``B`` per GPU and scales the learning rate by √W; the option
``lr_scaling="sqrt"`` does that.

Launch with ``torchrun --nproc_per_node=W script.py`` where the script calls
:func:`init_from_env` and then :func:`wedge.reconstruct` (``device=local_device()``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

import torch
import torch.distributed as dist

__all__ = ["Ranks", "current", "init_from_env", "local_device"]


@dataclasses.dataclass(frozen=True)
class Ranks:
    """This process's place: ``rank`` of ``world`` (1 and 0 outside torch.distributed)."""

    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    def share(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` items (the first ranks take one more)."""
        q, r = divmod(n, self.world)
        a = self.rank * q + min(self.rank, r)
        return slice(a, a + q + (1 if self.rank < r else 0))

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """In-place sum of ``t`` over ranks (no-op on one process)."""
        if self.active:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def sum_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Sum the gradients of ``params`` over ranks, one flat all-reduce per dtype.

        Parameters without a gradient on this step are skipped on every rank alike (the
        caller keeps that decision rank-independent).
        """
        if not self.active:
            return
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for p in params:
            if p.grad is not None:
                by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
        for grads in by_dtype.values():
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            a = 0
            for g in grads:
                g.copy_(flat[a : a + g.numel()].view_as(g))
                a += g.numel()


def current() -> Ranks:
    """The rank and world size of the initialised default process group (else one process)."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def local_device() -> torch.device:
    """``cuda:LOCAL_RANK`` when CUDA is present, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def init_from_env(backend: str | None = None) -> Ranks:
    """Initialise the default process group from torchrun's environment variables.

    ``backend`` defaults to NCCL when CUDA is present and gloo otherwise. Does nothing when
    the group is already initialised.

    Raises
    ------
    RuntimeError
        The torchrun variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) are missing.
    """
    if dist.is_initialized():
        return current()
    needed = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    missing = [k for k in needed if k not in os.environ]
    if missing:
        raise RuntimeError(
            f"torch.distributed needs {', '.join(missing)} in the environment; start the "
            "script with torchrun --nproc_per_node=N."
        )
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_device())
    dist.init_process_group(backend=backend)
    return current()
