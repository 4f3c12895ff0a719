"""``medlens explain`` on real file formats: maps come back on the input's own grid.

Models are built with seeded random weights and saved with their recipe (no training), input
files are written by the reference libraries (Pillow, pydicom, nibabel, wfdb).
"""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file

from medlens.cli import main
from medlens.data.recipe import Recipe
from medlens.models import CNN, save_model

CT_SMALL = get_testdata_file("CT_small.dcm")


def _model(tmp_path, name, spatial_dims, shape, recipe, classes=2):
    torch.manual_seed(0)
    model = CNN(spatial_dims, shape[0], classes, widths=(4, 8), input_shape=shape)
    meta = {"input_shape": list(shape), "class_names": [f"c{k}" for k in range(classes)], "recipe": recipe}
    return save_model(model, tmp_path / name, meta)


@pytest.fixture
def png_model(tmp_path):
    return _model(tmp_path, "img.pt", 2, (1, 28, 28), Recipe(normalize="unit", channels=1, size=(28, 28)))


def _run(argv):
    return main(["explain", *[str(a) for a in argv], "--quiet"])


def test_png_map_and_overlay_have_the_pictures_full_resolution(png_model, tmp_path):
    from PIL import Image

    arr = (np.random.default_rng(0).random((90, 70)) * 65535).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "cxr.png")
    out = tmp_path / "out"
    assert _run(["--model", png_model, "--input", tmp_path / "cxr.png", "--method", "gradient", "--out", out]) == 0
    assert np.load(out / "attribution.npy").shape == (90, 70)
    with Image.open(out / "overlay.png") as overlay:
        # one overlay pixel per radiograph pixel, a colour bar beside them
        assert overlay.size[0] > 70 and overlay.size[1] >= 90
        picture = np.asarray(overlay.convert("RGB"))[:90, :70]
    from medlens.viz import overlay_image
    import torch

    expected = overlay_image(torch.from_numpy(arr.astype(np.float64)), torch.from_numpy(np.load(out / "attribution.npy")))
    assert np.array_equal(picture, expected)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["preprocessing"]["recipe"]["normalize"] == "unit"
    assert summary["preprocessing"]["geometry"]["original_shape"] == [90, 70]
    assert "divided by 65535" in summary["input_note"]


def test_nifti_output_keeps_the_source_affine_and_header(tmp_path):
    model = _model(tmp_path, "vol.pt", 3, (1, 8, 8, 8), Recipe(normalize="minmax", channels=1, size=(8, 8, 8)))
    affine = np.array([[-0.9, 0, 0, 80.0], [0, 1.1, 0.1, -100.0], [0, 0, 2.0, -40.0], [0, 0, 0, 1]])
    img = nib.Nifti1Image(np.random.default_rng(1).normal(size=(12, 10, 6)).astype(np.float32), affine)
    img.header.set_xyzt_units("mm")
    img.header.set_qform(affine, code=1)
    nib.save(img, tmp_path / "vol.nii.gz")
    out = tmp_path / "out"
    assert _run(["--model", model, "--input", tmp_path / "vol.nii.gz", "--method", "gradcam", "--out", out]) == 0
    written = nib.load(out / "attribution.nii.gz")
    assert written.shape == (12, 10, 6) and np.allclose(written.affine, affine)
    assert int(written.header["qform_code"]) == 1 and written.header.get_xyzt_units()[0] == "mm"
    assert np.allclose(np.asarray(written.dataobj), np.load(out / "attribution.npy"))


def test_dicom_gives_parametric_map_and_secondary_capture_in_the_source_study(png_model, tmp_path):
    out = tmp_path / "out"
    assert _run(["--model", png_model, "--input", CT_SMALL, "--method", "gradient", "--dicom-out", "--out", out]) == 0
    src = pydicom.dcmread(CT_SMALL)
    values = np.load(out / "attribution.npy")
    assert values.shape == (128, 128)
    pm = pydicom.dcmread(out / "attribution_pm.dcm")
    assert not (tmp_path / "plain").exists()
    assert _run(["--model", png_model, "--input", CT_SMALL, "--method", "gradient", "--out", tmp_path / "plain"]) == 0
    plain = json.loads((tmp_path / "plain" / "summary.json").read_text())
    assert not {"attribution_pm.dcm", "overlay_sc.dcm"} & set(plain["files"])  # they carry identifiers: asked for only
    assert "--dicom-out" in plain["output_notes"][0]
    assert pm.SOPClassUID.name == "Parametric Map Storage" and pm.StudyInstanceUID == src.StudyInstanceUID
    assert pm.SeriesInstanceUID != src.SeriesInstanceUID
    assert np.allclose(pm.pixel_array, values)
    sc = pydicom.dcmread(out / "overlay_sc.dcm")
    assert sc.SOPClassUID.name == "Secondary Capture Image Storage" and sc.StudyInstanceUID == src.StudyInstanceUID
    assert sc.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert sc.pixel_array.shape == (128, 128, 3)
    summary = (out / "summary.json").read_text()
    assert str(src.PatientID) not in summary and str(src.PatientName) not in summary


