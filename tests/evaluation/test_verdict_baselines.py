"""The verdict weighs every method against the model-free baselines (edge, centre), not only random."""

from __future__ import annotations

import torch

from medlens.evaluation.leaderboard import evaluate, LeaderboardSettings, summarise, trust_verdict
from tests.evaluation.fake_summary import fake_summary


def _summary(rows, paired=None):
    entries = ["gradient", "ig", "cam", "baseline:random", "baseline:edge", "baseline:centre"]
    return fake_summary(rows, metrics=["deletion_auc", "pointing_game"], entries=entries, n=100, paired=paired)


# The lesion benchmark's numbers (issue 15): edge 80 %, gradient 69 %, integrated gradients 62 %.
ROWS = {
    ("gradient", "deletion_auc"): 0.2, ("ig", "deletion_auc"): 0.25, ("cam", "deletion_auc"): 0.3,
    ("baseline:random", "deletion_auc"): 0.5, ("baseline:edge", "deletion_auc"): 0.45,
    ("baseline:centre", "deletion_auc"): 0.48,
    ("gradient", "pointing_game"): 0.69, ("ig", "pointing_game"): 0.62, ("cam", "pointing_game"): 0.93,
    ("baseline:random", "pointing_game"): 0.02, ("baseline:edge", "pointing_game"): 0.80,
    ("baseline:centre", "pointing_game"): 0.40,
}


def test_methods_that_localise_no_better_than_the_edge_map_are_named_in_plain_words():
    verdict = trust_verdict(_summary(ROWS))
    loc = verdict["methods"]["gradient"]["localisation"]
    assert loc["metric"] == "pointing_game" and loc["value"] == 0.69
    assert loc["baselines"] == {"edge": 0.80, "centre": 0.40}
    assert loc["no_better_than"] == ["edge"]
    assert verdict["methods"]["ig"]["localisation"]["no_better_than"] == ["edge"]
    assert verdict["methods"]["cam"]["localisation"]["no_better_than"] == []
    text = " ".join(verdict["text"])
    assert "Do not use gradient to locate the finding" in text and "69%" in text and "80%" in text
    assert "edge detector that never looks at the model" in text
    assert "Do not use ig to locate the finding" in text and "62%" in text
    assert "Do not use cam" not in text
    # localising worse than a model-free map does not stop a faithful method being recommended
    assert verdict["best"] == "cam" or verdict["best"] in verdict["ranking"]


def test_paired_interval_decides_when_present():
    # gradient's mean is above the centre map, but the paired interval crosses 0: no better
    paired = {("gradient", "pointing_game"): {
        "baseline:edge": {"n": 100, "mean": -0.11, "ci_low": -0.2, "ci_high": -0.02},
        "baseline:centre": {"n": 100, "mean": 0.29, "ci_low": -0.01, "ci_high": 0.5},
    }, ("cam", "pointing_game"): {
        "baseline:edge": {"n": 100, "mean": 0.13, "ci_low": 0.05, "ci_high": 0.2},
        "baseline:centre": {"n": 100, "mean": 0.53, "ci_low": 0.4, "ci_high": 0.6},
    }}
    verdict = trust_verdict(_summary(ROWS, paired))
    assert verdict["methods"]["gradient"]["localisation"]["no_better_than"] == ["edge", "centre"]
    assert verdict["methods"]["cam"]["localisation"]["no_better_than"] == []


def test_without_localisation_metrics_there_is_no_comparison():
    rows = {k: v for k, v in ROWS.items() if k[1] == "deletion_auc"}
    summary = _summary(rows)
    summary["config"]["metrics"] = {"deletion_auc": {}}
    verdict = trust_verdict(summary)
    assert all(info["localisation"] is None for info in verdict["methods"].values())
    assert not any("locate the finding" in t for t in verdict["text"])


def test_summary_holds_paired_differences_against_each_baseline(tmp_path):
    """End to end on a tiny model: the paired difference against the edge and centre maps is
    recorded per metric, and its mean equals the difference of the per-case means."""
    from tests.conftest import make_input, make_model

    n = 6
    model, x = make_model(2, num_classes=2), make_input(2, batch=n, seed=3)
    labels = torch.tensor([1] * n)
    masks = torch.zeros(n, 24, 24, dtype=torch.bool)
    for i in range(n):
        masks[i, 6 + i : 14 + i, 5:13] = True
    settings = LeaderboardSettings(methods=["gradient"], metrics=["pointing_game", "mass_in_mask"],
                                   baselines=("random", "edge", "centre"), batch_size=3)
    summary = evaluate(model, x, labels, masks, out=tmp_path, settings=settings, progress=False)
    rows = {(r["method"], r["metric"]): r for r in summary["rows"]}
    for metric in ("pointing_game", "mass_in_mask"):
        versus = rows[("gradient", metric)]["vs_baselines"]
        assert set(versus) == {"baseline:edge", "baseline:centre"}
        for b in versus:
            expected = rows[("gradient", metric)]["mean"] - rows[(b, metric)]["mean"]
            assert abs(versus[b]["mean"] - expected) < 1e-9 and versus[b]["n"] == n
            assert versus[b]["ci_low"] <= versus[b]["mean"] <= versus[b]["ci_high"]
        assert "vs_baselines" not in rows[("baseline:edge", metric)]
    loc = summary["verdict"]["methods"]["gradient"]["localisation"]
    assert loc["metric"] == "pointing_game" and set(loc["baselines"]) == {"edge", "centre"}
    assert summarise(tmp_path)["verdict"] == summary["verdict"]
