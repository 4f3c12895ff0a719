"""Issue 21: hostile or damaged model files get one line naming the file and the problem, never
PyTorch's advice to unpickle with ``weights_only=False``, and their code is never run.

(Kept under tests/data with the other hostile-file tests; it exercises medlens.models.io.)"""

from __future__ import annotations

import os
import pathlib

import pytest
import torch

from medlens.errors import FileFormatError
from medlens.models.io import load_model, save_model
from tests.conftest import make_input, make_model
from tests.data import hostile_files as H

RAN = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / "medlens_pickle_payload_ran"


class _Payload:
    """An object whose unpickling would create a file: proof that its code ran."""

    def __reduce__(self):
        return (pathlib.Path.touch, (RAN,))


def _one_line(path: pathlib.Path) -> str:
    with pytest.raises(FileFormatError) as info:
        load_model(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    assert "weights_only" not in msg and "arbitrary code" not in msg
    return msg


@pytest.fixture
def model_file(tmp_path):
    return save_model(make_model(2), tmp_path / "m.pt", {"class_names": ["a", "b", "c"]})


def test_truncated_model_file(model_file):
    raw = model_file.read_bytes()
    for keep in (len(raw) // 2, len(raw) - 30, 10, 0):
        model_file.write_bytes(raw[:keep])
        msg = _one_line(model_file)
        assert "truncated" in msg


def test_corrupt_model_file(model_file):
    raw = bytearray(model_file.read_bytes())
    for i in range(200, 2000, 7):
        raw[i] ^= 0xFF
    model_file.write_bytes(bytes(raw))
    assert "corrupt" in _one_line(model_file)


def test_foreign_file_renamed_pt(tmp_path):
    path = H.write_png(tmp_path / "x.png").rename(tmp_path / "model.pt")
    assert "is a PNG file, not a medlens or TorchScript model file" in _one_line(path)


def test_pickle_payload_is_refused_and_never_run(tmp_path):
    RAN.unlink(missing_ok=True)
    path = tmp_path / "evil.pt"
    torch.save({"format": "medlens-model", "version": 1, "arch": "cnn", "config": {}, "state_dict": {},
                "meta": {"x": _Payload()}}, path)
    msg = _one_line(path)
    assert "pickled Python object" in msg and "none of its code was run" in msg
    assert not RAN.exists()


def test_payload_not_a_medlens_model(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"format": "medlens-model", "version": "x", "arch": 3}, path)
    assert "corrupt medlens model file" in _one_line(path)
    torch.save({"weight": torch.zeros(2)}, path)
    assert "not a medlens or TorchScript model file" in _one_line(path)


def test_torchscript_files_still_load(tmp_path):
    model, x = make_model(2).eval(), make_input(2)
    path = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.trace(model, x), str(path))
    loaded, meta = load_model(path)
    assert meta == {}
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    _one_line(path)


def test_valid_model_file_still_loads(model_file):
    loaded, meta = load_model(model_file)
    assert meta == {"class_names": ["a", "b", "c"]}