def test_wfdb_record_map_on_the_original_time_axis(tmp_path):
    import wfdb

    model = _model(tmp_path, "ecg.pt", 1, (1, 100), Recipe(normalize="zscore", channels=1, size=(100,), fs=100.0))
    t = np.arange(3000) / 250.0
    wfdb.wrsamp("r", fs=250, units=["mV", "mV"], sig_name=["MLII", "V1"], fmt=["16", "16"],
                p_signal=np.stack([np.sin(7 * t), np.cos(3 * t)], 1), write_dir=str(tmp_path))
    wfdb.wrann("r", "atr", np.array([600, 900, 1200]), ["N", "V", "N"], write_dir=str(tmp_path))
    out = tmp_path / "out"
    assert _run(["--model", model, "--input", tmp_path / "r.hea", "--leads", "V1", "--start", "2.4",
                 "--method", "integrated_gradients", "--option", "n_steps=8", "--out", out]) == 0
    a = np.load(out / "attribution.npy")
    assert a.shape == (2, 3000)
    # 100 samples at 100 Hz = 1 s = 250 samples at 250 Hz, from 2.4 s = sample 600, on lead V1 only
    assert a[0].tolist() == [0.0] * 3000 and not a[1, :600].any() and not a[1, 850:].any() and a[1, 600:850].any()
    assert (out / "signal.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["preprocessing"]["geometry"]["span"] == [600, 850]


def test_segmentation_target_mask_matches_autograd(tmp_path):
    seg = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1)).eval()
    torch.manual_seed(0)
    script = torch.jit.script(seg)
    script.save(str(tmp_path / "seg.ts"))
    image = np.random.default_rng(2).normal(size=(12, 12)).astype(np.float32)
    np.save(tmp_path / "img.npy", image)
    mask = np.zeros((12, 12), np.uint8)
    mask[3:7, 4:9] = 1
    np.save(tmp_path / "mask.npy", mask)
    out = tmp_path / "out"
    assert _run(["--model", tmp_path / "seg.ts", "--input", tmp_path / "img.npy", "--target-class", "1",
                 "--target-mask", tmp_path / "mask.npy", "--method", "gradient", "--out", out]) == 0
    x = torch.from_numpy(image)[None, None].requires_grad_(True)
    (seg(x)[0, 1] * torch.from_numpy(mask).float()).sum().backward()
    got = np.load(out / "attribution.npy")
    assert np.allclose(got, x.grad[0, 0].numpy(), atol=1e-6)


