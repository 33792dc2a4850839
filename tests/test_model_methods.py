"""The slot for nonlinear forward models: a ``kind="model"`` method gets the whole series,
refines acquisition parameters by gradients, and runs on the shared runner (history,
hold-out, checkpoints that load with weights_only=True and resume exactly).

The method here is the worked example of docs/nonlinear.md: projection matching with the
``ray-3d`` forward model, Adam on the volume and the refined parameters. It is registered
for these tests only.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import wedge
from wedge.methods.registry import METHODS, register_method
from wedge.models import get_model
from wedge.problem import Problem
from wedge.runner import Iteration, RunOptions, RunResult, data_weight, run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@dataclasses.dataclass
class MatchOptions:
    lr: float = 0.05
    pose_lr: float = 0.2


class ProjectionMatching(Iteration):
    def __init__(self, problem: Problem, options: MatchOptions, weight):
        super().__init__(None, problem.images(), weight)
        self.problem, self.options = problem, options
        self.model = get_model("ray-3d")
        self.settings = {"detector_shape": problem.series.image_shape}
        self.params = problem.parameters()
        self.x = self.opt = None

    def identity(self):
        return {
            "geometry": repr(self.problem.geometry().to("cpu")),
            "refine": str(self.problem.refine),
        }

    def _live(self, state):
        # after a resume the runner hands back a loaded state: rebuild the live objects
        if self.opt is None:
            self.x = state["x"].detach().clone().requires_grad_(True)
            self.params.load_state_dict(state["params"])
            groups = [{"params": [self.x], "lr": self.options.lr}]
            if self.params.refined():
                groups.append({"params": self.params.refined(), "lr": self.options.pose_lr})
            self.opt = torch.optim.Adam(groups)
            if "adam" in state:
                self.opt.load_state_dict(state["adam"])

    def init(self, x0):
        return {"x": x0, "params": self.params.state_dict()}

    def step(self, state, k):
        self._live(state)
        self.opt.zero_grad()
        fit = self.model.images(self.x, self.params, self.settings) - self.data
        if self.weight is not None:
            fit = fit * self.weight
        (fit**2).sum().backward()
        self.opt.step()
        with torch.no_grad():
            self.x.clamp_(min=0)
        return {
            "x": self.x.detach().clone(),
            "params": self.params.state_dict(),
            "adam": self.opt.state_dict(),
        }

    def predict(self, state):
        with torch.no_grad():
            return self.model.images(state["x"], self.params, self.settings)


def projection_matching(problem, iterations, x0=None, callbacks=(), *, options, run):
    alg = ProjectionMatching(problem, options, data_weight(problem.images(), run))
    x = torch.zeros(problem.volume_shape, device=problem.device) if x0 is None else x0
    result = _run(alg, x, iterations, run, callbacks, name="match")
    return dataclasses.replace(result, parameters=alg.params)


_run = run


@pytest.fixture(scope="module")
def registered():
    register_method(
        "match-test", MatchOptions, "projection matching (test)", kind="model",
        default_iterations=5,
    )(projection_matching)  # fmt: skip
    yield "match-test"
    METHODS.pop("match-test")


@pytest.fixture(scope="module")
def data():
    n = 16
    zz, yy, xx = np.meshgrid(*(np.arange(n) - (n - 1) / 2,) * 3, indexing="ij")
    vol = np.exp(-((xx - 2) ** 2 + (yy + 1) ** 2 + zz**2) / 6.0).astype(np.float32)
    vol += 0.7 * np.exp(-((xx + 3) ** 2 + (yy - 3) ** 2 + (zz - 2) ** 2) / 4.0)
    ang = np.linspace(-60, 60, 13)
    true = np.random.default_rng(3).normal(0, 1.0, (ang.size, 2))
    true -= true.mean(0)  # a common shift is a translation of the object, not recoverable
    imgs = wedge.project(vol, ang, shifts=true, model="ray-3d")
    return wedge.TiltSeries(imgs, ang), true


def test_model_method_refines_shifts_and_returns_the_series(registered, data):
    series, true = data
    r = wedge.reconstruct(series, registered, iterations=150, refine=["shifts"], progress=False)
    got = r.series.shifts - r.series.shifts.mean(0)
    start = float(np.sqrt((true**2).mean()))
    err = float(np.sqrt(((got - true) ** 2).mean()))
    # measured: 1.14 px RMS at the start, 0.090 px after 150 iterations
    assert err < 0.25 * start
    assert r.series is not series and r.series.images is series.images
    np.testing.assert_array_equal(r.series.angles, series.angles)
    assert series.shifts is None  # the input is never modified
    assert r.history[-1]["r_factor"] < r.history[0]["r_factor"]


def test_model_method_without_refinement_returns_the_input_series(registered, data):
    series, _ = data
    r = wedge.reconstruct(series, registered, iterations=2, progress=False)
    np.testing.assert_array_equal(r.series.angles, series.angles)
    assert r.series.shifts is None


def test_model_method_checkpoint_resumes_exactly(registered, data, tmp_path):
    series, _ = data
    kw = dict(refine=["shifts", "tilt"], progress=False, checkpoint_every=1)
    full = wedge.reconstruct(series, registered, iterations=6, **kw)
    ckpt = tmp_path / "m.pt"
    wedge.reconstruct(series, registered, iterations=3, checkpoint=ckpt, **kw)
    payload = torch.load(ckpt, weights_only=True)  # network/optimiser state, no pickles
    assert set(payload["state"]) == {"x", "params", "adam"}
    resumed = wedge.reconstruct(series, registered, iterations=6, checkpoint=ckpt, **kw)
    np.testing.assert_allclose(resumed.volume, full.volume, atol=1e-6)
    np.testing.assert_allclose(resumed.series.shifts, full.series.shifts, atol=1e-9)
    with pytest.raises(ValueError, match="refine is"):
        wedge.reconstruct(series, registered, iterations=8, checkpoint=ckpt, refine=["shifts"])


def test_refine_is_validated_before_work(registered, data):
    series, _ = data
    with pytest.raises(ValueError, match="cannot refine 'focus'.*shifts, tilt"):
        wedge.reconstruct(series, registered, refine=["focus"])
    with pytest.raises(ValueError, match="needs a series with defocus"):
        wedge.reconstruct(series, registered, refine="defocus")
    with pytest.raises(ValueError, match="refines no acquisition parameters"):
        wedge.reconstruct(series, "sirt", refine=["shifts"])


def test_focal_series_is_kept_whole_for_model_methods_and_refused_by_linear_ones(registered):
    from wedge.optics import Microscope

    imgs = np.ones((3, 2, 8, 8), np.float32)
    s = wedge.TiltSeries(imgs, [-20, 0, 20], defocus=[100.0, 300.0], microscope=Microscope())
    assert s.defocus.shape == (3, 2) and s.n_defocus == 2
    seen = {}

    def spy(problem, iterations, x0=None, callbacks=(), *, options, run):
        seen["images"] = problem.images().shape
        seen["defocus"] = problem.parameters().defocus.shape
        return RunResult(torch.zeros(problem.volume_shape), [], "direct", 0)

    register_method("spy-test", MatchOptions, "spy", kind="model", iterative=False)(spy)
    try:
        wedge.reconstruct(s, "spy-test", thickness=4)
    finally:
        METHODS.pop("spy-test")
    assert seen == {"images": (3, 2, 8, 8), "defocus": (3, 2)}
    with pytest.raises(ValueError, match="focal series"):
        wedge.reconstruct(s, "sirt")


def test_run_options_are_checked_for_model_methods_too(registered, data):
    with pytest.raises(ValueError, match="holdout must be a fraction"):
        wedge.reconstruct(data[0], registered, holdout=2.0)
    assert RunOptions(tol=1).tol == 1.0
