"""Issue 21: every reader computes the decoded size from the header and refuses, in one line,
anything above the decoding limit, before allocating it."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from medlens.data.formats import limits
from medlens.data.formats.limits import DecodeLimitError, decode_limit_bytes
from medlens.data.formats.read import read
from medlens.errors import FileFormatError, InputError, MedlensError
from tests.data import hostile_files as H

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _refused(path, **kw) -> str:
    with pytest.raises(DecodeLimitError) as info:
        read(path, **kw)
    msg = str(info.value)
    assert isinstance(info.value, FileFormatError) and isinstance(info.value, MedlensError)
    assert "\n" not in msg and str(path) in msg and "MB" in msg and "limit" in msg
    return msg


# --------------------------------------------------------------------------------------------
# The limit
# --------------------------------------------------------------------------------------------


def test_limit_default_is_a_multiple_of_the_engine_budget_within_bounds(monkeypatch):
    monkeypatch.delenv(limits.ENV_VAR, raising=False)
    limit = decode_limit_bytes()
    assert limit >= limits.MIN_DEFAULT_MB * limits.MB
    assert limit <= max(limits.MIN_DEFAULT_MB * limits.MB, limits._total_ram_bytes() // 4)
    monkeypatch.setattr(limits, "_total_ram_bytes", lambda: 64 * 2**30)
    import medlens.core.engine as engine

    monkeypatch.setattr(engine, "available_memory_bytes", lambda device: 32 * 2**30)
    assert decode_limit_bytes() == limits.DECODE_MULTIPLE * engine.DEFAULT_MEMORY_CAP_MB * limits.MB
    monkeypatch.setattr(limits, "_total_ram_bytes", lambda: 2 * 2**30)  # a tiny machine: the floor
    assert decode_limit_bytes() == limits.MIN_DEFAULT_MB * limits.MB


def test_limit_follows_memory_mb_then_the_environment(monkeypatch):
    monkeypatch.setenv(limits.ENV_VAR, "3")
    assert decode_limit_bytes() == limits.DECODE_MULTIPLE * 3 * limits.MB
    assert decode_limit_bytes(10) == limits.DECODE_MULTIPLE * 10 * limits.MB
    monkeypatch.setenv(limits.ENV_VAR, "lots")
    with pytest.raises(InputError, match=limits.ENV_VAR):
        decode_limit_bytes()
    with pytest.raises(InputError, match="memory_mb"):
        decode_limit_bytes(-1)


def test_memory_mb_passes_through_read(tmp_path, monkeypatch):
    monkeypatch.delenv(limits.ENV_VAR, raising=False)
    png = H.write_png(tmp_path / "a.png", (600, 500))  # 0.29 MB decoded
    assert read(png).shape == (600, 500)
    msg = _refused(png, memory_mb=0.2 / limits.DECODE_MULTIPLE)  # limit 0.2 MB
    assert "0.3 MB" in msg and "0.2 MB" in msg
    monkeypatch.setenv(limits.ENV_VAR, str(0.2 / limits.DECODE_MULTIPLE))
    _refused(png)
    assert read(png, memory_mb=1).shape == (600, 500)


# --------------------------------------------------------------------------------------------
# Each format: a header declaring a huge array is refused before allocating it
# --------------------------------------------------------------------------------------------


def test_png_declaring_100000_squared_pixels(tmp_path):
    path = H.png_bomb(tmp_path / "bomb.png")
    assert path.stat().st_size < 6000
    msg = _refused(path)
    assert "100000 x 100000" in msg and "9,537 MB" in msg


def test_png_pillow_bomb_limit_is_one_line_too(tmp_path):
    # within the decoding limit but above Pillow's own decompression-bomb limit
    path = H.png_bomb(tmp_path / "bomb.png")
    msg = _refused(path, memory_mb=10**6)
    assert "Pillow" in msg and "10,000,000,000 pixels" in msg


def test_tiff_pages_declared_by_the_headers(tmp_path):
    path = H.write_tiff(tmp_path / "a.tif", (4, 300, 200), "uint16", compression="zlib")
    assert read(path).shape == (4, 300, 200)
    msg = _refused(path, memory_mb=0.1)
    assert "4 x 300 x 200" in msg and "uint16" in msg


def test_deflated_dicom_refused_before_pydicom_inflates_it(tmp_path):
    path = H.deflated_dicom_bomb(tmp_path / "bomb.dcm", 2048, 2048)  # 4 MB of zeros, 4 KB on disk
    msg = _refused(path, memory_mb=0.25)
    assert "Rows 2048 x Columns 2048" in msg
    assert read(path, memory_mb=8).shape == (2048, 2048)  # within the limit it reads


def test_deflated_dicom_that_inflates_beyond_what_it_declares(tmp_path, monkeypatch):
    import medlens.data.formats.dicom_limits as dicom_limits

    path = H.deflated_dicom_bomb(tmp_path / "bomb.dcm", 2048, 2048)
    # a header that says nothing of its size: the bounded inflation stops at the limit
    monkeypatch.setattr(dicom_limits, "declared_pixels", lambda ds, p: None)
    msg = _refused(path, memory_mb=0.25)
    assert "inflates to more than" in msg


def test_dicom_and_series_declared_sizes(tmp_path):
    one = H.write_dicom(tmp_path / "one.dcm", (64, 64))
    msg = _refused(one, memory_mb=0.001)
    assert "Rows 64 x Columns 64" in msg
    series = tmp_path / "series"
    series.mkdir()
    for i in range(3):
        H.write_dicom(series / f"{i}.dcm", (64, 64))
    # each slice (8 KB) fits a 12 KB limit, the stacked volume (24 KB) does not
    msg = _refused(series, memory_mb=0.012 / limits.DECODE_MULTIPLE)
    assert "3 slices" in msg


def test_nifti_edf_wfdb_npy_declaring_huge_arrays(tmp_path):
    assert "32767 x 32767 x 32767 voxels of int16" in _refused(H.nifti_bomb(tmp_path / "b.nii"))
    assert "data records" in _refused(H.edf_bomb(tmp_path / "b.edf"))
    assert "signal length 1000000000000000" in _refused(H.wfdb_bomb(tmp_path))
    assert "(100000, 100000, 1000)" in _refused(H.npy_bomb(tmp_path / "b.npy"))


def test_valid_small_files_still_read(tmp_path):
    assert read(H.write_nifti(tmp_path / "a.nii.gz")).shape == (6, 5, 4)
    assert tuple(read(H.write_edf(tmp_path / "a.edf")).values.shape) == (2, 64)
    assert tuple(read(H.write_wfdb(tmp_path)).values.shape) == (2, 200)
    assert read(H.write_npy(tmp_path / "a.npy")).shape == (5, 6)
    assert read(H.write_dicom(tmp_path / "d.dcm", deflated=True)).shape == (8, 9)
    assert read(H.write_jpeg(tmp_path / "a.jpg")).array.shape[-2:] == (16, 16)


# --------------------------------------------------------------------------------------------
# No allocation: the refusals run under an address-space limit 1 GB above the imports
# --------------------------------------------------------------------------------------------


def test_bombs_refused_under_a_one_gigabyte_address_space_limit(tmp_path):
    files = {
        "png": H.png_bomb(tmp_path / "bomb.png"),
        "dicom": H.deflated_dicom_bomb(tmp_path / "bomb.dcm", 8192, 8192),  # 64 MB of zeros
        "nifti": H.nifti_bomb(tmp_path / "bomb.nii"),
        "edf": H.edf_bomb(tmp_path / "bomb.edf"),
        "wfdb": H.wfdb_bomb(tmp_path),
        "npy": H.npy_bomb(tmp_path / "bomb.npy"),
    }
    script = textwrap.dedent(
        """
        import json, resource, sys
        import PIL.Image, pydicom, nibabel, pyedflib, wfdb, tifffile
        from medlens.data.formats.read import read
        from medlens.data.formats.limits import decode_limit_bytes
        decode_limit_bytes(); decode_limit_bytes(8)
        vm = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, resource.getrlimit(resource.RLIMIT_AS)[1]))
        out = {}
        for name, path in json.loads(sys.argv[1]).items():
            try:
                read(path, memory_mb=8 if name == "dicom" else None)
                out[name] = "read"
            except Exception as exc:
                out[name] = [type(exc).__name__, str(exc)]
        print(json.dumps(out))
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop(limits.ENV_VAR, None)
    done = subprocess.run([sys.executable, "-c", script, json.dumps({k: str(v) for k, v in files.items()})],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for name, (kind, msg) in out.items():
        assert kind == "DecodeLimitError", (name, kind, msg)
        assert "\n" not in msg and str(files[name]) in msg


def test_an_npz_data_set_is_refused_from_its_headers_before_decompression(tmp_path):
    """A data set whose arrays declare more than the budget is refused in one line, naming the
    file and the arrays, before any array is inflated (a zero-filled array compresses to ~nothing)."""
    import numpy as np

    from medlens.data.cases import labelled_set, open_cases
    from medlens.data.formats.limits import DecodeLimitError

    path = tmp_path / "big.npz"
    np.savez_compressed(path, train_images=np.zeros((64, 256, 256), np.uint8),
                        train_labels=np.zeros(64, np.int64))
    assert path.stat().st_size < 200_000
    with pytest.raises(DecodeLimitError, match="big.npz") as err:
        labelled_set(path, "train", memory_mb=1)
    assert "train_images 64x256x256 uint8" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DecodeLimitError):
        open_cases(path, split="train", memory_mb=1)
    assert len(labelled_set(path, "train", memory_mb=64).labels) == 64
