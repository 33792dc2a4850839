"""Every registered nonlinear forward model: its gradients against an independent route.

For each model in :data:`wedge.models.FORWARD_MODELS`, on small random cases, the
vector-Jacobian product of ``images`` with respect to the volume and every acquisition
parameter the model declares equals that of its plain-autograd ``reference`` (for
multislice: Ren's hand-written Algorithm 2 against autograd through the same maths), or,
for models without a reference, finite differences (``torch.autograd.gradcheck``, float64).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wedge
from wedge.models import FORWARD_MODELS, get_model, shift_images
from wedge.optics import Microscope
from wedge.parameters import AcquisitionParameters

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _series(n=3, shape=(6, 7), defocus=False):
    rng = np.random.default_rng(5)
    angles = np.array([-35.0, 5.0, 40.0])[:n]
    kw = {}
    imgs = np.zeros((n, *shape), np.float32)
    if defocus:
        imgs = np.ones((n, 2, *shape), np.float32)
        kw = dict(defocus=np.array([[50.0, 150.0]] * n), microscope=Microscope(cs=1e5))
    return wedge.TiltSeries(
        imgs,
        angles,
        pixel_size=0.5,
        shifts=rng.normal(0, 0.7, (n, 2)),
        euler=np.stack([rng.normal(0, 4, n), angles, rng.normal(0, 3, n)], 1),
        tilt_axis_angle=7.0,
        **kw,
    )


def _settings(name, series, dtype):
    s = {"detector_shape": series.image_shape, "ray_step": 0.7, "oversampling": 2.0}
    if name == "multislice":
        s.update(voxel_size=series.pixel_size, microscope=series.microscope)
    return s


@pytest.mark.parametrize("name", sorted(FORWARD_MODELS))
def test_model_gradient_matches_independent_route(name):
    model = get_model(name)
    hrtem = name == "multislice"
    series = _series(defocus=hrtem)
    torch.manual_seed(0)
    if hrtem:
        # a weak-ish random potential (V) on a 6×6×7 box, float32 as the model computes
        vol = (torch.rand(6, 6, 7) * 20).requires_grad_(True)
        dtype = torch.float32
    else:
        vol = torch.rand(5, 6, 7, dtype=torch.float64).requires_grad_(True)
        dtype = torch.float64
    params = AcquisitionParameters(series, model.parameters)
    s = _settings(name, series, dtype)
    inputs = [vol, *params.refined()]
    assert len(params.refined()) == len(model.parameters) >= 5

    if model.reference is None:
        # finite differences in float64: the pose gradients of sampling-based projectors
        def f(v, *pars):
            for t, val in zip(params.refined(), pars, strict=True):
                t.data = val.data
            p2 = AcquisitionParameters(series, ())
            p2.shifts, p2.phi, p2.tilt, p2.psi, p2.tilt_axis = pars
            return model.images(v, p2, s)

        assert torch.autograd.gradcheck(f, tuple(inputs), eps=1e-6, atol=1e-5, rtol=1e-4)
        return

    out = model.images(vol, params, s)
    ref = model.reference(vol, params, s)
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-5)
    g = torch.randn_like(out)
    got = torch.autograd.grad(out, inputs, g)
    want = torch.autograd.grad(ref, inputs, g)
    for name_i, a, b in zip(["volume", *model.parameters], got, want, strict=True):
        err = float((a - b).norm() / b.norm().clamp_min(1e-30))
        # float32 FFT chains: measured ≤ 3e-6 relative; the bound leaves 30× room
        assert err < 1e-4, f"{name}: gradient w.r.t. {name_i} differs by {err:.2e}"
        assert float(b.norm()) > 0, f"{name}: no gradient reaches {name_i}"


def test_shift_images_moves_by_whole_pixels_exactly():
    img = torch.zeros(1, 8, 9, dtype=torch.float64)
    img[0, 3, 4] = 1.0
    out = shift_images(img, torch.tensor([[2.0, -1.0]], dtype=torch.float64))
    assert out[0, 2, 6] == pytest.approx(1.0, abs=1e-12)
    assert float(out.abs().sum()) == pytest.approx(1.0, abs=1e-9)


def test_parameters_matrices_equal_the_geometry_convention():
    """Unrefined parameters reproduce Geometry.matrices (Z(α) Z(φ) Y(θ) X(ψ)) exactly, so a
    model built on them projects like the registered linear projectors."""
    series = _series()
    p = AcquisitionParameters(series)
    want = series.geometry((5, 6, 7)).matrices()
    assert torch.allclose(p.matrices(torch.float64), want, atol=1e-12)
    vol = torch.rand(5, 6, 7)
    via_model = get_model("ray-3d").images(vol, p, {"detector_shape": (6, 7)})
    op = wedge.projectors.make_projector(series.geometry((5, 6, 7)), "ray-3d")
    assert torch.allclose(via_model, op.forward(vol), atol=1e-5)
