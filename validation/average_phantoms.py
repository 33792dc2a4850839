"""2D test problems of the CRM studies (Han et al. 2020, §4), projected by ASTRA.

Two objects, as in the paper's Fig. 3, at a reduced size:

* ``shepp``: scikit-image's Shepp–Logan phantom resized to the object box, among bright
  and dark blocks ("stained with blocks");
* ``ribosome``: a ribosome-like 2D section made here (EMDB-3489 is not available
  offline): two subunit lobes filled with random Gaussian blobs of density, among
  uniform random noise in [0, 0.6] ("stained with random noise");
* ``ribosome0``: the same object among zero-mean noise, uniform in [−0.3, 0.3].

Each copy is a (C, 1, C) volume: the object, masked by the inscribed circle, placed at an
integer offset (the copies differ only in position, as in the paper), and a background
outside the object's footprint. Projections: ASTRA's 2D parallel-beam "linear" projector
(tests/conftest.py's helper), never wedge's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import astra_project  # noqa: E402
from wedge import TiltSeries  # noqa: E402
from wedge.average import default_support  # noqa: E402

__all__ = ["make_object", "make_copies", "astra_project"]


def make_object(kind: str, n: int, seed: int = 0) -> np.ndarray:
    """The object (n, 1, n), zero outside the inscribed circle, values in [0, 1]."""
    sup = default_support((n, 1, n))[:, 0, :]
    if kind == "shepp":
        from skimage.data import shepp_logan_phantom
        from skimage.transform import resize

        img = resize(shepp_logan_phantom(), (n, n), order=1, anti_aliasing=True)
    elif kind == "ribosome":
        rng = np.random.default_rng(1000 + seed)
        zz, xx = np.mgrid[:n, :n] / (n - 1) - 0.5
        large = ((zz + 0.08) / 0.30) ** 2 + ((xx - 0.02) / 0.38) ** 2 <= 1
        small = ((zz - 0.27) / 0.15) ** 2 + ((xx + 0.05) / 0.28) ** 2 <= 1
        shape = large | small
        img = np.zeros((n, n))
        k = 60
        cz, cx = rng.uniform(-0.45, 0.45, (2, 4 * k))
        keep = shape[((cz + 0.5) * (n - 1)).astype(int), ((cx + 0.5) * (n - 1)).astype(int)]
        for z0, x0, a in zip(cz[keep][:k], cx[keep][:k], rng.uniform(0.4, 1.0, k), strict=False):
            w = rng.uniform(0.02, 0.05)
            img += a * np.exp(-((zz - z0) ** 2 + (xx - x0) ** 2) / (2 * w * w))
        img = img * shape
        img /= img.max()
    else:
        raise ValueError(f"unknown object {kind!r}")
    return (img * sup).astype(np.float32)[:, None, :]


def _background(
    kind: str,
    c: int,
    rng: np.random.Generator,
    noise: tuple[float, float] = (0.0, 0.6),
    blocks: tuple[int, float, float] = (10, 0.2, 1.0),
) -> np.ndarray:
    vol = np.zeros((c, 1, c), np.float32)
    if kind == "shepp":
        count, low, high = blocks
        for _ in range(count):
            hz, hx = rng.integers(c // 12, c // 5, 2)
            z0, x0 = rng.integers(0, c - hz), rng.integers(0, c - hx)
            vol[z0 : z0 + hz, 0, x0 : x0 + hx] = rng.uniform(low, high)
    else:
        vol[:] = rng.uniform(*noise, vol.shape)
    return vol


def make_copies(
    kind: str,
    n_copies: int,
    angles: np.ndarray,
    *,
    n_obj: int = 65,
    n_copy: int = 97,
    max_offset: int = 10,
    snr: float | None = None,
    noise: tuple[float, float] = (0.0, 0.6),
    blocks: tuple[int, float, float] = (10, 0.2, 1.0),
    seed: int = 0,
) -> tuple[list[TiltSeries], np.ndarray, np.ndarray]:
    """Copies of ``kind`` projected by ASTRA at ``angles`` (degrees).

    ``noise``: the (low, high) range of the ribosome's uniform background noise.
    ``blocks``: Shepp–Logan's surroundings, (count, lowest, highest intensity) of the
    random rectangular blocks.
    ``snr``: Gaussian noise added to the projections with variance var(signal)/snr.
    Returns (copies, poses (n, 6), object (n_obj, 1, n_obj)).
    """
    rng = np.random.default_rng(seed)
    if kind == "ribosome0":
        kind, noise = "ribosome", (-0.3, 0.3)
    obj = make_object(kind, n_obj, seed)
    sup = default_support((n_obj, 1, n_obj))
    half, cen = (n_obj - 1) // 2, (n_copy - 1) // 2
    max_offset = min(max_offset, (n_copy - n_obj) // 2)
    copies, poses = [], []
    for _ in range(n_copies):
        vol = _background(kind, n_copy, rng, noise, blocks)
        tx, tz = rng.integers(-max_offset, max_offset + 1, 2)
        z0, x0 = cen + tz - half, cen + tx - half
        region = vol[z0 : z0 + n_obj, :, x0 : x0 + n_obj]
        region[sup] = 0
        region += obj
        proj = astra_project(vol, angles)
        if snr is not None:
            proj = proj + rng.normal(0, np.sqrt(proj.var() / snr), proj.shape).astype(np.float32)
        copies.append(TiltSeries(proj, angles))
        poses.append([tx, 0, tz, 0, 0, 0])
    return copies, np.array(poses, float), obj


def sart_keywords(name: str, blocks: str) -> dict:
    """Keywords that give ``name`` ("crm" or an average) the SART updates ``blocks`` asks
    for: "image" (wedge's per-image ``sart``, CRM ``block="image"``) or "copy" (one update
    per copy, the paper's wording: the averages by wedge's ``sirt``, which is Eq. 19 for one
    copy, and CRM ``block="copy"``)."""
    from wedge.average import CRMOptions

    if name == "crm":
        return {"options": CRMOptions(block=blocks)}
    return {"method": "sart" if blocks == "image" else "sirt"}


def scores(x: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM, PCC of the (Z, X) images and FRC 0.5 resolution (pixels)."""
    from wedge.metrics import compute_metrics, fsc

    a, b = x[:, 0, :], ref[:, 0, :]
    m = compute_metrics(a, b)
    return {
        "psnr": m["psnr"],
        "ssim": m["ssim"],
        "pcc": m["pearson"],
        "frc05": fsc(a, b).resolution(0.5),
    }
