"""The ``inr`` method (implicit neural representation, Lim et al. §4.1): network, rays,
schedule, rendering, conventions against SIRT on ASTRA data, hold-out, checkpoints, pose
learning and bad input. Independent data come from ASTRA (tests/conftest.py); sizes are
tiny so that the file runs in well under a minute on two cores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import wedge
from conftest import astra_project, misaligned_images
from wedge.geometry import rotation_y, rotation_z
from wedge.inr import HSiren, Pose, RayGeometry, line_integrals, matrix_to_euler, n_samples
from wedge.inr.rays import remove_translation
from wedge.inr.render import render_bytes, render_checkpoint, render_volume
from wedge.inr.train import lr_factor, samples_at
from wedge.memory import InsufficientMemoryError
from wedge.methods.inr import INROptions
from wedge.parameters import AcquisitionParameters
from wedge.phantoms import materials

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(width=32, depth=2, warmup_epochs=1, ramp_epochs=1, progress=False, device="cpu")


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# ----------------------------------------------------------------------------- network
def test_hsiren_weights_follow_eqs_4_and_5_and_activations_eqs_1_to_3():
    net = HSiren(64, 3, generator=torch.Generator().manual_seed(0)).requires_grad_(False)
    w_in = net.hidden[0].weight
    assert float(w_in.abs().max()) <= 1 / 3 and float(w_in.abs().max()) > 0.9 / 3  # U(±1/n)
    bound = math.sqrt(6 / 64) / 30
    for layer in [*net.hidden[1:], net.out]:
        assert float(layer.weight.abs().max()) <= bound
        assert float(layer.weight.abs().max()) > 0.9 * bound
    r = torch.rand(50, 3) * 2 - 1
    h = torch.sin(30 * torch.sinh(2 * net.hidden[0](r)))  # Eq. 1
    for layer in net.hidden[1:]:
        h = torch.sin(30 * layer(h))  # Eq. 2
    expect = F.softplus(net.out(h)).squeeze(-1)  # Eq. 3
    torch.testing.assert_close(net(r), expect)
    assert float(net(r).min()) >= 0


# ----------------------------------------------------------------------------- rays
def _trilinear_field(vol: np.ndarray):
    v = torch.tensor(vol)[None, None]

    def field(t: torch.Tensor) -> torch.Tensor:
        g = t.reshape(1, -1, 1, 1, 3)
        return F.grid_sample(v, g, mode="bilinear", align_corners=False).reshape(-1)

    return field


def test_ray_line_integrals_of_a_voxel_field_match_astra():
    # a non-cubic, off-centre phantom; the field is its trilinear interpolation
    vol = materials((24, 32, 40))
    ang = np.array([-60.0, -20.0, 0.0, 35.0, 70.0])
    proj = astra_project(vol, ang)
    p = AcquisitionParameters(wedge.TiltSeries(proj, ang))
    pose = Pose(p.matrices(torch.float64), p.shifts)
    g = RayGeometry(vol.shape, proj.shape[1:])
    m, d = pose.effective()
    t, h = g.points(torch.arange(proj.size), m, d, n_samples(vol.shape, 0.25), None)
    with torch.no_grad():
        pred = line_integrals(_trilinear_field(vol), t, h).reshape(proj.shape).numpy()
    rel = np.linalg.norm(pred - proj) / np.linalg.norm(proj)
    assert rel < 0.015  # measured 0.0100 (sampling vs ASTRA's Joseph interpolation)
    # the mirrored convention (tilt sign flipped) is far off
    p2 = AcquisitionParameters(wedge.TiltSeries(proj, -ang))
    m2, d2 = Pose(p2.matrices(torch.float64), p2.shifts).effective()
    t2, h2 = g.points(torch.arange(proj.size), m2, d2, n_samples(vol.shape, 0.25), None)
    with torch.no_grad():
        bad = line_integrals(_trilinear_field(vol), t2, h2).reshape(proj.shape).numpy()
    assert np.linalg.norm(bad - proj) / np.linalg.norm(proj) > 10 * rel


def test_rays_with_shifts_and_in_plane_axis_equal_wedges_ray_projector():
    import scipy.ndimage as ndi

    from wedge.projectors.general import project_rays

    rng = np.random.default_rng(0)
    # smooth (sampling errors vanish) and zero next to the faces (the trilinear field of
    # wedge's projector reaches half a voxel beyond the box, the INR's support ends there)
    vol = np.pad(ndi.gaussian_filter(materials((24, 28, 32)), 1.5)[2:-2, 2:-2, 2:-2], 2)
    ang = np.array([-50.0, -10.0, 25.0, 60.0])
    shifts = rng.normal(0, 1.5, (4, 2))
    s = wedge.TiltSeries(np.zeros((4, 28, 32), np.float32), ang, shifts=shifts, tilt_axis_angle=7.0)
    p = AcquisitionParameters(s)
    ref = project_rays(torch.tensor(vol), p.matrices(), p.shifts.float(), (28, 32), 0.25)
    m, d = Pose(p.matrices(torch.float64), p.shifts).effective()
    t, h = RayGeometry(vol.shape, (28, 32)).points(
        torch.arange(4 * 28 * 32), m, d, n_samples(vol.shape, 0.25), None
    )
    with torch.no_grad():
        pred = line_integrals(_trilinear_field(vol), t, h).reshape(4, 28, 32)
    rel = float(torch.linalg.vector_norm(pred - ref) / torch.linalg.vector_norm(ref))
    assert rel < 1e-3  # measured 3.5e-4 (sample positions differ by a fraction of a step)
    # the shifts with the opposite sign are far off
    t, h = RayGeometry(vol.shape, (28, 32)).points(
        torch.arange(4 * 28 * 32), m, -d, n_samples(vol.shape, 0.25), None
    )
    with torch.no_grad():
        bad = line_integrals(_trilinear_field(vol), t, h).reshape(4, 28, 32)
    bad_rel = float(torch.linalg.vector_norm(bad - ref) / torch.linalg.vector_norm(ref))
    assert bad_rel > 10 * rel


def test_pose_z1_z3_compose_as_the_paper_and_an_axis_error_is_representable():
    theta = torch.tensor([-40.0, 0.0, 30.0], dtype=torch.float64)
    nominal = rotation_y(torch.deg2rad(theta))
    pose = Pose(nominal, torch.zeros(3, 2, dtype=torch.float64))
    torch.testing.assert_close(pose.rotations(), nominal)  # z = 0: the nominal rays
    alpha = 3.0
    with torch.no_grad():
        pose.z1.fill_(-alpha)
    a = torch.deg2rad(torch.tensor(alpha, dtype=torch.float64))
    # z1 = −α: wedge's tilt-axis angle α (Z(α) Y(θ))
    torch.testing.assert_close(pose.rotations(), rotation_z(a) @ nominal)
    with torch.no_grad():
        pose.z3.fill_(alpha)
    # z1 = −α, z3 = α: the same tilt axis with the volume turned by α (Z(α) Y(θ) Z(−α))
    torch.testing.assert_close(pose.rotations(), rotation_z(a) @ nominal @ rotation_z(-a))
    e = matrix_to_euler(pose.rotations(), theta)
    from wedge.geometry import euler_to_matrix

    torch.testing.assert_close(euler_to_matrix(torch.deg2rad(e)), pose.rotations().detach())


def test_gauge_fix_removes_a_common_z3_and_a_volume_translation():
    theta = torch.tensor([-50.0, -10.0, 20.0, 65.0], dtype=torch.float64)
    nominal = rotation_y(torch.deg2rad(theta))
    shifts0 = torch.tensor([[0.3, -0.2], [0.0, 0.1], [-0.4, 0.5], [0.2, 0.0]], dtype=torch.float64)
    pose = Pose(nominal, shifts0)
    with torch.no_grad():
        pose.z3.copy_(torch.tensor([1.0, 2.0, 3.0, 6.0]))
    pose.fix_gauge()
    z3 = pose.z3.detach()
    assert abs(float(z3.mean())) < 1e-12
    torch.testing.assert_close(z3.diff(), torch.tensor([1.0, 1.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(pose.delta.detach(), shifts0)  # nothing to remove
    # shifts = a volume translation t plus a part no translation explains
    pose = Pose(nominal, shifts0)
    t = torch.tensor([1.5, -0.7, 2.0], dtype=torch.float64)
    own = torch.tensor([[0.4, 0.1], [-0.3, 0.2], [0.0, -0.5], [0.1, 0.3]], dtype=torch.float64)
    own = remove_translation(own, nominal)
    with torch.no_grad():
        pose.delta.copy_(shifts0 + (nominal @ t)[:, :2] + own)
    pose.fix_gauge()
    torch.testing.assert_close(pose.delta.detach() - shifts0, own, atol=1e-9, rtol=0)
    assert float(own.abs().max()) > 0.1  # (the remaining part is not trivially zero)


def test_common_axis_offset_adds_to_every_z1_and_its_gauge_keeps_the_rays():
    theta = torch.tensor([-50.0, -10.0, 20.0, 65.0], dtype=torch.float64)
    nominal = rotation_y(torch.deg2rad(theta))
    pose = Pose(nominal, torch.zeros(4, 2, dtype=torch.float64), axis=True)
    assert Pose(nominal, torch.zeros(4, 2, dtype=torch.float64)).axis is None
    assert len(pose.angles()) == 3 and pose.axis is not None
    alone = Pose(nominal, torch.zeros(4, 2, dtype=torch.float64), axis=True, per_image=False)
    assert alone.angles() == [alone.axis]
    with torch.no_grad():
        pose.axis.fill_(-2.0)
        pose.z1.copy_(torch.tensor([0.5, -1.0, 1.5, 1.0]))
    a = torch.deg2rad(
        torch.tensor([2.0 - 0.5, 2.0 + 1.0, 2.0 - 1.5, 2.0 - 1.0], dtype=torch.float64)
    )
    torch.testing.assert_close(pose.rotations(), rotation_z(a) @ nominal)  # Z(−a − z₁) Rᵢ
    before = pose.rotations().detach().clone()
    pose.fix_gauge()  # the mean z₁ (0.5) moves into the common offset; no ray changes
    assert abs(float(pose.z1.detach().mean())) < 1e-12
    assert abs(float(pose.axis.detach()) + 1.5) < 1e-12
    torch.testing.assert_close(pose.rotations().detach(), before)


# ----------------------------------------------------------------------------- schedule
def test_learning_rate_warms_up_linearly_then_anneals_by_cosine():
    assert lr_factor(0.0, 10, 150) == 0.0
    assert lr_factor(5.0, 10, 150) == pytest.approx(0.5)
    assert lr_factor(10.0, 10, 150) == pytest.approx(1.0)
    assert lr_factor(80.0, 10, 150) == pytest.approx(0.5)
    assert lr_factor(150.0, 10, 150) == pytest.approx(0.0)
    assert samples_at(0, 80, 20, 4) == 20 and samples_at(2, 80, 20, 4) == 50
    assert samples_at(4, 80, 20, 4) == samples_at(9, 80, 20, 4) == 80


# ----------------------------------------------------------------------------- render
def test_render_is_the_same_in_any_chunk_size_and_estimates_before_allocating():
    net = HSiren(16, 2, generator=torch.Generator().manual_seed(1)).requires_grad_(False)
    a = render_volume(net, (5, 7, 9), width=16, chunk=10)  # planes split
    b = render_volume(net, (5, 7, 9), width=16, chunk=1000)  # several planes per call
    torch.testing.assert_close(a, b)
    c = torch.tensor([(2 * 4 + 1) / 9 - 1, (2 * 3 + 1) / 7 - 1, (2 * 2 + 1) / 5 - 1])
    torch.testing.assert_close(a[2, 3, 4], net(c[None])[0])  # voxel centres, (x, y, z)
    est = render_bytes((512, 512, 512), 512)
    assert est.parts["one chunk of activations"] < 2**30  # never 512³ × width
    with pytest.raises(InsufficientMemoryError, match="rendering a"):
        render_volume(net, (512, 512, 512), width=16, available=10**8)


def test_dense_phantom_is_deterministic_and_in_range():
    from wedge.phantoms import dense

    a = dense((48, 48, 48))
    assert a.shape == (48, 48, 48) and a.dtype == np.float32
    assert float(a.min()) >= 0 and float(a.max()) == 1.0
    np.testing.assert_array_equal(a, dense((48, 48, 48)))
    assert not np.array_equal(a, dense((48, 48, 48), seed=1))  # the spikes turn
    assert 0.12 < float((a > 0.05).mean()) < 0.17  # measured 0.142 of the box above 0.05


# ----------------------------------------------------------------------------- method
@pytest.fixture(scope="module")
def small():
    vol = materials((24, 24, 24))
    ang = np.arange(-60.0, 61.0, 15.0)
    return vol, wedge.TiltSeries(astra_project(vol, ang), ang)


def test_inr_lines_up_with_sirt_voxel_for_voxel_on_astra_data(small):
    vol, s = small
    kw = {**FAST, "width": 64}
    inr = wedge.reconstruct(s, "inr", iterations=12, lr=1e-3, batch_size=256, **kw).volume
    sirt = wedge.reconstruct(s, "sirt", iterations=50, positivity=True, progress=False).volume
    # the cross-correlation of the two volumes peaks at zero shift, to a tenth of a voxel
    a, b = inr - inr.mean(), sirt - sirt.mean()
    cc = np.fft.ifftn(np.fft.fftn(a) * np.conj(np.fft.fftn(b))).real
    assert np.unravel_index(np.argmax(cc), cc.shape) == (0, 0, 0)
    for axis in range(3):  # parabola through the peak and its two neighbours
        m, c0, p = (float(np.take(cc, i, axis=axis)[0, 0]) for i in (-1, 0, 1))
        offset = 0.5 * (m - p) / (m - 2 * c0 + p)
        assert abs(offset) < 0.1  # measured |offset| ≤ 0.03 voxel
    r = _pearson(inr, sirt)
    assert r > 0.55  # measured 0.635 (an INR of 12 short epochs; SIRT-truth is 0.91)
    assert _pearson(inr[:, :, ::-1], sirt) < r - 0.1  # mirrored in X: measured 0.45
    assert _pearson(inr, vol) > 0.5  # measured 0.58


def test_inr_returns_the_volume_at_the_lowest_holdout_error(small):
    _, s = small
    seen = []
    rec = wedge.reconstruct(
        s, "inr", iterations=5, lr=1e-3, batch_size=512, holdout=0.2, patience=10,
        callbacks=[lambda rec, x: seen.append(x.clone())], **FAST,
    )  # fmt: skip
    errs = [h["holdout_error"] for h in rec.history]
    assert len(errs) == 5 and rec.stopped == "iterations"
    np.testing.assert_array_equal(rec.volume, seen[int(np.argmin(errs))].numpy())


def test_inr_checkpoint_resumes_exactly(small, tmp_path):
    _, s = small
    kw = dict(iterations=4, lr=1e-3, batch_size=512, checkpoint_every=1, **FAST)
    full = wedge.reconstruct(s, "inr", **kw)
    ck = tmp_path / "inr.pt"
    wedge.reconstruct(s, "inr", checkpoint=ck, callbacks=[lambda r, x: r["iteration"] >= 2], **kw)
    resumed = wedge.reconstruct(s, "inr", checkpoint=ck, **kw)
    assert len(resumed.history) == 4
    np.testing.assert_allclose(resumed.volume, full.volume, rtol=0, atol=1e-6)
    assert [h["holdout_error"] for h in resumed.history] == pytest.approx(
        [h["holdout_error"] for h in full.history], rel=1e-6
    )
    with pytest.raises(ValueError, match="belongs to another run"):
        wedge.reconstruct(s, "inr", checkpoint=ck, **{**kw, "lr": 2e-3})
    # the checkpoint's field renders at any size; at the volume's size it is the last epoch
    last = torch.load(ck, weights_only=True)["state"]["x"]
    torch.testing.assert_close(render_checkpoint(ck, (24, 24, 24)), last)
    fine = render_checkpoint(ck, (48, 48, 48))
    assert abs(float(fine.mean()) / float(last.mean()) - 1) < 0.05  # same densities


def test_inr_smooth_l1_and_l2_both_fit_and_differ(small):
    _, s = small
    kw = dict(iterations=3, lr=1e-3, batch_size=512, **FAST)
    a = wedge.reconstruct(s, "inr", loss="smooth_l1", **kw)
    b = wedge.reconstruct(s, "inr", loss="l2", **kw)
    assert not np.array_equal(a.volume, b.volume)
    for r in (a, b):
        assert r.history[-1]["r_factor"] < r.history[0]["r_factor"]


# ----------------------------------------------------------------------------- pose
def test_pose_gradients_recover_an_in_plane_axis_error_and_shifts_for_a_known_volume():
    # the pose path alone: the field is the true volume (trilinear), the images ASTRA's
    # projections turned by α = 3° and moved by random shifts; Adam on z1, z3, δ as in training
    rng = np.random.default_rng(3)
    vol = materials((32, 32, 32))
    ang = np.arange(-70.0, 71.0, 10.0)
    shifts = rng.normal(0, 1.0, (ang.size, 2))
    shifts -= shifts.mean(0)
    img = torch.tensor(misaligned_images(astra_project(vol, ang), 3.0, shifts)).reshape(-1)
    p = AcquisitionParameters(wedge.TiltSeries(img.reshape(-1, 32, 32).numpy(), ang))
    pose = Pose(p.matrices(torch.float64), p.shifts)
    field, geom = _trilinear_field(vol), RayGeometry(vol.shape, (32, 32))
    opt = torch.optim.Adam(pose.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        idx = torch.randint(0, img.numel(), (1024,), generator=gen)
        m, d = pose.effective()
        t, h = geom.points(idx, m, d, n_samples(vol.shape, 1.0), torch.rand(1024, generator=gen))
        loss = F.smooth_l1_loss(line_integrals(field, t, h), img[idx], beta=0.07)
        opt.zero_grad()
        loss.backward()
        opt.step()
        pose.fix_gauge()
    z1 = pose.z1.detach()
    err = remove_translation(pose.delta.detach() - torch.tensor(shifts), pose.rotations())
    assert abs(float(z1.mean()) + 3.0) < 0.4  # measured z1 mean −3.14° (truth −3°)
    assert float(z1.std()) < 0.4  # measured 0.23
    assert float(err.pow(2).sum(1).mean().sqrt()) < 0.4  # measured 0.28 px, from 1.54


def _axis_and_shift_errors(rec, alpha: float, ang: np.ndarray, shifts: np.ndarray):
    """(mean z₁ + α from the in-plane part of R_eff R_trueᵀ, degrees; mean rotation angle
    of R_eff R_trueᵀ, degrees; shift RMS with the translation gauge removed, px)."""
    p = AcquisitionParameters(rec.series)
    a = torch.deg2rad(torch.tensor(alpha, dtype=torch.float64))
    true = rotation_z(a) @ rotation_y(torch.deg2rad(torch.tensor(ang)))
    with torch.no_grad():
        rel = p.matrices(torch.float64) @ true.transpose(1, 2)
    tr = rel.diagonal(dim1=1, dim2=2).sum(-1)
    err = torch.rad2deg(torch.acos(((tr - 1) / 2).clamp(-1, 1)))
    inplane = torch.rad2deg(torch.atan2(rel[:, 1, 0], rel[:, 0, 0]))
    d = remove_translation(p.shifts.detach() - torch.tensor(shifts), true).numpy()
    return -float(inplane.mean()), float(err.mean()), float(np.sqrt((d**2).sum(1).mean()))


@pytest.mark.slow
def test_joint_pose_learning_recovers_shifts_and_only_part_of_an_axis_error_at_32():
    # 6–13.5 min on 2 cores at load average 4–5 (two trainings). Joint training (network + pose
    # from scratch) on ASTRA projections turned by α = 3° and shifted (1.54 px RMS): the
    # shifts are recovered; the axis error mostly is not at this size (docs/inr.md, "Pose":
    # the volume absorbs it), with the paper's per-image angles less than with one common
    # axis offset (pose_angles="axis")
    rng = np.random.default_rng(3)
    vol = materials((32, 32, 32))
    ang = np.arange(-70.0, 71.0, 10.0)
    alpha = 3.0
    shifts = rng.normal(0, 1.0, (ang.size, 2))
    shifts -= shifts.mean(0)
    s = wedge.TiltSeries(misaligned_images(astra_project(vol, ang), alpha, shifts), ang)
    kw = dict(iterations=40, lr=1e-3, width=64, depth=3, warmup_epochs=3, patience=100)
    rec = wedge.reconstruct(s, "inr", pose=True, pose_start=3, progress=False, **kw)
    axis_own, rot, shift = _axis_and_shift_errors(rec, alpha, ang, shifts)
    assert shift < 0.5  # measured 0.40 px (from 1.54)
    assert rot < 3.0  # measured mean rotation error 2.83° (from 3.0°)
    assert axis_own < 2.95  # measured axis residual 2.80° (from 3.0°)
    rec = wedge.reconstruct(
        s, "inr", pose=True, pose_start=0, pose_angles="axis", progress=False, **kw
    )
    axis, rot, shift = _axis_and_shift_errors(rec, alpha, ang, shifts)
    assert axis < axis_own - 0.2  # measured 2.45° against 2.80°
    assert shift < 0.55  # measured 0.46 px


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"width": 0}, "width must be a positive integer"),
        ({"depth": -1}, "depth must be a positive integer"),
        ({"lr": 0.0}, "lr must be a positive number"),
        ({"pose_lr": -1e-2}, "pose_lr must be a positive number"),
        ({"holdout": 0.6}, r"hold-out fraction in \(0, 0.5\]"),
        ({"holdout": 0.0}, r"hold-out fraction in \(0, 0.5\]"),
        ({"refine": ["shifts"]}, "with pose=True; drop refine="),
        ({"x0": np.zeros((24, 24, 24), np.float32)}, "takes no x0"),
        ({"warmup_epochs": 5, "iterations": 5}, "must be shorter than the run"),
        ({"width": 4096, "batch_size": 1 << 20}, "needs about"),
    ],
)
def test_inr_refuses_bad_input_before_work(small, kw, match):
    _, s = small
    with pytest.raises(ValueError, match=match):
        wedge.reconstruct(s, "inr", **{"iterations": 20, "progress": False, **kw})


def test_inr_pose_needs_three_images():
    ang = np.array([-30.0, 30.0])
    s = wedge.TiltSeries(np.ones((2, 16, 16), np.float32), ang)
    with pytest.raises(ValueError, match="at least 3 images"):
        wedge.reconstruct(s, "inr", pose=True, iterations=2, progress=False)


def test_inr_options_are_typed():
    with pytest.raises(ValueError, match="loss"):
        INROptions(loss="l1")
    with pytest.raises(ValueError, match="ramp_factor"):
        INROptions(ramp_factor=0.5)
    with pytest.raises(ValueError, match="pose_angle_lr must be a positive number or None"):
        INROptions(pose_angle_lr=0.0)
    assert INROptions(pose_angle_lr=0.2).pose_angle_lr == 0.2
