"""Known-answer acceptance on the shortcut benchmark (slow: trains the reference CNN twice).

The reference CNN trained on ``lesions-shortcut`` learns the corner marker; the flagged
cases of its "lesion" class must be the test images that carry the marker (precision and
recall >= 0.8 among the images predicted "lesion"), and a CNN trained on the clean benchmark
must have no flagged strategy. benchmarks/audit.py runs the same check with every default.
"""

from __future__ import annotations

import numpy as np
import pytest

from medlens.audit.cases import AuditSettings
from medlens.audit.run import analyse, run_audit
from medlens.audit.sources import SourceSpec


def _audit(tmp_path, shortcut: bool):
    from medlens.app.recipes import train_on_dataset
    from medlens.data.synthetic.lesions import write_lesion_benchmark

    name = "shortcut" if shortcut else "clean"
    data = write_lesion_benchmark(tmp_path / f"{name}.npz", size=64, n_train=800, n_val=100, n_test=200, seed=0,
                                  shortcut=shortcut)
    model, meta = train_on_dataset(str(data), epochs=15, seed=0, progress=False)
    settings = AuditSettings(methods=("gradcam",), metrics=())  # clusters: SmoothGrad, the default
    run_audit(model.eval(), SourceSpec(str(data), "test", tuple(meta["input_shape"])), tmp_path / name, settings, meta=meta)
    analysis = analyse(tmp_path / name, parquet=False)
    with np.load(data) as z:
        markers = z["test_marker_masks"].reshape(200, -1).any(1)
    return analysis, markers


@pytest.mark.slow
def test_shortcut_strategy_is_flagged_and_the_clean_model_has_none(tmp_path):
    analysis, markers = _audit(tmp_path, shortcut=True)
    lesion = [cs for cs in analysis.strategies.classes if cs.predicted_class == 1][0]
    flagged = {analysis.results[i].index for c in lesion.clusters for i in c.flagged_members}
    marked = {analysis.results[i].index for i in lesion.members if markers[analysis.results[i].index]}
    assert flagged and marked
    precision = len(flagged & marked) / len(flagged)
    recall = len(flagged & marked) / len(marked)
    assert precision >= 0.8 and recall >= 0.8, (precision, recall)
    from medlens.report.audit import audit_report
    from tests.report.claims import check_audit_page

    assert check_audit_page(audit_report(analysis, {}).render()) >= len(analysis.strategies.flagged()) >= 1

    clean, _ = _audit(tmp_path, shortcut=False)
    assert clean.strategies.flagged() == []
