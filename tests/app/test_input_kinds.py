"""What a model was trained on travels with it, and inputs of another kind are refused.

Every command that reads a user's input (explain, report, evaluate, audit) refuses, in one line
naming both kinds, exit 2 and nothing written: a signal model given an image, an image model
given a signal, a 2-D model given a volume without ``--slice``. A named slice is recorded in
every output; a signal at another rate is resampled to the model's and both rates recorded; a
model that does not record its rate refuses a record that is not one of its windows unless
``--fs`` says the rate. Input files are written by the reference libraries (Pillow, nibabel,
wfdb); models are seeded random CNNs saved with their recipe (no training), except where the
training route itself is tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import wfdb
from PIL import Image

from medlens.cli import main
from medlens.data.kinds import InputFacts, facts_of_model
from medlens.data.recipe import Recipe
from medlens.models import CNN, load_model, save_model

FS_RECORD = 360.0


def _model(path, spatial_dims, shape, recipe, meta=None):
    torch.manual_seed(0)
    cnn = CNN(spatial_dims, shape[0], 2, widths=(4, 8), input_shape=shape)
    return save_model(cnn, path, {"input_shape": list(shape), "class_names": ["normal", "abnormal"], "recipe": recipe,
                                  **(meta or {})})


@pytest.fixture
def files(tmp_path):
    """An 8-bit PNG picture, a 2-lead WFDB record at 360 Hz and a NIfTI volume, each in a folder of
    its own with a labels file (for evaluate)."""
    rng = np.random.default_rng(0)
    for kind in ("png", "signal", "volume"):
        (tmp_path / kind).mkdir()
    Image.fromarray((rng.random((64, 48)) * 255).astype(np.uint8)).save(tmp_path / "png" / "cxr.png")
    t = np.arange(int(10 * FS_RECORD)) / FS_RECORD
    signal = np.stack([np.sin(2 * np.pi * 1.2 * t), 0.5 * np.cos(2 * np.pi * 1.2 * t)], 1)
    wfdb.wrsamp("rec", fs=FS_RECORD, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=signal,
                fmt=["16", "16"], write_dir=str(tmp_path / "signal"))
    vol = rng.normal(size=(20, 28, 28)).astype(np.float32)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "volume" / "head.nii.gz")
    paths = {"png": tmp_path / "png" / "cxr.png", "signal": tmp_path / "signal" / "rec",
             "volume": tmp_path / "volume" / "head.nii.gz"}
    for kind, path in paths.items():
        (tmp_path / f"{kind}.csv").write_text(f"case,label\n{path.name},0\n")
    return paths


@pytest.fixture
def models(tmp_path):
    return {
        "signal": _model(tmp_path / "ecg.pt", 1, (1, 140), Recipe(normalize="zscore", channels=1, size=(140,))),
        "signal_250": _model(tmp_path / "ecg250.pt", 1, (1, 500),
                             Recipe(normalize="zscore", channels=1, size=(500,), fs=250.0)),
        "image": _model(tmp_path / "cxr.pt", 2, (1, 28, 28), Recipe(normalize="unit", channels=1, size=(28, 28))),
    }


def _command(command, model, data, out):
    """The command line of ``command`` on one file (evaluate: its folder, labelled)."""
    data = Path(data)
    if command == "explain":
        return ["explain", "--model", model, "--input", data, "--method", "gradient", "--out", out]
    if command == "report":
        return ["report", "--model", model, "--input", data, "--methods", "gradient", "--out", out]
    if command == "evaluate":
        folder = data.parent if data.exists() or data.with_suffix(".hea").exists() else data
        labels = folder.parent / f"{folder.name}.csv"
        return ["evaluate", "--model", model, "--data", folder, "--labels", labels, "--methods", "gradient",
                "--metrics", "deletion_auc", "--out", out]
    return ["audit", "--model", model, "--data", data, "--methods", "gradient", "--cluster-method", "gradient",
            "--out", out]


def _refused(argv, out, capsys):
    code = main([str(a) for a in argv] + ["--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err and "Traceback" not in err
    assert not out.exists() and not list(out.parent.glob(out.name + "*"))  # nothing written, no staging left
    return err


@pytest.mark.parametrize("command", ["explain", "report", "evaluate", "audit"])
@pytest.mark.parametrize("model_kind, data_kind, words", [
    ("signal", "png", ("the model takes signals (1 lead x 140 samples)", "a 2-D image (PNG, 64 x 48)")),
    ("image", "signal", ("the model takes 2-D images (1 x 28 x 28)", "a signal (WFDB, 2 leads x 3600 samples at 360 Hz)")),
    ("image", "volume", ("the model takes 2-D images (1 x 28 x 28)", "a 3-D volume (NIfTI, 20 x 28 x 28)",
                         "--slice K, 0..27 along axis 2 (axial")),
])
def test_an_input_of_another_kind_is_refused_in_one_line_naming_both(command, model_kind, data_kind, words, files,
                                                                      models, tmp_path, capsys):
    out = tmp_path / f"out-{command}"
    err = _refused(_command(command, models[model_kind], files[data_kind], out), out, capsys)
    for w in words:
        assert w in err, err


@pytest.mark.parametrize("model_kind, data, words", [
    ("signal", "pneumoniamnist", "the model takes signals (1 lead x 140 samples) but the data set holds 2-D images"),
    ("image", "ecg5000", "the model takes 2-D images (1 x 28 x 28) but the data set holds signals"),
])
def test_a_data_set_of_another_kind_is_refused(model_kind, data, words, models, tmp_path, capsys):
    for command in ("explain", "report"):
        out = tmp_path / f"out-{command}"
        argv = _command(command, models[model_kind], data, out)
        assert words in _refused(argv, out, capsys)


def test_a_named_slice_is_explained_and_recorded_in_every_output(files, models, tmp_path, capsys):
    out = tmp_path / "explained"
    assert main(["explain", "--model", str(models["image"]), "--input", str(files["volume"]), "--method", "gradient",
                 "--slice", "12", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    # the file's affine is the identity (RAS): its axial slices run along its third axis
    assert summary["reading"]["slice"] == 12 and summary["reading"]["native_shape"] == [20, 28, 28]
    assert summary["reading"]["slice_axis"] == 2
    assert summary["preprocessing"]["geometry"]["slice_index"] == 12
    assert "slice 13 of 28 (--slice 12) along axis 2 (axial" in summary["input_note"]
    back = np.load(out / "attribution.npy")  # the map lies in slice 12 of the volume and nowhere else
    assert back.shape == (20, 28, 28) and np.abs(back[:, :, 12]).sum() > 0
    assert np.abs(np.delete(back, 12, axis=2)).sum() == 0
    report = tmp_path / "report"
    assert main(["report", "--model", str(models["image"]), "--input", str(files["volume"]), "--methods", "gradient",
                 "--slice", "12", "--out", str(report), "--quiet"]) == 0
    case = json.loads((report / "case.json").read_text())
    assert case["reading"]["slice"] == 12
    assert "slice 13 of 28 (--slice 12) along axis 2 (axial" in (report / "report.html").read_text()
    out_of_range = tmp_path / "oor"
    err = _refused(["explain", "--model", models["image"], "--input", files["volume"], "--slice", "28",
                    "--out", out_of_range], out_of_range, capsys)
    assert "--slice 28 is out of range: the volume has 28 slices (0..27) along axis 2 (axial" in err


def test_the_slice_is_axial_whatever_order_a_nifti_stores_its_axes_in(tmp_path):
    """The same head stored with its superior-inferior axis first (as medlens' head-CT phantoms
    and many converters write it) and last (RAS): --slice 5 gives the same picture, and the map
    comes back into that slice of each file's own grid."""
    import nibabel as nib

    from medlens.data.formats.read import read as load_any
    from medlens.data.recipe import Recipe, invert, prepare

    rng = np.random.default_rng(1)
    ras = rng.normal(size=(12, 14, 9)).astype(np.float32)  # (x, y, z): axial slices along z
    nib.save(nib.Nifti1Image(ras, np.eye(4)), tmp_path / "ras.nii.gz")
    s_first = np.ascontiguousarray(np.transpose(ras, (2, 1, 0)))  # (z, y, x) with an affine saying so
    affine = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    nib.save(nib.Nifti1Image(s_first, affine), tmp_path / "s_first.nii.gz")
    a = prepare(load_any(tmp_path / "ras.nii.gz"), Recipe(size=(12, 14), slice=5, fit="crop_or_pad"))
    b = prepare(load_any(tmp_path / "s_first.nii.gz"), Recipe(size=(14, 12), slice=5, fit="crop_or_pad"))
    assert a.geometry.slice_axis == 2 and b.geometry.slice_axis == 0
    # the same axial slice; in-plane, each keeps its file's stored order (nothing is reoriented)
    assert torch.allclose(a.x[0, 0], torch.from_numpy(ras[:, :, 5]))
    assert torch.allclose(b.x[0, 0], torch.from_numpy(ras[:, :, 5]).T)
    back = invert(b.geometry, torch.ones(1, 14, 12))
    assert back.shape == (9, 14, 12) and float(back[5].sum()) == 14 * 12 and float(back.sum()) == 14 * 12


