"""Familiarity judged on the scan as it came, with thresholds from the held-out split.

Known answers for the parts (the downsampling factor, modality families, the Ledoit-Wolf
covariance against scikit-learn's, thresholds that are the validation cases' 99th percentile),
then the acceptance on a model trained on the bundled PneumoniaMNIST: a BreastMNIST image, a
head-CT slice and noise are unlike its training data, its own test images are not (false alarms
<= 5%), and a full-size chest radiograph (a 1024 x 1024 CR DICOM made from a bundled image) gets
the ``downsampled`` warning, shown above the finding.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from medlens.data.kinds import InputFacts
from medlens.evaluation import familiarity as fam
from medlens.evaluation.scan_facts import native_check

CXR = InputFacts("image", "grey", 1, (28, 28), None, 8, ("CR", "DX"))


def test_the_downsampled_warning_names_the_factor_from_a_quarter_of_the_resolution_on():
    seen = native_check({"kind": "image", "native_shape": [1024, 1024], "model_shape": [28, 28]}, CXR)
    assert [w["code"] for w in seen.warnings] == ["downsampled"]
    assert "1/37 of its native resolution (1024 x 1024 shrunk to 28 x 28)" in seen.warnings[0]["message"]
    assert any("native size (1024 x 1024) is 36.6 times" in r for r in seen.reasons)
    at_a_quarter = native_check({"kind": "image", "native_shape": [112, 112], "model_shape": [28, 28]}, None)
    assert [w["code"] for w in at_a_quarter.warnings] == ["downsampled"]
    halved = native_check({"kind": "image", "native_shape": [56, 56], "model_shape": [28, 28]}, None)
    assert halved.warnings == []
    # a volume's slice: its in-plane axes count, not the slices
    sliced = native_check({"kind": "volume", "native_shape": [40, 512, 512], "model_shape": [28, 28], "slice": 3}, None)
    assert "1/18" in sliced.warnings[0]["message"]
    axial = native_check({"kind": "volume", "native_shape": [512, 512, 40], "model_shape": [28, 28], "slice": 3,
                          "slice_axis": 2}, None)  # a NIfTI's axial slice: the axes beside its slice axis
    assert "1/18" in axial.warnings[0]["message"] and "512 x 512" in axial.warnings[0]["message"]
    signal = native_check({"kind": "signal", "native_shape": [3600], "model_shape": [140],
                           "sampling_rate": {"record_hz": 1000.0, "model_hz": 250.0, "resampled": True}}, None)
    assert "1000 Hz resampled to 250 Hz" in signal.warnings[0]["message"]


def test_modality_and_colour_are_compared_with_the_training_data():
    ct = native_check({"kind": "image", "native_shape": [28, 28], "model_shape": [28, 28], "modality": "CT"}, CXR)
    assert [w["code"] for w in ct.warnings] == ["modality"] and "CT" in ct.warnings[0]["message"]
    dx = native_check({"kind": "image", "native_shape": [28, 28], "model_shape": [28, 28], "modality": "DX"}, CXR)
    assert dx.warnings == [] and dx.reasons == []  # DX and CR are both projection radiographs
    deep = native_check({"kind": "image", "native_shape": [28, 28], "model_shape": [28, 28], "bit_depth": 12}, CXR)
    assert deep.reasons == []  # bit depth alone: the recipe scales the values (test_16_bit_copies_...)
    colour = native_check({"kind": "image", "native_shape": [28, 28], "model_shape": [28, 28],
                           "photometric": "RGB"}, CXR)
    assert colour.reasons and "colour" in colour.reasons[0]
    assert native_check({}, CXR).reasons == [] and native_check({"native_shape": [9, 9]}, None).warnings == []


def test_the_shrunk_covariance_is_ledoit_wolfs():
    from sklearn.covariance import LedoitWolf

    z = torch.randn(60, 25, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z[:, 1] = z[:, 0] + 0.1 * z[:, 1]  # a correlated pair
    z = z - z.mean(0)
    expected = LedoitWolf(assume_centered=True).fit(z.numpy()).covariance_
    assert np.allclose(fam._shrunk_covariance(z).numpy(), expected, atol=1e-10)


def test_thresholds_are_the_held_out_cases_99th_percentile_and_joint_patterns_count():
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(400, 12, generator=gen, dtype=torch.float64)
    train = torch.cat([base, base + 0.05 * torch.randn(400, 12, generator=gen, dtype=torch.float64)], 1)
    val_base = torch.randn(200, 12, generator=gen, dtype=torch.float64)
    val = torch.cat([val_base, val_base + 0.05 * torch.randn(200, 12, generator=gen, dtype=torch.float64)], 1)
    ref = fam._reference(train, val)
    d_val = fam._distance(val, ref)
    assert ref["q99"] == pytest.approx(float(torch.quantile(d_val, 0.99)))
    assert ref["max"] == pytest.approx(float(d_val.max()))
    # each coordinate in range, their pairing broken: a diagonal distance cannot see it, this one does
    broken = torch.cat([val_base, -val_base], 1)
    assert float(fam._distance(broken, ref).min()) > ref["q99"]
    diagonal = ((broken - torch.tensor(ref["mean"])) / torch.tensor(ref["std"])).pow(2).mean(1).sqrt()
    assert float(torch.quantile(diagonal, 0.5)) < ref["q99"]


def _cr_dicom(path, image: np.ndarray) -> None:
    """A 1024 x 1024 12-bit CR radiograph (Computed Radiography Image Storage) of ``image``."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ComputedRadiographyImageStorage, ExplicitVRLittleEndian, generate_uid

    big = np.asarray(Image.fromarray(image.astype(np.float32)).resize((1024, 1024), Image.BILINEAR))
    stored = np.clip(np.rint(big / 255.0 * 4095), 0, 4095).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = ComputedRadiographyImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.BodyPartExamined = "CR", "CHEST"
    ds.PixelSpacing = [0.35, 0.35]
    ds.Rows, ds.Columns = 1024, 1024
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = stored.tobytes()
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="module")
def pneumonia_model(tmp_path_factory):
    from medlens.cli import main

    out = tmp_path_factory.mktemp("model") / "pneumonia.pt"
    assert main(["train", "--data", "pneumoniamnist", "--epochs", "4", "--out", str(out), "--quiet"]) == 0
    return out


