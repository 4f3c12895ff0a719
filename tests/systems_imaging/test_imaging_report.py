"""The imaging-systems report: tables and wording follow the numbers, text is escaped, the CLI
reports a benchmark's JSON without running anything and refuses what it cannot read."""

from __future__ import annotations

import json

import pytest

from medlens.cli import main
from medlens.report.imaging_systems import imaging_systems_report

GATES = {
    "accuracy": {"gated": {"accuracy": 0.9, "auroc": 0.95}, "cnn": {"accuracy": 0.88, "auroc": 0.94}},
    "localisation": {"gates": {"pointing": 0.7, "mass_in_mask": 0.2, "mask_share": 0.03}},
    "deletion": {"gates": 0.21, "random_gated": 0.45},
    "gates_replaced": {"permuted": {"accuracy": 0.6, "flipped": 0.3, "total_variation": 0.2, "positive_p_change": -0.3},
                       "original_accuracy": 0.9},
}
PATCH = {"sizes": {"size": 512, "patch": 32, "patches_per_slide": 256}, "slide_auroc": 0.97, "slide_accuracy": 0.9,
         "attention_on_evidence": 0.6, "evidence_patch_share": 0.008, "attention_on_distractors": 0.01,
         "distractor_patch_share": 0.006, "top_patch_is_evidence": 0.9,
         "agreement": {"kendall_tau": 0.3, "same_top_patch": 0.7, "gradient_on_evidence": 0.4}}
HAEM = {
    "sizes": {"cases": {"train": 64, "test": 25}, "shape": [32, 64, 64], "context": 1},
    "slice_model": {"detection_auroc": 0.97, "case_detection_auroc": 1.0,
                    "subtype_accuracy": {"epidural": 0.9, "<script>x</script>": 0.5, "mean": 0.7},
                    "pointing": {"epidural": 0.8, "<script>x</script>": 0.2, "all": 0.5},
                    "mass_in_mask": {"all": 0.3}, "mask_share": {"all": 0.01}},
    "windows": {"subdural": {"brain": {"ig_share": 0.5, "ablation_drop": 0.1},
                             "subdural": {"ig_share": 0.4, "ablation_drop": 0.6},
                             "bone": {"ig_share": 0.1, "ablation_drop": 0.0}}},
    "basis": {"k": 5, "queries": 10, "same_subtype": 0.8, "same_detection": 0.9, "chance": 0.1},
}


def test_wording_follows_the_numbers_and_text_is_escaped():
    html = imaging_systems_report({"haemorrhage": HAEM, "attention_gates": GATES, "patch_attention": PATCH}).render()
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "verdict-good" in html and "Changing the gates changes decisions" in html
    assert "removal costs most: subdural: subdural" in html  # the window whose removal costs most
    assert "The largest share, per class: subdural: brain" in html
    tied = dict(HAEM, windows={"none": {w: {"ig_share": 1 / 3, "ablation_drop": 0.75} for w in ("brain", "subdural", "bone")}})
    assert "ablation cannot tell these windows apart" in imaging_systems_report({"haemorrhage": tied}).render()
    assert "30.0 times what a uniform map would give" in html  # mass in mask 0.3 vs mask share 0.01
    assert "75.0 times" in html  # attention on evidence 0.6 vs share 0.008
    # with the blood-free twins, the wording follows their drop; the flat channel is secondary
    twin = {"subdural": {"brain": {"ig_share": 0.5, "twin_drop": 0.05, "twin_gain": 0.6, "ablation_drop": 0.9},
                         "subdural": {"ig_share": 0.4, "twin_drop": 0.3, "twin_gain": 0.2, "ablation_drop": 0.1},
                         "bone": {"ig_share": 0.1, "twin_drop": 0.0, "twin_gain": 0.0, "ablation_drop": 0.0}, "slices": 40},
            "none": {w: {"ig_share": 1 / 3, "twin_drop": None, "ablation_drop": 0.2} for w in ("brain", "subdural", "bone")}}
    html_twin = imaging_systems_report({"haemorrhage": dict(HAEM, windows=twin)}).render()
    assert "removal costs most: subdural: subdural." in html_twin and "blood-free twin" in html_twin
    assert "out of distribution and shown only as a secondary number" in html_twin
    assert "enough on its own?); largest, per class: subdural: brain." in html_twin
    bad = dict(GATES, deletion={"gates": 0.5, "random_gated": 0.4},
               gates_replaced={"uniform": {"accuracy": 0.9, "flipped": 0.0, "total_variation": 0.001,
                                           "positive_p_change": 0.0}, "original_accuracy": 0.9})
    html = imaging_systems_report({"attention_gates": bad}).render()
    assert "verdict-bad" in html and "barely changes decisions" in html and "Haemorrhage" not in html
    tie = dict(GATES, deletion={"gates": 0.489, "random_gated": 0.4895})  # within noise: not a win
    assert "does no better than a random map" in imaging_systems_report({"attention_gates": tie}).render()
    flat = dict(PATCH, attention_on_evidence=0.0081)
    assert "about what a uniform map would give" in imaging_systems_report({"patch_attention": flat}).render()


def test_cli_reports_benchmark_json(tmp_path):
    f = tmp_path / "patch_attention.json"
    f.write_text(json.dumps(PATCH))
    out = tmp_path / "rep"
    assert main(["imaging-report", "--results", str(f), "--out", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "Attention over patches" in html and "0.97" in html
    assert json.loads((out / "results.json").read_text())["patch_attention"]["slide_auroc"] == 0.97
    other = tmp_path / "numbers.json"
    other.write_text("{}")
    assert main(["imaging-report", "--results", str(other), "--out", str(tmp_path / "x")]) == 2
    broken = tmp_path / "haemorrhage.json"
    broken.write_text("{not json")
    assert main(["imaging-report", "--results", str(broken), "--out", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "y").exists()


@pytest.mark.slow
def test_quick_run_of_every_system(tmp_path):
    out = tmp_path / "quick"
    assert main(["imaging-report", "--quick", "--out", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6
    numbers = json.loads((out / "results.json").read_text())
    assert set(numbers) == {"haemorrhage", "attention_gates", "patch_attention"}
    assert 0 <= numbers["patch_attention"]["attention_on_evidence"] <= 1