def test_a_record_at_another_rate_is_resampled_to_the_models_and_both_rates_recorded(files, models, tmp_path):
    out = tmp_path / "explained"
    assert main(["explain", "--model", str(models["signal_250"]), "--input", str(files["signal"]), "--method",
                 "gradient", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reading"]["sampling_rate"] == {"record_hz": 360.0, "model_hz": 250.0, "resampled": True}
    assert "resampled from 360 Hz to 250 Hz" in summary["input_note"]
    # 500 samples at 250 Hz cover 2 s: 720 samples of the 360 Hz record
    assert summary["preprocessing"]["geometry"]["span"] == [0, 720]
    report = tmp_path / "report"
    assert main(["report", "--model", str(models["signal_250"]), "--input", str(files["signal"]), "--methods",
                 "gradient", "--out", str(report), "--quiet"]) == 0
    case = json.loads((report / "case.json").read_text())
    assert case["reading"]["sampling_rate"]["record_hz"] == 360.0 and case["reading"]["sampling_rate"]["model_hz"] == 250.0


def test_a_model_without_a_rate_refuses_a_longer_record_unless_fs_says_it(files, models, tmp_path, capsys):
    out = tmp_path / "refused"
    err = _refused(["explain", "--model", models["signal"], "--input", files["signal"], "--out", out], out, capsys)
    assert "does not record its sampling rate" in err and "--fs" in err and "360 Hz" in err
    told = tmp_path / "told"
    assert main(["explain", "--model", str(models["signal"]), "--input", str(files["signal"]), "--fs", "100",
                 "--out", str(told), "--quiet"]) == 0
    rates = json.loads((told / "summary.json").read_text())["reading"]["sampling_rate"]
    assert rates == {"record_hz": 360.0, "model_hz": 100.0, "resampled": True}


def test_one_window_of_a_model_without_a_rate_is_taken_as_it_is(models, tmp_path):
    """A record exactly one model window long needs no rate: the samples map one to one."""
    values = np.sin(np.linspace(0, 6, 140))[:, None]
    wfdb.wrsamp("beat", fs=250, units=["mV"], sig_name=["MLII"], p_signal=values, fmt=["16"], write_dir=str(tmp_path))
    out = tmp_path / "out"
    assert main(["explain", "--model", str(models["signal"]), "--input", str(tmp_path / "beat"), "--out", str(out),
                 "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["reading"]["sampling_rate"]["resampled"] is False


def test_older_model_files_load_and_their_kind_is_derived_from_the_input_shape(models):
    _, meta = load_model(models["signal"])
    assert "input" not in meta  # written without facts, as older medlens wrote it
    facts = facts_of_model(meta)
    assert facts.kind == "signal" and facts.shape == (140,) and facts.source == "derived from the input shape"
    assert facts_of_model({"recipe": {"size": [8, 8, 8], "channels": 1}}).kind == "volume"
    assert facts_of_model({}) is None


def test_training_records_the_input_facts_and_class_names(tmp_path, capsys):
    out = tmp_path / "pn.pt"
    assert main(["train", "--data", "pneumoniamnist", "--epochs", "1", "--class-names", "healthy, sick",
                 "--out", str(out), "--quiet"]) == 0
    _, meta = load_model(out)
    assert meta["class_names"] == ["healthy", "sick"]
    facts = InputFacts.from_dict(meta["input"])
    assert (facts.kind, facts.n_channels, facts.shape, facts.bit_depth, facts.modality) == (
        "image", 1, (28, 28), 8, ("CR", "DX"))
    capsys.readouterr()
    bad = tmp_path / "bad.pt"
    assert main(["train", "--data", "pneumoniamnist", "--class-names", "a,b,c", "--out", str(bad), "--quiet"]) == 2
    assert "--class-names gives 3 name(s) but the model has 2 classes" in capsys.readouterr().err
    assert not bad.exists()


def test_a_finding_without_class_names_reads_class_k(tmp_path):
    """An npz without class names (MedMNIST as downloaded) gives classes "0", "1": the finding
    says "class 1", never a bare "1"."""
    torch.manual_seed(0)
    cnn = CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 16, 16))
    model = save_model(cnn, tmp_path / "m.pt", {"input_shape": [1, 16, 16], "class_names": ["0", "1"],
                                                "recipe": Recipe(normalize="unit", channels=1, size=(16, 16))})
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", test_images=rng.random((3, 16, 16)).astype(np.float32),
             test_labels=np.array([0, 1, 0]))
    out = tmp_path / "explained"
    assert main(["explain", "--model", str(model), "--input", str(tmp_path / "d.npz"), "--out", str(out),
                 "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["predicted_class"] in ("class 0", "class 1")
    assert set(summary["probabilities"]) == {"class 0", "class 1"}
    report = tmp_path / "report"
    assert main(["report", "--model", str(model), "--input", str(tmp_path / "d.npz"), "--methods", "gradient",
                 "--out", str(report), "--quiet"]) == 0
    case = json.loads((report / "case.json").read_text())
    assert case["predicted_class"] == f"class {case['prediction']}"
    html = (report / "report.html").read_text()
    assert f"class {case['prediction']} (probability" in html or f"class {case['prediction']}</" in html


def test_free_text_annotations_of_a_record_are_withheld_unless_asked(models, tmp_path):
    """EDF+ annotations are free text: "Sleep stage W" and a beat symbol are shown, a note that
    names someone is drawn as "event" in the report (and signal.png) unless --show-identifiers."""
    import pyedflib

    from medlens.data.formats.annotation_text import shown_label

    assert shown_label("Sleep stage W") == "Sleep stage W" and shown_label("N") == "N" and shown_label("T1") == "T1"
    assert shown_label("Obstructive Apnea") == "Obstructive Apnea" and shown_label("(AFIB") == "(AFIB"
    assert shown_label("Pt John Smith asleep") == "event" and shown_label("Dr Lee 03/04/2021") == "event"
    assert shown_label("Pt John Smith asleep", show_identifiers=True) == "Pt John Smith asleep"
    path = tmp_path / "night.edf"
    fs = 250
    with pyedflib.EdfWriter(str(path), 1, file_type=pyedflib.FILETYPE_EDFPLUS) as f:
        f.setSignalHeaders([{"label": "ECG", "dimension": "mV", "sample_frequency": fs, "physical_max": 5.0,
                             "physical_min": -5.0, "digital_max": 32767, "digital_min": -32768}])
        f.writeSamples([np.sin(np.arange(fs * 4) / 7.0)])
        f.writeAnnotation(0.5, -1, "Sleep stage W")
        f.writeAnnotation(1.2, -1, "Pt John Smith asleep")
    for shown in (False, True):
        out = tmp_path / f"report-{shown}"
        assert main(["report", "--model", str(models["signal_250"]), "--input", str(path), "--methods", "gradient",
                     "--out", str(out), "--quiet", *(["--show-identifiers"] if shown else [])]) == 0
        page = (out / "report.html").read_text()
        assert "Sleep stage W" in page and ("John Smith" in page) == shown
