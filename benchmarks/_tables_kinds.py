"""README tables of the data-kind benchmarks: hostile files, real notes and ECG records, the
familiarity check and the text audit (``fuzz_readers``, ``clinical_text``, ``ecg_records``,
``kinds_cli``, ``familiarity``, ``audit_notes``)."""

from __future__ import annotations

from _tables import num, pct, table


def fuzz_readers_table(payload: dict) -> list[str]:
    """Mutated files per format: read, refused (by error kind), tracebacks; the bombs."""
    n = payload["numbers"]
    rows = [(fmt, r["files"], r["read"], ", ".join(f"{k} {v}" for k, v in r["errors"].items()), r["tracebacks"])
            for fmt, r in n["formats"].items()]
    lines = [(f"{n['examples_per_format']} mutations per format (memory budget {n['memory_mb']:g} MB): "
              f"{n['files_tried']} files, {n['tracebacks']} tracebacks; peak RSS {n['peak_rss_mb']['after_fuzzing']:.0f} MB "
              f"({n['peak_rss_mb']['before_fuzzing']:.0f} MB before fuzzing)."), ""]
    lines += table(("format", "files", "read", "refused in one line", "tracebacks"), rows)
    words = {"png": "PNG declaring 100000 x 100000 pixels", "deflated_dicom": "deflated DICOM of 65535 x 65535 zeros",
             "folder": "folder of both bombs and one good picture"}
    if n["acceptance"]:
        lines += ["", *table(("acceptance file", "bytes", "outcome", "one line", "peak RSS"), (
            (words.get(k, k), f"{r['file_bytes']:,}", r["kind"], r.get("one_line"), f"{r.get('peak_rss_mb', 0):.0f} MB")
            for k, r in n["acceptance"].items()))]
    return lines


def ecg_records_table(payload: dict) -> list[str]:
    """MIT-BIH record: beats per split, the last stretch's scores, the explained beat."""
    n = payload["numbers"]
    t, copy, beat = n["test"], n["test_from_250Hz_copy"], n["explained_beat"]
    counts = "; ".join(f"{s}: " + ", ".join(f"{v} {c}" for c, v in cs.items()) for s, cs in n["counts"].items())
    recall = ", ".join(f"{c} {num(v)}" for c, v in t["recall"].items())
    return [
        f"Record {n['record']} at {n['fs']:g} Hz, beats {counts}.", "",
        *table(("beats after the split", "n", "accuracy", "balanced accuracy", "AUROC", "recall"), [
            ("from the record", t["n"], num(t["accuracy"]), num(t["balanced_accuracy"]), num(t["auroc"]), recall),
            ("from a 250 Hz copy (the recipe resamples)", copy["n"], num(copy["accuracy"]), "", num(copy["auroc"]), "")]),
        "",
        (f"Explained beat at {beat['seconds']:.2f} s ({beat['symbol']}): P = {num(beat['probability'])}; from the 250 Hz "
         f"copy P = {num(beat['from_250Hz_copy']['probability'])}, integrated-gradients correlation "
         f"{num(beat['from_250Hz_copy']['ig_correlation'])}."),
    ]


