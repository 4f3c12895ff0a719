"""The command line end to end, on tiny settings."""

import json

import numpy as np
import pytest

from medlens.cli import main


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "breast.pt"
    assert main(["train", "--data", "breastmnist", "--out", str(path), "--epochs", "1", "--quiet"]) == 0
    return path


def test_train_writes_a_loadable_model(model_file, capsys):
    from medlens.models import load_model

    model, meta = load_model(model_file)
    assert meta["data"] == "breastmnist" and meta["input_shape"] == [1, 28, 28]
    assert 0.0 <= meta["test"]["accuracy"] <= 1.0 and len(meta["history"]) == 1


def test_explain_npz_case(model_file, tmp_path):
    out = tmp_path / "expl"
    rc = main(["explain", "--model", str(model_file), "--input", "breastmnist", "--index", "3",
               "--method", "gradient", "--option", "abs=True", "--out", str(out)])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "gradient" and summary["params"] == {"abs": True}
    assert abs(sum(summary["probabilities"].values()) - 1) < 1e-5
    values = np.load(out / "attribution.npy")
    assert values.shape == (1, 28, 28) and (values >= 0).all()
    assert (out / "overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explain_real_dicom_is_resized_to_the_model(model_file, tmp_path):
    pydicom_data = pytest.importorskip("pydicom.data")
    out = tmp_path / "ct"
    rc = main(["explain", "--model", str(model_file), "--input", pydicom_data.get_testdata_file("CT_small.dcm"),
               "--out", str(out)])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "resized from (128, 128) to (28, 28)" in summary["input_note"]
    assert "Patient" not in json.dumps(summary)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "nope"], "unknown method 'nope'"),
        (["--target", "5"], "out of range"),
        (["--index", "9999"], "index 9999 is out of range"),
        (["--input", "CORRUPT"], "not"),
        (["--input", "MISSING.dcm"], "does not exist"),
        (["--model", "NOTAMODEL"], "not a medlens or TorchScript model"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_output(model_file, tmp_path, capsys, args, message):
    corrupt = tmp_path / "corrupt.dcm"
    corrupt.write_bytes(b"\x00" * 200 + b"definitely not DICOM")
    fake_model = tmp_path / "fake.pt"
    fake_model.write_bytes(b"not a model")
    argv = ["explain", "--model", str(model_file), "--input", "breastmnist", "--out", str(tmp_path / "out")]
    for flag, value in zip(args[::2], args[1::2]):
        value = {"CORRUPT": str(corrupt), "MISSING.dcm": str(tmp_path / "missing.dcm"), "NOTAMODEL": str(fake_model)}.get(value, value)
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medlens: error:") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial")]


def test_demo_quick(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick", "--epochs", "1", "--examples", "2"]) == 0
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    for name in __import__("medlens").methods():
        assert name in html
    from tests.report.claims import check_leaderboard_page

    assert check_leaderboard_page(html)  # the leaderboard sections' sentences agree with their tables
    # ECG5000 marks no evidence: the ECG section must not promise green shading it cannot draw
    assert "shaded green" not in html and "marks no ground-truth evidence" in html
    # a second run reuses the cached model
    assert main(["demo", "--out", str(out), "--quick", "--epochs", "1", "--examples", "2"]) == 0


@pytest.mark.parametrize("kind, key", [("lesions", "train_masks"), ("eeg", "train_signals"), ("reports", "train_tokens")])
def test_generate_writes_a_loadable_benchmark(tmp_path, kind, key):
    from medlens.data import load_dataset

    path = tmp_path / f"{kind}.npz"
    extra = ["--size", "32"] if kind == "lesions" else []
    assert main(["generate", kind, "--out", str(path), "--n-train", "8", *extra]) == 0
    assert key in np.load(path).files
    train = load_dataset(str(path), "train")
    assert len(train) == 8 and set(train.labels.tolist()) <= {0, 1}
