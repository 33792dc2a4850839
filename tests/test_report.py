"""The comparison report: wedge.report.compare / demo, figures, HTML and its rendering."""

from __future__ import annotations

import contextlib
import dataclasses
import html
import importlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import wedge
from wedge import runner
from wedge.methods.registry import METHODS, register_method
from wedge.report import PeakMemory, compare, demo, text_table
from wedge.report.compare import metric_iterations
from wedge.report.figures import central_slabs
from wedge.runner import Iteration

LANDWEBER = "_test_landweber"


# ----------------------------------------------------------------------------- fixtures
@dataclasses.dataclass
class _LandweberOptions:
    """No options."""


class _Landweber(Iteration):
    """x ← x + τ Aᵀ(b − A x), τ = 1/‖A‖²: a minimal iterative method for these tests."""

    def init(self, x0: torch.Tensor) -> dict[str, torch.Tensor]:
        self.tau = 1.0 / self.op.norm_estimate() ** 2
        return {"x": x0.clone()}

    def step(self, state: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
        x = state["x"]
        return {"x": x + self.tau * self.op.adjoint(self.data - self.op.forward(x))}


@pytest.fixture(scope="module")
def landweber():
    """Register a test-only iterative method (so the tests need no other helper's methods)."""

    def method(op, data, iterations, x0=None, callbacks=(), *, options, run):
        x0 = torch.zeros(op.volume_shape, device=data.device) if x0 is None else x0
        return runner.run(_Landweber(op, data, None), x0, iterations, run, callbacks, name="lw")

    register_method(LANDWEBER, _LandweberOptions, "test-only Landweber", default_iterations=4)(
        method
    )
    yield LANDWEBER
    del METHODS[LANDWEBER]


@pytest.fixture(scope="module")
def small_case():
    """A noiseless 32³ vesicle seen at 15 tilts over ±60°, 5 Å pixels."""
    from wedge.simulate import SimulationOptions, simulate_tiltseries

    truth = wedge.phantoms.vesicle((32, 32, 32), seed=1)
    sim = simulate_tiltseries(
        truth, SimulationOptions(tilt_range=(-60, 60), step=120 / 14), pixel_size=5.0
    )
    return sim.series, truth


@pytest.fixture(scope="module")
def compared(tmp_path_factory, landweber, small_case):
    series, truth = small_case
    out = tmp_path_factory.mktemp("cmp") / "report"
    result = compare(
        series,
        ["bp", landweber],
        reference=truth,
        out_dir=out,
        iterations={landweber: 6},
        progress=False,
        metric_points=3,
    )
    return result, truth


# ----------------------------------------------------------------------------- compare
def test_table_matches_independent_metrics(compared):
    result, truth = compared
    assert [r.method for r in result.metrics] == ["bp", LANDWEBER]
    rng = float(truth.max() - truth.min())
    for row in result.metrics:
        vol = result.reconstructions[row.method].volume
        assert row.pearson == pytest.approx(np.corrcoef(vol.ravel(), truth.ravel())[0, 1], 1e-6)
        rel = np.linalg.norm(vol.astype(float) - truth) / np.linalg.norm(truth.astype(float))
        assert row.relative_l2 == pytest.approx(rel, rel=1e-6)
        psnr = peak_signal_noise_ratio(truth.astype(float), vol.astype(float), data_range=rng)
        assert row.psnr == pytest.approx(psnr, abs=1e-4)
        ssim = structural_similarity(truth.astype(float), vol.astype(float), data_range=rng)
        assert row.ssim == pytest.approx(ssim, abs=1e-5)
        curve = wedge.metrics.fsc(vol, truth, voxel_size=5.0)
        assert row.fsc_0143_A == pytest.approx(curve.resolution(0.143))
        assert row.fsc_half_bit_A == pytest.approx(curve.resolution_half_bit())
        assert row.run_time_s > 0 and row.peak_memory_bytes >= 0
        assert row.memory_kind.startswith("cpu rss increase")
    lw, bp = result.row(LANDWEBER), result.row("bp")
    assert (lw.iterations, lw.stopped) == (6, "iterations")
    assert (bp.iterations, bp.stopped) == (0, "direct")
    # Landweber fits the data; unfiltered back-projection (not in density units) does not
    assert lw.final_r_factor < 0.5 < bp.final_r_factor
    assert lw.pearson > bp.pearson


def test_convergence_records(compared):
    result, truth = compared
    hist = result.convergence[LANDWEBER]
    assert [int(h["iteration"]) for h in hist] == list(range(1, 7))
    assert all("r_factor" in h for h in hist)
    evaluated = {int(h["iteration"]) for h in hist if "pearson" in h}
    assert evaluated == metric_iterations(6, 3) and 6 in evaluated and 1 in evaluated
    # the last evaluation is of the final volume; the runner's last R-factor is the table's
    # (the test method uses the same ray projector as the table's re-projection)
    row = result.row(LANDWEBER)
    assert hist[-1]["pearson"] == pytest.approx(row.pearson, abs=1e-6)
    assert hist[-1]["r_factor"] == pytest.approx(row.final_r_factor, rel=1e-4)
    assert result.convergence["bp"] == []
    # R-factor falls monotonically for Landweber with step 1/‖A‖²
    r = np.array([h["r_factor"] for h in hist])
    assert np.all(np.diff(r) < 0)


def test_report_files(compared):
    result, _ = compared
    out = result.report.parent
    assert result.report == out / "report.html" and result.report.is_file()
    assert set(result.figures) == {"orthoslices", "fsc", "convergence"}
    page = result.report.read_text(encoding="utf-8")
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(srcs) == sorted(p.name for p in result.figures.values())
    for src in srcs:
        img = imread(out / src)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
        assert float(img[..., :3].std()) > 0.05  # not blank
    for name in ("bp", LANDWEBER, "Pearson", "FSC 0.143", "15", "5 Å"):
        assert html.escape(name) in page
    assert not list(out.glob(".*tmp-*"))  # atomic writes left no temporary files
    data = json.loads((out / "metrics.json").read_text())
    assert [m["method"] for m in data["metrics"]] == ["bp", LANDWEBER]
    assert data["metrics"][1]["pearson"] == pytest.approx(result.row(LANDWEBER).pearson)
    assert data["inputs"]["n_tilts"] == 15
    lines = text_table(result).splitlines()
    assert len(lines) == 4 and lines[0].startswith("method") and lines[3].startswith(LANDWEBER)


def test_report_without_reference(tmp_path, small_case):
    series, _ = small_case
    result = compare(series, "bp", out_dir=tmp_path, progress=False)
    assert set(result.figures) == {"orthoslices"} and result.fsc == {}
    row = result.row("bp")
    assert row.pearson is None and row.fsc_0143_A is None and row.final_r_factor > 0
    assert "Pearson" not in result.report.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"methods": ["bp", "nope"]}, "known methods: .*bp"),
        ({"methods": []}, "methods is empty"),
        ({"methods": ["bp", "bp"]}, "more than once"),
        ({"reference": np.zeros((8, 32, 32))}, r"reference has shape \(8, 32, 32\)"),
        ({"reference": np.ones((32, 32, 32))}, "reference is constant"),
        ({"iterations": 0}, "positive integer"),
        ({"iterations": {"sirt": 5}}, "not compared"),
        ({"thickness": 0}, "thickness must be"),
        ({"slab": 0}, "slab must be"),
    ],
)
def test_bad_input_fails_before_work(tmp_path, small_case, kwargs, message):
    series, _ = small_case
    out = tmp_path / "never"
    args = {"methods": ["bp"], **kwargs}
    with pytest.raises(ValueError, match=message):
        compare(series, args.pop("methods"), out_dir=out, progress=False, **args)
    assert not out.exists()


