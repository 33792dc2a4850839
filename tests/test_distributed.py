"""torch.distributed: two gloo ranks started by torchrun give what one process gives."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import wedge
from conftest import astra_project
from wedge import TiltSeries
from wedge.distributed import World, init_process_group, slab_range, world
from wedge.io import read_volume, write_tiltseries
from wedge.outofcore import reconstruct_out_of_core

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPE = (16, 21, 20)
ANGLES = np.linspace(-60, 60, 9)
EULER = np.stack([np.full(9, 20.0), ANGLES, np.zeros(9)], 1)  # tilt axis 20° off Y

_WORKER = textwrap.dedent(
    """
    import sys, warnings
    import numpy as np, torch
    torch.set_num_threads(1)
    import wedge
    from wedge import TiltSeries
    from wedge.distributed import init_process_group
    from wedge.outofcore import reconstruct_out_of_core

    stack, out = sys.argv[1], sys.argv[2]
    w = init_process_group()
    series = wedge.read_tiltseries(stack)
    kw = dict(thickness=16, device="cpu", progress=False)
    res = {}
    for m, it in (("fbp", None), ("sirt", 5), ("cgls", 5), ("sart", 2)):
        res[m] = wedge.reconstruct(series, m, iterations=it, **kw).volume
    euler = np.stack([np.full(9, 20.0), series.angles, np.zeros(9)], 1)
    general = TiltSeries(series.images, series.angles, euler=euler)
    res["sirt-general"] = wedge.reconstruct(general, "sirt", iterations=5, **kw).volume
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wedge.reconstruct(general, "sart", iterations=1, **kw)
    res["warned"] = np.array([any("not distributed" in str(c.message) for c in caught)])
    reconstruct_out_of_core(stack, out, "sirt", memory="1.2MB", iterations=5, thickness=16)
    if w.rank == 0:
        np.savez(sys.argv[3], **res)
    print("rank", w.rank, "of", w.size)
    """
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Path:
    rng = np.random.default_rng(7)
    images = astra_project(rng.random(SHAPE).astype(np.float32), ANGLES)
    path = tmp_path_factory.mktemp("dist") / "stack.mrc"
    write_tiltseries(path, TiltSeries(images, ANGLES))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_slab_range_splits_rows_contiguously_and_evenly():
    for ny, size in [(21, 2), (7, 3), (2, 4)]:
        parts = [slab_range(ny, r, size) for r in range(size)]
        assert parts[0][0] == 0 and parts[-1][1] == ny
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
        widths = [b - a for a, b in parts]
        assert max(widths) - min(widths) <= 1


def test_without_a_process_group_the_world_is_one_rank():
    assert world() == World(0, 1) and not world().active


def test_init_without_torchrun_variables_says_to_use_torchrun(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match="not set; start the processes with torchrun"):
        init_process_group()


def test_a_process_group_that_cannot_form_fails_with_one_clear_sentence(tmp_path):
    """Rank 1 of 2 with nobody at the rendezvous: a RuntimeError naming the backend, rank
    and address after the timeout (run in a child: the group is process-wide state)."""
    port = _free_port()
    code = (
        "from wedge.distributed import init_process_group\n"
        "try:\n"
        "    init_process_group(timeout_s=1)\n"
        "except RuntimeError as e:\n"
        "    print('ERROR', e)\n"
    )
    env = {**os.environ, "RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert "ERROR could not initialise the torch.distributed process group" in done.stdout, (
        done.stderr
    )
    assert f"backend gloo, rank 1 of 2, rendezvous 127.0.0.1:{port}" in done.stdout


def test_two_gloo_ranks_equal_one_process(stack, tmp_path):
    """torchrun --nproc_per_node=2: slab-parallel fbp/sirt/sart/cgls, image-parallel SIRT on a
    general geometry and out-of-core SIRT against one process. Measured max differences
    relative to the volume's max: 0 for fbp, sirt, sart and the out-of-core run (same
    sparse products column by column), 1.5e-7 for cgls (inner products summed per rank),
    8e-8 for image-parallel SIRT (back-projections summed per rank); bound 1e-5."""
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    out, npz = tmp_path / "ooc.mrc", tmp_path / "res.npz"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(stack), str(out), str(npz)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0 of 2" in done.stdout and "rank 1 of 2" in done.stdout
    got = np.load(npz)
    assert bool(got["warned"][0])  # sart on a general geometry: every rank runs all of it
    series = wedge.read_tiltseries(stack)
    kw = dict(thickness=16, device="cpu", progress=False)
    refs = {m: wedge.reconstruct(series, m, iterations=it, **kw).volume
            for m, it in (("fbp", None), ("sirt", 5), ("cgls", 5), ("sart", 2))}  # fmt: skip
    general = TiltSeries(series.images, ANGLES, euler=EULER)
    refs["sirt-general"] = wedge.reconstruct(general, "sirt", iterations=5, **kw).volume
    one = tmp_path / "one.mrc"
    reconstruct_out_of_core(stack, one, "sirt", memory="1.2MB", iterations=5, thickness=16)
    refs["ooc"], got = read_volume(one), {**got, "ooc": read_volume(out)}
    for name, ref in refs.items():
        err = np.abs(got[name] - ref).max() / np.abs(ref).max()
        assert err <= 1e-5, f"{name}: {err:.2e}"