def test_folder_explains_each_case_and_lists_errors(png_model, tmp_path):
    from PIL import Image

    cases = tmp_path / "cases"
    cases.mkdir()
    Image.fromarray(np.zeros((40, 30), np.uint8)).save(cases / "a.png")
    Image.fromarray(np.full((20, 20), 9, np.uint8)).save(cases / "b.png")
    (cases / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    for k, z in enumerate([0.0, 2.5, 5.0]):  # one DICOM series of three slices, loose in the folder
        ds = pydicom.dcmread(CT_SMALL)
        ds.ImagePositionPatient = [-158.1, -179.0, z]
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(cases / f"slice{k}.dcm")
    refused = tmp_path / "refused"  # the series is a volume: a 2-D model is told which slice to see
    assert _run(["--model", png_model, "--input", cases, "--method", "gradient", "--show-identifiers",
                 "--out", refused]) == 3  # the series and the broken file failed, the others were written
    errors = {r["case"]: r["error"] for r in csv.DictReader((refused / "summary.csv").open())}
    assert "--slice K, 0..2 along the first axis" in next(e for c, e in errors.items() if c.startswith("series"))
    out = tmp_path / "out"
    assert _run(["--model", png_model, "--input", cases, "--method", "gradient", "--slice", "1", "--show-identifiers",
                 "--out", out]) == 3  # one case failed, the others were written
    rows = list(csv.DictReader((out / "summary.csv").open()))
    status = {r["case"]: r["status"] for r in rows}
    assert status["a.png"] == "ok" and status["b.png"] == "ok" and status["broken.png"] == "error"
    series = [r for r in rows if r["case"].startswith("series")]
    assert len(series) == 1 and series[0]["status"] == "ok"
    assert np.load(out / series[0]["output"] / "attribution.npy").shape == (3, 128, 128)
    assert np.load(out / "a.png" / "attribution.npy").shape == (40, 30)
    assert "broken.png" in next(r["error"] for r in rows if r["case"] == "broken.png")


def _bad_cases(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "x.weird").write_bytes(b"\x01\x02garbage")
    import wfdb

    wfdb.wrsamp("nodat", fs=100, units=["mV"], sig_name=["I"], p_signal=np.zeros((300, 1)), fmt=["16"],
                write_dir=str(tmp_path))
    (tmp_path / "nodat.dat").unlink()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.weird").write_bytes(b"nothing")
    np.save(tmp_path / "mask.npy", np.zeros((10, 10)))
    (tmp_path / "three.json").write_text(json.dumps({"channels": 3}))


@pytest.mark.parametrize("args, message", [
    (["--input", "x.weird"], "is not a file format medlens reads"),
    (["--input", "cut.png"], "cut.png is not a readable image file"),
    (["--input", "nodat.hea"], "nodat.dat named by nodat.hea is missing"),
    (["--input", "ok.png", "--recipe", "three.json"], "produces 3 input channels but the model takes 1"),
    (["--input", "ok.png", "--window", "brain"], "PNG picture, whose grey levels are not HU"),
    (["--input", "ok.png", "--target-class", "0", "--target-mask", "mask.npy"], "--target-mask has shape (10, 10) but the input is (30, 30)"),
    (["--input", "empty"], "nothing readable in folder"),
])
def test_bad_input_exits_2_with_one_line_and_nothing_written(png_model, tmp_path, capsys, args, message):
    _bad_cases(tmp_path)
    argv = ["--model", png_model, "--method", "gradient", "--out", tmp_path / "out"]
    argv += [tmp_path / a if a in {"x.weird", "cut.png", "nodat.hea", "ok.png", "three.json", "mask.npy", "empty"} else a
             for a in args]
    assert _run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medlens: error:") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial")]


