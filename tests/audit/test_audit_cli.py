"""``medlens audit`` end to end: outputs, a folder of scans, identifiers kept out of the report, errors."""

from __future__ import annotations

import csv
import re
import html

import numpy as np
import pytest

from medlens.cli import main

OPTIONS = ["--methods", "gradcam", "--option", "smoothgrad.n_samples=4", "--metric-option", "deletion_auc.steps=5",
           "--metric-option", "insertion_auc.steps=5", "--cases-per-batch", "4", "--quiet"]


def test_audit_command_writes_every_output(tmp_path, lesion_npz, model_file, capsys):
    out = tmp_path / "audit"
    assert main(["audit", "--model", str(model_file), "--data", str(lesion_npz), "--out", str(out), "--limit", "12", *OPTIONS]) == 0
    printed = capsys.readouterr().out
    assert "audited 12 new case(s) of 12 on the local engine" in printed
    for name in ("audit.sqlite", "cases.csv", "cases.parquet", "clusters.csv", "audit.html"):
        assert (out / name).exists(), name
    rows = list(csv.DictReader((out / "cases.csv").open()))
    assert [r["case"] for r in rows] == [str(i) for i in range(12)]
    labels = np.load(lesion_npz)["test_labels"][:12]
    assert [int(r["label"]) for r in rows] == labels.tolist()
    page = (out / "audit.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Strategies for" in page and "data:image/png;base64," in page
    assert "eigenvalues of the normalised graph Laplacian" in html.unescape(page)
    # exemplars are shown in the overlay viewer the demo and the case report use
    assert '<div class="ml-viewer"' in page and "Content-Security-Policy" in page
    # the verdict sentences agree with the strategies' tables, and the checker fails on a wrong one
    from tests.report.claims import check_audit_page

    assert check_audit_page(page) >= 1
    claim = re.search(r'data-claim="(none_flagged|flagged|undecided)"[^>]*>', page).group(0)
    wrong = page.replace(claim, claim.replace('data-claim="none_flagged" data-strategies="',
                                              'data-claim="none_flagged" data-strategies="9').replace(
        'data-claim="undecided"', 'data-claim="flagged"'), 1)
    assert wrong != page
    with pytest.raises(AssertionError):
        check_audit_page(wrong)
    # resuming computes nothing
    assert main(["audit", "--model", str(model_file), "--data", str(lesion_npz), "--out", str(out), "--limit", "12", *OPTIONS]) == 0
    assert "audited 0 new case(s) of 12" in capsys.readouterr().out


def test_folder_of_scans_names_cases_by_ids_and_by_path_only_when_asked(tmp_path, model_file):
    scans = tmp_path / "scans" / "Doe^Jane"
    scans.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        np.save(scans / f"scan{i}.npy", rng.random((48, 48)).astype(np.float32))  # resized to 24x24
    out = tmp_path / "audit"
    assert main(["audit", "--model", str(model_file), "--data", str(tmp_path / "scans"), "--out", str(out), *OPTIONS]) == 0
    rows = list(csv.DictReader((out / "cases.csv").open()))
    assert [r["case"] for r in rows] == [f"case-{i:04d}" for i in range(5)]
    assert all(r["label"] == "" for r in rows)
    page = html.unescape((out / "audit.html").read_text())
    assert "Doe^Jane" not in page and "Doe^Jane" not in (out / "clusters.csv").read_text()
    identifiers = list(csv.DictReader((out / "identifiers.csv").open()))
    assert [r["file"] for r in identifiers] == [f"Doe^Jane/scan{i}.npy" for i in range(5)]
    # named by path: another audit of the same data (the store says so), so --restart
    assert main(["audit", "--model", str(model_file), "--data", str(tmp_path / "scans"), "--out", str(out),
                 "--show-identifiers", "--restart", *OPTIONS]) == 0
    assert "Doe^Jane" in html.unescape((out / "audit.html").read_text())
    rows = list(csv.DictReader((out / "cases.csv").open()))
    assert [r["case"] for r in rows] == [f"Doe^Jane/scan{i}.npy" for i in range(5)]


@pytest.mark.parametrize("extra, message", [
    (["--methods", "nope"], "unknown"),
    (["--cases-per-batch", "0"], "cases-per-batch"),
    (["--engine", "local", "--leaderboard", "missing.json"], "leaderboard"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, lesion_npz, model_file, capsys, extra, message):
    code = main(["audit", "--model", str(model_file), "--data", str(lesion_npz), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_leaderboard_ranking_chooses_the_methods(tmp_path, lesion_npz, model_file, capsys):
    import json

    board = tmp_path / "board"
    board.mkdir()
    (board / "summary.json").write_text(json.dumps({"verdict": {"ranking": ["gradient"]}}))
    out = tmp_path / "audit"
    assert main(["audit", "--model", str(model_file), "--data", str(lesion_npz), "--out", str(out), "--limit", "4",
                 "--leaderboard", str(board), "--cluster-method", "gradient", "--quiet"]) == 0
    header = (out / "cases.csv").read_text().splitlines()[0]
    assert "gradient.deletion_auc" in header and "gradcam" not in header
    assert "trusted by the leaderboard" in (out / "audit.html").read_text()
