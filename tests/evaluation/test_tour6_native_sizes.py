"""Training scans of several native sizes: a case within their range is not "unlike" them.

Seen on ``medlens audit`` of a model trained on 17 real DICOM files of 64 x 64 to 1024 x 1024
pixels (pydicom's test files): the model file kept only the most common size (512 x 512), so
CT_small.dcm, a training case of 128 x 128, was "unlike the cases the model was trained on (its
native size (128 x 128) is 1/4.0 of the training scans' (512 x 512))", as were 8 of the 17
training cases; and ``familiarity.csv``, which the message says "says why, per case", had no
reasons in it.
"""

from __future__ import annotations

import csv

import numpy as np
from PIL import Image

from medlens.cli import main
from medlens.data.kinds import InputFacts
from medlens.evaluation.scan_facts import native_check


def _reading(shape):
    return {"kind": "image", "native_shape": list(shape), "model_shape": [16, 16]}


def test_a_size_inside_the_training_range_is_like_it_and_one_outside_is_named_against_its_bound():
    facts = InputFacts("image", "grey", 1, (512, 512), smallest=(64, 64), largest=(1024, 1024))
    assert native_check(_reading((128, 128)), facts).reasons == []
    assert native_check(_reading((1024, 1024)), facts).reasons == []
    assert native_check(_reading((16, 16)), facts).reasons == [
        "its native size (16 x 16) is 1/4.0 of the smallest training scans' (64 x 64)"]
    assert native_check(_reading((4096, 4096)), facts).reasons == [
        "its native size (4096 x 4096) is 4.0 times the largest training scans' (1024 x 1024)"]


def test_a_model_file_without_a_range_judges_against_its_one_size_as_before():
    facts = InputFacts("image", "grey", 1, (512, 512))
    assert native_check(_reading((128, 128)), facts).reasons == [
        "its native size (128 x 128) is 1/4.0 of the training scans' (512 x 512)"]
    assert native_check(_reading((400, 600)), facts).reasons == []


def test_the_range_travels_in_the_model_file():
    facts = InputFacts("image", "grey", 1, (512, 512), smallest=(64, 32), largest=(1024, 1024))
    assert InputFacts.from_dict(facts.to_dict()) == facts
    assert InputFacts.from_dict({"kind": "image", "shape": [8, 8]}).smallest is None  # an older file


def test_training_on_scans_of_two_sizes_records_both_and_the_audit_says_why_a_case_is_unlike(tmp_path):
    from medlens.models import load_model

    folder = tmp_path / "scans"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["case,label"]
    for k in range(12):
        side = 32 if k < 6 else 64
        image = (rng.random((side, side)) * 60).astype(np.uint8)
        if k % 2:
            image[side // 4: side // 2, side // 4: side // 2] += 150
        Image.fromarray(image).save(folder / f"c{k:02d}.png")
        rows.append(f"c{k:02d}.png,{'lesion' if k % 2 else 'normal'}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    model = tmp_path / "m.pt"
    assert main(["train", "--data", str(folder), "--labels", str(tmp_path / "labels.csv"), "--size", "16,16",
                 "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    facts = InputFacts.from_dict(load_model(model)[1]["input"])
    assert (facts.smallest, facts.largest) == ((32, 32), (64, 64))

    cohort = tmp_path / "cohort"
    cohort.mkdir()
    Image.open(folder / "c00.png").save(cohort / "small.png")  # a training scan: 32 x 32
    Image.fromarray((rng.random((256, 256)) * 60).astype(np.uint8)).save(cohort / "huge.png")
    assert main(["audit", "--model", str(model), "--data", str(cohort), "--methods", "gradient",
                 "--cluster-method", "gradient", "--metric-option", "deletion_auc.steps=4",
                 "--metric-option", "insertion_auc.steps=4", "--out", str(tmp_path / "a"), "--quiet"]) == 0
    rows = {r["case"]: r for r in csv.DictReader((tmp_path / "a" / "familiarity.csv").open())}
    huge, small = rows["case-0000"], rows["case-0001"]  # sorted: huge.png, small.png
    assert "its native size (256 x 256) is 4.0 times the largest training scans' (64 x 64)" in huge["reasons"]
    assert huge["unlike_training_data"] == "1"
    assert "native size" not in small["reasons"]