def _top5(rate: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {pct(v)}" for k, v in rate.items())


def clinical_text_table(payload: dict) -> list[str]:
    """Per task: notes, held-out scores, the finding word among the top five tokens, Jain-Wallace."""
    rows = []
    for t in payload["numbers"]["tasks"]:
        top = t["top5"]
        rows.append((t["task"], t["n_notes"], t["vocabulary"], t["test"]["n"], num(t["test"]["accuracy"]),
                     num(t["test"]["auroc"]), f"{_top5(top['hit_rate'])} ({top['n_evaluated (naming the finding)']} notes)",
                     t["jain_wallace"]["verdict"]))
    return table(("task", "notes", "vocabulary", "held out", "accuracy", "AUROC",
                  "finding word among the top 5 tokens", "attention (Jain-Wallace)"), rows)


def kinds_cli_table(payload: dict) -> list[str]:
    """The command-line run: notes and ECG numbers, and the time of every command."""
    n = payload["numbers"]
    notes, ecg = n["notes"], n["ecg"]
    m, top = notes["held_out_predict_metrics"], notes["top5_finding_word_hit_rate"]
    beat = ecg["explained_beat"]
    prob = max(beat["probabilities"].items(), key=lambda kv: kv[1])
    return [
        *table(("step", "numbers"), [
            ("notes: `medlens predict` on the held-out notes",
             (f"{m['n_labelled']} notes, accuracy {num(m['accuracy'])}, AUROC {num(m['auroc'])}, "
             f"ECE {num(m['expected_calibration_error'])}")),
            ("notes: finding word among the top 5 tokens (`medlens explain`)",
             f"{_top5(top['rate'])} ({top['n_evaluated']} of {top['n_positive_test_notes']} positive notes)"),
            ("notes: `medlens attention` (Jain-Wallace)", (f"{notes['jain_wallace']['n_notes']} notes: "
                                                           f"{notes['jain_wallace']['verdict']}")),
            ("ECG: held-out test stretch", f"from {ecg['stored']['test_from_seconds']:.1f} s: "
                                           + ", ".join(f"{k} {num(v)}" for k, v in ecg["held_out_test_stretch"].items())),
            ("ECG: `medlens explain --start`", (f"beat at {beat['seconds']:.3f} s ({'; '.join(beat['window'])}): "
                                                f"P({prob[0]}) = {num(prob[1])}")),
        ]),
        "",
        f"{len(n['commands'])} commands, {sum(c['seconds'] for c in n['commands']):.0f} s in all (the slowest: "
        + ", ".join(f"`{c['command'].split(' --')[0]}` {c['seconds']:.0f} s"
                    for c in sorted(n["commands"], key=lambda c: -c["seconds"])[:3]) + ").",
    ]


def familiarity_table(payload: dict) -> list[str]:
    """Per data set and source: cases, share flagged, AUROC of the check and of the distances alone."""
    n = payload["numbers"]
    lines = [(f"Bars: every AUROC >= {n['bars']['auroc']}, false alarms on the own test split <= "
             f"{pct(n['bars']['false_alarms'])}; models trained {n['epochs']} epochs. Passes: {n['passes']}."), ""]
    rows = []
    for name, d in n["data_sets"].items():
        for source, s in d["sources"].items():
            rows.append((name if source == "own test split" else "", source, s["n"], pct(s["flagged"], 1),
                         num(s.get("auroc")) if "auroc" in s else "(false alarms)",
                         num(s.get("auroc_distances_only")) if "auroc" in s else ""))
        rows.append(("", (f"**{name}: test accuracy {num(d['test_accuracy'])}, min AUROC {num(d['min_auroc'])}, "
                         f"passes {d['passes']}**"), "", "", "", ""))
    return lines + table(("data set", "source", "n", "flagged", "AUROC", "AUROC, distances only"), rows)


def audit_notes_table(payload: dict) -> list[str]:
    """Per run of the text audit: the model's accuracy and the placeholder's test in "pneumonia"."""
    n = payload["numbers"]
    rows = []
    for r in n["runs"]:
        x = r["xxxx"].get("pneumonia", {})
        rows.append((r["scenario"], r["seed"], num(r["accuracy"], 2), x.get("verdict", "not tested"),
                     num(x.get("change")), num(x.get("null_change")),
                     f"{x['p_value']:.1e}" if x.get("p_value") is not None else "n/a"))
    lines = table(("scenario", "seed", "audited accuracy", "`xxxx` in pneumonia", "drop of P when deleted",
                   "drop, as many random words", "Holm p"), rows)
    lines += ["", *table(("scenario", "runs", "`xxxx` depended on in pneumonia", "mean accuracy", "seconds per note"), (
        (k, s["runs"], s["xxxx_depended_on_in_pneumonia"], num(s["mean_accuracy"]), num(s["mean_seconds_per_note"]))
        for k, s in n["summary"].items()))]
    return lines


TABLES = {
    "fuzz_readers": fuzz_readers_table,
    "ecg_records": ecg_records_table,
    "clinical_text": clinical_text_table,
    "kinds_cli": kinds_cli_table,
    "familiarity": familiarity_table,
    "familiarity_seed1": familiarity_table,
    "audit_notes": audit_notes_table,
}
