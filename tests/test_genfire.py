"""GENFIRE: gridding, reconstruction of an analytic object, R-free, memory, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import wedge
from wedge.methods import genfire as genfire_mod  # noqa: F401  (registers "genfire")
from wedge.methods.genfire import GENFIREOptions, grid_bytes
from wedge.metrics import pearson

SIGMA = (2.5, 3.0, 2.0)  # (σz, σy, σx) voxels


def _gaussian_volume(shape, centre_xyz, sigma_zyx):
    z, y, x = (np.arange(n) - (n - 1) / 2 for n in shape)
    sz, sy, sx = sigma_zyx
    cx, cy, cz = centre_xyz
    g = np.exp(
        -((z[:, None, None] - cz) ** 2) / (2 * sz**2)
        - (y[None, :, None] - cy) ** 2 / (2 * sy**2)
        - (x[None, None, :] - cx) ** 2 / (2 * sx**2)
    )
    return g.astype(np.float32)


def _gaussian_projections(shape, centre_xyz, sigma_zyx, angles_deg):
    """Analytic line integrals of the anisotropic Gaussian at tilts about Y (IMOD convention)."""
    nz, ny, nx = shape
    sz, sy, sx = sigma_zyx
    cx, cy, cz = centre_xyz
    u = np.arange(nx) - (nx - 1) / 2
    v = np.arange(ny) - (ny - 1) / 2
    out = []
    for b in np.deg2rad(angles_deg):
        c, s = np.cos(b), np.sin(b)
        # u = x cos b + z sin b: a 2D Gaussian in (x, z) projects to a 1D Gaussian in u
        var_u = (sx * c) ** 2 + (sz * s) ** 2
        mu_u = cx * c + cz * s
        amp = 2 * np.pi * sx * sz / np.sqrt(2 * np.pi * var_u)
        pu = amp * np.exp(-((u - mu_u) ** 2) / (2 * var_u))
        pv = np.exp(-((v - cy) ** 2) / (2 * sy**2))
        out.append(pv[:, None] * pu[None, :])
    return np.stack(out).astype(np.float32)


def test_genfire_reconstructs_an_analytic_object():
    shape = (24, 20, 24)
    centre = (1.5, -1.0, 0.5)
    angles = np.arange(-90, 90, 4.0)
    b = _gaussian_projections(shape, centre, SIGMA, angles)
    truth = _gaussian_volume(shape, centre, SIGMA)
    rec = wedge.reconstruct(
        wedge.TiltSeries(b, angles),
        "genfire",
        iterations=20,
        device="cpu",
        thickness=24,
        progress=False,
        oversampling=2.0,
    )
    assert pearson(rec.volume, truth) > 0.99
    # the integral of the object is preserved to a few percent
    assert rec.volume.sum() == pytest.approx(truth.sum(), rel=0.05)
    rf = [h["r_free"] for h in rec.history]
    assert all(np.isfinite(rf)) and rf[-1] < 0.5


def test_genfire_r_free_needs_withheld_points():
    shape = (16, 12, 16)
    angles = np.arange(-60, 61, 10.0)
    b = _gaussian_projections(shape, (0, 0, 0), SIGMA, angles)
    rec = wedge.reconstruct(
        wedge.TiltSeries(b, angles),
        "genfire",
        iterations=3,
        device="cpu",
        thickness=16,
        progress=False,
        rfree_fraction=0.0,
    )
    assert all(np.isnan(h["r_free"]) for h in rec.history)


def test_grid_memory_is_the_oversampled_cube():
    assert grid_bytes((256, 256, 256), 3.0) == 8 * 768**3
    assert grid_bytes((64, 64, 64), 1.0) == 8 * 64**3


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(oversampling=0.5), "oversampling"),
        (dict(interpolation_cutoff=0.0), "interpolation_cutoff"),
        (dict(rfree_fraction=0.6), "rfree_fraction"),
        (dict(resolution_extension=-1), "resolution_extension"),
    ],
)
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        GENFIREOptions(**kw)
