"""NIH's full ``Data_Entry_2017.csv`` beside a folder holding some of its images: the rows whose image
is in the folder are read, the others left out and counted (one line at training); an image without a
row stays unlabelled. The single-label ``case,label`` CSV reads the same way; a file naming none of
the folder's cases is still refused in one line; a 112k-row table reads in well under a second."""

from __future__ import annotations

import time

import numpy as np
import pytest

from medlens.app.train import _unmatched
from medlens.data.formats.finding_labels import read_finding_table
from medlens.data.formats.folders import read_labels_counted
from medlens.errors import InputError

NAMES = ["a.png", "b.png", "c.png"]


def test_rows_without_a_file_are_left_out_and_counted(tmp_path):
    nih = tmp_path / "nih.csv"
    nih.write_text("Image Index,Finding Labels,Patient ID\na.png,Effusion|Mass,p1\nzz.png,Hernia,p9\n"
                   "c.png,No Finding,p2\nyy.png,Mass,p8\n")
    table = read_finding_table(nih, NAMES)
    assert table.without_file == 2 and table.labelled == [True, False, True]
    assert table.findings == ("Effusion", "Mass")  # Hernia only on a row without a file
    np.testing.assert_array_equal(table.matrix, [[1, 1], [0, 0], [0, 0]])
    single = tmp_path / "single.csv"
    single.write_text("case,label\na.png,1\nzz.png,0\nc.png,0\nyy.png,1\n")
    assert read_labels_counted(single, NAMES) == ([1, None, 0], 2)
    assert _unmatched(2, 1) == ["2 row(s) of the labels file name no file in the folder: left out",
                                "1 scan(s) in the folder have no row in the labels file: left out (unlabelled)"]
    assert _unmatched(0, 0) == []


@pytest.mark.parametrize("text", ["Image Index,Finding Labels\nzz.png,Mass\n", "case,label\nzz.png,1\n"])
def test_a_file_naming_none_of_the_cases_is_refused(tmp_path, text):
    path = tmp_path / "l.csv"
    path.write_text(text)
    with pytest.raises(InputError, match="names none of the 3 cases of the data: its first row names case 'zz.png'"):
        (read_finding_table if "Finding" in text else read_labels_counted)(path, NAMES)


def test_a_full_nih_table_reads_fast(tmp_path):
    path = tmp_path / "Data_Entry_2017.csv"
    rows = [f"{i:08d}_000.png,{'Mass' if i % 3 else 'No Finding'},{i // 4}" for i in range(112_120)]
    path.write_text("Image Index,Finding Labels,Patient ID\n" + "\n".join(rows) + "\n")
    names = [f"{i:08d}_000.png" for i in range(0, 112_120, 1000)]
    start = time.perf_counter()
    table = read_finding_table(path, names)
    assert time.perf_counter() - start < 2.5 and table.without_file == 112_120 - len(names)


@pytest.mark.parametrize("text", ["Image Index,Finding Labels\na.png,Mass\nzz.png,Effusion\nyy.png,No Finding\n",
                                  "case,Effusion,Mass\na.png,0,1\nzz.png,1,0\nyy.png,0,0\n"])
def test_predict_reads_both_layouts_of_a_subset_alike(tmp_path, text):
    from medlens.app.predict_findings import read_finding_labels

    path = tmp_path / "l.csv"
    path.write_text(text)
    labels, without_file = read_finding_labels(str(path), NAMES, ["Effusion", "Mass"])
    assert without_file == 2 and labels[0].tolist() == [0.0, 1.0] and bool(labels[1:].isnan().all())
