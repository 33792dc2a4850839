"""Shared test fixtures: where the third-party reference data lives, and device selection."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WEDGE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data; skips the calling test (with the reason) when absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"reference data {p} is absent (expected ../shared/data beside the checkout)")
    return p


@pytest.fixture(scope="session")
def device() -> torch.device:
    """CUDA when WEDGE_FORCE_GPU=1 (fails if absent), else CPU."""
    if os.environ.get("WEDGE_FORCE_GPU") == "1":
        assert torch.cuda.is_available(), "WEDGE_FORCE_GPU=1 but no CUDA device"
        return torch.device("cuda")
    return torch.device("cpu")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of tiny problems (OpenMP start-up and spin costs
    dominate them, badly so on a loaded machine); the previous setting is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