def _report(model, path, out):
    from medlens.cli import main

    assert main(["report", "--model", str(model), "--input", str(path), "--methods", "gradient", "--out", str(out),
                 "--quiet"]) == 0
    return json.loads((out / "case.json").read_text()), (out / "report.html").read_text()


def test_scans_from_elsewhere_are_unlike_the_pneumoniamnist_training_data(pneumonia_model, tmp_path):
    from medlens.data import load_dataset
    from medlens.data.synthetic.head_ct import make_head_ct

    breast = load_dataset("breastmnist", "test").inputs[0, 0].numpy() * 255
    ct = make_head_ct(1, seed=0).volumes[0, 16].numpy()
    ct = np.clip(ct / 80.0, 0, 1) * 255  # brain window, 64 x 64
    noise = np.random.default_rng(0).integers(0, 256, size=(28, 28))
    for name, image in {"breast": breast, "head-ct": ct, "noise": noise}.items():
        Image.fromarray(np.rint(image).astype(np.uint8)).save(tmp_path / f"{name}.png")
        case, html = _report(pneumonia_model, tmp_path / f"{name}.png", tmp_path / name)
        assert case["familiarity"]["unlike_training_data"] is True, name
        assert case["familiarity"]["reasons"]
        assert "unlike_training" in [w["code"] for w in case["warnings"]]
        assert html.index('data-code="unlike_training"') < html.index('class="finding"')


