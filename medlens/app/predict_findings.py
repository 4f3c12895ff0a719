"""``medlens predict``'s metrics for a multi-label model: labels given as one 0/1 column per finding.

The labels CSV then has a ``case`` column (the scan's file, as in ``case,label``) and one column per
finding, named as the model names its findings, holding 0 or 1. ``metrics.json`` gets, per finding,
the AUROC of its probability and the accuracy of deciding it at probability >= 0.5, and their means
over the findings (the AUROC's over the findings whose labels hold both values)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Sequence

import torch

from medlens.app.findings import THRESHOLD
from medlens.errors import InputError
from medlens.models.metrics import auroc

__all__ = ["finding_columns", "finding_metrics", "finding_metrics_lines", "read_finding_labels"]


def finding_columns(path: str, findings: Sequence[str]) -> bool:
    """Whether the labels file ``path`` gives one column per finding (``case`` plus every name in
    ``findings``) or NIH ChestX-ray14's ``Finding Labels`` column, rather than ``case,label``."""
    from medlens.data.formats.finding_labels import NIH_FINDINGS

    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = {h.strip() for h in next(csv.reader(fh), [])}
    return bool(findings) and (NIH_FINDINGS in header or "case" in header and set(findings) <= header)


def read_finding_labels(path: str, files: Sequence[str], findings: Sequence[str]) -> tuple[torch.Tensor, int]:
    """``(N, K)`` float64 labels of the cases whose files are ``files``: 0 or 1, NaN where the
    file does not list the case; and how many rows name none of ``files`` (left out; none naming one
    is refused). NIH's layout (``Finding Labels``) is read by
    :func:`medlens.data.formats.finding_labels.read_finding_table`, its names matched to ``findings``
    regardless of case. A value other than 0/1 or a case listed twice is an :class:`InputError`."""
    from medlens.data.formats.finding_labels import NIH_FINDINGS, read_finding_table

    with open(path, newline="", encoding="utf-8-sig") as fh:
        if NIH_FINDINGS in {h.strip() for h in next(csv.reader(fh), [])}:  # 'Effusion|Mass', 'No Finding'
            table = read_finding_table(path, files)
            column = {f.lower(): k for k, f in enumerate(table.findings)}
            out = torch.zeros((len(files), len(findings)), dtype=torch.float64)  # a finding never named: absent
            for k, finding in enumerate(findings):
                if finding.lower() in column:
                    out[:, k] = torch.from_numpy(table.matrix[:, column[finding.lower()]]).double()
            out[[not v for v in table.labelled]] = math.nan
            return out, table.without_file
    known = {f: i for i, f in enumerate(files)}
    labels = torch.full((len(files), len(findings)), math.nan, dtype=torch.float64)
    name = Path(path).name
    without_file, first = 0, ""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            case = row["case"]
            if case not in known:
                first = first or case
                without_file += 1
                continue
            i = known[case]
            if not labels[i].isnan().all():
                raise InputError(f"labels file {name} lists case {case!r} twice")
            for k, finding in enumerate(findings):
                if row[finding] not in ("0", "1"):
                    raise InputError(f"labels file {name}: finding {finding!r} of case {case!r} is {row[finding]!r}, "
                                     "not 0 or 1")
                labels[i, k] = float(row[finding])
    if without_file and labels.isnan().all():
        from medlens.data.formats.folders import no_case_named

        raise no_case_named(name, first, len(files))
    return labels, without_file


def finding_metrics(probs: torch.Tensor, labels: torch.Tensor, findings: Sequence[str]) -> dict[str, Any] | None:
    """Per-finding AUROC and accuracy at :data:`THRESHOLD` of the labelled rows (``None`` when none is)."""
    rows = ~labels.isnan().any(1)
    if not bool(rows.any()):
        return None
    probs, labels = probs[rows].double(), labels[rows]
    per = {}
    for k, finding in enumerate(findings):
        value = auroc(probs[:, k], labels[:, k].bool()) if 0 < labels[:, k].sum() < len(labels) else math.nan
        per[finding] = {"auroc": None if math.isnan(value) else value, "positives": int(labels[:, k].sum()),
                        "accuracy": float(((probs[:, k] >= THRESHOLD).double() == labels[:, k]).double().mean())}
    aurocs = [m["auroc"] for m in per.values() if m["auroc"] is not None]
    return {"n_labelled": int(rows.sum()), "multilabel": True, "threshold": THRESHOLD, "findings": per,
            "mean_auroc": sum(aurocs) / len(aurocs) if aurocs else None,
            "mean_accuracy": sum(m["accuracy"] for m in per.values()) / len(per)}


def finding_metrics_lines(metrics: dict[str, Any]) -> list[str]:
    """:func:`finding_metrics` in one line."""
    auroc_words = (f"mean AUROC {metrics['mean_auroc']:.3f} over the findings whose labels hold both values"
                   if metrics["mean_auroc"] is not None else "AUROC not defined (no finding is both present and absent)")
    return [f"{metrics['n_labelled']} labelled case(s), {len(metrics['findings'])} findings: {auroc_words}, "
            f"mean accuracy at p >= {metrics['threshold']} {metrics['mean_accuracy']:.3f}"]