def test_same_recipe_in_train_and_explain(tmp_path):
    # train on HU slices through CT windows; explain a NIfTI CT with the saved model: the summary
    # records the training recipe and the model input equals the one training built
    from medlens.app.recipes import apply_recipe, train_on_dataset
    from medlens.data import read
    from medlens.data.recipe import prepare
    from medlens.models import load_model, model_recipe

    rng = np.random.default_rng(0)
    hu = rng.normal(40, 300, size=(24, 16, 16)).astype(np.float32)
    labels = (hu[:, 4:12, 4:12].mean((1, 2)) > 40).astype(np.int64)
    np.savez(tmp_path / "ct.npz", **{f"{s}_images": hu for s in ("train", "val", "test")},
             **{f"{s}_labels": labels for s in ("train", "val", "test")}, spatial_dims=np.array(2))
    recipe = Recipe(windows=((40, 80), (80, 200), (600, 2800)))
    model, meta = train_on_dataset(str(tmp_path / "ct.npz"), epochs=1, progress=False, recipe=recipe, batch_size=8)
    save_model(model, tmp_path / "ct.pt", meta)
    _, meta = load_model(tmp_path / "ct.pt")
    stored = model_recipe(meta)
    assert stored.windows == recipe.windows and meta["input_shape"] == [3, 16, 16]
    nib.save(nib.Nifti1Image(hu[5], np.eye(4)), tmp_path / "slice.nii.gz")
    out = tmp_path / "out"
    assert _run(["--model", tmp_path / "ct.pt", "--input", tmp_path / "slice.nii.gz", "--out", out]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert Recipe.from_dict(summary["preprocessing"]["recipe"]) == stored
    trained_input = apply_recipe(torch.from_numpy(hu[5:6, None]), recipe)[0]
    assert torch.allclose(prepare(read(tmp_path / "slice.nii.gz"), stored).x[0], trained_input)


def test_npy_already_of_the_models_input_shape_is_fed_as_it_is(tmp_path):
    from medlens.models import load_model

    path = _model(tmp_path, "rgb.pt", 2, (3, 16, 16), Recipe(normalize="minmax", channels=3, size=(16, 16)))
    x = np.random.default_rng(4).normal(size=(3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    assert _run(["--model", path, "--input", tmp_path / "x.npy", "--target", "1", "--method", "gradient", "--out", out]) == 0
    model, _ = load_model(path)
    xt = torch.from_numpy(x)[None].requires_grad_(True)
    model(xt)[0, 1].backward()
    assert np.allclose(np.load(out / "attribution.npy"), xt.grad[0].numpy(), atol=1e-6)


def test_size_and_normalize_flags_prepare_a_torchscript_models_input(tmp_path):
    """A model built elsewhere says nothing about its input: --size and --normalize do, like a recipe file."""
    from PIL import Image

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(4 * 24 * 24, 2)).eval()
    torch.jit.save(torch.jit.trace(module, torch.zeros(1, 1, 24, 24)), tmp_path / "scripted.pt")
    pixels = np.random.default_rng(1).integers(0, 256, (60, 50)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "scan.png")
    (tmp_path / "recipe.yaml").write_text("size: [24, 24]\nnormalize: zscore\n")
    outs = {}
    for name, flags in (("flags", ["--size", "24,24", "--normalize", "zscore"]), ("file", ["--recipe", tmp_path / "recipe.yaml"])):
        outs[name] = tmp_path / name
        assert _run(["--model", tmp_path / "scripted.pt", "--input", tmp_path / "scan.png", "--method", "gradient",
                     "--out", outs[name], *flags]) == 0
    summary = json.loads((outs["flags"] / "summary.json").read_text())
    assert summary["preprocessing"]["recipe"]["size"] == [24, 24]
    assert summary["preprocessing"]["recipe"]["normalize"] == "zscore"
    flagged = np.load(outs["flags"] / "attribution.npy")
    assert flagged.shape == (60, 50)  # back on the picture's grid
    np.testing.assert_array_equal(flagged, np.load(outs["file"] / "attribution.npy"))  # flags == recipe file


@pytest.mark.parametrize("size", ["24,x", "0,24", ""])
def test_a_malformed_size_is_one_line(png_model, tmp_path, capsys, size):
    _bad_cases(tmp_path)
    assert _run(["--model", png_model, "--input", tmp_path / "ok.png", "--size", size, "--out", tmp_path / "o"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--size takes positive integers" in err and "\n" not in err


def test_a_header_highdicom_refuses_loses_only_the_secondary_capture(png_model, tmp_path):
    """pydicom's J2K_pixelrep_mismatch.dcm has PatientOrientation 'PF', which highdicom rejects:
    the map, the overlay and the NIfTI still come, and summary.json says why the capture did not."""
    source = get_testdata_file("J2K_pixelrep_mismatch.dcm")
    out = tmp_path / "out"
    assert _run(["--model", png_model, "--input", source, "--method", "gradient", "--dicom-out", "--out", out]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"attribution.npy", "overlay.png"} <= set(summary["files"]) and "overlay_sc.dcm" not in summary["files"]
    assert len(summary["output_notes"]) == 1 and summary["output_notes"][0].startswith("no DICOM Secondary Capture")
    assert np.load(out / "attribution.npy").shape == tuple(pydicom.dcmread(source).pixel_array.shape)


def test_colour_dicom_is_explained_on_its_own_grid(png_model, tmp_path):
    source = get_testdata_file("SC_rgb_jpeg_gdcm.dcm")
    out = tmp_path / "out"
    assert _run(["--model", png_model, "--input", source, "--method", "gradient", "--out", out]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "colour converted to grey" in summary["input_note"]
    assert np.load(out / "attribution.npy").shape == pydicom.dcmread(source).pixel_array.shape[:2]


def test_a_4d_nifti_of_sequences_is_a_multichannel_volume(tmp_path, capsys):
    """BraTS-style input: four MRI sequences stacked on the 4th axis of one NIfTI, for a 4-channel model."""
    rng = np.random.default_rng(2)
    data = rng.normal(size=(20, 18, 12, 4)).astype(np.float32)
    affine = np.diag([1.2, 1.0, 2.5, 1.0])
    affine[:3, 3] = [-10.0, 4.0, 7.5]
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "sequences.nii.gz")
    four = _model(tmp_path, "four.pt", 3, (4, 16, 16, 16), Recipe(normalize="zscore", channels=4, size=(16, 16, 16)))
    out = tmp_path / "out"
    assert _run(["--model", four, "--input", tmp_path / "sequences.nii.gz", "--method", "gradient", "--out", out]) == 0
    assert np.load(out / "attribution.npy").shape == (20, 18, 12)  # one map on the voxel grid
    written = nib.load(out / "attribution.nii.gz")
    assert written.shape == (20, 18, 12) and np.allclose(written.affine, affine)
    one = _model(tmp_path, "one.pt", 3, (1, 16, 16, 16), Recipe(normalize="zscore", channels=1, size=(16, 16, 16)))
    assert _run(["--model", one, "--input", tmp_path / "sequences.nii.gz", "--method", "gradient", "--out", tmp_path / "o1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "4 channels (the volumes of a 4-D image are its channels)" in err and "takes 1" in err and "\n" not in err