def test_the_own_test_images_are_familiar_and_a_full_size_radiograph_is_downsampled(pneumonia_model, tmp_path):
    from medlens.app.inputs import model_cases
    from medlens.data import load_dataset
    from medlens.data.kinds import facts_of_model
    from medlens.models import load_model

    model, meta = load_model(pneumonia_model)
    test = load_dataset("pneumoniamnist", "test").inputs[:, 0].numpy() * 255
    folder = tmp_path / "test"
    folder.mkdir()
    for i, image in enumerate(test[:150]):
        Image.fromarray(np.rint(image).astype(np.uint8)).save(folder / f"{i:03d}.png")
    cases = model_cases(str(folder), meta)
    facts = facts_of_model(meta)
    flagged = [fam.familiarity(model, c.x, meta["familiarity"], reading=c.reading, facts=facts).unlike
               for c in (cases.case(i) for i in range(len(cases)))]
    assert all(f is not None for f in flagged)
    assert sum(flagged) / len(flagged) <= 0.05  # thresholds came from the validation split, not these
    _cr_dicom(tmp_path / "cxr.dcm", test[3])
    case, html = _report(pneumonia_model, tmp_path / "cxr.dcm", tmp_path / "full")
    codes = [w["code"] for w in case["warnings"]]
    assert "downsampled" in codes and case["familiarity"]["unlike_training_data"] is True
    message = next(w["message"] for w in case["warnings"] if w["code"] == "downsampled")
    assert "1/37 of its native resolution (1024 x 1024 shrunk to 28 x 28)" in message
    assert html.index('data-code="downsampled"') < html.index('class="finding"')
    assert case["reading"]["modality"] == "CR" and case["reading"]["bit_depth"] == 12


def test_16_bit_copies_of_the_own_test_images_are_familiar(pneumonia_model, tmp_path):
    """The same images stored at 16 bits (values x 257) reach the model as the same values: bit
    depth alone must not call them unlike (it called every one unlike before)."""
    from medlens.app.inputs import model_cases
    from medlens.data import load_dataset
    from medlens.data.kinds import facts_of_model
    from medlens.models import load_model

    model, meta = load_model(pneumonia_model)
    test = load_dataset("pneumoniamnist", "test").inputs[:60, 0].numpy()
    for i, image in enumerate(test):
        Image.fromarray(np.rint(image * 65535).astype(np.uint16)).save(tmp_path / f"{i:03d}.png")
    cases = model_cases(str(tmp_path), meta)
    assert cases.case(0).reading["bit_depth"] == 16
    flagged = [fam.familiarity(model, c.x, meta["familiarity"], reading=c.reading, facts=facts_of_model(meta)).unlike
               for c in (cases.case(i) for i in range(len(cases)))]
    assert sum(flagged) / len(flagged) <= 0.05


def test_explain_states_the_same_warnings_in_summary_json_and_before_its_prediction(pneumonia_model, tmp_path, capsys):
    from medlens.cli import main
    from medlens.data import load_dataset

    image = load_dataset("pneumoniamnist", "test").inputs[3, 0].numpy() * 255
    _cr_dicom(tmp_path / "cxr.dcm", image)
    assert main(["explain", "--model", str(pneumonia_model), "--input", str(tmp_path / "cxr.dcm"),
                 "--out", str(tmp_path / "full")]) == 0
    printed = capsys.readouterr().out.splitlines()
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    codes = [w["code"] for w in summary["warnings"]]
    assert "downsampled" in codes and summary["familiarity"]["unlike_training_data"] is True
    assert printed[0].startswith("warning (downsampled): The model saw this scan at 1/37")
    assert any(line.startswith("gradient for ") for line in printed[1:])
    Image.fromarray(np.rint(image).astype(np.uint8)).save(tmp_path / "own.png")
    assert main(["explain", "--model", str(pneumonia_model), "--input", str(tmp_path / "own.png"),
                 "--out", str(tmp_path / "own"), "--quiet"]) == 0
    own = json.loads((tmp_path / "own" / "summary.json").read_text())
    assert own["warnings"] == [] and own["familiarity"]["unlike_training_data"] is False


