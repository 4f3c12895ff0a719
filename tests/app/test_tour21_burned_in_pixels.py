"""Pixels that name the patient (tour 21): an ultrasound whose header says BurnedInAnnotation YES.

Seen: ``medlens report`` embedded the image (with the name banner burned into its top rows) in
``report.html`` and ``explain`` drew it under ``overlay.png``, without a word; the Secondary
Capture of ``--dicom-out`` lost the flag, so a PACS took the copy for a clean picture. Now the
pixels are withheld unless ``--show-identifiers`` (the maps drawn on a blank background), a
warning ``identifying_pixels`` says so on the command line, above the finding and in the JSON,
and an ultrasound that does not say whether it carries text is shown with a warning to check it.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medlens.app.pixel_privacy import CODE, pixel_privacy
from medlens.cli import main
from medlens.data.recipe import Recipe
from medlens.models import CNN, save_model
from tests.data.burned_in_dicom import write_ultrasound


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_model(CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 32, 32)), tmp_path_factory.mktemp("m") / "m.pt",
                      {"input_shape": [1, 32, 32], "class_names": ["a", "b"],
                       "recipe": Recipe(normalize="minmax", channels=1, size=(32, 32))})


def _base(html: str) -> np.ndarray:
    """The picture under the maps in the report's viewer (as viewer.js decodes it)."""
    payload = json.loads(re.search(r'<script type="application/json" class="ml-data">(.*?)</script>', html, re.S).group(1))
    raw = np.frombuffer(zlib.decompress(base64.b64decode(payload["base"]["data"])), dtype=np.uint8)
    return (np.cumsum(raw.reshape(payload["shape"]).astype(np.int64), axis=-1) % 256).astype(np.uint8)


def test_a_report_withholds_burned_in_pixels_and_says_so_unless_asked(model, tmp_path, capsys):
    scan = tmp_path / "us.dcm"
    write_ultrasound(scan, "YES")
    hidden, shown = tmp_path / "hidden", tmp_path / "shown"
    assert main(["report", "--model", str(model), "--input", str(scan), "--methods", "gradient", "--out", str(hidden)]) == 0
    printed = capsys.readouterr().out
    assert f"warning ({CODE}): The image's header says its pixels identify the patient (BurnedInAnnotation YES" in printed
    assert main(["report", "--model", str(model), "--input", str(scan), "--methods", "gradient", "--show-identifiers",
                 "--out", str(shown)]) == 0
    html = (hidden / "report.html").read_text()
    assert np.ptp(_base(html)) == 0  # nothing of the image: one grey level
    assert f'data-code="{CODE}"' in html and "--show-identifiers shows it" in html
    assert json.loads((hidden / "case.json").read_text())["warnings"][0]["code"] == CODE
    base = _base((shown / "report.html").read_text())
    assert base[:6].mean() > base[6:].mean() + 60  # asked for: the banner is there
    assert "shown because --show-identifiers was given" in json.loads((shown / "case.json").read_text())["warnings"][0]["message"]


def test_explain_draws_no_burned_in_pixel_under_the_map_and_its_dicom_copy_keeps_the_flag(model, tmp_path):
    scan = tmp_path / "us.dcm"
    pixels = write_ultrasound(scan, "YES")
    outs = {}
    for name, extra in (("hidden", []), ("shown", ["--show-identifiers"])):
        outs[name] = tmp_path / name
        assert main(["explain", "--model", str(model), "--input", str(scan), "--method", "gradient", "--quiet",
                     "--dicom-out", "--out", str(outs[name]), *extra]) == 0
    from medlens.viz.figures import overlay_image

    for name, under in (("hidden", np.zeros_like(pixels)), ("shown", pixels)):  # the picture's left 32 columns
        heat = torch.from_numpy(np.load(outs[name] / "attribution.npy"))
        drawn = np.asarray(Image.open(outs[name] / "overlay.png").convert("RGB"))[:32, :32]
        assert np.array_equal(drawn, overlay_image(torch.from_numpy(under.astype(np.float32)), heat)), name
    assert json.loads((outs["hidden"] / "summary.json").read_text())["warnings"][0]["code"] == CODE
    import pydicom

    assert pydicom.dcmread(outs["hidden"] / "overlay_sc.dcm").BurnedInAnnotation == "YES"


