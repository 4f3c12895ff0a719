"""``medlens demo --systems`` writes the imaging systems' report (and not the default demo)."""

from __future__ import annotations

import json

import pytest

from medlens.cli import main


def test_demo_systems_writes_the_imaging_report(tmp_path, monkeypatch):
    import medlens.app.demo as demo
    import medlens.app.systems.reports as imaging

    calls = []

    def fake_run_systems(which, *, quick, seed, progress):
        calls.append((tuple(which), quick, seed))
        return {"patch_attention": {"slide_auroc": 0.93, "slide_accuracy": 0.9}}, {}

    monkeypatch.setattr(imaging, "run_systems", fake_run_systems)
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: pytest.fail("the default demo ran"))
    out = tmp_path / "sys"
    assert main(["demo", "--systems", "--quick", "--seed", "3", "--quiet", "--out", str(out)]) == 0
    assert calls == [(("haemorrhage", "attention_gates", "patch_attention"), True, 3)]
    assert "Attention over patches" in (out / "report.html").read_text()
    assert json.loads((out / "results.json").read_text())["patch_attention"]["slide_auroc"] == 0.93
    # without --out the report goes beside the demo's, never over demo-out/report.html
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--systems", "--quiet"]) == 0
    assert (tmp_path / "demo-out" / "systems" / "report.html").exists()
    assert not (tmp_path / "demo-out" / "report.html").exists()


@pytest.mark.slow
def test_demo_systems_quick_runs_every_system(tmp_path):
    out = tmp_path / "quick"
    assert main(["demo", "--systems", "--quick", "--quiet", "--out", str(out)]) == 0
    numbers = json.loads((out / "results.json").read_text())
    assert set(numbers) == {"haemorrhage", "attention_gates", "patch_attention"}
    assert numbers["haemorrhage"]["volume_maps"]["integrated_gradients"]["cases"] > 0
    assert set(numbers["haemorrhage"]["windows"]["subdural"]) >= {"brain", "subdural", "bone"}
