"""The cohort audit's report (``audit.html``): the model's strategies, in pictures and words.

Takes the audit's results (duck-typed: :class:`medlens.audit.run.Analysis` and the exemplar
maps), never runs a model. Case names (file paths may carry patient names) appear only when
``show_identifiers`` is set; otherwise cases are named by their position in the data.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from medlens.report.html import Report
from medlens.viz.audit import cluster_maps_figure, embedding_figure, spectrum_figure
from medlens.report.viewer import viewer_html
from medlens.viz.figures import figure_png

__all__ = ["audit_report", "flagged_sentences", "metric_means", "verdict_segments"]


def _class_name(names: Sequence[str], k: int) -> str:
    return names[k] if 0 <= k < len(names) else f"class {k}"


def _case_label(result: Any, show_identifiers: bool) -> str:
    return f"case {result.case}" if show_identifiers else f"case #{result.index}"


def _fmt(value: float, pattern: str = "{:.3f}") -> str:
    return "n/a" if value is None or value != value else pattern.format(value)


def metric_means(results: Sequence[Any], columns: Sequence[str]) -> list[tuple[str, float, int]]:
    """``(column, mean over the cases where it applies, number of such cases)`` per column."""
    out = []
    for col in columns:
        vals = [r.metrics.get(col) for r in results]
        vals = [v for v in vals if v is not None and v == v]
        out.append((col, sum(vals) / len(vals) if vals else math.nan, len(vals)))
    return out


def flagged_sentences(strategies: Any, class_names: Sequence[str]) -> list[str]:
    """Plain-language sentences about the flagged and the undecided clusters and the flagged hotspot
    groups (or the absence of any).

    Every number comes from the cluster's own fields (its removal test: change, null change,
    effect, Holm-corrected p-value), through :attr:`Cluster.reason`.
    """
    return ["".join(seg["text"] for seg in sentence) for sentence in verdict_segments(strategies, class_names)]


def verdict_segments(strategies: Any, class_names: Sequence[str]) -> list[list[dict]]:
    """:func:`flagged_sentences` as segments whose verdict phrase carries its claim
    (:func:`medlens.report.html.sentence_html`): ``flagged`` and ``undecided`` name the class and
    strategy with the test's numbers and the rule's thresholds, ``none_flagged`` the number of
    strategies, so that a reader's tool can check each against the strategies' tables."""
    clusters = [c for cs in strategies.classes for c in cs.clusters]
    flagged = [c for c in clusters if c.flagged]
    undecided = [c for c in clusters if getattr(c, "verdict", "") == "undecided"]
    rule = strategies.rule
    out: list[list[dict]] = []
    for c in flagged:
        cls = _class_name(class_names, c.predicted_class)
        n_class = sum(len(cs.members) for cs in strategies.classes if cs.predicted_class == c.predicted_class)
        acc = "" if c.accuracy != c.accuracy else f" Its predictions are right in {c.accuracy:.0%} of its cases."
        claim = {"kind": "flagged", "class": cls, "strategy": c.cluster, "p": c.p_value, "alpha": rule.alpha,
                 "effect": c.effect, "min_effect": rule.min_effect, "difference": abs(c.change - c.null_change),
                 "min_change": rule.min_change}
        out.append([
            {"text": f"Candidate shortcut in the predictions of '{cls}': "},
            {"text": f"strategy {c.cluster}", "claim": claim},
            {"text": f" ({c.size} of {n_class} cases) {c.reason}. For {len(c.flagged_members)} of these cases the removal "
                     f"moved the prediction further than every removal elsewhere (clusters.csv marks them): check them for "
                     f"a tag, a marker or a scanner-specific feature, and look at the strategy's mean map and exemplars "
                     f"below.{acc}"},
        ])
    groups = [g for cs in strategies.classes for g in getattr(cs, "hotspots", []) if g.flagged]
    for g in groups:  # cases their strategy's region missed, grouped by where their own maps point
        cls = _class_name(class_names, g.predicted_class)
        claim = {"kind": "flagged", "class": cls, "strategy": group_label(g), "p": g.p_value, "alpha": rule.alpha,
                 "effect": g.effect, "min_effect": rule.min_effect, "difference": abs(g.change - g.null_change),
                 "min_change": rule.min_change}
        out.append([
            {"text": f"Candidate shortcut in the predictions of '{cls}', "},
            {"text": group_label(g), "claim": claim},
            {"text": f": {g.reason}. For {len(g.flagged_members)} of these cases the removal moved the prediction further "
                     f"than every removal elsewhere (clusters.csv marks them): check them for a tag, a marker or a "
                     f"scanner-specific feature."},
        ])
    flagged = flagged + groups
    for c in undecided:
        cls = _class_name(class_names, c.predicted_class)
        out.append([
            {"text": "Undecided", "claim": {"kind": "undecided", "class": cls, "strategy": c.cluster}},
            {"text": f", strategy {c.cluster} of '{cls}' ({c.size} cases): {c.reason}. Neither flagged nor cleared: the "
                     "audit cannot say whether these predictions rely on that region."},
        ])
    if not flagged and getattr(strategies, "chance", False):
        out.insert(0, [
            {"text": "No strategy is cleared: "},
            {"text": "no candidate shortcut", "claim": {"kind": "none_flagged", "strategies": len(clusters)}},
            {"text": f" was flagged among the {len(clusters)} prediction strategies found, but the model's predictions are "
                     "no better than always answering the most frequent label of the audited cases, so the audit cannot "
                     "tell whether what its maps point at, on the class evidence or away from it, is a strategy or "
                     "noise."},
        ])
    elif not flagged:
        tail = "" if not undecided else f" ({len(undecided)} undecided, below)"
        out.insert(0, [
            {"text": "No candidate shortcut", "claim": {"kind": "none_flagged", "strategies": len(clusters)}},
            {"text": f": none of the {len(clusters)} prediction strategies found depends on input away from where the "
                     f"class evidence should be{tail}."},
        ])
    return out


def group_label(group: Any) -> str:
    """How the report names a hotspot group (:mod:`medlens.audit.hotspots`)."""
    return f"hotspot group {group.cluster} (cell {group.hotspot})"


def _sentence_kind(sentence: str) -> str:
    if sentence.startswith("Candidate shortcut"):
        return "verdict-bad"
    return "note" if sentence.startswith(("Undecided", "No strategy is cleared")) else "verdict-good"


def audit_report(
    analysis: Any,
    exemplars: Mapping[int, tuple[Any, Any]],
    *,
    class_names: Sequence[str] = (),
    title: str = "medlens cohort audit",
    subtitle: str = "",
    show_identifiers: bool = False,
    familiarity: str | None = None,
    familiarity_unlike: bool = False,
    warnings: Sequence[str] = (),
) -> Report:
    """Build the audit report.

    Parameters
    ----------
    analysis : Analysis
        ``results``, ``settings``, ``strategies`` and ``info`` of an audit
        (:func:`medlens.audit.run.analyse`).
    exemplars : mapping
        ``{position in results: (input (C, *spatial), map (*spatial))}`` for the exemplars.
    class_names : sequence of str
    show_identifiers : bool
        Name cases by their file path (which may identify a patient) instead of their position.
    familiarity : str, optional
        How many audited cases are unlike the training data (:mod:`medlens.app.audit_familiarity`);
        shown first, as a warning when ``familiarity_unlike``.
    warnings : sequence of str
        What the model's own record says before anything else (:mod:`medlens.app.model_quality`).
    """
    results, settings, strategies = analysis.results, analysis.settings, analysis.strategies
    names = list(class_names) or list(analysis.info.get("class_names") or [])
    report = Report(title, subtitle or f"{len(results)} cases; maps clustered: {strategies.method}")

    sec = report.section("Summary")
    for warning in warnings:
        sec.add_text(warning, kind="verdict-bad")
    if familiarity:
        sec.add_text(familiarity, kind="verdict-bad" if familiarity_unlike else "note")
    for segments in verdict_segments(strategies, names):
        sec.add_sentence(segments, kind=_sentence_kind(segments[0]["text"]))
    labelled = [r for r in results if r.label is not None]
    if labelled:
        acc = sum(r.label == r.predicted for r in labelled) / len(labelled)
        sec.add_text(f"Accuracy on the {len(labelled)} labelled cases: {acc:.1%}.")
    rule = strategies.rule
    sec.add_text(
        "How this works: the attribution maps of every case, pooled to a small grid, are grouped per predicted "
        "class by spectral clustering (SpRAy, Lapuschkin et al. 2019); the eigengap of the graph Laplacian chooses "
        "the number of groups. Each group is a prediction strategy. Where a strategy's maps point away from the "
        "lesion or anatomy masks (or into the borders and corners where no mask is known), the audit tests whether "
        "the predictions depend on that place: it blurs the region out of each case and compares the change of the "
        f"predicted probability with the change when as much evidence-free input elsewhere is blurred ({rule.n_draws} "
        "random placements per case), by a two-sided Wilcoxon signed-rank test, Holm-corrected over every tested "
        f"strategy. A strategy is flagged when p < {rule.alpha}, the difference has one sign in at least "
        f"{rule.min_effect:.0%} of its cases and averages at least {rule.min_change:.2f} in probability; it is "
        "undecided when the test could not be run or had too few cases, or when the model is no better than chance "
        "on the labels and showed no effect. A map on a marker is not enough: only a change in the decision is.",
        kind="note",
    )

    sec = report.section("Per-case numbers")
    rows = [[col, mean, n] for col, mean, n in metric_means(results, settings.columns())]
    sec.add_table(["method.metric", "mean", "cases"], rows)
    sec.add_text("Every case's numbers are in cases.csv (and cases.parquet); the cluster of each case in clusters.csv.")

    for cs in strategies.classes:
        cls = _class_name(names, cs.predicted_class)
        sec = report.section(f"Strategies for '{cls}'")
        flags = [c.flagged for c in cs.clusters]
        verdicts = [getattr(c, "verdict", "flagged" if c.flagged else "not flagged") for c in cs.clusters]
        sec.add_images([
            (figure_png(cluster_maps_figure(
                [c.mean_map for c in cs.clusters],
                [f"strategy {c.cluster}: {c.size} cases" + ("" if v == "not flagged" else f" ({v})")
                 for c, v in zip(cs.clusters, verdicts)],
                flags,
            )), f"Mean relevance of each strategy ({strategies.method}, summary grid {'x'.join(map(str, strategies.grid))})"),
            (figure_png(spectrum_figure(cs.clustering.eigenvalues, cs.clustering.n_clusters, "Laplacian spectrum")),
             f"Smallest eigenvalues of the normalised graph Laplacian; largest gap after {cs.clustering.n_clusters}"),
            (figure_png(embedding_figure(cs.clustering.embedding, cs.clustering.labels, flags, "spectral embedding")),
             f"The {len(cs.members)} cases predicted '{cls}', coloured by strategy"),
        ])
        sec.add_table(
            ["strategy", "cases", "accuracy", "misplaced share", "concentration", "tested cases",
             "change (removal)", "change (elsewhere)", "same-sign share", "p (Wilcoxon, Holm)", "verdict",
             "flagged cases"],
            [[c.cluster, c.size, c.accuracy, c.misplaced, c.distinct, c.n_tested, -c.change, -c.null_change,
              c.effect, c.p_value, v, len(c.flagged_members)] for c, v in zip(cs.clusters, verdicts)]
            # the hotspot groups tested: cases their strategy's region missed (medlens.audit.hotspots)
            + [[group_label(g), g.size, g.accuracy, g.misplaced, g.distinct, g.n_tested, -g.change, -g.null_change,
                g.effect, g.p_value, g.verdict, len(g.flagged_members)] for g in getattr(cs, "hotspots", [])
               if g.verdict != "not flagged" or g.n_tested],
        )
        sec.add_text("Change: the mean change of the predicted probability when the region the strategy's maps "
                     "point at is blurred out (removal) and when as much evidence-free input elsewhere is (elsewhere); "
                     "empty where the strategy's maps stay on the evidence and nothing was tested.")
        for c in cs.clusters:
            shown = [pos for pos in c.exemplars if pos in exemplars]
            if not shown:
                continue
            verdict = getattr(c, "verdict", "not flagged")
            sec.add_heading(f"Strategy {c.cluster}: exemplars" + ("" if verdict == "not flagged" else f" ({verdict})"))
            if c.reason:
                sec.add_text(c.reason[0].upper() + c.reason[1:] + ".",
                             kind={"flagged": "verdict-bad", "undecided": "note"}.get(verdict, ""))
            for pos in shown:  # the same overlay viewer as the demo and the case report
                x, heat = exemplars[pos]
                r = results[pos]
                caption = f"{_case_label(r, show_identifiers)}: predicted {cls} (p={r.probability:.2f})" + (
                    "" if r.label is None else f", label {_class_name(names, r.label)}"
                )
                base = x.detach().cpu().double()
                base = base.numpy() if base.ndim == 2 else base.mean(0).numpy()  # signals keep their leads
                heat = heat.detach().cpu().double().numpy()
                if base.ndim == 2 and heat.ndim == 1:  # a signal's map lies on the time axis
                    kind = "signal"
                else:
                    kind = None
                sec.add_viewer(viewer_html(base, {strategies.method: heat}, title=caption, alt=caption, kind=kind))
    return report
