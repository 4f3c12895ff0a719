"""The leaderboard: resumable results, summary statistics, verdict, report and CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import medlens.evaluation.leaderboard.store as lb_store
from medlens.cli import main
from medlens.errors import MedlensError, UnknownNameError
from medlens.evaluation import (
    LeaderboardSettings,
    evaluate,
    get_metric,
    metric_names,
    read_results,
    summarise,
)
from medlens.evaluation.leaderboard import bootstrap_ci, trust_verdict
from medlens.app.evaluation_section import write_leaderboard_outputs
from tests.conftest import make_input, make_model
from tests.evaluation.fake_summary import fake_summary

N = 8
SETTINGS = LeaderboardSettings(
    methods=["gradient"],
    baselines=("random", "edge"),
    cases_per_batch=3,
    metric_options={"deletion_auc": {"steps": 4}, "insertion_auc": {"steps": 4}, "max_sensitivity": {"n_samples": 1}},
)


@pytest.fixture(scope="module")
def data():
    model = make_model(2, num_classes=2)
    x = make_input(2, batch=N, seed=3)
    labels = torch.tensor([0, 1] * (N // 2))
    masks = torch.zeros(N, 24, 24, dtype=torch.bool)
    markers = torch.zeros(N, 24, 24, dtype=torch.bool)
    for i in range(N):
        if labels[i] == 1:
            masks[i, 8 + i % 5 : 13 + i % 5, 6:11] = True
        if i % 3 == 0:
            markers[i, 1:3, 1:3] = True
            x[i, :, 1:3, 1:3] = 3.0
    return model, x, labels, masks, markers


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """One uninterrupted run, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("reference")
    return out, _run(data, out)


def _run(data, out, **kwargs):
    model, x, labels, masks, markers = data
    return evaluate(model, x, labels, masks, markers, out=out, settings=kwargs.pop("settings", SETTINGS), progress=False, **kwargs)


def test_metric_registry_metadata():
    names = metric_names()
    for expected in ("deletion_auc", "insertion_auc", "pointing_game", "mass_in_mask", "iou", "randomisation_spearman",
                     "randomisation_ssim", "max_sensitivity", "marker_mass"):
        assert expected in names
    assert get_metric("deletion_auc").higher_is_better is False
    assert get_metric("insertion_auc").higher_is_better is True
    assert get_metric("pointing_game").needs_masks and not get_metric("deletion_auc").needs_masks
    assert get_metric("marker_mass").needs_marker and get_metric("marker_mass").higher_is_better is None
    assert get_metric("max_sensitivity").reexplains
    assert get_metric("deletion_auc").options() == {"steps": 20, "baseline": "blur", "patch": "auto", "abs": True}
    with pytest.raises(UnknownNameError):
        get_metric("nope")


def test_records_summary_and_verdict(reference):
    tmp_path, summary = reference
    config, records = read_results(tmp_path / "results.jsonl")
    entries = ["gradient", "baseline:random", "baseline:edge"]
    assert config["entries"] == entries
    assert config["metrics"]["deletion_auc"] == {"steps": 4, "baseline": "blur", "patch": "auto", "abs": True}
    # one record per (sample, entry), plus the marker audit of the model
    pairs = [(r["sample"], r["method"]) for r in records]
    assert len(pairs) == len(set(pairs)) == N * (len(entries) + 1)
    rec = next(r for r in records if r["method"] == "gradient" and r["sample"] == 1)
    assert set(rec["metrics"]) == set(config["metrics"])
    assert len(rec["curves"]["deletion_auc"]) == 5
    neg = next(r for r in records if r["method"] == "gradient" and r["sample"] == 0)
    assert neg["metrics"]["pointing_game"] is None  # no lesion: nothing to point at
    assert summary["complete"]
    # statistics are those of the records
    row = next(r for r in summary["rows"] if r["method"] == "gradient" and r["metric"] == "deletion_auc")
    values = [r["metrics"]["deletion_auc"] for r in records if r["method"] == "gradient"]
    assert row["n"] == N and row["mean"] == pytest.approx(np.mean(values))
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    rand = {r["sample"]: r["metrics"]["deletion_auc"] for r in records if r["method"] == "baseline:random"}
    diffs = [r["metrics"]["deletion_auc"] - rand[r["sample"]] for r in records if r["method"] == "gradient"]
    assert row["vs_random"]["mean"] == pytest.approx(np.mean(diffs))
    assert row["vs_random"]["ci_low"] <= row["vs_random"]["mean"] <= row["vs_random"]["ci_high"]
    pg = next(r for r in summary["rows"] if r["method"] == "baseline:random" and r["metric"] == "pointing_game")
    assert pg["n"] == N // 2
    # baselines ignore the model: they fail the randomisation check with correlation 1
    rho = next(r for r in summary["rows"] if r["method"] == "baseline:edge" and r["metric"] == "randomisation_spearman")
    assert rho["mean"] == pytest.approx(1.0)
    verdict = summary["verdict"]
    assert set(verdict["methods"]) == {"gradient"}
    assert verdict["text"] and (verdict["best"] is None or verdict["best"] in verdict["ranking"])
    assert summary["shortcut"]["n_with_marker"] == 3 and summary["shortcut"]["n_without_marker"] == 5
    assert verdict["shortcut_text"] and "marker" in verdict["shortcut_text"]
    # the summary is a function of the file
    again = summarise(tmp_path / "results.jsonl")
    assert json.dumps(again, sort_keys=True) == json.dumps(summary, sort_keys=True)


