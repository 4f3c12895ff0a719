"""Prose and tables agree: every comparative sentence of the leaderboard report, the demo's
leaderboard section and the case report is read back from the rendered page and checked against
the table it describes (argmax, sign of the difference, whether the 95 % interval excludes 0)."""

from __future__ import annotations

import json

import pytest
import torch

from medlens.app.evaluation_section import leaderboard_section, write_leaderboard_outputs
from medlens.evaluation.leaderboard import LeaderboardSettings, evaluate, summarise
from medlens.report import Report
from tests.conftest import make_input, make_model
from tests.report.claims import check_leaderboard_page, read_page

N = 12


def _results_file(path, values: dict[str, dict[str, list[float]]], seed: int = 0) -> None:
    """A leaderboard results file with chosen per-case values ``{entry: {metric: [v per case]}}``."""
    entries = list(values)
    metrics = sorted({m for v in values.values() for m in v})
    config = {"type": "config", "format": 1, "data": "chosen values", "class_names": ["no lesion", "lesion"],
              "n_samples": N, "input_shape": [1, 8, 8], "model": "0" * 16, "entries": entries,
              "kinds": {e: "baseline" if e.startswith("baseline:") else "method" for e in entries},
              "metrics": {m: {} for m in metrics}, "method_options": {}, "target": "label", "seed": seed,
              "cases_per_batch": N, "batch_size": 8, "marker_audit": False, "sanity_threshold": 0.5}
    # two labels, every prediction right: cases of one label never beat answering it (the chance test)
    lines = [config] + [
        {"type": "result", "sample": i, "method": e, "kind": config["kinds"][e], "label": i % 2, "target": i % 2,
         "predicted": i % 2, "metrics": {m: v[i] for m, v in per.items()}}
        for e, per in values.items() for i in range(N)
    ]
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


def _hits(k: int) -> list[float]:
    return [1.0] * k + [0.0] * (N - k)


def test_the_seen_disagreement_is_gone(tmp_path):
    """The demo's numbers (issue 20): gradient 0.667 vs grad_x_input 0.583 on pointing game,
    fastcam 0.187 vs grad_x_input 0.140 on mass in lesion; the sentence must name gradient and
    fastcam, and say "better" only where the paired interval excludes 0."""
    mass = {"gradient": 0.12, "grad_x_input": 0.14, "fastcam": 0.187}
    values = {
        m: {"pointing_game": _hits(k), "mass_in_mask": [mass[m] + 0.01 * ((i % 3) - 1) for i in range(N)]}
        for m, k in (("gradient", 8), ("grad_x_input", 7), ("fastcam", 2))
    }
    values["baseline:random"] = {"pointing_game": _hits(0), "mass_in_mask": [0.05] * N}
    values["baseline:edge"] = {"pointing_game": _hits(7), "mass_in_mask": [0.1] * N}
    _results_file(tmp_path, values)
    summary = summarise(tmp_path)
    text = summary["verdict"]["text"][0]
    assert "pointing game (higher is better): gradient (0.667)" in text
    assert "mass in lesion (higher is better): fastcam (0.187)" in text
    assert "do not tell it apart from grad_x_input" in text  # one case apart on pointing game
    assert "better than every other method" in text  # fastcam is ahead on every case
    write_leaderboard_outputs(tmp_path / "out", summary)
    page = (tmp_path / "out" / "report.html").read_text()
    assert check_leaderboard_page(page) >= 2 + 3  # two "best", each method not shown better than the edge map
    # gradient's 67% against the edge map's 58%: higher, not "no better"
    loc = next(t for t in summary["verdict"]["text"] if t.startswith("Do not use gradient"))
    assert "67%" in loc and "58%" in loc and "no better" not in loc and "higher, but" in loc


