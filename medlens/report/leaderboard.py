"""The leaderboard's report section: verdict, table with 95 % CIs, shortcut audit, curves.

Takes a leaderboard summary and its table (plain data); never runs a model or a metric.
"""

from __future__ import annotations

from typing import Any

from medlens.report.html import Report, Section
from medlens.viz.leaderboard import curves_png

__all__ = ["leaderboard_section", "paired_rows"]


def _entry_name(entry: str) -> str:
    """A table's name of an entry: ``baseline:edge`` -> ``edge (baseline)``."""
    return entry.partition(":")[2] + " (baseline)" if entry.startswith("baseline:") else entry


def paired_rows(summary: dict, metric_labels: dict[str, str]) -> list[list[Any]]:
    """Every paired difference the verdict's sentences rest on: each method against the random
    and model-free maps, and each metric's leader against every other method."""
    rows = []
    for r in summary["rows"]:
        label = metric_labels.get(r["metric"], r["metric"])
        pairs = ([("baseline:random", r["vs_random"])] if r.get("vs_random") else []) + list((r.get("vs_baselines") or {}).items())
        for other, d in pairs:
            if r["kind"] == "method":
                rows.append([label, r["method"], _entry_name(other), d["mean"], d["ci_low"], d["ci_high"], d["n"]])
    for metric, lead in (summary.get("leaders") or {}).items():
        for other, d in lead["versus"].items():
            rows.append([metric_labels.get(metric, metric), lead["method"], other, d["mean"], d["ci_low"], d["ci_high"], d["n"]])
    return rows


def leaderboard_section(
    report: Report,
    summary: dict,
    table: tuple[list[str], list[list[Any]]],
    metrics: list[list[Any]],
    *,
    metric_labels: dict[str, str] | None = None,
    title: str = "How far to trust each explanation",
    preamble: str = "",
) -> Section:
    """Add the leaderboard to ``report``: verdict, table with 95 % CIs, shortcut audit, curves.

    Parameters
    ----------
    summary : dict
        A leaderboard summary (:func:`medlens.evaluation.leaderboard.summarise`).
    table : (headers, rows)
        The statistics laid out (:func:`medlens.evaluation.leaderboard.summary_table`).
    metrics : list of rows
        ``[label, better, meaning, reference]`` per metric scored, for "What the metrics measure".
    preamble : str
        A first paragraph (plain text, escaped), e.g. the model's accuracy.
    metric_labels : dict, optional
        ``{metric: label}`` as the table's headers name them (default: the metric's key).
    """
    metric_labels = metric_labels or {}
    config, verdict = summary["config"], summary["verdict"]
    sec = report.section(title)
    if preamble:
        sec.add_text(preamble)
    n = config["n_samples"]
    described = {"random": "random noise", "centre": "a centre prior", "edge": "an edge detector"}
    baselines = [described.get(e.partition(":")[2], e) for e in config["entries"] if config["kinds"][e] == "baseline"]
    sec.add_text(
        f"Every attribution method was scored on {n} cases of {config['data'] or 'the data'} "
        f"(explaining the {'true label' if config['target'] == 'label' else 'predicted class'})"
        + (f", next to baseline maps that ignore the model ({', '.join(baselines)})" if baselines else "")
        + ". Numbers are means with 95 % bootstrap confidence intervals."
    )
    if not summary.get("complete", True):
        sec.add_text("This run is incomplete: some (case, method) pairs are missing; rerun the command to finish it.", kind="note")
    shortcut_text = verdict.get("shortcut_text") or ""
    shortcut = verdict.get("shortcut_sentence") or ([{"text": shortcut_text}] if shortcut_text else [])
    sentences = verdict.get("sentences") or [[{"text": t}] for t in verdict["text"]]
    relies = shortcut_text.startswith("The model relies")
    if relies:  # the headline: no explanation makes a model that cheats trustworthy
        sec.add_sentence(shortcut, kind="verdict-bad")
    for i, sentence in enumerate(sentences):
        text = "".join(seg["text"] for seg in sentence)
        kind = "verdict-good" if (i == 0 and verdict["best"] and not relies and text.startswith("Trust")) else (
            "verdict-bad" if text.startswith(("Do not", "No method")) else "")
        sec.add_sentence(sentence, kind=kind)
        if i == 0 and verdict["best"] and relies:
            sec.add_text(
                "Mind that this model relies on the shortcut marker: an explanation can be faithful to the model and "
                "still point at evidence a clinician must not accept.", kind="note",
            )
    if shortcut_text:
        sec.add_heading("Shortcut audit")
        if not relies:
            sec.add_sentence(shortcut)
        sc = summary["shortcut"]
        rows = [
            ["test images with / without the marker", f"{sc['n_with_marker']} / {sc['n_without_marker']}"],
            ["marker area (share of the image)", sc["marker_area_fraction"]],
            ["mean change of p(marker class) when the marker is pasted", sc["delta_p_pasted"]],
            ["mean change of p(marker class) when the marker is erased", sc["delta_p_erased"]],
            ["accuracy where the marker agrees with the label", sc["accuracy_marker_agrees"]],
            ["accuracy where the marker contradicts the label", sc["accuracy_marker_conflicts"]],
        ]
        sec.add_table(["measure", "value"], [[k, "n/a" if v is None else v] for k, v in rows])
    sec.add_heading("Leaderboard (mean [95 % CI])")
    headers, rows = table
    sec.add_table(headers, rows)
    comparisons = paired_rows(summary, metric_labels)
    if comparisons:
        sec.add_details("Paired differences behind the sentences (95 % bootstrap CI over the same cases)",
                        ["metric", "method", "compared with", "difference", "CI low", "CI high", "cases"], comparisons)
    ranks = [[m, "yes" if i["eligible"] else "no", i.get("mean_rank")] for m, i in verdict["methods"].items()
             if i.get("mean_rank") is not None]
    if ranks:
        sec.add_details("Mean rank over the ranked metrics (1 = best), and whether each method passes the checks",
                        ["method", "passes the checks", "mean rank"], ranks)
    png = curves_png(summary)
    if png:
        sec.add_image(png, "mean deletion and insertion curves over the cases; the area under each curve is the AUC")
    sec.add_heading("What the metrics measure")
    sec.add_table(["metric", "better", "meaning", "reference"], metrics)
    return sec