class Killed(Exception):
    pass


@pytest.mark.parametrize("kill_at,partial", [(4, "half-line"), (6, "some-lines"), (1, "half-line")])
def test_killed_run_resumes_to_the_same_file(data, reference, tmp_path, monkeypatch, kill_at, partial):
    reference = reference[0]
    out = tmp_path / "killed"
    real_append = lb_store.append
    calls = {"n": 0}

    def dying_append(fh, records):
        records = list(records)
        calls["n"] += fh.name.endswith("results.jsonl")
        if calls["n"] == kill_at and fh.name.endswith("results.jsonl"):
            text = "".join(json.dumps(r) + "\n" for r in records)
            if partial == "half-line":
                fh.write(text[: len(text) // 2 + 3])  # ends inside a line
            else:  # complete lines of part of the batch, then a truncated one
                lines = text.splitlines(keepends=True)
                fh.write("".join(lines[:2]) + lines[2][:7])
            fh.flush()
            raise Killed
        return real_append(fh, records)

    monkeypatch.setattr(lb_store, "append", dying_append)
    with pytest.raises(Killed):
        _run(data, out)
    monkeypatch.setattr(lb_store, "append", real_append)
    assert (out / "results.jsonl").read_bytes() != (reference / "results.jsonl").read_bytes()
    _run(data, out)
    assert (out / "results.jsonl").read_bytes() == (reference / "results.jsonl").read_bytes()
    # a finished run reruns as a no-op
    _run(data, out)
    assert (out / "results.jsonl").read_bytes() == (reference / "results.jsonl").read_bytes()


def test_resume_with_other_settings_is_refused(data, reference, tmp_path):
    import shutil

    shutil.copy(reference[0] / "results.jsonl", tmp_path / "results.jsonl")
    other = LeaderboardSettings(methods=["gradient"], cases_per_batch=4, metrics=["deletion_auc"])
    with pytest.raises(MedlensError, match="other settings"):
        _run(data, tmp_path, settings=other)
    summary = _run(data, tmp_path, settings=other, restart=True)
    assert summary["config"]["entries"][0] == "gradient" and list(summary["config"]["metrics"]) == ["deletion_auc"]


def test_metrics_that_need_masks_are_skipped_without_masks(data, tmp_path):
    model, x, labels, _masks, _markers = data
    s = LeaderboardSettings(methods=["gradient"], baselines=("random",), cases_per_batch=5,
                            metric_options={"deletion_auc": {"steps": 3}, "insertion_auc": {"steps": 3}})
    summary = evaluate(model, x, labels, out=tmp_path, settings=s, progress=False)
    assert "pointing_game" not in summary["config"]["metrics"] and "marker_mass" not in summary["config"]["metrics"]
    with pytest.raises(MedlensError, match="needs ground-truth masks"):
        evaluate(model, x, labels, out=tmp_path / "b", settings=LeaderboardSettings(metrics=["pointing_game"]), progress=False)
    with pytest.raises(UnknownNameError):
        evaluate(model, x, labels, out=tmp_path / "c", settings=LeaderboardSettings(methods=["nope"]), progress=False)
    with pytest.raises(UnknownNameError):
        evaluate(model, x, labels, out=tmp_path / "d", progress=False,
                 settings=LeaderboardSettings(methods=["gradient"], method_options={"gradient": {"nope": 1}}))


def test_bootstrap_ci():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0], dtype=torch.float64)
    lo, hi = bootstrap_ci(values, seed=0)
    assert lo < float(values.mean()) < hi and lo >= 1.0 and hi <= 10.0
    assert bootstrap_ci(values, seed=0) == (lo, hi)
    assert bootstrap_ci(torch.tensor([2.0])) == (2.0, 2.0)
    assert all(math.isnan(v) for v in bootstrap_ci(torch.tensor([])))