# ----------------------------------------------------------------------------- pieces
def test_central_slabs_analytic():
    z, y, x = np.meshgrid(np.arange(10), np.arange(12), np.arange(14), indexing="ij")
    vol = (100 * z + 10 * y + x).astype(np.float32)
    s = central_slabs(vol, 4)
    # mean of the 4 central planes of an even axis is its centre (N - 1) / 2
    np.testing.assert_allclose(s["XY"], 100 * 4.5 + 10 * y[0] + x[0], rtol=1e-6)
    np.testing.assert_allclose(s["XZ"], 100 * z[:, 0, :] + 10 * 5.5 + x[:, 0, :], rtol=1e-6)
    np.testing.assert_allclose(s["YZ"], 100 * z[:, :, 0] + 10 * y[:, :, 0] + 6.5, rtol=1e-6)


def test_metric_iterations():
    assert metric_iterations(1, 12) == {1}
    pts = metric_iterations(100, 6)
    assert len(pts) <= 6 and {1, 100} <= pts
    assert metric_iterations(5, 12) == {1, 2, 3, 4, 5}


def test_peak_memory_counts_allocations_and_excludes_pauses():
    mib = 1 << 20
    with PeakMemory(torch.device("cpu")) as pm:
        a = np.ones(96 * mib, dtype=np.uint8)  # touched, so resident
        del a
        with pm.paused():
            b = np.ones(192 * mib, dtype=np.uint8)
            del b
    # 96 MiB less a little: resident library pages may be dropped meanwhile
    assert 0.97 * 96 * mib <= pm.peak_bytes < 150 * mib, pm.peak_bytes


