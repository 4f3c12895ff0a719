"""A findings CSV in NIH ChestX-ray14's layout ('Finding Labels' with '|', 'No Finding') gives the same
label matrix as one 0/1 column per finding (CheXpert's, -1 and blank read as absent); the layout is
told from the columns; bad values are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.data.formats.finding_labels import is_findings_table, read_finding_table
from medlens.errors import InputError

NAMES = ["a.png", "b.png", "c.png", "d.png"]


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_nih_layout_equals_one_column_per_finding(tmp_path):
    nih = _write(tmp_path / "nih.csv", "Image Index,Finding Labels,Patient ID\n"
                 "a.png,Effusion|Mass,p1\nb.png,No Finding,p1\nd.png,Mass,p2\n")
    cols = _write(tmp_path / "cols.csv", "case,group,Mass,Effusion\n"
                  "a.png,p1,1.0,1\nb.png,p1,0,-1\nd.png,p2,1,\n")
    one, two = read_finding_table(nih, NAMES), read_finding_table(cols, NAMES)
    assert one.findings == ("Effusion", "Mass") and two.findings == ("Mass", "Effusion")
    expected = np.array([[1, 1], [0, 0], [0, 0], [0, 1]], dtype=np.float32)  # (Effusion, Mass); c.png unlisted
    np.testing.assert_array_equal(one.matrix, expected)
    np.testing.assert_array_equal(two.matrix[:, [1, 0]], expected)
    assert one.labelled == two.labelled == [True, True, False, True]
    assert one.groups == two.groups == ["p1", "p1", None, "p2"]
    assert (two.uncertain, two.blank) == (1, 1)
    assert is_findings_table(nih) and is_findings_table(cols)
    assert not is_findings_table(_write(tmp_path / "single.csv", "case,label\na.png,1\n"))


@pytest.mark.parametrize("text, words", [
    ("case,Mass\na.png,2\n", "finding 'Mass' of case 'a.png' is '2'"),
    ("Image Index,Finding Labels\na.png,No Finding|Mass\n", "'No Finding' together with findings"),
    ("case,Mass\nz.png,1\n", "names case 'z.png'"),
])
def test_bad_values_are_one_line_errors(tmp_path, text, words):
    with pytest.raises(InputError, match=words):
        read_finding_table(_write(tmp_path / "l.csv", text), NAMES)


def test_chexperts_descriptive_columns_are_not_findings(tmp_path):
    """CheXpert's train.csv carries Sex, Age, Frontal/Lateral and AP/PA beside its findings: before,
    'Female' was refused as a finding's value, so the real file could not be read."""
    chexpert = _write(tmp_path / "train.csv", "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Cardiomegaly,Effusion\n"
                      "a.png,Female,68,Frontal,AP,,1.0,-1.0\nb.png,Male,87,Lateral,,1.0,,\n")
    table = read_finding_table(chexpert, NAMES)
    assert table.findings == ("No Finding", "Cardiomegaly", "Effusion")
    np.testing.assert_array_equal(table.matrix[:2], np.array([[0, 1, 0], [1, 0, 0]], dtype=np.float32))
