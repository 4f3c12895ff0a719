"""The evaluation demo section (quick mode) and the HTML leaderboard section."""

from __future__ import annotations

import pytest
import torch

from medlens.demo import DemoContext
from medlens.evaluation.report import evaluation_section
from medlens.report import Report


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on the shared 2-core machine, 2 threads per process oversubscribe the
    cores and make these small tensor ops 10-30x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_quick_demo_section_and_rerun(tmp_path):
    ctx = DemoContext(tmp_path, None, {}, None, None, [], [], seed=0, quick=True)
    report = Report("t")
    evaluation_section(ctx, report)
    titles = [s.title for s in report.sections]
    assert titles == ["Evaluation on a ground-truth lesion benchmark", "Leaderboard: lesion benchmark",
                      "Leaderboard: shortcut variant"]
    html = report.render()
    assert "random (baseline)" in html and "Shortcut audit" in html and "mass on marker" in html
    assert "<script" not in html
    for name in ("lesions", "lesions-shortcut"):
        assert (tmp_path / "models" / f"{name}-cnn.pt").exists()
        assert (tmp_path / "evaluation" / name / "results.jsonl").exists()
    before = (tmp_path / "evaluation" / "lesions" / "results.jsonl").read_bytes()
    again = Report("t")
    evaluation_section(ctx, again)  # reuses the models and the scores
    assert (tmp_path / "evaluation" / "lesions" / "results.jsonl").read_bytes() == before
    assert [s.title for s in again.sections] == titles