# ----------------------------------------------------------------------------- browser
def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    msg = "headless Chromium is absent (apt-get install chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(msg + "; CI must provide it")
    pytest.skip(msg)


def _dump_dom(page: Path, tmp: Path) -> str:
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp}",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _image_status(dom: str) -> dict:
    m = re.search(r'<pre id="image-status">(.*?)</pre>', dom, re.S)
    assert m, "the report's status element is missing from the rendered DOM"
    return json.loads(html.unescape(m.group(1)))


def test_report_renders_in_headless_chromium(compared, tmp_path):
    result, _ = compared
    t0 = time.perf_counter()
    dom = _dump_dom(result.report, tmp_path / "profile")
    assert 'data-rendered="yes"' in dom
    status = _image_status(dom)
    assert status == {"total": 3, "loaded": 3, "failed": []}
    widths = [int(w) for w in re.findall(r'data-natural-width="(\d+)"', dom)]
    assert len(widths) == 3 and min(widths) > 0
    assert "<table" in dom and LANDWEBER in dom
    # the check can fail: the same page with one figure missing reports it
    broken = tmp_path / "broken"
    shutil.copytree(result.report.parent, broken)
    (broken / "fsc.png").unlink()
    status = _image_status(_dump_dom(broken / "report.html", tmp_path / "profile2"))
    assert status["loaded"] == 2 and status["failed"] == ["fsc.png"]
    assert time.perf_counter() - t0 < 60


# ----------------------------------------------------------------------------- demo
def test_demo_small(tmp_path, landweber):
    result = demo(
        tmp_path,
        size=24,
        n_tilts=9,
        tilt_max=60,
        dose=50.0,
        methods=["bp", landweber],
        iterations={landweber: 3},
        progress=False,
        metric_points=2,
    )
    assert result.report.is_file()
    assert result.inputs.n_tilts == 9 and result.inputs.volume_shape == (24, 24, 24)
    assert (result.inputs.tilt_min, result.inputs.tilt_max) == (-60.0, 60.0)
    truth = wedge.read_volume(tmp_path / "vesicle_truth.mrc")
    np.testing.assert_array_equal(truth, wedge.phantoms.vesicle((24, 24, 24), seed=0))
    angles = wedge.io.read_angles(tmp_path / "vesicle.tlt")
    np.testing.assert_allclose(angles, np.linspace(-60, 60, 9), atol=1e-6)
    assert result.row(landweber).iterations == 3


def test_demo_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="tilt_max"):
        demo(tmp_path / "x", tilt_max=95)
    with pytest.raises(ValueError, match="known methods"):
        demo(tmp_path / "x", methods=["nope"])
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_full_demo_under_two_minutes(tmp_path):
    # methods not yet imported by wedge.methods/__init__ (they register on import)
    for mod in ("fbp", "algebraic", "cgls", "genfire", "resire"):
        with contextlib.suppress(ImportError):
            importlib.import_module(f"wedge.methods.{mod}")
    t0 = time.perf_counter()
    result = demo(tmp_path, progress=False)
    elapsed = time.perf_counter() - t0
    assert elapsed < 120, f"demo took {elapsed:.0f} s"
    assert [r.method for r in result.metrics] == wedge.list_methods()
