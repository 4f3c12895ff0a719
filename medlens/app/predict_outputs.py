"""The files of ``medlens predict``: ``predictions.csv``, ``metrics.json`` and ``unreadable.csv``.

``predictions.csv`` has one row per case: ``case``, ``label`` (the class name, empty when not
known; for a multi-label model the true findings joined by ``;``, ``No Finding`` for none), ``predicted`` (the class name; for a multi-label model the findings with probability >= 0.5,
joined by ``;``) and ``probability.<class name>`` for every class (a multi-label model's: each
finding's own sigmoid), written
with enough digits to give back the stored numbers. ``metrics.json`` summarises the labelled
cases: accuracy, AUROC (binary, or one-vs-rest averaged over the classes present:
:func:`medlens.models.metrics.macro_auroc`) and the expected calibration error over ten equal-width
confidence bins (Guo et al. 2017; :func:`medlens.app.case_report.calibration_data`), and ``chance``:
whether the predictions beat always answering the most frequent label
(:func:`medlens.evaluation.chance.chance_record`, the leaderboard's and the audit's test); it is
written only when some case has a label. :func:`metrics_lines` says the same in words.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch

from medlens.app.case_report import calibration_data
from medlens.app.findings import predicted_findings, true_findings_words
from medlens.audit.cases import CaseFailure, CaseResult
from medlens.core.files import write_csv, write_json
from medlens.evaluation.chance import chance_record, chance_words
from medlens.models.metrics import macro_auroc

__all__ = ["metrics_lines", "prediction_rows", "summary_metrics", "write_outputs"]


def _name(k: int | None, class_names: Sequence[str]) -> str:
    if k is None:
        return ""
    return class_names[k] if 0 <= k < len(class_names) else str(k)


def prediction_rows(results: Sequence[CaseResult], class_names: Sequence[str], multilabel: bool = False,
                    findings: Any = None) -> tuple[list[str], list[dict]]:
    """The columns and rows of ``predictions.csv``; for a multi-label model ``predicted`` names the
    findings at :data:`~medlens.app.findings.THRESHOLD` or above, joined by ``;``, and ``label``
    the true findings of ``findings`` (``(N, K)`` 0/1, NaN where not labelled, row = case index)."""
    k = max([len(class_names), *(len(r.probabilities) for r in results)])
    names = [_name(j, class_names) for j in range(k)]
    columns = ["case", "label", "predicted", *(f"probability.{n}" for n in names)]
    rows = []
    for r in results:
        predicted = ";".join(predicted_findings(r.probabilities, names)) if multilabel else _name(r.predicted, names)
        label = (true_findings_words(findings[r.index].tolist(), names) if multilabel and findings is not None
                 else _name(r.label, names))
        row = {"case": r.case, "label": label, "predicted": predicted}
        row.update({f"probability.{n}": repr(float(p)) for n, p in zip(names, r.probabilities)})
        rows.append(row)
    return columns, rows


def summary_metrics(results: Sequence[CaseResult], class_names: Sequence[str]) -> dict[str, Any] | None:
    """Accuracy, AUROC and calibration error of the labelled cases (``None`` when none is labelled)."""
    labelled = [r for r in results if r.label is not None]
    if not labelled:
        return None
    probs = torch.tensor([r.probabilities for r in labelled], dtype=torch.float64)
    labels = torch.tensor([r.label for r in labelled], dtype=torch.long)
    table = calibration_data(probs, labels, split="predicted cases")
    return {
        "n_cases": len(results),
        "n_labelled": len(labelled),
        "class_names": list(class_names),
        "label_counts": {_name(k, class_names): int((labels == k).sum()) for k in range(probs.shape[1])},
        "accuracy": float((probs.argmax(1) == labels).double().mean()),  # in float64, as the CSV gives it back
        "auroc": macro_auroc(probs, labels),
        "auroc_kind": "binary (class 1 against class 0)" if probs.shape[1] == 2 else "one-vs-rest, averaged over the classes present",
        "expected_calibration_error": table["ece"],
        "calibration_bins": len(table["counts"]),
        "reliability": {"edges": table["edges"], "counts": table["counts"], "accuracy": table["accuracy"]},
        "chance": chance_record((r.label, r.predicted) for r in labelled),
    }


def metrics_lines(metrics: dict[str, Any]) -> list[str]:
    """The metrics of :func:`summary_metrics` in words: one line of numbers (an AUROC that the labels
    leave undefined says why), then a caution when the predictions are not shown to beat always
    answering the most frequent label."""
    if metrics.get("multilabel"):
        from medlens.app.predict_findings import finding_metrics_lines

        return finding_metrics_lines(metrics)
    present = [name for name, count in metrics["label_counts"].items() if count]
    defined = metrics["auroc"] is not None and not math.isnan(metrics["auroc"])  # NaN in memory, null in the file
    auroc = (f"AUROC {metrics['auroc']:.3f}" if defined else
             f"AUROC not defined (every labelled case is {present[0]})" if len(present) == 1 else "AUROC not defined")
    lines = [f"{metrics['n_labelled']} labelled case(s): accuracy {metrics['accuracy']:.3f}, {auroc}, "
             f"expected calibration error {metrics['expected_calibration_error']:.3f}"]
    chance = metrics.get("chance")
    if chance and not chance["better"]:
        lines.append(f"caution: {chance_words(chance)}.")
    return lines


def write_outputs(out: Path, results: Sequence[CaseResult], failures: Sequence[CaseFailure],
                  class_names: Sequence[str], multilabel: bool = False,
                  findings: Any = None) -> tuple[dict[str, Any] | None, list[Path]]:
    """Write the files into ``out``; returns the metrics (or ``None``: none labelled, or a
    multi-label model, whose metrics :mod:`medlens.app.predict_findings` gives) and the paths written;
    ``findings`` are a multi-label model's true findings (:func:`prediction_rows`)."""
    columns, rows = prediction_rows(results, class_names, multilabel, findings)
    files = [write_csv(out / "predictions.csv", rows, columns)]
    metrics = None if multilabel else summary_metrics(results, class_names)
    if metrics is not None:
        files.append(write_json(out / "metrics.json", metrics))
    if failures:
        files.append(write_csv(out / "unreadable.csv", [{"case": f.case, "error": f.error} for f in failures],
                               ["case", "error"]))
    return metrics, files
