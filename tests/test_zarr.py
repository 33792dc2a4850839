"""OME-Zarr volumes: NGFF 0.4 multiscales metadata, pyramid, atomic stores, reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import wedge
from wedge import TiltSeries
from wedge.cli import main
from wedge.io import read_volume, write_tiltseries
from wedge.io.zarr import (
    create_ome_zarr,
    read_ome_zarr,
    read_ome_zarr_volume,
    write_ome_zarr,
)
from wedge.outofcore import reconstruct_out_of_core

zarr = pytest.importorskip("zarr")


def _temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if "wedge-" in p.name)


def test_round_trip_keeps_values_and_writes_ngff_metadata_with_the_voxel_size(tmp_path, rng):
    vol = rng.random((70, 66, 80)).astype(np.float32)
    path = write_ome_zarr(tmp_path / "v.ome.zarr", vol, voxel_size=2.5)
    # the metadata as a viewer reads it: the plain JSON of a Zarr v2 group
    attrs = json.loads((path / ".zattrs").read_text())
    ms = attrs["multiscales"][0]
    assert ms["version"] == "0.4"
    assert [(a["name"], a["type"], a["unit"]) for a in ms["axes"]] == [
        ("z", "space", "angstrom"), ("y", "space", "angstrom"), ("x", "space", "angstrom")
    ]  # fmt: skip
    assert [d["path"] for d in ms["datasets"]] == ["0", "1"]  # 70 // 2 = 35 ≥ 32, 17 < 32
    scales = [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]
    assert scales == [[2.5, 2.5, 2.5], [5.0, 5.0, 5.0]]
    got, voxel = read_ome_zarr_volume(path)
    assert voxel == 2.5 and np.array_equal(got, vol)
    level1, v1 = read_ome_zarr(path, level=1)
    want = vol[:70, :66, :80].reshape(35, 2, 33, 2, 40, 2).mean(axis=(1, 3, 5))
    assert v1 == 5.0 and np.allclose(level1[...], want, atol=1e-6)
    assert tuple(zarr.open_array(str(path / "0")).chunks) == (64, 64, 64)


def test_an_existing_store_is_refused_unless_overwrite(tmp_path):
    path = write_ome_zarr(tmp_path / "v.zarr", np.zeros((4, 5, 6)))
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        write_ome_zarr(path, np.ones((4, 5, 6)))
    assert read_ome_zarr_volume(path)[0].max() == 0
    write_ome_zarr(path, np.ones((4, 5, 6)), overwrite=True)
    assert read_ome_zarr_volume(path)[0].min() == 1
    assert _temporaries(tmp_path) == []


def test_a_failed_write_leaves_no_store_and_no_temporary(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with create_ome_zarr(tmp_path / "v.zarr", (4, 5, 6)) as w:
            w.write(0, np.ones((4, 2, 6)))
            raise RuntimeError("boom")
    assert not (tmp_path / "v.zarr").exists() and _temporaries(tmp_path) == []


def test_reads_ngff_05_under_the_ome_key_and_converts_nanometres(tmp_path):
    g = zarr.open_group(str(tmp_path / "v5.zarr"), mode="w", zarr_format=3)
    g.create_array("s0", shape=(3, 4, 5), dtype="float32", fill_value=7.0)
    g.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [{
            "axes": [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"],
            "datasets": [{"path": "s0", "coordinateTransformations": [
                {"type": "scale", "scale": [0.4, 0.4, 0.4]}]}],
        }],
    }  # fmt: skip
    vol, voxel = read_ome_zarr_volume(tmp_path / "v5.zarr")
    assert vol.shape == (3, 4, 5) and vol.min() == 7.0 and voxel == pytest.approx(4.0)


def test_a_group_without_multiscales_is_refused(tmp_path):
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(ValueError, match="no OME-NGFF 'multiscales'"):
        read_ome_zarr(tmp_path / "plain.zarr")


def test_out_of_core_reads_and_writes_ome_zarr_like_mrc(tmp_path, rng):
    """An OME-Zarr input stack (angles given) and an OME-Zarr output give the MRC result
    (to float32 rounding: the slab widths differ, chunk-aligned for Zarr); the CLI refuses
    an existing store without --overwrite."""
    angles = np.linspace(-50, 50, 7)
    images = rng.random((7, 40, 16)).astype(np.float32)
    mrc = tmp_path / "st.mrc"
    write_tiltseries(mrc, TiltSeries(images, angles, pixel_size=1.5))
    zstack = write_ome_zarr(tmp_path / "st.zarr", images, voxel_size=1.5)
    reconstruct_out_of_core(mrc, tmp_path / "a.mrc", "sirt", memory="2MB", iterations=3)
    reconstruct_out_of_core(zstack, tmp_path / "b.zarr", "sirt", memory="2MB", iterations=3,
                            angles=angles)  # fmt: skip
    a = read_volume(tmp_path / "a.mrc")
    b, voxel = read_ome_zarr_volume(tmp_path / "b.zarr")
    assert voxel == 1.5 and np.abs(a - b).max() <= 1e-6 * np.abs(a).max()
    args = ["reconstruct", str(mrc), "-o", str(tmp_path / "b.zarr"), "--method", "fbp", "-q"]
    assert main(args) == 2
    assert main([*args, "--overwrite"]) == 0
    ref = wedge.reconstruct(wedge.read_tiltseries(mrc), "fbp", device="cpu").volume
    assert np.allclose(read_ome_zarr_volume(tmp_path / "b.zarr")[0], ref, atol=1e-6)
