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


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` are skipped without CUDA; with ``WEDGE_FORCE_GPU=1`` they run
    (and fail without CUDA, through the ``cuda`` fixture), so a GPU run cannot skip them."""
    if torch.cuda.is_available() or os.environ.get("WEDGE_FORCE_GPU") == "1":
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (WEDGE_FORCE_GPU=1 fails instead)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def cuda() -> torch.device:
    """The CUDA device, for tests marked ``gpu``; an error (not a skip) when absent."""
    assert torch.cuda.is_available(), "this test needs CUDA (WEDGE_FORCE_GPU=1 or marked gpu)"
    return torch.device("cuda")


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


# ---------------------------------------------------------------------- independent data
def astra_project(vol: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """ASTRA's 2D parallel 'linear' (Joseph) projections of every Y slice: (n, Y, X).

    An implementation independent of wedge's projectors. ASTRA's angle is wedge's −β on the
    same (Z, X) slice (tests/test_projectors.py). Skips the calling test without ASTRA.
    """
    astra = pytest.importorskip("astra")
    nz, ny, nx = vol.shape
    vg = astra.create_vol_geom(nz, nx)
    pg = astra.create_proj_geom("parallel", 1.0, nx, np.deg2rad(-np.asarray(angles)))
    pid = astra.create_projector("linear", pg, vg)
    out = np.empty((len(angles), ny, nx), np.float32)
    try:
        for j in range(ny):  # ASTRA's 2D projector, one slice at a time
            sid, sino = astra.create_sino(np.ascontiguousarray(vol[:, j, :]), pid)
            astra.data2d.delete(sid)
            out[:, j, :] = sino
    finally:
        astra.projector.delete(pid)
    return out


def misaligned_images(proj: np.ndarray, alpha: float, shifts: np.ndarray) -> np.ndarray:
    """Measured images M(q) = P(Z(−α)(q − d)) from ideal projections P, by scipy (one
    cubic-spline interpolation per image): the tilt axis at α, the image moved by d."""
    import scipy.ndimage as ndi

    a = np.deg2rad(alpha)
    c, s = np.cos(a), np.sin(a)
    ny, nx = proj.shape[1:]
    mat = np.array([[c, -s], [s, c]])  # Z(−α) written on (y, x) index vectors
    cen = np.array([(ny - 1) / 2, (nx - 1) / 2])
    out = [
        ndi.affine_transform(p, mat, offset=cen - mat @ (cen + d[::-1]), order=3)
        for p, d in zip(proj, shifts, strict=True)
    ]
    return np.stack(out).astype(np.float32)


def axis_frame(shifts: np.ndarray, alpha: float) -> np.ndarray:
    """Z(−α) s for shifts (n, 2), written out here (not wedge's rotate_shifts)."""
    a = np.deg2rad(alpha)
    c, s = np.cos(a), np.sin(a)
    return np.stack([c * shifts[:, 0] + s * shifts[:, 1], -s * shifts[:, 0] + c * shifts[:, 1]], 1)
