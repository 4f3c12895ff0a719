"""README tables of the cohort audit's benchmarks: the shortcut acceptance of ``audit.py`` and the
history of the shortcut flag's rule versions (``audit_calibration.py``), made from several files."""

from __future__ import annotations

from _tables import num as _f
from _tables import table


def audit_acceptance_table(payload: dict) -> list[str]:
    """The shortcut acceptance of ``benchmarks/audit.py`` (``--only acceptance`` or ``--quick``)."""
    n = payload["numbers"]
    d = n.get("data") or {}
    lines = [
        (f"Lesion benchmark {d.get('size')}x{d.get('size')}, {d.get('n_train')} training images, "
         f"{n.get('epochs')} epochs, {d.get('n_test')} test images audited at the defaults."),
        "",
        ("| data | test acc. | predicted lesion | marked (of them) | flagged lesion | precision | recall "
         "| flagged, all classes | precision, all classes | recall, all classes | flagged clusters |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("lesions-shortcut", "lesions"):
        r = n[name]
        lines.append(
            f"| {name} | {_f(r['test_accuracy'], 3)} | {r['predicted_lesion']} | {r['marked_among_predicted_lesion']} "
            f"| {r['flagged_lesion']} | {_f(r['precision'], 2)} | {_f(r['recall'], 2)} "
            f"| {r['flagged_all_classes']} of {r['cases']} | {_f(r['precision_all_classes'], 2)} "
            f"| {_f(r['recall_all_classes'], 2)} ({r['marked_in_test']} marked) | {r['flagged_clusters']} of {r['clusters']} |")
    sc = n["lesions-shortcut"]
    lines += ["", (f"Every case flagged on the shortcut model: {'yes' if n['every_case_flagged'] else 'no'} "
                   f"({sc['flagged_all_classes']} of {sc['cases']}). Acceptance (lesion-class precision and recall "
                   f">= 0.8, no flagged cluster on the clean model): **{'passed' if n['passed'] else 'failed'}**.")]
    return lines


#: The rule version of each stored calibration file. The files of v1 and v2 were written before
#: ``_runner.write_result`` (commit and command at the top level) and do not name their version; it
#: follows from their commit: e128612 ("shortcut flag by intervention") is v1, 54accae ("removal
#: test v2") and later, up to the v3 rule, are v2. The v3 files name it (``numbers.rule_version``).
CALIBRATION_FILES = {
    "audit_calibration_heldout": "v1",
    "audit_calibration_design": "v2",
    "audit_calibration_heldout_v2rule": "v2",
    "audit_calibration_heldout2": "v2",
    "audit_calibration_design_v3rule": "v3",
    "audit_calibration_heldout_v3rule": "v3",
    "audit_calibration_heldout2_v3rule": "v3",
    "audit_calibration_heldout3": "v3",
}


def calibration_history_table(payloads: dict[str, dict]) -> list[str]:
    """One row per stored scoring of a grid with a rule version: the grid's acceptance numbers, with
    the file, command and commit each came from (old layout or ``write_result``'s)."""
    rows = []
    for name, version in CALIBRATION_FILES.items():
        d = payloads[name]
        n = d.get("numbers", d)  # the old layout keeps everything at the top level
        p = d.get("provenance") or {"commit": d.get("commit"), "command": "python benchmarks/" + d.get("command", "")}
        a = n["acceptance"]
        share = a["clean_flag_share"]
        rows.append((n.get("rule_version", version), n["grid"], len(n["runs"]),
                     f"{a['clean_flagged_clusters']} / {a['clean_clusters']} ({'n/a' if share is None else f'{share:.0%}'})",
                     f"{a['driven_runs_meeting_0.8']} / {a['driven_runs']}",
                     "passed" if a["passed"] else "failed", f"`{name}.json`", f"`{p['command']}` at {(p['commit'] or '?')[:10]}"))
    return [*table(("rule", "grid", "runs", "clean: clusters flagged", "driven: runs with precision and recall >= 0.8",
                    "acceptance", "stored file (benchmarks/results/)", "command, commit"), rows), "",
            ("Made from the stored files named in each row (the v1 and v2 files in their older layout, "
             "not re-run since; their rule version follows from their commit).")]


#: Block name -> the function that makes its lines from the stored payload.
TABLES = {"audit_acceptance_e6": audit_acceptance_table, "audit_acceptance-quick": audit_acceptance_table}
#: Block name -> (the stored files it is made from, the function that makes its lines from them).
MULTI = {"audit_calibration_history": (list(CALIBRATION_FILES), calibration_history_table)}