def test_verdict_recommends_the_faithful_method_and_names_failures():
    entries = ["good", "edgey", "lazy", "close", "baseline:random"]
    kinds = {"good": "method", "edgey": "method", "lazy": "method", "close": "method", "baseline:random": "baseline"}
    rows = {
        ("close", "deletion_auc"): 0.49,  # below random, but the paired interval crosses 0
        ("good", "deletion_auc"): 0.2, ("edgey", "deletion_auc"): 0.1, ("lazy", "deletion_auc"): 0.6,
        ("baseline:random", "deletion_auc"): 0.5,
        ("good", "pointing_game"): 0.95, ("edgey", "pointing_game"): 0.99, ("lazy", "pointing_game"): 0.2,
        ("baseline:random", "pointing_game"): 0.02,
        ("good", "randomisation_spearman"): 0.1, ("edgey", "randomisation_spearman"): 0.9,
        ("lazy", "randomisation_spearman"): 0.2, ("baseline:random", "randomisation_spearman"): 1.0,
    }
    summary = fake_summary(rows, metrics=["deletion_auc", "pointing_game", "randomisation_spearman"], entries=entries, kinds=kinds)
    verdict = trust_verdict(summary)
    assert verdict["best"] == "good"  # edgey scores better but fails the sanity check
    assert verdict["ranking"] == ["good"]  # "close" is not significantly better than random
    text = " ".join(verdict["text"])
    assert "Trust good" in text and "95%" in text and "0.200" in text and "0.500" in text
    assert "Do not rely on edgey" in text and "0.90" in text
    assert "Do not rely on lazy" in text and "0.600" in text
    assert "Do not rely on close" in text and "-0.010" in text and "significantly" in text
    assert verdict["shortcut_text"] is None
    # without a faithfulness or sanity metric there is a best, but no "trust"
    local = fake_summary({k: v for k, v in rows.items() if k[1] == "pointing_game"}, metrics=["pointing_game"],
                          entries=entries, kinds=kinds)
    verdict = trust_verdict(local)
    assert verdict["best"] == "edgey" and verdict["text"][0].startswith(
        "Best mean on pointing game (higher is better): edgey")


def test_a_recommended_method_that_locates_no_better_than_an_edge_map_is_trusted_only_for_what_it_shows():
    """"Trust X for this model" beside "Do not use X to locate the finding" read as a contradiction
    (seen on a 40-case lesion leaderboard): the recommendation says what the checks show."""
    entries = ["good", "baseline:random", "baseline:edge"]
    rows = {("good", "deletion_auc"): 0.2, ("baseline:random", "deletion_auc"): 0.5,
            ("good", "pointing_game"): 0.65, ("baseline:random", "pointing_game"): 0.15,
            ("baseline:edge", "pointing_game"): 0.9,
            ("good", "randomisation_spearman"): 0.1, ("baseline:random", "randomisation_spearman"): 1.0}
    metrics = ["deletion_auc", "pointing_game", "randomisation_spearman"]
    text = trust_verdict(fake_summary(rows, metrics=metrics, entries=entries))["text"]
    assert text[0].startswith("Trust good to show what drives this model, not to locate the finding")
    assert any(s.startswith("Do not use good to locate the finding") for s in text)
    rows[("baseline:edge", "pointing_game")] = 0.3  # it locates better than the edge map: plain trust
    text = trust_verdict(fake_summary(rows, metrics=metrics, entries=entries))["text"]
    assert text[0].startswith("Trust good for this model.")
    assert not any(s.startswith("Do not use good") for s in text)


def test_shortcut_text_says_the_model_relies_on_the_marker_with_numbers():
    entries, kinds = ["m"], {"m": "method"}
    shortcut = {"marker_class": 1, "n_with_marker": 10, "n_without_marker": 12, "marker_area_fraction": 0.006,
                "delta_p_pasted": 0.42, "delta_p_erased": -0.3, "flipped_by_pasting": 0.5,
                "accuracy_marker_agrees": 0.98, "accuracy_marker_conflicts": 0.55, "n_agree": 11, "n_conflict": 11}
    summary = fake_summary({("m", "marker_mass"): 0.31}, metrics=["marker_mass"], entries=entries, kinds=kinds, shortcut=shortcut)
    text = trust_verdict(summary)["shortcut_text"]
    assert text.startswith("The model relies on the shortcut marker")
    assert "+0.42" in text and "'lesion'" in text and "31%" in text and "0.6%" in text and "0.98" in text
    shortcut = dict(shortcut, delta_p_pasted=0.01, delta_p_erased=-0.02)
    text = trust_verdict(fake_summary({}, metrics=[], entries=entries, kinds=kinds, shortcut=shortcut))["shortcut_text"]
    assert text.startswith("The model does not measurably rely")


