"""GPU speed: the single-axis projector and SIRT against ASTRA's CUDA 3D code, and RESIRE.

Run from the repository root on a machine with CUDA (it prints a line and exits 0
without one)::

    .venv/bin/python benchmarks/bench_gpu.py                          # 256³ and 512³, 61/181 tilts
    .venv/bin/python benchmarks/bench_gpu.py --sizes 256 --tilts 61   # quicker
    .venv/bin/python benchmarks/bench_gpu.py --json out.json

Side by side in one process on one random volume per size (float32, (Z, Y, X) = N³):

* ``wedge fp+bp resident``: one forward and one adjoint of the sparse single-axis ray
  projector (cuSPARSE) with the volume and images already on the GPU, synchronised.
* ``wedge fp+bp host``: the same from a NumPy volume to NumPy images and back
  (``wedge.project`` + ``wedge.backproject``: host → device → host each way).
* ``wedge sirt/it``: SIRT seconds per iteration, data resident (difference of two runs,
  ``k`` and ``2k`` iterations, so set-up and the matrix build cancel).
* ``astra fp+bp host``: ``astra.create_sino3d_gpu`` + ``astra.create_backprojection3d_gpu``
  (parallel3d, the volume as (Y, Z, X) with the tilt axis along ASTRA's slices).
* ``astra fp+bp resident``: FP3D_CUDA + BP3D_CUDA on torch CUDA tensors linked with
  ``astra.data3d.link`` when this ASTRA accepts them (else "n/a").
* ``astra sirt/it``: SIRT3D_CUDA seconds per iteration (difference of ``k`` and ``2k``
  iterations: upload and download cancel).

A check prints the Pearson correlation of wedge's and ASTRA's projections (≥ 0.99 expected:
two different line-integral models of one geometry). Then RESIRE seconds per iteration at
``--resire-size`` (243 by default, the paper's case: 0.15 s per iteration on a GTX 1080 Ti;
target ≤ 0.015 s), with the Fourier-slice projector (RESIRE's default) and the ray one.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from wedge._cpuinfo import machine_line


def _sync() -> None:
    torch.cuda.synchronize()


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        _sync()
        t = time.perf_counter()
        fn()
        _sync()
        best = min(best, time.perf_counter() - t)
    return best


def _per_iteration(run, k: int, repeat: int) -> float:
    """Seconds per iteration from the best of ``repeat`` runs of k and of 2k iterations."""
    t2 = min(run(2 * k) for _ in range(repeat))
    t1 = min(run(k) for _ in range(repeat))
    return max(0.0, (t2 - t1) / k)


def wedge_figures(vol: np.ndarray, angles: np.ndarray, k: int, repeat: int) -> dict:
    import wedge
    from wedge.geometry import Geometry
    from wedge.methods.algebraic import sirt
    from wedge.projectors import make_projector
    from wedge.runner import RunOptions

    dev = torch.device("cuda")
    geom = Geometry.single_axis(angles, vol.shape, device="cuda")
    op = make_projector(geom, "ray")
    x = torch.from_numpy(vol).to(dev)
    y = op.forward(x)  # warm-up (matrix build, cuSPARSE handles)
    op.adjoint(y)
    out = {"fp+bp resident": _best(lambda: op.adjoint(op.forward(x)), repeat)}

    def host():
        p = wedge.project(vol, angles, device="cuda")
        wedge.backproject(p, angles, vol.shape, device="cuda")

    host()
    out["fp+bp host"] = _best(host, repeat)
    data = op.forward(x)
    run = RunOptions(progress=False)

    def sirt_time(n_it: int) -> float:
        _sync()
        t = time.perf_counter()
        sirt(op, data, n_it, run=run)
        _sync()
        return time.perf_counter() - t

    sirt_time(2)
    out["sirt/it"] = _per_iteration(sirt_time, k, repeat)
    out["projection"] = op.forward(x).cpu().numpy()
    return out


def astra_figures(vol: np.ndarray, angles: np.ndarray, k: int, repeat: int) -> dict:
    import astra

    nz, ny, nx = vol.shape
    vg = astra.create_vol_geom(nz, nx, ny)  # rows = Z, columns = X, slices = Y (tilt axis)
    pg = astra.create_proj_geom("parallel3d", 1.0, 1.0, ny, nx, np.deg2rad(-angles))
    av = np.ascontiguousarray(vol.transpose(1, 0, 2))  # (Y, Z, X)
    out: dict = {}

    def host():
        sid, sino = astra.create_sino3d_gpu(av, pg, vg)
        bid, _ = astra.create_backprojection3d_gpu(sino, pg, vg)
        astra.data3d.delete([sid, bid])
        return sino

    sino = host()
    out["projection"] = np.ascontiguousarray(sino.transpose(1, 0, 2))  # (n, Y, X)
    out["fp+bp host"] = _best(host, repeat)
    out["fp+bp resident"] = float("nan")
    try:  # torch CUDA tensors linked into ASTRA (newer ASTRA versions accept them)
        tv = torch.from_numpy(av).cuda()
        ts = torch.zeros((ny, angles.size, nx), device="cuda")
        vid = astra.data3d.link("-vol", vg, tv)
        pid = astra.data3d.link("-sino", pg, ts)
        algs = []
        for name, key in (("FP3D_CUDA", "VolumeDataId"), ("BP3D_CUDA", "ReconstructionDataId")):
            cfg = astra.astra_dict(name)
            cfg["ProjectionDataId"] = pid
            cfg[key] = vid
            algs.append(astra.algorithm.create(cfg))
        out["fp+bp resident"] = _best(lambda: [astra.algorithm.run(a) for a in algs], repeat)
        astra.algorithm.delete(algs)
        astra.data3d.delete([vid, pid])
    except Exception as exc:  # noqa: BLE001  (report and go on)
        print(f"  astra resident FP/BP not available: {type(exc).__name__}: {exc}")
    sid = astra.data3d.create("-sino", pg, sino)
    rid = astra.data3d.create("-vol", vg, 0.0)
    cfg = astra.astra_dict("SIRT3D_CUDA")
    cfg["ProjectionDataId"], cfg["ReconstructionDataId"] = sid, rid
    alg = astra.algorithm.create(cfg)

    def sirt_time(n_it: int) -> float:
        t = time.perf_counter()
        astra.algorithm.run(alg, n_it)
        return time.perf_counter() - t

    sirt_time(2)
    out["sirt/it"] = _per_iteration(sirt_time, k, repeat)
    astra.algorithm.delete(alg)
    astra.data3d.delete([sid, rid])
    return out


def resire_per_iteration(n: int, tilts: int, model: str, iterations: int) -> float:
    import wedge

    rng = np.random.default_rng(0)
    angles = np.linspace(-60, 60, tilts)
    images = rng.random((tilts, n, n), dtype=np.float32)
    series = wedge.TiltSeries(images, angles)
    times: list[float] = []
    wedge.reconstruct(
        series, "resire", iterations=iterations + 1, model=model, device="cuda",
        progress=False, callbacks=[lambda rec, x: times.append(rec["time_s"])],
    )  # fmt: skip
    return float(np.diff(times).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--tilts", type=int, nargs="+", default=[61, 181])
    ap.add_argument("--sirt-k", type=int, default=10, help="k of the k / 2k SIRT difference")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--resire-size", type=int, default=243)
    ap.add_argument("--resire-tilts", type=int, default=61)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device; skipped.")
        return
    print(machine_line())
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    rows = []
    head = f"{'N':>4} {'tilts':>5} {'what':<16} {'wedge s':>9} {'astra s':>9} {'astra/wedge':>11}"
    print(head)
    for n in args.sizes:
        rng = np.random.default_rng(n)
        vol = rng.random((n, n, n), dtype=np.float32)
        for tilts in args.tilts:
            angles = np.linspace(-60, 60, tilts)
            w = wedge_figures(vol, angles, args.sirt_k, args.repeat)
            try:
                a = astra_figures(vol, angles, args.sirt_k, args.repeat)
            except Exception as exc:  # noqa: BLE001
                print(f"  ASTRA CUDA unavailable: {type(exc).__name__}: {exc}")
                a = {}
            if "projection" in a:
                r = np.corrcoef(w["projection"].ravel(), a["projection"].ravel())[0, 1]
                print(f"  check: Pearson(wedge, ASTRA projections) = {r:.4f}")
            for what in ("fp+bp resident", "fp+bp host", "sirt/it"):
                ws, as_ = w[what], a.get(what, float("nan"))
                print(f"{n:>4} {tilts:>5} {what:<16} {ws:>9.4f} {as_:>9.4f} {as_ / ws:>11.2f}")
                rows.append({"n": n, "tilts": tilts, "what": what, "wedge_s": ws, "astra_s": as_})
            del w, a
            torch.cuda.empty_cache()
    for model in ("fourier", "ray"):
        s = resire_per_iteration(args.resire_size, args.resire_tilts, model, 5)
        print(f"RESIRE {args.resire_size}³, {args.resire_tilts} tilts, {model}: {s:.4f} s/iteration"
              f" (paper 0.15 s on a GTX 1080 Ti; target ≤ 0.015 s)")  # fmt: skip
        rows.append({"n": args.resire_size, "what": f"resire {model}/it", "wedge_s": s})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine_line(), "gpu": torch.cuda.get_device_name(0),
                       "rows": rows}, fh, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
