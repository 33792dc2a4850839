"""Device choice: reported, checked, and the GPU paths (marked ``gpu``) equal the CPU ones."""

from __future__ import annotations

import numpy as np
import pytest

import wedge
from wedge import TiltSeries
from wedge.cli import main
from wedge.distributed import check_device
from wedge.io import read_volume, write_tiltseries
from wedge.outofcore import reconstruct_out_of_core
from wedge.phantoms import make_phantom
from wedge.projectors import project


@pytest.fixture(scope="module")
def series() -> TiltSeries:
    vol = make_phantom("vesicle", (16, 20, 20))
    angles = np.linspace(-60, 60, 13)
    return TiltSeries(project(vol, angles, device="cpu"), angles, pixel_size=2.0)


def test_reconstruction_reports_the_device_it_ran_on(series):
    rec = wedge.reconstruct(series, "fbp", device="cpu")
    assert rec.device == "cpu"


@pytest.mark.parametrize(
    "bad, message",
    [("gpu", "unknown device 'gpu'"), ("tpu:0", "not supported|unknown device")],
)
def test_unknown_devices_are_refused_in_one_sentence(series, bad, message):
    with pytest.raises(ValueError, match=message):
        wedge.reconstruct(series, "fbp", device=bad)


def test_absent_cuda_is_refused(series):
    import torch

    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        with pytest.raises(ValueError, match=f"cuda:{n} does not exist"):
            check_device(f"cuda:{n}")
    else:
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            wedge.reconstruct(series, "fbp", device="cuda")


def test_cli_prints_the_device(series, tmp_path, capsys):
    stack = tmp_path / "s.mrc"
    write_tiltseries(stack, series)
    code = main(["reconstruct", str(stack), "-o", str(tmp_path / "v.mrc"), "--method", "fbp",
                 "--device", "cpu", "-q"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and " on cpu in " in out


@pytest.mark.gpu
@pytest.mark.parametrize("method, it", [("fbp", None), ("sirt", 10), ("resire", 10)])
def test_gpu_reconstruction_equals_cpu(series, cuda, method, it):
    """Same method on CUDA and CPU: equal to float32 rounding (bound 1e-4 of the max; cuSPARSE
    and MKL sum in different orders)."""
    kw = dict(iterations=it, model="ray", progress=False)
    gpu = wedge.reconstruct(series, method, device=cuda, **kw)
    cpu = wedge.reconstruct(series, method, device="cpu", **kw)
    assert gpu.device.startswith("cuda")
    assert np.abs(gpu.volume - cpu.volume).max() <= 1e-4 * np.abs(cpu.volume).max()


@pytest.mark.gpu
def test_gpu_out_of_core_equals_cpu(series, cuda, tmp_path):
    stack = tmp_path / "s.mrc"
    write_tiltseries(stack, series)
    a = reconstruct_out_of_core(stack, tmp_path / "g.mrc", "sirt", memory="700kB", iterations=5,
                                device=cuda)  # fmt: skip
    reconstruct_out_of_core(stack, tmp_path / "c.mrc", "sirt", memory="700kB", iterations=5,
                            device="cpu")  # fmt: skip
    assert a.device.startswith("cuda") and a.plan.n_slabs > 1
    g, c = read_volume(tmp_path / "g.mrc"), read_volume(tmp_path / "c.mrc")
    assert np.abs(g - c).max() <= 1e-4 * np.abs(c).max()


@pytest.mark.gpu
def test_default_device_is_cuda_when_present(series, cuda):
    assert wedge.reconstruct(series, "fbp").device.startswith("cuda")
