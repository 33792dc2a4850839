"""Projectors: adjointness, conventions, and agreement with references nobody here wrote."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wedge
from wedge.geometry import Geometry
from wedge.projectors import PROJECTORS, backproject, make_projector, project

SINGLE_AXIS_ONLY = {"ray-sparse", "voxel-sparse"}


def _geometries():
    """A single-axis and a general (multi-axis, shifted, extended) geometry."""
    rng = np.random.default_rng(7)
    n = 7
    single = Geometry.single_axis(
        np.linspace(-70, 65, n),
        (9, 6, 12),
        detector_shape=(7, 10),
        shifts=np.c_[rng.normal(0, 1.5, n), rng.normal(0, 1.2, n)],
    )
    general = Geometry(
        volume_shape=(8, 7, 9),
        detector_shape=(8, 8),
        euler=np.c_[rng.uniform(-40, 40, n), rng.uniform(-70, 70, n), rng.uniform(-20, 20, n)],
        shifts=np.c_[rng.normal(0, 1, n), rng.normal(0, 1, n)],
        tilt_axis_angle=12.0,
    )
    return {"single": single, "general": general}


@pytest.mark.parametrize("name", sorted(PROJECTORS))
@pytest.mark.parametrize("kind", ["single", "general"])
def test_dot_product_adjoint(name, kind, device):
    """|<Ax, y> - <x, Aᵀy>| / (‖A‖‖x‖‖y‖) at float32 precision, for every registered projector."""
    geom = _geometries()[kind].to(device)
    if kind == "general" and name in SINGLE_AXIS_ONLY:
        with pytest.raises(ValueError, match="single-axis"):
            PROJECTORS[name](geom)
        return
    op = PROJECTORS[name](geom)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(op.volume_shape, generator=g).to(device)
    y = torch.randn(op.data_shape, generator=g).to(device)
    ax, aty = op.forward(x), op.adjoint(y)
    lhs = torch.sum(ax.double() * y.double())
    rhs = torch.sum(x.double() * aty.double())
    norm = op.norm_estimate(iterations=30)
    err = abs(float(lhs - rhs)) / (norm * float(x.norm()) * float(y.norm()))
    assert err < 1e-5, f"{name}: normalised adjoint mismatch {err:.2e}"
    # and the projection is not trivially zero
    assert float(ax.abs().max()) > 0


def _astra_sinogram(slice_zx: np.ndarray, angles: np.ndarray) -> np.ndarray:
    astra = pytest.importorskip("astra")
    nz, nx = slice_zx.shape
    vg = astra.create_vol_geom(nz, nx)
    # ASTRA's 2D volume y axis points towards decreasing row index, so wedge's tilt β is
    # ASTRA's angle -β on the same (z, x) array.
    pg = astra.create_proj_geom("parallel", 1.0, nx, np.deg2rad(-angles))
    pid = astra.create_projector("linear", pg, vg)
    sid, sino = astra.create_sino(slice_zx.astype(np.float32), pid)
    astra.data2d.delete(sid)
    astra.projector.delete(pid)
    return sino


def _shepp_slice(n: int) -> np.ndarray:
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    return resize(shepp_logan_phantom(), (n, n), anti_aliasing=True).astype(np.float32)


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_ray_matches_astra_linear_exactly_with_one_sample_per_row():
    """With one sample per voxel row (n_sub=1) the ray model *is* Joseph's method, which is
    ASTRA's CPU 'linear' projector: agreement to float32 rounding (1e-5)."""
    s = _shepp_slice(65)
    ang = np.sort(np.random.default_rng(0).uniform(-89, 89, 17))
    ref = _astra_sinogram(s, ang)
    ours = project(s[:, None, :], ang, model="ray", n_sub=1)[:, 0, :]
    assert _rel(ours, ref) < 1e-5