def test_report_outputs(reference, tmp_path):
    summary = reference[1]
    paths = write_leaderboard_outputs(tmp_path, summary)
    names = {p.name for p in paths}
    assert {"summary.json", "summary.csv", "curves.png", "report.html"} <= names
    html = (tmp_path / "report.html").read_text()
    assert "random (baseline)" in html and "Shortcut audit" in html and "deletion AUC" in html
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    loaded = json.loads((tmp_path / "summary.json").read_text())
    assert loaded["verdict"]["text"] == summary["verdict"]["text"]


def test_cli_evaluate_on_a_lesion_benchmark(tmp_path, capsys):
    from medlens.data.synthetic.lesions import write_lesion_benchmark
    from medlens.models import save_model
    from medlens.app.recipes import train_on_dataset

    data = write_lesion_benchmark(tmp_path / "les.npz", size=24, n_train=16, n_val=8, n_test=4, shortcut=True)
    model, meta = train_on_dataset(str(data), epochs=1, progress=False)
    save_model(model, tmp_path / "m.pt", meta)
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(tmp_path / "m.pt"), "--data", str(data), "--out", str(out),
            "--methods", "gradient", "--baselines", "random", "--cases-per-batch", "4", "--quiet",
            "--metric-option", "deletion_auc.steps=3", "--metric-option", "insertion_auc.steps=3",
            "--metric-option", "max_sensitivity.n_samples=1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "marker" in printed and "results for 4 cases" in printed
    config, records = read_results(out)
    assert config["marker_audit"] and "marker_mass" in config["metrics"] and "pointing_game" in config["metrics"]
    assert len(records) == 4 * 3
    assert (out / "report.html").exists() and (out / "summary.csv").exists()
    before = (out / "results.jsonl").read_bytes()
    assert main(args) == 0  # resumes: nothing to do, same file
    assert (out / "results.jsonl").read_bytes() == before
    assert main(args[:-6] + ["--metrics", "nonsense"]) == 2
    assert main(args + ["--option", "gradient:nope=1", "--restart"]) == 2
    assert main(args + ["--option", "badly-formed"]) == 2


