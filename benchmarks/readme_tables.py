"""Rewrite the generated tables of ``benchmarks/README.md`` from the stored results.

    python benchmarks/readme_tables.py            # rewrite the marked blocks
    python benchmarks/readme_tables.py --check    # exit 1 when a block differs from its file

A block is marked in the README as

    <!-- results:NAME -->
    ... (generated; never typed) ...
    <!-- /results:NAME -->

and is made by ``TABLES[NAME]`` from ``benchmarks/results/NAME.json`` (written through
``benchmarks/_runner.write_result``: the numbers with their commit, command, seed and threads).
The tables of this module's own benchmarks are here; the others come from the ``_tables_*``
modules beside it. ``tests/report/test_benchmark_results.py`` checks that every block equals what
this script makes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the _tables modules beside this file

import _tables_audit
import _tables_kinds
import _tables_speed
import _tables_systems
from _tables import num as _f

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "benchmarks" / "README.md"
RESULTS = ROOT / "benchmarks" / "results"

BLOCK = re.compile(r"(<!-- results:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)


def provenance_line(payload: dict, name: str) -> str:
    """One line naming where the numbers come from (``name``: the stored file's name): the command,
    seed, commit, threads, the load average as the run started and when it was written, or, for a
    file converted from an older layout, that it was not re-run."""
    p = payload["provenance"]
    threads = p.get("threads") or {}
    commit = (p.get("commit") or "unknown")[:10] + (" (with uncommitted changes)" if p.get("dirty") else "")
    load = p.get("load_at_start")
    load = f", load average {load[0]:.1f} at the start" if isinstance(load, list) else ""
    when = p["converted"] if p.get("converted") else f"written {p.get('written')}"
    return (f"From `benchmarks/results/{name}.json`: `{p['command']}`, seed {p.get('seed')}, "
            f"commit {commit}, torch threads {threads.get('torch')}{load}, {when}.")


def attention_gates_table(payload: dict) -> list[str]:
    """Accuracy, localisation, deletion and gate replacement of ``benchmarks/attention_gates.py``."""
    n = payload["numbers"]
    acc, loc, dele, rep = n["accuracy"], n["localisation"], n["deletion"], n["gates_replaced"]
    sizes = n.get("sizes", {})
    lines = [
        f"Lesion benchmark {sizes.get('size')}x{sizes.get('size')}, {sizes.get('train')} training images, "
        f"{sizes.get('epochs')} epochs, {sizes.get('test')} test images.",
        "",
        "| model | test accuracy | AUROC |",
        "|---|---|---|",
        f"| attention-gated | {_f(acc['gated']['accuracy'])} | {_f(acc['gated']['auroc'])} |",
        f"| plain CNN | {_f(acc['cnn']['accuracy'])} | {_f(acc['cnn']['auroc'])} |",
        "",
        "| map (positive test images) | pointing game | mass in lesion |",
        "|---|---|---|",
    ]
    names = {"gates": "gate map (mean of the gates)", "gate_0": "finer gate", "gate_1": "coarser gate",
             "gradcam_gated": "Grad-CAM, gated model", "gradcam_cnn": "Grad-CAM, plain CNN"}
    for key, label in names.items():
        if key in loc:
            lines.append(f"| {label} | {_f(loc[key]['pointing'])} | {_f(loc[key]['mass_in_mask'])} |")
    share = next(iter(loc.values()))["mask_share"] if loc else None
    lines += [
        "",
        f"A uniform map puts {_f(share)} of its mass in the lesion. Deletion AUC (lower = more faithful): gate map "
        f"{_f(dele.get('gates'))}, Grad-CAM {_f(dele.get('gradcam_gated'))}, random map {_f(dele.get('random_gated'))} "
        f"on the gated model; Grad-CAM {_f(dele.get('gradcam_cnn'))}, random {_f(dele.get('random_cnn'))} on the CNN. "
        f"Permuted gates flip {_f(rep['permuted']['flipped'])} of the decisions, uniform gates "
        f"{_f(rep['uniform']['flipped'])}.",
    ]
    return lines


def case_report_table(payload: dict) -> list[str]:
    """Size, time and browser check of each report of ``benchmarks/case_report.py``."""
    words = {"2d": "PneumoniaMNIST X-ray + 5 similar training cases",
             "3d": "CT series 128 x 256 x 256, 3 methods, every identifying tag set",
             "signal": "ECG5000 heartbeat, 3 methods", "2d-evaluated": "lesion case, trust from the evaluation"}
    lines = ["| report | HTML size | written in | browser |", "|---|---|---|---|"]
    for row in payload["numbers"]["reports"]:
        b = row.get("browser") or {}
        seen = (f"{b['viewers']} viewer(s) drawn, {b['console_errors']} console errors, {b['requests']} requests, "
                f"print {b['print_pages']} page(s)" if b.get("opened") else "not opened (no Chromium)")
        if "identifying_values_in_html" in row:
            seen += f"; {row['identifying_values_in_html']} identifying values in the HTML"
        lines.append(f"| {words.get(row['report'], row['report'])} | {row['html_mb']:.2f} MB | {row['seconds']:.1f} s | {seen} |")
    return lines


def lrp_speed_table(payload: dict) -> list[str]:
    """One LRP pass against one gradient pass and Zennit's LRP (``benchmarks/lrp_speed.py``)."""
    n = payload["numbers"]
    lines = [
        (f"Best of {n['repeats']} interleaved runs each (gradient, every LRP, every Zennit LRP, then again), "
         f"one input; load average at the end {', '.join(f'{v:.1f}' for v in n['load_average_at_end'])} "
         "(a shared machine)."),
        "",
        "| model | input | gradient s | composite | LRP s | LRP / gradient | LRP / gradient (CPU) | Zennit / gradient |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in n["rows"]:
        shape = "x".join(str(v) for v in row["input"][1:])
        for name, c in row["composites"].items():
            zennit = _f(c.get("zennit_over_gradient"), 2)
            lines.append(f"| {row['model']} | {shape} | {_f(row['gradient_s'])} | {name} | {_f(c['lrp_s'])} | "
                         f"{_f(c['lrp_over_gradient'], 2)} | {_f(c['lrp_over_gradient_cpu'], 2)} | {zennit} |")
    return lines


def lrp_monai_table(payload: dict) -> list[str]:
    """Every LRP composite and transformer method at its defaults on MONAI's networks."""
    n = payload["numbers"]
    lines = [
        f"Every map finite: {n['all_finite']}; hooks left: {n['hooks_left']}; slowest {_f(n['slowest_s'], 1)} s.",
        "",
        "| model | input | method | composite | seconds | finite | non-zero |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in n["rows"]:
        shape = "x".join(str(v) for v in r["input"][1:])
        lines.append(f"| {r['model']} | {shape} | {r['method']} | {r.get('composite', '')} | {_f(r['seconds'], 1)} | "
                     f"{r['finite']} | {r['non_zero']} |")
    return lines


def third_party_speed_table(payload: dict) -> list[str]:
    """Every method at its defaults on MONAI networks (``benchmarks/third_party_speed.py``)."""
    n = payload["numbers"]
    models = [k for k in ("2d160", "2d", "3d") if k in n]
    head = " | ".join(f"{n[k]['model']} {'x'.join(str(s) for s in n[k]['shape'][2:])} "
                      f"({n[k]['forward_gflop']:.1f} GFLOP per pass)" for k in models)
    lines = [f"| method | {head} | defaults chosen | load after (1 min) |", "|---|" + "---|" * (len(models) + 2)]
    lines.append("| one forward / forward+backward | " + " | ".join(
        f"{n[k]['forward_s']:.2f} s / {n[k]['forward_backward_s']:.2f} s" for k in models) + " | | |")
    methods = list(dict.fromkeys(m for k in models for m in n[k]["methods"]))
    for m in methods:
        cells, chosen, load = [], [], []
        for k in models:
            row = n[k]["methods"].get(m, {})
            cells.append(f"{row['seconds']:.1f} s" if row.get("seconds") is not None else row.get("note", "not run"))
            settings = ", ".join(f"{a}={b}" for a, b in (row.get("settings") or {}).items())
            chosen.append(settings or "")
            load.append(f"{row['load_after'][0]:.1f}" if row.get("load_after") else "")
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {' / '.join(c for c in chosen if c)} | {' / '.join(load)} |")
    return lines


def op_cost_calibration_table(payload: dict) -> list[str]:
    """Measured against predicted seconds, kernel by kernel and pass by pass
    (``benchmarks/op_cost_calibration.py``)."""
    n = payload["numbers"]
    lines = ["| kernel or pass (per input) | set | measured | predicted | measured / predicted |", "|---|---|---|---|---|"]
    for row in n["kernels"]:
        lines.append(f"| {row['kernel']} | kernel | {1e3 * row['measured_s']:.3f} ms | {1e3 * row['predicted_s']:.3f} ms "
                     f"| {row['ratio']:.2f} |")
    for row in n["passes"]:
        lines.append(f"| {row['network']} (chunk {row['chunk']}) | {row['set']} | {1e3 * row['measured_s']:.1f} ms "
                     f"| {1e3 * row['predicted_s']:.1f} ms | {row['ratio']:.2f} |")
    return lines


def audit_calibration_table(payload: dict) -> list[str]:
    """Every run of one grid of ``benchmarks/audit_calibration.py`` scored with one rule, and the
    grid's acceptance (issue 20)."""
    n = payload["numbers"]
    acc = n["acceptance"]
    lines = [
        ("| run | flip rate | test acc. | clusters | flagged | undecided | hotspot groups (flagged) "
         "| flagged cases | marked cases | precision | recall | counts as |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in n["runs"]:
        kind = ("clean" if r["rate"] is None else "driven" if r["flip_rate"] >= 0.3 else "not driven (flip < 0.30)")
        lines.append(
            f"| {r['run']} | {_f(r['flip_rate'], 2)} | {_f(r['test_accuracy'], 2)} | {r['clusters']} "
            f"| {r['flagged_clusters']} | {r['undecided_clusters']} | {r.get('hotspot_groups', 0)} "
            f"({r.get('flagged_hotspot_groups', 0)}) | {r['flagged_cases']} | {r['marked_cases']} "
            f"| {_f(r['precision'], 2)} | {_f(r['recall'], 2)} | {kind} |")
    share = acc["clean_flag_share"]
    lines += [
        "",
        (f"Rule {n['rule_version']} on grid `{n['grid']}`: clean runs {acc['clean_flagged_clusters']} of "
         f"{acc['clean_clusters']} clusters flagged ({'n/a' if share is None else f'{share:.0%}'}; at most 5%); "
         f"driven runs (flip rate >= 0.30) with precision and recall >= 0.8: {acc['driven_runs_meeting_0.8']} of "
         f"{acc['driven_runs']} (at least 90%): **{'passed' if acc['passed'] else 'failed'}**. A cluster counts as "
         "flagged when its own test flags it or it holds a case flagged through a hotspot group."),
    ]
    return lines


def lesion_acceptance_table(payload: dict) -> list[str]:
    """Every scored method and baseline on the clean lesion benchmark, the marker mass on the shortcut
    variant and the leaderboard's verdict (``benchmarks/lesion_acceptance.py``)."""
    n = payload["numbers"]
    keys = ("pointing_game", "deletion_auc", "insertion_auc", "mass_in_mask", "iou", "randomisation_spearman",
            "max_sensitivity")
    lines = [("| method | pointing game | deletion AUC | insertion AUC | mass in lesion | IoU | randomisation Spearman "
              "| max-sensitivity | deletion - random (95% CI) | marker mass (shortcut variant) |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for m, row in n["clean"].items():
        d = row.get("deletion_minus_random")
        diff = f"{d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" if d else ""
        mass = (n["shortcut_marker_mass"].get(m) or {}).get("mean")
        lines.append(f"| {m} | " + " | ".join(_f(row.get(k)) for k in keys) + f" | {diff} | {'' if mass is None else _f(mass)} |")
    lines += ["", "Verdict on the clean benchmark:", "", *(f"- {line}" for line in n["verdict"]), "",
              f"Shortcut variant: {n['shortcut_text']}", "",
              (f"Best pointing game {_f(n['best_pointing_game'])} (at least 0.9), every method better than a random map "
               f"on deletion, the report says the model relies on the marker: **{'passed' if n['passed'] else 'failed'}**.")]
    return lines


#: Block name -> the function that makes its lines from the stored payload.
TABLES: dict[str, Callable[[dict], list[str]]] = {
    **_tables_audit.TABLES,
    **_tables_kinds.TABLES,
    **_tables_speed.TABLES,
    **_tables_systems.TABLES,
    "attention_gates": attention_gates_table,
    "attention_gates-quick": attention_gates_table,
    "attention_gates-seed1": attention_gates_table,
    "case_report": case_report_table,
    "lesion_acceptance": lesion_acceptance_table,
    "lesion_acceptance-quick": lesion_acceptance_table,
    "third_party_speed": third_party_speed_table,
    "third_party_speed_rise_2d160_load1": third_party_speed_table,
    "third_party_speed_rise_2d_load1": third_party_speed_table,
    "third_party_speed_occlusion_3d_load1": third_party_speed_table,
    "third_party_speed_occlusion_3d_load1_chunks2": third_party_speed_table,
    "op_cost_calibration": op_cost_calibration_table,
    "lrp_speed": lrp_speed_table,
    "lrp_speed_2d": lrp_speed_table,
    "lrp_monai_defaults": lrp_monai_table,
    "audit_calibration_heldout3": audit_calibration_table,
    "audit_calibration_design_v3rule": audit_calibration_table,
    "audit_calibration_heldout_v3rule": audit_calibration_table,
    "audit_calibration_heldout2_v3rule": audit_calibration_table,
}


def block(name: str, results: Path = RESULTS) -> str:
    """The generated body of block ``name`` (ending with a newline)."""
    if name in _tables_audit.MULTI:  # a table of several stored files, each row naming its file, command and commit
        files, make = _tables_audit.MULTI[name]
        missing = [f for f in files if not (results / f"{f}.json").is_file()]
        if missing:
            return f"No stored result: `benchmarks/results/{missing[0]}.json` is missing.\n"
        return "\n".join(make({f: json.loads((results / f"{f}.json").read_text(encoding="utf-8")) for f in files})) + "\n"
    path = results / f"{name}.json"
    if not path.is_file():
        return f"No stored result: run the benchmark to write `benchmarks/results/{name}.json`.\n"
    payload = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join(TABLES[name](payload) + ["", provenance_line(payload, name)]) + "\n"


def render(text: str, results: Path = RESULTS) -> str:
    """``text`` with every marked block regenerated."""
    def replace(m: re.Match) -> str:
        name = m.group("name")
        if name not in TABLES and name not in _tables_audit.MULTI:
            raise SystemExit(f"README block {name!r} has no table in benchmarks/readme_tables.py")
        return m.group(1) + block(name, results) + m.group(4)

    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report whether the README is up to date")
    args = p.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        print("up to date" if new == text else "benchmarks/README.md differs from the stored results")
        return 0 if new == text else 1
    if new != text:
        from medlens.core.files import atomic_write

        atomic_write(README, new)
    print(f"{len(BLOCK.findall(new))} blocks written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