@pytest.mark.parametrize(
    ("model", "tol"),
    # Default models sample differently from Joseph's method (finer ray steps: bilinear
    # smoothing across rows; splatting; Fourier interpolation), so they differ from ASTRA
    # by a discretisation error that is largest at sharp edges: measured 0.5% (ray),
    # 1.2% (voxel), 3.2% (fourier), 0.5% (ray-3d) on this phantom; bounds set at ~1.5×.
    [("ray", 0.008), ("voxel", 0.02), ("fourier", 0.05), ("ray-3d", 0.008)],
)
def test_models_agree_with_astra_and_skimage(model, tol):
    from skimage.transform import radon

    s = _shepp_slice(65)  # odd size: skimage's centre N//2 equals wedge's (N-1)/2
    ang = np.linspace(-88, 88, 23)
    ours = project(s[:, None, :], ang, model=model)[:, 0, :]
    assert _rel(ours, _astra_sinogram(s, ang)) < tol
    # skimage rotates the image by +θ; wedge's β corresponds to skimage's -β.
    ref = radon(s, -ang, circle=True).T
    assert _rel(ours, ref) < tol + 0.005


def test_ball_projection_is_analytic():
    """Line integral through a ball of radius r at distance d from its centre: 2√(r²−d²)."""
    n, r = 41, 12.0
    zz, yy, xx = np.mgrid[:n, :n, :n] - (n - 1) / 2
    # supersampled occupancy for an anti-aliased ball
    sub = (np.arange(4) + 0.5) / 4 - 0.5
    occ = np.zeros((n, n, n), np.float32)
    for a in sub:
        for b in sub:
            for c in sub:
                occ += ((zz + a) ** 2 + (yy + b) ** 2 + (xx + c) ** 2 <= r * r) / 64.0
    v, u = np.mgrid[:n, :n] - (n - 1) / 2
    d2 = u**2 + v**2
    analytic = 2 * np.sqrt(np.clip(r * r - d2, 0, None))
    inner = d2 < (r - 2) ** 2  # away from the rim, where voxelisation dominates

    def max_err(model, **kw):
        p = project(occ, [0.0, 37.0], model=model, **kw)
        return max(float(np.abs(img - analytic)[inner].max()) for img in p)

    # ray and splatting: within a quarter voxel of a 24-voxel chord (measured 0.18, 0.19)
    for model in ("ray", "voxel", "ray-3d"):
        assert max_err(model) < 0.25, model
    # Fourier slice: linear interpolation of the spectrum apodises the object; the error
    # (measured 0.51 at os=3, 0.28 at os=6) is on grid-aligned slices zero and shrinks as
    # the oversampling ratio grows.
    e3, e6 = max_err("fourier"), max_err("fourier", oversampling=6)
    assert e3 < 0.6 and e6 < 0.6 * e3


def test_centred_point_projects_to_centre_line():
    """A line of points along the tilt axis through the centre projects to the central column
    at every tilt (the rotation centre is the array centre (N−1)/2)."""
    v = np.zeros((15, 6, 15), np.float32)
    v[7, :, 7] = 1.0
    for model in ("ray", "voxel", "fourier"):
        p = project(v, np.linspace(-80, 80, 9), model=model)
        cols = p.sum(axis=1).argmax(axis=1)
        assert np.all(cols == 7), model
        assert np.allclose(p[:, :, 7], p[:, :1, 7], atol=1e-4)  # same along Y


