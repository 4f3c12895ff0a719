"""``medlens predict --labels`` on cases that all carry one label printed "accuracy 0.917, AUROC nan":
an accuracy with nothing to read it against, where always answering that label scores 1.0 (PneumoniaMNIST's
test split is sorted by label, so ``--limit N`` up to 234 gives pneumonia cases only). The line now says
the AUROC is not defined and why, and that the predictions are not shown to beat always answering the
most frequent label (the leaderboard's and the audit's binomial test, also in ``metrics.json``)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from medlens.cli import main


def _labelled_pngs(tmp_path, labels):
    folder = tmp_path / "scans"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["case,label"]
    for k, label in enumerate(labels):
        Image.fromarray((rng.random((24, 24)) * 255).astype(np.uint8)).save(folder / f"c{k:02d}.png")
        rows.append(f"c{k:02d}.png,{label}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder, tmp_path / "labels.csv"


def test_one_label_cases_get_no_bare_nan_and_the_chance_caution(tmp_path, capsys, tiny_scan_model):
    folder, labels = _labelled_pngs(tmp_path, ["b"] * 8)
    out = tmp_path / "out"
    assert main(["predict", "--model", str(tiny_scan_model), "--data", str(folder), "--labels", str(labels),
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "nan" not in printed
    assert "AUROC not defined (every labelled case is b)" in printed
    assert "all 8 cases have the same label, so no score on them can show that the model's predictions beat" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["chance"]["better"] is False and metrics["chance"]["majority_share"] == 1.0


def test_two_labels_keep_the_auroc_and_give_the_record(tmp_path, capsys, tiny_scan_model):
    folder, labels = _labelled_pngs(tmp_path, ["a", "b"] * 4)
    out = tmp_path / "out"
    assert main(["predict", "--model", str(tiny_scan_model), "--data", str(folder), "--labels", str(labels),
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "AUROC 0." in printed or "AUROC 1." in printed
    assert json.loads((out / "metrics.json").read_text())["chance"]["n"] == 8