def test_the_checker_fails_on_a_wrong_sentence(tmp_path):
    values = {m: {"pointing_game": _hits(k)} for m, k in (("a", 11), ("b", 2))}
    values["baseline:edge"] = {"pointing_game": _hits(6)}
    values["baseline:random"] = {"pointing_game": _hits(1)}
    _results_file(tmp_path, values)
    summary = summarise(tmp_path)
    write_leaderboard_outputs(tmp_path / "out", summary)
    page = (tmp_path / "out" / "report.html").read_text()
    assert check_leaderboard_page(page)
    claims = [c for c in read_page(page).claims if c["claim"] == "best"]
    assert claims and claims[0]["method"] == "a" and claims[0]["relation"] == "better"
    for wrong in (page.replace('data-claim="best" data-metric="pointing_game" data-method="a"',
                               'data-claim="best" data-metric="pointing_game" data-method="b"'),
                  page.replace('data-method="a" data-relation="better"', 'data-method="a" data-relation="indistinguishable"'),
                  page.replace('data-versus="baseline:edge" data-relation="worse"',
                               'data-versus="baseline:edge" data-relation="indistinguishable"'),
                  page.replace("difference -33 points", "difference +33 points").replace(
                      'data-ci-low="-0.5833333333" data-ci-high="-0.08333333333"',
                      'data-ci-low="0.08333333333" data-ci-high="0.5833333333"')):
        assert wrong != page
        with pytest.raises(AssertionError):
            check_leaderboard_page(wrong)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A real leaderboard run: a small CNN, four methods, faithfulness, sanity and localisation."""
    out = tmp_path_factory.mktemp("scored")
    model, x = make_model(2, num_classes=2), make_input(2, batch=N, seed=5)
    labels = torch.tensor([1, 0] * (N // 2))
    masks = torch.zeros(N, 24, 24, dtype=torch.bool)
    for i in range(N):
        masks[i, 4 + i : 12 + i, 6:14] = True
        x[i, :, 4 + i : 12 + i, 6:14] += 1.5
    settings = LeaderboardSettings(
        methods=["gradient", "grad_x_input", "gradcam", "occlusion"], batch_size=6,
        metrics=["deletion_auc", "insertion_auc", "pointing_game", "mass_in_mask", "randomisation_spearman"],
        baselines=("random", "edge", "centre"), method_options={"occlusion": {"window": 6, "stride": 6}},
        metric_options={"deletion_auc": {"steps": 6}, "insertion_auc": {"steps": 6}},
    )
    return out, evaluate(model, x, labels, masks, out=out, settings=settings, progress=False)


def test_leaderboard_report_sentences_match_their_tables(scored, tmp_path):
    _out, summary = scored
    write_leaderboard_outputs(tmp_path, summary)
    page = (tmp_path / "report.html").read_text()
    assert check_leaderboard_page(page) >= 3 * 4  # every method against random, edge and centre at least


def test_demo_leaderboard_section_sentences_match_their_tables(scored):
    """The demo draws its leaderboard through the same section builder, with its preamble."""
    _out, summary = scored
    report = Report("demo")
    leaderboard_section(report, summary, title="Leaderboard: lesion benchmark", preamble="Model: test accuracy 0.5.")
    assert check_leaderboard_page(report.render())


@pytest.mark.parametrize("name", ["2d", "3d", "signal"])
def test_case_report_sentences_match_their_numbers(reports, name):
    from tests.report.claims import check_case_page

    assert check_case_page(reports[name].read_text()) >= 1


@pytest.fixture(scope="module")
def detector_page():
    """A case whose evidence is known (tests.app's region detector): every check can decide."""
    import numpy as np

    from medlens.app.case_report import case_report
    from medlens.report.case import render_case_report
    from tests.app.test_case_report import RegionDetector

    x = torch.zeros(1, 1, 48, 48, dtype=torch.float64)
    x[0, 0, 3:7, 4:8] = 1.0
    x[0, 0, 20:44, 20:44] = 2.0
    content, _ = case_report(RegionDetector().eval(), x, 1, methods=["gradient", "grad_x_input"],
                             meta={"class_names": ["no finding", "finding"]})
    assert np.isfinite(content.probabilities).all()
    return render_case_report(content)


def test_case_report_sentences_match_their_numbers_on_a_known_case(detector_page):
    from tests.report.claims import check_case_page

    assert check_case_page(detector_page) == 2 * 4  # per method: random maps, edge, centre, randomisation
    assert 'class="trust-supported" data-method="gradient"' in detector_page


def test_case_report_checker_fails_on_a_wrong_sentence(detector_page):
    from tests.report.claims import check_case_page

    for old, new in (('data-versus="edge" data-relation="better"', 'data-versus="edge" data-relation="worse"'),
                     ('data-claim="case_random" data-method="gradient" data-relation="better"',
                      'data-claim="case_random" data-method="gradient" data-relation="indistinguishable"')):
        wrong = detector_page.replace(old, new, 1)
        assert wrong != detector_page
        with pytest.raises(AssertionError):
            check_case_page(wrong)


def test_the_shortcut_sentence_weighs_the_marker_against_the_edge_map(tmp_path):
    """Both models rely on the marker (pasting it raises p('lesion') by 0.6); method ``a`` puts
    about 18% of its attribution on the marker, ``b`` and the edge map 3%: only ``a`` is said to
    point at the shortcut, and the page's claims check against its paired-difference table."""
    present = [i % 2 == 0 for i in range(N)]
    values = {
        "a": {"marker_mass": [0.18 + 0.01 * (i % 3) if p else None for i, p in enumerate(present)]},
        "b": {"marker_mass": [0.034 + 0.02 * ((i // 2) % 3 - 1) if p else None for i, p in enumerate(present)]},
        "baseline:edge": {"marker_mass": [0.033 + 0.002 * (i % 2) if p else None for i, p in enumerate(present)]},
        "baseline:random": {"marker_mass": [0.006 if p else None for p in present]},
    }
    _results_file(tmp_path, values)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    config = dict(json.loads(lines[0]), marker_audit=True, marker_class=1)
    model_records = [{"type": "result", "sample": i, "method": "model", "kind": "model", "label": int(not p),
                      "target": 1, "predicted": 1 if p else 0,
                      "metrics": {"marker_present": p, "p_original": 0.9 if p else 0.2,
                                  "p_intervened": 0.3 if p else 0.8, "marker_fraction": 0.006}}
                     for i, p in enumerate(present)]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [config, *map(json.loads, lines[1:]),
                                                                                    *model_records]))
    summary = summarise(tmp_path)
    text = summary["verdict"]["shortcut_text"]
    assert text.startswith("The model relies on the shortcut marker")
    assert ": a points at the shortcut" in text and "b point" not in text
    write_leaderboard_outputs(tmp_path / "out", summary)
    page = (tmp_path / "out" / "report.html").read_text()
    before = check_leaderboard_page(page)
    assert 'data-higher="True"' in page
    wrong = page.replace('data-method="a" data-versus="baseline:edge" data-relation="better"',
                         'data-method="a" data-versus="baseline:edge" data-relation="indistinguishable"')
    assert wrong != page and before >= 2
    with pytest.raises(AssertionError):
        check_leaderboard_page(wrong)
