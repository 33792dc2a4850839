"""Per-run state of CRM kept outside the runner: the backgrounds and residual statistics."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["_Backgrounds", "_Stats"]


class _Backgrounds:
    """The backgrounds gᵢ (native (Z, Y, X) layout): zero until first written; in memory
    or memory-mapped ``.npy`` files."""

    def __init__(self, shapes: list[tuple[int, int, int]], folder: Path | None, device):
        self.shapes, self.folder, self.device = shapes, folder, device
        self.mem: dict[int, torch.Tensor] = {}
        self.files: dict[int, Path] = {}

    def get(self, i: int) -> torch.Tensor:
        if self.folder is None:
            if i not in self.mem:
                return torch.zeros(self.shapes[i], device=self.device)
            return self.mem[i]
        if i not in self.files:
            return torch.zeros(self.shapes[i], device=self.device)
        arr = np.load(self.files[i], mmap_mode="r")
        return torch.from_numpy(np.array(arr)).to(self.device)

    def put(self, i: int, g: torch.Tensor) -> None:
        if self.folder is None:
            self.mem[i] = g
            return
        path = self.folder / f"background_{i:04d}.npy"
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=self.shapes[i])
        mm[...] = g.detach().cpu().numpy()
        mm.flush()
        del mm
        self.files[i] = path

    def result(self) -> list[np.ndarray]:
        out = []
        for i, shape in enumerate(self.shapes):
            if self.folder is not None and i in self.files:
                out.append(np.load(self.files[i], mmap_mode="r"))
            elif i in self.mem:
                out.append(self.mem[i].detach().cpu().numpy())
            else:
                out.append(np.zeros(shape, np.float32))
        return out


class _Stats:
    """Residual statistics of one sweep: per-copy ‖r‖², Eq. 25's mean square, R-factor."""

    def __init__(self, n: int, device: torch.device) -> None:
        self.sq = torch.zeros(n, dtype=torch.float64, device=device)
        self.count = 0
        self.num: list[torch.Tensor] = []
        self.den: list[torch.Tensor] = []

    def add(self, i: int, b: list[torch.Tensor], r: list[torch.Tensor], ops: Any) -> None:
        """Add copy ``i``'s block data ``b`` and residuals ``r`` (one set of sums per copy)."""
        n = sum(ops.images_in(k) for k in range(len(r)))
        rr = torch.cat([t.reshape(-1) for t in r]).reshape(n, -1)
        bb = torch.cat([t.reshape(-1) for t in b]).reshape(n, -1)
        self.sq[i] += float(torch.sum(rr * rr))  # float32 sum per copy, float64 total
        self.count += rr.numel()
        self.num.append(rr.abs().sum(1).double())
        self.den.append(bb.abs().sum(1).double())

    def norms(self) -> torch.Tensor:
        return self.sq.sqrt().float()

    def summary(self) -> dict[str, float]:
        rms = math.sqrt(float(self.sq.sum()) / max(self.count, 1))
        num, den = torch.cat(self.num), torch.cat(self.den)
        ok = den > 0
        rf = float((num[ok] / den[ok]).mean()) if bool(ok.any()) else 0.0
        return {"rms_reprojection_error": rms, "r_factor": rf}
