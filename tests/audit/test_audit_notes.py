"""``medlens audit`` on notes: a planted token is found, a harmless one is not, resume, privacy, refusals.

The text models are trained here, in a few seconds each, on notes the tests write: one where a
planted token ("zzq") decides the label, one where finding words do and "zzq" sits in a random
half of the notes of either class.
"""

from __future__ import annotations

import csv
import html
import re

import pytest

from medlens.cli import main
from tests.report.claims import check_notes_audit_page
from tests.audit.notes_data import (
    PLANTED,
    train_notes_model,
    write_clean_notes,
    write_planted_notes,
)

FAST = ["--option", "integrated_gradients.n_steps=8", "--metric-option", "deletion_auc.steps=5",
        "--metric-option", "insertion_auc.steps=5", "--cases-per-batch", "8", "--quiet"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted")
    write_planted_notes(folder / "train.csv", n=120, seed=0)
    rows = write_planted_notes(folder / "notes.csv", n=60, seed=1)
    return train_notes_model(folder / "train.csv", folder / "model.pt"), folder / "notes.csv", rows


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clean")
    write_clean_notes(folder / "train.csv", n=120, seed=0)
    write_clean_notes(folder / "notes.csv", n=60, seed=1)
    return train_notes_model(folder / "train.csv", folder / "model.pt"), folder / "notes.csv"


def _rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_the_planted_token_is_found_as_depended_on(tmp_path, planted, capsys):
    model, notes, written = planted
    out = tmp_path / "audit"
    assert main(["audit", "--model", model, "--data", str(notes), "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "audited 60 new case(s) of 60" in printed and f"depend on '{PLANTED}'" in printed
    tokens = _rows(out / "tokens.csv")
    row = next(r for r in tokens if r["token"] == PLANTED and r["class_name"] == "positive")
    assert row["verdict"] == "depended on" and float(row["p_value"]) < 0.01 and row["rank"] == "1"
    assert int(row["notes"]) == int(row["n_tested"]) == 30 and row["notes_elsewhere"] == "0"
    assert float(row["change"]) > float(row["null_change"]) + 0.1  # deleting it lowers P(positive)
    assert not any(r["token"] == PLANTED for r in tokens if r["class_name"] == "negative")
    cases = _rows(out / "cases.csv")
    assert [r["case"] for r in cases] == [f"case-{i:04d}" for i in range(60)]
    hit = [r for r in cases if r["depends_on"]]
    assert hit and all(r["depends_on"] == PLANTED and r["label"] == "1" for r in hit)
    assert {"integrated_gradients.deletion_auc", "attention.insertion_auc", "n_tokens"} <= set(cases[0])
    markup = (out / "audit.html").read_text(encoding="utf-8")
    page = html.unescape(re.sub(r"<[^>]+>", "", markup))
    assert f"The predictions of 'positive' depend on '{PLANTED}'" in page and "Tokens of 'positive'" in page
    # the verdict sentences agree with the tokens' tables, and the checker fails on a wrong one
    assert check_notes_audit_page(markup) >= 2  # the summary's sentence and the class section's
    wrong = markup.replace('data-claim="token_depended"', 'data-claim="token_small"', 1)
    with pytest.raises(AssertionError):
        check_notes_audit_page(wrong)
    # no note text and no id of the file anywhere but identifiers.csv
    shared = [(out / name).read_text(encoding="utf-8") for name in ("cases.csv", "tokens.csv", "audit.html")]
    for r in written:
        assert not any(r["text"] in text or r["case"] in text for text in shared)
    identifiers = _rows(out / "identifiers.csv")
    assert [(r["case"], r["note"]) for r in identifiers[:2]] == [("case-0000", "MRN7000"), ("case-0001", "MRN7001")]


def test_a_token_that_tells_nothing_is_not_depended_on(tmp_path, clean, capsys):
    model, notes = clean
    out = tmp_path / "audit"
    assert main(["audit", "--model", model, "--data", str(notes), "--out", str(out), "--tokens", PLANTED, *FAST]) == 0
    assert f"depend on '{PLANTED}'" not in capsys.readouterr().out
    markup = (out / "audit.html").read_text(encoding="utf-8")
    assert check_notes_audit_page(markup) >= 1
    if 'data-claim="tokens_none" data-tested="' in markup:  # a wrong count of tested tokens is caught
        wrong = markup.replace('data-claim="tokens_none" data-tested="', 'data-claim="tokens_none" data-tested="9', 1)
        with pytest.raises(AssertionError):
            check_notes_audit_page(wrong)
    rows = [r for r in _rows(out / "tokens.csv") if r["token"] == PLANTED]
    assert len(rows) == 2 and all(r["tested"] == "1" for r in rows)  # named: tested in both classes
    assert all(r["verdict"] in ("not depended on", "undecided") for r in rows), rows
    assert not any(r["depends_on"] for r in _rows(out / "cases.csv"))


def test_resumed_audit_equals_an_uninterrupted_one(tmp_path, planted, capsys):
    model, notes, _ = planted
    part, full = tmp_path / "part", tmp_path / "full"
    assert main(["audit", "--model", model, "--data", str(notes), "--out", str(part), "--limit", "20", *FAST]) == 0
    assert "audited 20 new case(s) of 20" in capsys.readouterr().out
    assert main(["audit", "--model", model, "--data", str(notes), "--out", str(part), *FAST]) == 0
    assert "audited 40 new case(s) of 60" in capsys.readouterr().out
    assert main(["audit", "--model", model, "--data", str(notes), "--out", str(full), *FAST]) == 0
    assert (part / "cases.csv").read_text() == (full / "cases.csv").read_text()
    verdicts = [[(r["class"], r["token"], r["verdict"]) for r in _rows(f / "tokens.csv")] for f in (part, full)]
    assert verdicts[0] == verdicts[1]
    assert main(["audit", "--model", model, "--data", str(notes), "--out", str(full), *FAST]) == 0
    assert "audited 0 new case(s) of 60" in capsys.readouterr().out
    # another configuration is another audit: refused in one line
    assert main(["audit", "--model", model, "--data", str(notes), "--out", str(full), "--methods", "gradient",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--restart" in err and len(err.strip().splitlines()) == 1


def test_show_identifiers_names_notes_by_the_files_ids_and_shows_text(tmp_path, planted):
    model, notes, written = planted
    out = tmp_path / "audit"
    assert main(["audit", "--model", model, "--data", str(notes), "--out", str(out), "--show-identifiers",
                 "--limit", "24", *FAST]) == 0
    cases = _rows(out / "cases.csv")
    assert [r["case"] for r in cases] == [r["case"] for r in written[:24]]
    assert cases[1]["snippet"] == written[1]["text"][:80]
    page = html.unescape((out / "audit.html").read_text(encoding="utf-8"))
    assert f"words around '{PLANTED}'" in page and "MRN70" in page


@pytest.mark.parametrize("extra, message", [
    (["--labels", "labels.csv"], "labels in a column"),
    (["--leaderboard", "board/"], "--methods"),
    (["--cluster-method", "smoothgrad"], "first of --methods"),
    (["--methods", "gradcam"], "gradcam"),
    (["--tokens", "nowordlikethis"], "vocabulary"),
    (["--option", "integrated_gradients.baseline=zero"], "n_steps"),
    (["--metric-option", "pointing_game.x=1"], "deletion_auc.steps"),
    (["--metric-option", "deletion_auc.steps=4", "--metric-option", "insertion_auc.steps=5"], "equal"),
    (["--top-tokens", "-1"], "top-tokens"),
])
def test_refusals_are_one_line(tmp_path, planted, capsys, extra, message):
    model, notes, _ = planted
    code = main(["audit", "--model", model, "--data", str(notes), "--out", str(tmp_path / "o"), *extra, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_a_text_model_needs_notes_and_an_image_model_no_tokens(tmp_path, planted, lesion_npz, model_file, capsys):
    model, _notes, _ = planted
    assert main(["audit", "--model", model, "--data", str(lesion_npz), "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "not a notes file" in capsys.readouterr().err
    assert main(["audit", "--model", str(model_file), "--data", str(lesion_npz), "--out", str(tmp_path / "b"),
                 "--tokens", "xxxx", "--quiet"]) == 2
    assert "--tokens is for a text model" in capsys.readouterr().err


@pytest.mark.slow
def test_the_ray_engine_gives_the_local_engines_numbers(tmp_path, planted):
    pytest.importorskip("ray")
    model, notes, _ = planted
    local, ray = tmp_path / "local", tmp_path / "ray"
    assert main(["audit", "--model", model, "--data", str(notes), "--out", str(local), *FAST]) == 0
    assert main(["audit", "--model", model, "--data", str(notes), "--out", str(ray), "--engine", "ray",
                 "--workers", "2", *FAST]) == 0
    for name in ("cases.csv", "tokens.csv"):
        assert (local / name).read_text() == (ray / name).read_text(), name
