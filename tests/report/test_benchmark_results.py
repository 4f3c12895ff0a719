"""Numbers with their provenance: every stored benchmark result names its commit, command, seed
and threads; the README's tables are generated from those files (never typed); a slow test
re-runs each benchmark's quick configuration and checks it against its stored file."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_blocks_are_generated_from_the_stored_results():
    tables = _module("readme_tables")
    text = (BENCH / "README.md").read_text(encoding="utf-8")
    names = [m.group("name") for m in tables.BLOCK.finditer(text)]
    assert "attention_gates" in names and set(names) <= set(tables.TABLES) | set(tables._tables_audit.MULTI)
    assert tables.render(text) == text, "benchmarks/README.md is stale: run python benchmarks/readme_tables.py"


def test_every_stored_result_of_a_table_or_a_quick_run_carries_its_provenance():
    tables = _module("readme_tables")
    for name in [*tables.TABLES, *QUICK]:
        path = RESULTS / f"{name}.json"
        assert path.is_file(), f"{path} is not stored (commit it with git add -f)"
        payload = json.loads(path.read_text(encoding="utf-8"))
        p = payload["provenance"]
        assert name.startswith(payload["benchmark"]) and payload["numbers"], name
        assert len(p["commit"]) == 40 and p["command"].startswith("python benchmarks/"), name
        assert isinstance(p["seed"], int) and p["threads"]["torch"] >= 1, name
        assert p.get("converted", "").endswith("not re-run") or p.get("written"), name
        # the script that wrote it is the one the command names
        assert (BENCH / p["command"].split()[1].removeprefix("benchmarks/")).is_file(), name


#: Scripts that write JSON of their own (audit_calibration.py a facts file beside
#: its stored result): the audit work, not converted here.
NOT_YET = {"audit_calibration.py"}


def test_every_script_stores_through_the_one_writer():
    helpers = {"_runner.py", "_tables.py", "readme_tables.py"}
    for script in sorted(BENCH.glob("*.py")):
        if script.name in helpers | NOT_YET or script.name.startswith("_tables_"):
            continue
        text = script.read_text(encoding="utf-8")
        assert "write_result" in text or "run_and_report" in text, f"{script.name} stores no result through _runner"
        assert "json.dump(" not in text and ".write_text(json" not in text, f"{script.name} writes its own JSON"


def test_the_root_readme_leaderboard_shares_are_the_stored_run():
    """The root README's pointing-game shares (a sentence, not a generated block) equal the stored
    ``benchmarks/results/lesion_acceptance.json``, and the run it names is the one stored."""
    payload = json.loads((RESULTS / "lesion_acceptance.json").read_text(encoding="utf-8"))
    clean = payload["numbers"]["clean"]
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    m = re.search(r"Grad-CAM (\d+)%, gradient (\d+)%, integrated gradients (\d+)% and the edge detector (\d+)%", text)
    assert m, "the root README's leaderboard sentence changed: update this test with it"
    keys = ("gradcam", "gradient", "integrated_gradients", "baseline:edge")
    assert m.groups() == tuple(f"{100 * clean[k]['pointing_game']:.0f}" for k in keys)
    assert f"`{payload['provenance']['command']}`" in text
    assert any(line.startswith("Trust gradcam") for line in payload["numbers"]["verdict"]) == ('says "Trust gradcam"' in text)
    shortcut = payload["numbers"]["shortcut_text"]
    assert payload["numbers"]["relies_on_marker"] == ("finds that the model relies on the marker" in text)
    assert ("an explanation alone would not reveal this shortcut" in shortcut) == (
        "an explanation alone would not reveal this shortcut" in text)


def test_a_block_follows_its_file(tmp_path):
    tables = _module("readme_tables")
    payload = json.loads((RESULTS / "attention_gates.json").read_text(encoding="utf-8"))
    text = "before\n<!-- results:attention_gates -->\ntyped by hand\n<!-- /results:attention_gates -->\nafter\n"
    (tmp_path / "attention_gates.json").write_text(json.dumps(payload))
    first = tables.render(text, tmp_path)
    assert "typed by hand" not in first and first.startswith("before\n") and first.endswith("after\n")
    gate = payload["numbers"]["localisation"]["gates"]["pointing"]
    assert f"| gate map (mean of the gates) | {gate:.3f} |" in first
    payload["numbers"]["localisation"]["gates"]["pointing"] = 0.123456
    (tmp_path / "attention_gates.json").write_text(json.dumps(payload))
    assert "| gate map (mean of the gates) | 0.123 |" in tables.render(first, tmp_path)


def _differences(stored, new, path="", skip=("seconds",)) -> list[str]:
    """Numeric leaves of ``new`` that differ from ``stored`` by more than the tolerance (keys
    containing a ``skip`` word are not compared)."""
    out = []
    if isinstance(stored, dict):
        for k, v in stored.items():
            if not any(s in k for s in skip):
                out += _differences(v, new.get(k) if isinstance(new, dict) else None, f"{path}.{k}", skip)
    elif isinstance(stored, list):
        if not isinstance(new, list) or len(new) != len(stored):
            return [f"{path}: stored {len(stored)} items, now {new!r:.80}"]
        for i, (a, b) in enumerate(zip(stored, new)):
            out += _differences(a, b, f"{path}[{i}]", skip)
    elif isinstance(stored, int) and not isinstance(stored, bool):
        if new != stored:  # a count: exactly
            out.append(f"{path}: stored {stored}, now {new}")
    elif isinstance(stored, float):
        if new is None or (not math.isnan(stored) and abs(new - stored) > TOLERANCE):
            out.append(f"{path}: stored {stored}, now {new}")
    elif stored != new:  # strings, booleans, null: the same
        out.append(f"{path}: stored {stored!r:.80}, now {new!r:.80}")
    return out


def test_differences_compares_numbers_within_the_tolerance_and_everything_else_exactly():
    stored = {"a": 0.5, "rows": [{"x": 1.0, "seconds": 3.0}], "verdict": "ok", "peak_mib": 10.0}
    assert not _differences(stored, {"a": 0.51, "rows": [{"x": 1.0, "seconds": 9.0}], "verdict": "ok", "peak_mib": 99.0},
                            skip=("seconds", "peak"))
    assert _differences(stored, {"a": 0.6, "rows": [{"x": 1.0}], "verdict": "ok"}, skip=("seconds", "peak")) == [
        ".a: stored 0.5, now 0.6"]
    assert _differences(stored, {**stored, "rows": []})[0].startswith(".rows: stored 1 items")
    assert _differences(stored, {**stored, "verdict": "no"}) == [".verdict: stored 'ok', now 'no'"]


#: Absolute tolerance on every stored number (accuracies, AUROCs, pointing, mass, AUCs, shares,
#: counts): the same seed and threads give the same numbers on this machine up to floating-point
#: rounding; 0.02 leaves room for another BLAS while still catching a real drift (the attention
#: gates' pointing moved by 0.37). Counts (integers) must match exactly. Times, memory and load are
#: not compared.
TOLERANCE = 0.02
NOT_COMPARED = ("seconds", "rss", "peak", "load")
#: Stored quick result -> (the command that re-runs it from benchmarks/, ``{out}`` where the result
#: goes, else ``--out {out}`` is appended; more key words not compared: the timing columns of a
#: timing benchmark). ``make check-benchmarks`` runs them (``.ci/run`` after ``make test``).
QUICK = {
    "familiarity_contrast-quick": (["familiarity_contrast.py", "--quick"], ()),
    "attention_gates-quick": (["attention_gates.py", "--quick"], ()),
    "fuzz_readers-quick": (["fuzz_readers.py", "--quick"], ()),
    "scinet-quick": (["scinet.py", "--quick"], ()),
    "fourier_frequencies-quick": (["fourier_frequencies.py", "--quick"], ()),
    "volumes_known_answer-quick": (["volumes_known_answer.py", "--quick"], ()),
    "audit_acceptance-quick": (["audit.py", "--quick", "--result", "{out}"], ()),
    "evaluation-quick": (["evaluation.py", "--quick"], ("medlens_s", "per_image_loop_s", "speedup")),
    "haemorrhage-quick": (["haemorrhage.py", "--quick"], ()),
    "patch_attention-quick": (["patch_attention.py", "--quick"], ()),
    "deeptune-quick": (["deeptune.py", "--quick"], ()),
    "groupinn-quick": (["groupinn.py", "--quick"], ()),
    "lesion_shapes-quick": (["lesion_shapes.py", "--quick"], ()),
    "familiarity-quick": (["familiarity.py", "--quick"], ()),
    "transformers-quick": (["transformers.py", "--quick"], ("timings_s", "total_s")),
    "transformers_shortcut-quick": (["transformers.py", "--variant", "shortcut", "--quick"], ("timings_s", "total_s")),
    "audit_notes-quick": (["audit_notes.py", "--quick"], ()),
    "lesion_acceptance-quick": (["lesion_acceptance.py", "--quick", "--result", "{out}"], ()),
    "audit_calibration-quick": (["audit_calibration.py", "--quick", "--result", "{out}"], ()),
    "lrp_conservation-quick": (["lrp_conservation.py", "--quick"], ()),
}
#: Benchmark scripts without a quick configuration, and why (each script is in QUICK or here).
NO_QUICK = {
    "clinical_text.py": "needs OpenI's indiana_reports.csv, which is not bundled",
    "ecg_records.py": "needs a PhysioNet MIT-BIH record, which is not bundled",
    "familiarity_flat_lead.py": "needs MIT-BIH 100, PTB s0010 and MNE's test EEG files, none bundled",
    "kinds_cli.py": "needs OpenI's reports and a MIT-BIH record, neither bundled",
    "featurevis.py": "timing only: every stored number but the options is a time or a ratio of times",
    "single_pass.py": "timing only (one pass against many)",
    "attribution.py": "timing and memory only",
    "third_party_speed.py": "timing only",
    "side_by_side.py": "timing only (two arms of one comparison; their maps agree to rounding)",
    "openmp_wait.py": "timing only (spinning against sleeping OpenMP waits)",
    "op_cost_calibration.py": "timing only (measured seconds against the cost model's prediction)",
    "case_report.py": "sizes and times of written reports; the report tests check the content",
    "lrp_speed.py": "timing only (another helper's script)",
    "occlusion_paths.py": "another helper's script (3D occlusion)",
    "volumes.py": "another helper's script (3D volumes)",
    "volumes_cam_layers.py": "another helper's script (3D volumes)",
    "volumes_integrated_gradcam.py": "another helper's script (3D volumes)",
}


def test_quick_applies_its_configuration_and_names_the_result():
    import argparse

    sys.path.insert(0, str(BENCH))
    try:
        runner = _module("_runner")
    finally:
        sys.path.remove(str(BENCH))
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    runner.quick_option(parser, {"epochs": 2})
    args = parser.parse_args(["--quick"])
    assert runner.quick_name(args, "x", {"epochs": 2}) == "x-quick" and args.epochs == 2
    args = parser.parse_args(["--epochs", "5"])
    assert runner.quick_name(args, "x", {"epochs": 2}) == "x" and args.epochs == 5


def test_every_benchmark_has_a_quick_configuration_or_a_reason():
    helpers = {"_runner.py", "_tables.py", "readme_tables.py"}
    scripts = {p.name for p in BENCH.glob("*.py") if p.name not in helpers and not p.name.startswith("_tables_")}
    quick = {cmd[0] for cmd, _ in QUICK.values()}
    assert scripts <= quick | set(NO_QUICK), f"no quick configuration and no reason: {scripts - quick - set(NO_QUICK)}"
    assert quick <= scripts and not quick & set(NO_QUICK)


@pytest.mark.slow
@pytest.mark.benchmarks
@pytest.mark.parametrize("name", sorted(QUICK))
def test_quick_configuration_reproduces_its_stored_file(name, tmp_path):
    stored = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
    out = tmp_path / f"{name}.json"
    threads = stored["provenance"]["threads"]["torch"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads))
    command, not_compared = QUICK[name]
    command = [a.replace("{out}", str(out)) for a in command]
    if str(out) not in command:
        command += ["--out", str(out)]
    done = subprocess.run([sys.executable, *command, "--threads", str(threads)], cwd=BENCH, env=env,
                          check=False, timeout=3000, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    new = json.loads(out.read_text(encoding="utf-8"))
    assert new["provenance"]["seed"] == stored["provenance"]["seed"]
    config = new["provenance"]["config"]  # the stored options (an option added since may be new)
    assert all(config.get(k) == v for k, v in stored["provenance"]["config"].items() if k not in ("out", "result")), config
    differences = _differences(stored["numbers"], new["numbers"], skip=NOT_COMPARED + tuple(not_compared))
    stored_isa, isa = stored["provenance"].get("cpu_isa"), new["provenance"].get("cpu_isa")
    if differences and stored_isa != isa:
        # a model trained here takes other rounding paths than on the machine that stored the file
        # (another instruction set): its numbers can only be compared on a machine like that one
        pytest.skip(f"{name} was stored on a CPU with {stored_isa or 'an unrecorded instruction set'}; here "
                    f"({isa}) {len(differences)} numbers differ, e.g. {differences[0]}; re-store it on this "
                    f"machine with: {stored['provenance']['command']}")
    assert not differences, "\n".join(differences[:20])