def test_randomisation_metric_handles_constant_maps():
    from medlens.core.targets import Target
    from medlens.evaluation.registry import EvalBatch

    model, x = make_model(2, num_classes=2), make_input(2, batch=3)
    varied = torch.rand(3, 1, 24, 24, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    flat = torch.zeros(3, 1, 24, 24, dtype=torch.float64)

    def score(original, randomised):
        batch = EvalBatch(model, x, Target(torch.zeros(3, dtype=torch.long)), original, lambda *_: original,
                          torch.arange(3), randomised_attribution=randomised)
        return get_metric("randomisation_spearman").fn(batch)

    assert score(varied, flat).tolist() == [0.0, 0.0, 0.0]  # collapsed: changed completely
    assert score(flat, flat).tolist() == [1.0, 1.0, 1.0]  # constant before and after: unchanged
    assert score(varied, varied).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_two_runs_never_write_one_results_file(data, tmp_path):
    with lb_store.exclusive(tmp_path):
        with pytest.raises(MedlensError, match="another medlens evaluation"):
            _run(data, tmp_path)
    assert not (tmp_path / "results.jsonl").exists()


def test_leaderboard_on_a_3d_lesion_benchmark(tmp_path):
    from medlens.data.synthetic.lesions import make_lesion_benchmark
    from medlens.models import CNN

    arrays = make_lesion_benchmark(spatial_dims=3, size=24, n_train=0, n_val=0, n_test=4, seed=1)
    x = torch.from_numpy(arrays["test_images"])[:, None]
    masks = torch.from_numpy(arrays["test_masks"])
    labels = torch.from_numpy(arrays["test_labels"])
    torch.manual_seed(0)
    model = CNN(3, 1, 2, widths=(4, 8), input_shape=(1, 24, 24, 24)).eval()
    settings = LeaderboardSettings(methods=["gradient"], baselines=("random", "centre"), cases_per_batch=4,
                                   metric_options={"deletion_auc": {"steps": 4}, "insertion_auc": {"steps": 4},
                                                   "max_sensitivity": {"n_samples": 1}})
    summary = evaluate(model, x, labels, masks, out=tmp_path, settings=settings, progress=False)
    assert summary["complete"]
    rows = {(r["method"], r["metric"]): r for r in summary["rows"]}
    assert rows[("gradient", "pointing_game")]["n"] == int(labels.sum())
    assert math.isfinite(rows[("gradient", "randomisation_ssim")]["mean"])
    assert len(summary["curves"]["deletion_auc"]["fractions"]) == 5


def test_a_method_that_does_not_apply_is_recorded_not_fatal(data, tmp_path, monkeypatch):
    from medlens.attribution.registry import METHODS, register
    from medlens.errors import InputError as _InputError

    @register("needs_attention_test", needs_gradients=False, summary="test only")
    def _needs_attention(model, x, target, *, budget=None):
        raise _InputError("this method needs an attention model")

    try:
        settings = LeaderboardSettings(methods=["gradient", "needs_attention_test"], baselines=("random",), cases_per_batch=4,
                                       metrics=["deletion_auc", "pointing_game"],
                                       metric_options={"deletion_auc": {"steps": 3}})
        summary = _run(data, tmp_path, settings=settings)
    finally:
        METHODS.remove("needs_attention_test")
    assert summary["complete"] and summary["errors"] == {"needs_attention_test": "this method needs an attention model"}
    assert any(t.startswith("needs_attention_test was not scored") for t in summary["verdict"]["text"])
    assert not summary["verdict"]["methods"]["needs_attention_test"]["eligible"]


def test_predicted_target_without_labels(data, tmp_path):
    model, x, _labels, _masks, _markers = data
    settings = LeaderboardSettings(methods=["gradient"], baselines=("random",), target="predicted", cases_per_batch=8,
                                   metrics=["deletion_auc"], metric_options={"deletion_auc": {"steps": 3}})
    summary = evaluate(model, x, out=tmp_path, settings=settings, progress=False)
    _config, records = read_results(tmp_path)
    predicted = model(x).argmax(1).tolist()
    assert [r["target"] for r in records if r["method"] == "gradient"] == predicted
    assert all(r["label"] is None for r in records)
    assert summary["complete"]
    with pytest.raises(MedlensError, match="needs labels"):
        evaluate(model, x, out=tmp_path / "b", settings=LeaderboardSettings(methods=["gradient"]), progress=False)


def _marker_summary(method_mass, edge_mass, diff):
    entries = ["m", "baseline:edge"]
    shortcut = {"marker_class": 1, "n_with_marker": 93, "n_without_marker": 107, "marker_area_fraction": 0.006,
                "delta_p_pasted": 0.65, "delta_p_erased": -0.63, "flipped_by_pasting": 1.0,
                "accuracy_marker_agrees": 1.0, "accuracy_marker_conflicts": 0.25, "n_agree": 95, "n_conflict": 105}
    paired = {("m", "marker_mass"): {"baseline:edge": {"n": 93, **diff}}}
    rows = {("m", "marker_mass"): method_mass, ("baseline:edge", "marker_mass"): edge_mass}
    return fake_summary(rows, metrics=["marker_mass"], entries=entries, shortcut=shortcut, paired=paired)


def test_maps_that_put_no_more_on_the_marker_than_an_edge_map_are_not_said_to_show_the_shortcut():
    # the ViT of benchmarks/transformers.py --variant shortcut: LRP 4.2% on a 0.6% marker (7x its
    # area), the edge map 3.3%: "the maps do point at the shortcut" was wrong - an edge detector that
    # never looks at the model does as well
    text = trust_verdict(_marker_summary(0.042, 0.033, {"mean": 0.009, "ci_low": -0.004, "ci_high": 0.021}))["shortcut_text"]
    assert "7 times its share" in text and "do point at the shortcut" not in text
    assert "puts 3% there" in text and "do not single the marker out" in text
    assert "an explanation alone would not reveal this shortcut" in text
    # the CNN's LRP: 17.7% against the edge map's 3.3%, the paired interval above zero
    text = trust_verdict(_marker_summary(0.177, 0.033, {"mean": 0.144, "ci_low": 0.12, "ci_high": 0.17}))["shortcut_text"]
    assert "more than the 3% that an edge detector" in text and "m points at the shortcut, so look for the marker in its maps" in text
    assert "difference +14 points, 95% CI [+12, +17] over 93 cases" in text
