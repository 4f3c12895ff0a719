"""The evaluation demo section (quick mode) and the HTML leaderboard section."""

from __future__ import annotations

from medlens.app.demo import DemoContext
from medlens.app.evaluation_section import evaluation_section
from medlens.report import Report


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
