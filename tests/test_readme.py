"""Every ``wedge`` command the README shows runs as written (placeholders made here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

import wedge
from wedge.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_commands() -> list[str]:
    text = README.read_text()
    block = text.split("## Command line", 1)[1].split("```", 2)[1]
    return [
        re.sub(r"\s+#.*$", "", line).strip()
        for line in block.splitlines()
        if line.strip().startswith("wedge ")
    ]


COMMANDS = _readme_commands()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The README's placeholder inputs: a small tilt series as STACK.mrc and STACK.st with
    STACK.tlt, a volume rec.mrc with two atom species, and an atomic model model.xyz."""
    d = tmp_path_factory.mktemp("readme")
    n = 32
    vol = wedge.phantoms.vesicle((n, n, n))
    ang = np.arange(-60, 61, 5.0)
    series = wedge.TiltSeries(wedge.project(vol, ang), ang, pixel_size=2.1)
    series.save(d / "STACK.mrc")
    wedge.write_tiltseries(d / "STACK.st", series)
    # a raw stack: the same projections in a wider field, a −500 background, noise, drift
    rng = np.random.default_rng(0)
    wide = wedge.project(np.pad(vol, 8), ang, shifts=rng.normal(0, 1.5, (ang.size, 2)))
    raw = wide - 500 + rng.normal(0, 0.05, wide.shape).astype(np.float32)
    wedge.TiltSeries(raw, ang, pixel_size=2.1).save(d / "RAW.mrc")
    grid = np.zeros((24, 24, 24), np.float32)
    zz, yy, xx = np.mgrid[:24, :24, :24]
    for i, c in enumerate([(6, 6, 6), (6, 6, 14), (6, 14, 6), (14, 6, 6), (14, 14, 14)]):
        r2 = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2
        grid += (1.0 + (i % 2)) * np.exp(-r2 / 2.0)
    wedge.write_volume(d / "rec.mrc", grid, voxel_size=0.4)
    (d / "model.xyz").write_text(
        "3\nthree atoms\nAu 0.0 0.0 0.0\nAu 2.0 0.0 1.0\nPt -1.5 1.0 -1.0\n"
    )
    return d


def test_readme_lists_the_commands():
    assert len(COMMANDS) >= 8 and any(c.startswith("wedge refine-angles") for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=[c.split()[1] for c in COMMANDS])
def test_readme_command_runs_as_written(command, workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    if "sim/sim.mrc" in command and not (workdir / "sim" / "sim.mrc").exists():
        sim = next(c for c in COMMANDS if c.startswith("wedge simulate") and "--hrtem" not in c)
        assert main(shlex.split(sim)[1:] + ["-q"] * 0) == 0
    code = main(shlex.split(command)[1:])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "error" not in captured.err