def test_off_centre_point_follows_imod_convention():
    """(x, y, z) relative to the centre appears at (x cos β + z sin β, y).

    The object is a small Gaussian blob (σ = 1.2 voxels) rather than a single voxel, so
    that every model, the Fourier one included, represents it without aliasing.
    """
    nz, ny, nx = 21, 15, 31
    x, y, z = 8.0, -3.0, 5.0
    zz, yy, xx = np.mgrid[:nz, :ny, :nx].astype(np.float32)
    zz, yy, xx = zz - (nz - 1) / 2, yy - (ny - 1) / 2, xx - (nx - 1) / 2
    v = np.exp(-((xx - x) ** 2 + (yy - y) ** 2 + (zz - z) ** 2) / (2 * 1.2**2)).astype(np.float32)
    ang = np.array([-60.0, -25.0, 0.0, 40.0, 75.0])
    uu = np.arange(nx) - (nx - 1) / 2
    vv = np.arange(ny) - (ny - 1) / 2
    b = np.deg2rad(ang)
    # the Fourier model at its default oversampling (3) loses up to 0.2 px of centroid at
    # 9 px from the centre (spectral interpolation error, 0.02 px at oversampling 6)
    for model, kw in (("ray", {}), ("voxel", {}), ("ray-3d", {}), ("fourier", {"oversampling": 6})):
        p = project(v, ang, model=model, **kw)
        w = p.sum((1, 2))
        u_c = (p.sum(1) * uu).sum(1) / w
        v_c = (p.sum(2) * vv).sum(1) / w
        np.testing.assert_allclose(u_c, x * np.cos(b) + z * np.sin(b), atol=0.05, err_msg=model)
        np.testing.assert_allclose(v_c, y, atol=0.05, err_msg=model)


