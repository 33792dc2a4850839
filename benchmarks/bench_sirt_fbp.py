"""SIRT and FBP speed against ASTRA (CPU) and scikit-image, and SIRT's peak memory.

Run from the repository root::

    .venv/bin/python benchmarks/bench_sirt_fbp.py              # 256³, 61 tilts
    .venv/bin/python benchmarks/bench_sirt_fbp.py --size 128   # quicker

All timings are taken side by side in this one process on the same data: a 3D
Shepp-Logan phantom of size N³ projected by wedge's ray model to 61 tilts over ±60°.
ASTRA's CPU algorithms and scikit-image's ``iradon`` are 2D, so they are run slice by
slice over the Y (tilt-axis) slices; for speed, only ``--peer-slices`` slices are timed
and the per-slice time is multiplied by N, which the output says. ASTRA is given wedge's
angles negated on the same (z, x) slice (its 2D convention), and its CPU 'linear'
projector. wedge uses torch's CPU threads (``torch.get_num_threads()``, printed).

Peak memory: one subprocess per size runs SIRT on random data of the right shape; it
reports the peak resident set size (Linux ``VmHWM``) above the process's baseline after
imports, (a) over the whole run including the sparse-matrix build and (b) during the
iterations only (the high-water mark is reset through ``/proc/self/clear_refs`` after the
build). torch's CPU allocations are plain ``malloc`` and show up in the RSS (tracemalloc
would not see them). Target: below 3 × (volume + data) bytes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wedge._cpuinfo import machine_line

ROOT = Path(__file__).resolve().parents[1]


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def memory_child(n: int, tilts: int, iterations: int) -> None:
    """Run SIRT at n³ on random data and print JSON with the memory figures."""
    from wedge.geometry import Geometry
    from wedge.methods.algebraic import SIRTOptions, sirt
    from wedge.projectors import make_projector
    from wedge.runner import RunOptions

    base = _status_kib("VmRSS")
    angles = np.linspace(-60, 60, tilts)
    data = torch.rand((tilts, n, n))
    op = make_projector(Geometry.single_axis(angles, (n, n, n)))
    after_build = _status_kib("VmHWM")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    reset_base = _status_kib("VmRSS")
    t0 = time.perf_counter()
    sirt(op, data, iterations, options=SIRTOptions(), run=RunOptions(progress=False))
    elapsed = time.perf_counter() - t0
    peak_iter = _status_kib("VmHWM")
    print(
        json.dumps(
            {
                "n": n,
                "volume_bytes": 4 * n**3,
                "data_bytes": 4 * tilts * n * n,
                "matrix_bytes": int(op.matrix_bytes),
                "peak_total_bytes": 1024 * (max(after_build, peak_iter) - base),
                "peak_iterations_bytes": 1024 * (peak_iter - base),
                "resident_before_iterations_bytes": 1024 * (reset_base - base),
                "seconds": elapsed,
                "machine": machine_line(),
            }
        )
    )


def _astra_slices(sinos: np.ndarray, angles: np.ndarray, n: int, alg: str, its: int):
    import astra

    vg = astra.create_vol_geom(n, n)
    pg = astra.create_proj_geom("parallel", 1.0, sinos.shape[-1], np.deg2rad(-angles))
    pid = astra.create_projector("linear", pg, vg)
    times = []
    for sino in sinos:
        sid = astra.data2d.create("-sino", pg, sino)
        rid = astra.data2d.create("-vol", vg, 0)
        cfg = astra.astra_dict(alg)
        cfg.update(ProjectorId=pid, ProjectionDataId=sid, ReconstructionDataId=rid)
        aid = astra.algorithm.create(cfg)
        t0 = time.perf_counter()
        astra.algorithm.run(aid, its)
        times.append(time.perf_counter() - t0)
        astra.algorithm.delete(aid)
        astra.data2d.delete([sid, rid])
    astra.projector.delete(pid)
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--tilts", type=int, default=61)
    p.add_argument("--iterations", type=int, default=5, help="SIRT iterations to time")
    p.add_argument("--peer-slices", type=int, default=8, help="slices timed for ASTRA/skimage")
    p.add_argument("--memory-sizes", type=int, nargs="*", default=[256, 512])
    p.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.memory_child:
        memory_child(a.memory_child, a.tilts, 2)
        return

    from skimage.transform import iradon

    from wedge.geometry import Geometry
    from wedge.methods.algebraic import SIRTOptions, sirt
    from wedge.methods.fbp import fbp
    from wedge.phantoms import shepp_logan_3d
    from wedge.projectors import clear_matrix_cache, make_projector
    from wedge.runner import RunOptions

    n, nt = a.size, a.tilts
    angles = np.linspace(-60, 60, nt)
    print(f"# wedge SIRT/FBP benchmark: {n}³ volume, {nt} tilts ±60°, CPU")
    print(f"# torch {torch.__version__}; {machine_line()}")
    vol = torch.from_numpy(shepp_logan_3d((n, n, n)))
    geom = Geometry.single_axis(angles, (n, n, n))
    clear_matrix_cache()
    t0 = time.perf_counter()
    op = make_projector(geom)
    t_build = time.perf_counter() - t0
    data = op.forward(vol)
    print(f"wedge sparse matrix build: {t_build:.2f} s (once per geometry, cached)")

    # ---------------------------------------------------------------- SIRT
    res = sirt(op, data, a.iterations, options=SIRTOptions(), run=RunOptions(progress=False))
    ts = np.diff([0.0] + [h["time_s"] for h in res.history])
    w_sirt = float(np.median(ts[1:] if ts.size > 1 else ts))
    rng = np.random.default_rng(0)
    picks = np.sort(rng.choice(n, size=min(a.peer_slices, n), replace=False))
    sinos = np.ascontiguousarray(data[:, picks, :].permute(1, 0, 2).numpy())  # (k, nt, nx)
    its = a.iterations
    a_sirt = _astra_slices(sinos, angles, n, "SIRT", its) / its * n
    print(
        f"SIRT s/iteration: wedge {w_sirt:.3f} | ASTRA CPU {a_sirt:.3f} "
        f"(timed on {len(picks)} slices × {its} it., ×{n} slices) | ratio {a_sirt / w_sirt:.1f}×"
    )

    # ---------------------------------------------------------------- FBP
    fbp(op, data)  # warm-up (FFT plans, thread pool)
    t0 = time.perf_counter()
    fbp(op, data)
    w_fbp = time.perf_counter() - t0
    a_fbp = _astra_slices(sinos, angles, n, "FBP", 1) * n
    t_sk = []
    for sino in sinos:
        t0 = time.perf_counter()
        iradon(sino.T, theta=-angles, output_size=n, filter_name="ramp", circle=False)
        t_sk.append(time.perf_counter() - t0)
    s_fbp = float(np.median(t_sk)) * n
    print(
        f"FBP s/volume: wedge {w_fbp:.3f} | ASTRA CPU {a_fbp:.3f} (ratio {a_fbp / w_fbp:.1f}×) | "
        f"skimage iradon {s_fbp:.3f} (ratio {s_fbp / w_fbp:.1f}×); peers timed on "
        f"{len(picks)} slices, ×{n}"
    )

    # ---------------------------------------------------------------- memory
    for m in a.memory_sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(m), "--tilts", str(nt)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if out.returncode:
            print(f"memory {m}³: child failed: {out.stderr.strip()[-500:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        budget = r["volume_bytes"] + r["data_bytes"]
        mib = 2**20
        print(
            f"SIRT peak memory {m}³: total {r['peak_total_bytes'] / mib:.0f} MiB "
            f"({r['peak_total_bytes'] / budget:.2f}× (volume+data)), during iterations "
            f"{r['peak_iterations_bytes'] / mib:.0f} MiB "
            f"({r['peak_iterations_bytes'] / budget:.2f}×); volume+data {budget / mib:.0f} MiB, "
            f"sparse matrices {r['matrix_bytes'] / mib:.0f} MiB; target < 3×"
        )
    print(f"# figures above measured on: {machine_line()}")


if __name__ == "__main__":
    main()