def test_an_ultrasound_silent_about_burned_in_text_is_shown_with_a_warning_and_a_clean_one_without(model, tmp_path):
    silent, clean = tmp_path / "silent.dcm", tmp_path / "clean.dcm"
    write_ultrasound(silent, None)
    write_ultrasound(clean, "NO")
    for scan in (silent, clean):
        assert main(["report", "--model", str(model), "--input", str(scan), "--methods", "gradient", "--quiet",
                     "--out", str(tmp_path / scan.stem)]) == 0
    warnings = json.loads((tmp_path / "silent" / "case.json").read_text())["warnings"]
    assert warnings[0]["code"] == CODE and "may carry burned-in text" in warnings[0]["message"]
    assert np.ptp(_base((tmp_path / "silent" / "report.html").read_text())) > 0
    assert CODE not in (tmp_path / "clean" / "case.json").read_text()


def test_pixel_privacy_reads_the_flags_as_dicom_writes_them():
    assert pixel_privacy({"RecognizableVisualFeatures": "YES ", "Modality": "MR"}).withhold
    assert not pixel_privacy({"BurnedInAnnotation": "YES"}, show_identifiers=True).withhold
    assert pixel_privacy({"BurnedInAnnotation": "NO", "Modality": "US"}).warning is None
    assert pixel_privacy({"Modality": "CT"}).warning is None
    assert "secondary-capture" in pixel_privacy({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7.4"}).warning["message"]


def test_basis_draws_no_burned_in_query_or_neighbour_unless_asked(model, tmp_path, monkeypatch, capsys):
    scans, drawn = _burned_in_scans_and_drawn(tmp_path, 3, monkeypatch)
    args = ["basis", "--model", str(model), "--data", str(scans), "--input", str(scans / "us1.dcm"), "--k", "2", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "hidden")]) == 0
    assert len(drawn) == 3 and all(np.ptp(d) == 0 for d in drawn)  # the query and its two neighbours
    assert "Drawn without their image (3 scan(s) of this page)" in (tmp_path / "hidden" / "report.html").read_text()
    assert "warning (identifying_pixels): Drawn without their image" in capsys.readouterr().out
    drawn.clear()
    assert main([*args, "--show-identifiers", "--out", str(tmp_path / "shown")]) == 0
    assert len(drawn) == 3 and all(d[0, :6].mean() > d[0, 6:].mean() + 0.3 for d in drawn)  # min-max scaled banners


def test_concepts_draws_no_burned_in_top_image_unless_asked(model, tmp_path, monkeypatch):
    scans, drawn = _burned_in_scans_and_drawn(tmp_path, 4, monkeypatch)
    args = ["concepts", "--model", str(model), "--data", str(scans), "--k", "2", "--epochs", "2", "--top", "2", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "hidden")]) == 0
    assert drawn and all(np.ptp(d) == 0 for d in drawn)
    assert "top-activating scan(s)): their headers say" in (tmp_path / "hidden" / "report.html").read_text()
    drawn.clear()
    assert main([*args, "--show-identifiers", "--out", str(tmp_path / "shown")]) == 0
    assert drawn and all(d[0, :6].mean() > d[0, 6:].mean() + 0.3 for d in drawn)


def test_a_sliding_window_explanation_warns_of_burned_in_pixels_too(tmp_path, capsys):
    """Seen: the overlay was drawn blank but the warning never reached this path's summary.json or output."""
    torch.manual_seed(0)
    seg = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1)).eval()
    torch.jit.script(seg).save(str(tmp_path / "patch.ts"))
    scan = tmp_path / "us.dcm"
    write_ultrasound(scan, "YES")
    out = tmp_path / "out"
    assert main(["explain", "--model", str(tmp_path / "patch.ts"), "--input", str(scan), "--method", "gradient",
                 "--inferer", "sliding-window", "--roi", "16,16", "--target-class", "1", "--out", str(out)]) == 0
    assert f"warning ({CODE}):" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["warnings"][0]["code"] == CODE


def _burned_in_scans_and_drawn(tmp_path, n: int, monkeypatch) -> tuple:
    """A folder of ``n`` ultrasounds flagged BurnedInAnnotation YES, and the list every picture the
    basis/concepts pages draw is appended to (the image as drawn under its map)."""
    import medlens.report.selfexplain as pictures

    scans = tmp_path / "scans"
    scans.mkdir()
    for k in range(n):
        write_ultrasound(scans / f"us{k}.dcm", "YES", seed=k)
    drawn: list[np.ndarray] = []
    real = pictures.overlay_png
    monkeypatch.setattr(pictures, "overlay_png", lambda image, *a: drawn.append(image.numpy().copy()) or real(image, *a))
    return scans, drawn