def test_constant_images_backproject_to_flat_interior():
    """Back-projecting constant images gives a flat interior. Splatting distributes every
    voxel's unit mass over the detector, so it is flat to rounding; ray sampling of the
    bilinear footprint on a 1-pixel ray spacing leaves a small moiré (measured 0.5% rms)."""
    n = 24
    angles = np.linspace(-60, 60, 31)
    ones = np.ones((31, n, n), np.float32)
    sl = (slice(n // 2 - 3, n // 2 + 3), slice(2, -2), slice(n // 2 - 3, n // 2 + 3))
    core = backproject(ones, angles, (n, n, n), model="voxel")[sl]
    assert core.std() / core.mean() < 1e-5
    np.testing.assert_allclose(core.mean(), 31.0, rtol=1e-5)  # one unit per tilt
    core = backproject(ones, angles, (n, n, n), model="ray")[sl]
    assert core.std() / core.mean() < 1e-2
    # the projection of a constant cube at 0° is its thickness
    proj = project(np.ones((n, n, n), np.float32), angles)
    assert np.allclose(proj[15], n, rtol=1e-5)


def test_shifts_translate_the_image():
    """An integer shift (dx, dy) moves the image by (+dx, +dy) pixels, in every model."""
    v = np.zeros((16, 16, 16), np.float32)
    v[5:9, 6:10, 4:8] = 1
    for model in ("ray", "voxel", "ray-3d", "fourier"):
        p0 = project(v, [20.0], model=model)
        p1 = project(v, [20.0], shifts=[[3.0, -2.0]], model=model)
        inner = (slice(None), slice(3, -3), slice(4, -4))  # away from the wrapped border
        np.testing.assert_allclose(
            np.roll(p0, (-2, 3), axis=(1, 2))[inner], p1[inner], atol=2e-5 * p0.max(), err_msg=model
        )
    # a fractional shift is the linear interpolation of the two integer ones (ray models)
    ph = project(v, [20.0], shifts=[[0.0, 0.5]])
    pa, pb = project(v, [20.0]), project(v, [20.0], shifts=[[0.0, 1.0]])
    np.testing.assert_allclose(ph, 0.5 * (pa + pb), atol=1e-5)


def test_euler_single_axis_equals_tilt_and_axis_angle_is_phi():
    rng = np.random.default_rng(3)
    v = rng.random((10, 12, 14)).astype(np.float32)
    ang = np.array([-50.0, 10.0, 66.0])
    e = np.zeros((3, 3))
    e[:, 1] = ang
    a = project(v, ang, model="ray-3d")
    b = project(v, euler=e, model="ray-3d")
    np.testing.assert_allclose(a, b, atol=1e-5)
    # the general path agrees with the sparse fast path
    assert _rel(a, project(v, ang)) < 0.02
    # an in-plane tilt-axis angle α is the Euler angle φ = α
    e2 = e.copy()
    e2[:, 0] = 30.0
    c = project(v, ang, tilt_axis_angle=30.0, model="ray-3d")
    np.testing.assert_allclose(c, project(v, euler=e2, model="ray-3d"), atol=1e-5)


def test_extended_object_wider_than_detector():
    """A slab wider than the detector projects to thickness / cos β everywhere on the detector."""
    nz, ny, nx, nu = 8, 6, 96, 32
    slab = np.ones((nz, ny, nx), np.float32)
    ang = np.array([-60.0, -30.0, 0.0, 45.0])
    # ripple bounds: the sparse ray model samples on voxel planes and is exact for a slab;
    # ray-3d samples at fixed 0.5-voxel steps from the detector, so where a ray enters the
    # 8-voxel slab varies with u (measured 0.27% rms at -30°); 2×2 sub-voxel splatting
    # aliases at oblique tilts (measured 0.65% rms at 45°, 0.02% with n_sub=5)
    for model, ripple in (("ray", 1e-4), ("ray-3d", 5e-3), ("voxel", 1e-2)):
        p = project(slab, ang, detector_shape=(ny, nu), model=model)
        expect = nz / np.cos(np.deg2rad(ang))
        np.testing.assert_allclose(p.mean(axis=(1, 2)), expect, rtol=2e-3, err_msg=model)
        assert np.all(p.std(axis=(1, 2)) < ripple * expect), model


def test_torch_in_torch_out_and_numpy_in_numpy_out():
    v = np.random.default_rng(0).random((6, 5, 7)).astype(np.float32)
    p = wedge.projectors.project(v, [0, 30])
    assert isinstance(p, np.ndarray) and p.dtype == np.float32
    t = wedge.projectors.project(torch.from_numpy(v), [0, 30])
    assert isinstance(t, torch.Tensor)
    np.testing.assert_allclose(t.numpy(), p, atol=1e-6)


def test_bad_input_is_rejected():
    v = np.zeros((4, 4, 4), np.float32)
    with pytest.raises(ValueError, match="unknown projector model"):
        project(v, [0], model="nope")
    with pytest.raises(ValueError, match="3D"):
        project(np.zeros((4, 4)), [0])
    with pytest.raises(ValueError, match="euler must have shape"):
        project(v, euler=np.zeros((3, 2)))
    op = make_projector(Geometry.single_axis([0, 10], (4, 4, 4)))
    with pytest.raises(ValueError, match="expects"):
        op.forward(torch.zeros(3, 4, 4))


def test_matrix_memory_is_bounded():
    """128² XZ slices × 61 tilts: A and Aᵀ hold ≤ 2.5 non-zeros per voxel per tilt and take
    under 40 MB. (The build time is a benchmark figure: benchmarks/bench_projector.py.)"""
    from wedge.projectors.single_axis import clear_matrix_cache

    clear_matrix_cache()
    n_tilts, nz, nx = 61, 128, 128
    op = make_projector(Geometry.single_axis(np.linspace(-60, 60, n_tilts), (nz, 4, nx)))
    nnz = int(op.a.values().numel())
    assert nnz == int(op.at.values().numel())
    assert nnz <= 2.5 * nz * nx * n_tilts
    assert op.matrix_bytes < 40e6


@pytest.mark.parametrize("model", ["ray", "voxel"])
def test_results_do_not_depend_on_the_y_chunk(model):
    """Forward and adjoint with 1, 7 and the default Y columns per sparse product agree to
    float32 rounding (Y shifts and a shorter detector included, Y = 70 > default chunk)."""
    rng = np.random.default_rng(3)
    n = 5
    geom = Geometry.single_axis(
        np.linspace(-60, 50, n),
        (10, 70, 12),
        detector_shape=(66, 11),
        shifts=np.c_[rng.normal(0, 1, n), rng.normal(0, 2, n)],
    )
    ops = {w: make_projector(geom, model, y_chunk=w) for w in (1, 7, None)}
    assert ops[1].y_chunk == 1 and ops[7].y_chunk == 7
    assert 1 <= ops[None].y_chunk <= 70
    g = torch.Generator().manual_seed(0)
    x = torch.randn(geom.volume_shape, generator=g)
    y = torch.randn(geom.data_shape, generator=g)
    fw = {w: op.forward(x) for w, op in ops.items()}
    ad = {w: op.adjoint(y) for w, op in ops.items()}
    for w in (1, 7):
        assert torch.allclose(fw[w], fw[None], rtol=0, atol=1e-6 * float(fw[None].abs().max()))
        assert torch.allclose(ad[w], ad[None], rtol=0, atol=1e-6 * float(ad[None].abs().max()))
    # adjoint_chunks tiles Y with the projector's width
    bounds = [(y0, y1) for y0, y1, _ in ops[7].adjoint_chunks(y)]
    assert bounds[0] == (0, 7) and bounds[-1] == (63, 70) and len(bounds) == 10
    # with_geometry keeps the option
    assert ops[7].with_geometry(geom).y_chunk == 7


def test_default_y_chunk_rule():
    """The cache-size rule: a power of two in [16, 32] (capped at Y) on the CPU, narrower
    for larger XZ slices; other devices only bound the copies to ~32 MiB."""
    from wedge.projectors.single_axis import default_y_chunk

    def w(n, ny=512, nnz_per_row=None, device="cpu"):
        rows = 61 * n
        nnz = rows * (nnz_per_row or 2 * n)
        return default_y_chunk((n, ny, n), (61, ny, n), nnz, device)

    for n in (64, 128, 256, 512, 1024):
        assert w(n) in (16, 32)
    assert w(128) >= w(256) >= w(512) >= w(1024)
    assert w(64, ny=5) == 5
    assert w(256, device="cuda") == (32 << 20) // (4 * 256 * 256)


def test_measured_y_chunk_is_cached_and_bad_values_are_rejected():
    from wedge.projectors.single_axis import _MEASURED_Y_CHUNK, clear_y_chunk_cache

    clear_y_chunk_cache()
    geom = Geometry.single_axis(np.linspace(-60, 60, 9), (12, 40, 12))
    op = make_projector(geom, y_chunk="measure")
    assert op.y_chunk in (8, 16, 32, 40) and len(_MEASURED_Y_CHUNK) == 1
    assert make_projector(geom, y_chunk="measure").y_chunk == op.y_chunk  # from the cache
    clear_y_chunk_cache()
    assert not _MEASURED_Y_CHUNK
    for bad in (0, -3, 2.5, "fast", True):
        with pytest.raises(ValueError, match="y_chunk"):
            make_projector(geom, y_chunk=bad)


@pytest.mark.parametrize("kind", ["single", "general"])
def test_fourier_class_matches_the_differentiable_function(kind):
    """The registered Fourier projector (precomputed grid, hand-written adjoint, no Y padding
    on single-axis geometry) equals :func:`fourier_slice_project` and its autograd adjoint."""
    from wedge.projectors.base import autograd_adjoint
    from wedge.projectors.fourier import fourier_slice_project

    geom = _geometries()[kind]
    op = make_projector(geom, "fourier")
    m = geom.matrices().float()
    sh = None if geom.shifts is None else torch.tensor(geom.shifts, dtype=torch.float32)

    def fwd(x):
        return fourier_slice_project(x, m, sh, geom.detector_shape, 3.0)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(geom.volume_shape, generator=g)
    y = torch.randn(geom.data_shape, generator=g)
    px, pf = fwd(x), op.forward(x)
    assert float((px - pf).abs().max()) < 1e-4 * float(px.abs().max())
    ax, af = autograd_adjoint(fwd, y, geom.volume_shape), op.adjoint(y)
    assert float((ax - af).abs().max()) < 1e-4 * float(ax.abs().max())