def test_the_audit_says_how_many_cases_are_unlike_the_training_data(pneumonia_model, tmp_path, capsys):
    import csv

    from medlens.cli import main
    from medlens.data import load_dataset

    fast = ["--methods", "gradient", "--cluster-method", "gradient", "--metric-option", "deletion_auc.steps=4",
            "--metric-option", "insertion_auc.steps=4", "--quiet"]
    own, other = tmp_path / "own", tmp_path / "other"
    own.mkdir(), other.mkdir()
    test = load_dataset("pneumoniamnist", "test").inputs[:24, 0].numpy() * 255
    breast = load_dataset("breastmnist", "test").inputs[:8, 0].numpy() * 255
    for i, image in enumerate(test):
        Image.fromarray(np.rint(image).astype(np.uint8)).save(own / f"{i:03d}.png")
    for i, image in enumerate(breast):
        Image.fromarray(np.rint(image).astype(np.uint8)).save(other / f"b{i:02d}.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512)).astype(np.uint8)).save(other / "noise.png")
    assert main(["audit", "--model", str(pneumonia_model), "--data", str(own), "--out", str(tmp_path / "a"), *fast]) == 0
    rows = list(csv.DictReader((tmp_path / "a" / "familiarity.csv").open()))
    assert len(rows) == 24 and sum(r["unlike_training_data"] == "1" for r in rows) <= 2
    capsys.readouterr()
    assert main(["audit", "--model", str(pneumonia_model), "--data", str(other), "--out", str(tmp_path / "b"),
                 *fast[:-1]]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "b" / "familiarity.csv").open()))
    unlike = sum(r["unlike_training_data"] == "1" for r in rows)
    assert len(rows) == 9 and unlike >= 8
    noise = next(r for r in rows if r["case"] == "case-0008")  # sorted after b00..b07
    assert noise["unlike_training_data"] == "1" and "unlike_training" in noise["warnings"]
    sentence = f"{unlike} of the 9 audited cases"
    assert sentence in printed and sentence in (tmp_path / "b" / "audit.html").read_text()
    # the leaderboard on the same cases says it first: its verdict holds for cases the model was not made for
    capsys.readouterr()
    assert main(["evaluate", "--model", str(pneumonia_model), "--data", str(other), "--methods", "gradient",
                 "--metrics", "deletion_auc", "--metric-option", "deletion_auc.steps=4", "--target", "predicted",
                 "--out", str(tmp_path / "e"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "e" / "familiarity.csv").open()))
    assert len(rows) == 9 and sum(r["unlike_training_data"] == "1" for r in rows) == unlike
    said = f"{unlike} of the 9 evaluated cases"
    assert printed.startswith(f"warning: {said}")
    assert said in json.loads((tmp_path / "e" / "summary.json").read_text())["warnings"][0]
    page = (tmp_path / "e" / "report.html").read_text()
    assert page.index(said) < page.rindex("How far to trust each explanation")  # its section, after the nav
    assert main(["evaluate", "--model", str(pneumonia_model), "--data", str(own), "--methods", "gradient",
                 "--metrics", "deletion_auc", "--metric-option", "deletion_auc.steps=4", "--target", "predicted",
                 "--out", str(tmp_path / "f"), "--quiet"]) == 0
    assert "warning:" not in capsys.readouterr().out.split("\n")[0]


def test_a_colour_picture_is_unlike_grey_training_scans_and_grey_stored_as_rgb_is_not(pneumonia_model, tmp_path):
    from medlens.app.inputs import model_cases
    from medlens.data import load_dataset
    from medlens.data.kinds import facts_of_model
    from medlens.models import load_model

    _, meta = load_model(pneumonia_model)
    grey = np.rint(load_dataset("pneumoniamnist", "test").inputs[3, 0].numpy() * 255).astype(np.uint8)
    tinted = np.stack([grey, grey // 2, 255 - grey], axis=-1)  # a colour picture (PNG has no photometric tag)
    Image.fromarray(tinted).save(tmp_path / "colour.png")
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "grey_rgb.png")
    facts = facts_of_model(meta)
    colour = model_cases(str(tmp_path / "colour.png"), meta).case(0).reading
    assert colour["photometric"] == "RGB"
    assert any("colour" in r for r in native_check(colour, facts).reasons)
    grey_rgb = model_cases(str(tmp_path / "grey_rgb.png"), meta).case(0).reading
    assert "photometric" not in grey_rgb and native_check(grey_rgb, facts).reasons == []
