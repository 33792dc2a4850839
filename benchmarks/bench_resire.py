"""RESIRE seconds per iteration and GENFIRE/RESIRE peak memory.

Usage::

    .venv/bin/python benchmarks/bench_resire.py speed [--sizes 243 256] [--tilts 61]
        [--model fourier] [--iterations 3] [--device cpu]
    .venv/bin/python benchmarks/bench_resire.py memory [--sizes 128 256]

``speed``: mean wall time of RESIRE iterations (after one warm-up) on an N³ volume with
``--tilts`` tilts over ±60°. ``memory``: each (method, size) runs in a fresh subprocess
(2 iterations) and reports its peak resident memory (``ru_maxrss``) on CPU, or
``torch.cuda.max_memory_allocated`` on CUDA, next to GENFIRE's analytic grid size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from wedge._cpuinfo import machine_line


def _series(n: int, tilts: int):
    import wedge

    angles = np.linspace(-60, 60, tilts)
    rng = np.random.default_rng(0)
    images = rng.random((tilts, n, n), dtype=np.float32)
    return wedge.TiltSeries(images, angles)


def speed(n: int, tilts: int, model: str, iterations: int, device: str) -> dict:
    import wedge
    from wedge.methods import resire  # noqa: F401

    series = _series(n, tilts)
    times: list[float] = []

    def cb(rec, x):
        times.append(rec["time_s"])

    wedge.reconstruct(
        series,
        "resire",
        iterations=iterations + 1,
        model=model,
        device=device,
        progress=False,
        callbacks=[cb],
    )
    per = np.diff(times)
    return {
        "n": n,
        "tilts": tilts,
        "model": model,
        "device": device,
        "s_per_iteration": float(per.mean()),
        "machine": machine_line(),
    }


def one_memory_run(method: str, n: int, device: str) -> dict:
    import wedge
    from wedge.methods import genfire, resire  # noqa: F401
    from wedge.methods.genfire import grid_bytes

    series = _series(n, 61)
    model = "fourier" if method == "resire" else "ray"
    rec = wedge.reconstruct(
        series, method, iterations=2, model=model, device=device, progress=False
    )
    peak = rec.peak_memory_bytes
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "method": method,
        "n": n,
        "device": device,
        "peak_bytes": int(peak),
        "genfire_grid_bytes_os3": grid_bytes((n, n, n), 3.0),
        "machine": machine_line(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["speed", "memory", "_one"])
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--tilts", type=int, default=61)
    ap.add_argument("--model", default="fourier")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--method", default="resire")
    a = ap.parse_args()
    if a.what != "_one":
        print(f"# {machine_line()}", flush=True)
    if a.what == "speed":
        for n in a.sizes or [243, 256]:
            print(json.dumps(speed(n, a.tilts, a.model, a.iterations, a.device)), flush=True)
    elif a.what == "_one":
        print(json.dumps(one_memory_run(a.method, a.sizes[0], a.device)))
    else:
        for n in a.sizes or [128, 256]:
            for method in ("genfire", "resire"):
                cmd = [
                    sys.executable,
                    __file__,
                    "_one",
                    "--method",
                    method,
                    "--sizes",
                    str(n),
                    "--device",
                    a.device,
                ]
                t0 = time.perf_counter()
                r = subprocess.run(cmd, capture_output=True, text=True)
                line = (
                    r.stdout.strip().splitlines()[-1]
                    if r.returncode == 0
                    else json.dumps(
                        {"method": method, "n": n, "error": r.stderr.strip().splitlines()[-1:]}
                    )
                )
                print(line, f"# {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    main()
