"""An accuracy is stated beside the accuracy of always answering the most frequent class: train's
line, the model file's test record and the case report's header (PneumoniaMNIST's test split is 62.5%
pneumonia, so "test accuracy 0.63" alone would read as a model that learnt something)."""

from __future__ import annotations

from medlens.app.case_report.build import _model_words
from medlens.app.recipes import majority_words
from medlens.cli import main
from tests.app.test_train_scans import _scans


def test_train_records_and_prints_the_test_splits_majority_share(tmp_path, capsys):
    from medlens.models import load_model

    folder, labels = _scans(tmp_path, n=20)
    model_path = tmp_path / "m.pt"
    assert main(["train", "--data", str(folder), "--labels", str(labels), "--size", "16,16", "--epochs", "1",
                 "--out", str(model_path), "--quiet"]) == 0
    _model, meta = load_model(model_path)
    share = meta["test"]["majority_share"]
    assert 0.5 <= share <= 1.0
    assert f"(always answering the most frequent class: {share:.3f})" in capsys.readouterr().out
    assert f"(always answering the most frequent class: {share:.2f})" in _model_words(meta)


def test_older_model_files_without_the_share_say_nothing_of_it():
    assert majority_words({"accuracy": 0.9}) == ""
    assert _model_words({"data": "x", "test": {"accuracy": 0.9}}) == "trained on x, test accuracy 0.90"
