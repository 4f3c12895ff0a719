"""A text audit's report (``audit.html``): which words drive each class, and whether deleting them matters.

Takes the audit's results (duck-typed: :class:`medlens.audit.run_notes.NoteAnalysis`), never runs
a model. Every sentence is generated from the numbers of the token test
(:mod:`medlens.audit.tokens`). Notes are named by pseudonymous ids and no note text appears,
unless ``show_identifiers`` is set (then the words around each depended-on token are shown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from medlens.report.audit import metric_means
from medlens.report.html import Report
from medlens.viz.audit import token_bars_figure
from medlens.viz.figures import figure_png

__all__ = ["note_audit_report", "token_segments", "token_sentences"]

SHOWN = 15  # tokens per class in the page's table and picture (all of them in tokens.csv)
DRIVERS = 3  # tokens named in a class's sentence
PLACEHOLDER, UNKNOWN = "xxxx", "[unk]"  # medlens.data.tokenizer.DEID and UNK


def _name(names: Sequence[str], k: int) -> str:
    return names[k] if 0 <= k < len(names) else f"class {k}"


def _kind(verdict: str) -> str:
    return {"depended on": "verdict-bad", "undecided": "note"}.get(verdict, "")


def _depended_claim(t: Any, cls: str, rule: Any) -> dict:
    return {"kind": "token_depended", "class": cls, "token": t.token, "p": t.p_value, "alpha": rule.alpha,
            "effect": t.effect, "min_effect": rule.min_effect, "change": -t.change, "null_change": -t.null_change,
            "min_change": rule.min_change}


def depended_segments(t: Any, n_class: int, names: Sequence[str], rule: Any) -> list[dict]:
    """One depended-on token in words, every number from its test; the verdict phrase carries its
    claim (:func:`medlens.report.html.sentence_html`)."""
    cls = _name(names, t.predicted_class)
    tail = (
        f": deleting it from the {t.n_tested} notes predicted '{cls}' "
        f"that contain it changes P({cls}) by {-t.change:+.2f} on average, against {-t.null_change:+.2f} when as many "
        f"other words of the same notes are deleted (the difference has one sign in {t.effect:.0%} of the notes; "
        f"two-sided Wilcoxon signed-rank test, Holm-corrected p = {t.p_value:.1e}). '{t.token}' appears in {t.notes} "
        f"of the {n_class} notes predicted '{cls}' and in {t.notes_elsewhere} notes predicted otherwise, and carries "
        f"{t.relevance_mean:.0%} of the relevance of the notes that contain it."
    )
    if t.hits:
        tail += (f" For {len(t.hits)} of the notes the deletion moved the prediction further than every deletion of "
                 "other words (cases.csv, depends_on).")
    if t.token == PLACEHOLDER:
        tail += (" It is the de-identification placeholder (XXXX, [**...**] or ___ in the notes): a class that rests "
                 "on where text was removed is a shortcut to check.")
    elif t.token == UNKNOWN:
        tail += " It stands for every word outside the model's vocabulary."
    return [{"text": f"The predictions of '{cls}' "},
            {"text": f"depend on '{t.token}'", "claim": _depended_claim(t, cls, rule)},
            {"text": tail}]


def undecided_segments(t: Any, rule: Any, n_tested_tokens: int, names: Sequence[str]) -> list[dict]:
    """One undecided token in words: why the test could not judge it."""
    cls = _name(names, t.predicted_class)
    why = {
        "few": f"only {t.n_tested} notes predicted '{cls}' contain it (the test needs {rule.min_size})",
        "power": (f"{t.n_tested} notes are too few for the test to reach the level {rule.alpha} after the correction "
                  f"for {n_tested_tokens} tested tokens"),
        "unmeasured": "the model was not at hand to measure its deletion",
    }.get(t.why, "the test could not be run")
    return [{"text": "Undecided", "claim": {"kind": "token_undecided", "class": cls, "token": t.token}},
            {"text": f", '{t.token}' in the predictions of '{cls}': it carries {t.relevance_mean:.0%} of the relevance "
                     f"of the {t.notes} notes that contain it, but {why}. Neither shown to matter nor cleared."}]


def small_segments(small: Sequence[Any], rule: Any, names: Sequence[str]) -> list[dict]:
    """The tokens with a consistent but small effect, in one sentence; each token carries its claim."""
    out: list[dict] = [{"text": "Consistent but small: deleting "}]
    for k, t in enumerate(small):
        cls = _name(names, t.predicted_class)
        claim = {"kind": "token_small", "class": cls, "token": t.token, "p": t.p_value, "alpha": rule.alpha,
                 "change": -t.change, "null_change": -t.null_change, "min_change": rule.min_change}
        out += [{"text": ", " if k else ""}, {"text": f"'{t.token}'", "claim": claim},
                {"text": f" ('{cls}': {-t.change:+.2f} against {-t.null_change:+.2f}, p = {t.p_value:.1e})"}]
    out.append({"text": f" moves the predicted probability further than deleting as many other words, in one direction "
                        f"in most notes, but by less than {rule.min_change:.2f} on average: the model uses these words, "
                        "and no single one decides its predictions."})
    return out


def token_segments(strategies: Any, class_names: Sequence[str]) -> list[list[dict]]:
    """The depended-on, the small-effect and the undecided tokens (or the absence of any) as
    sentences whose verdict phrases carry their claims."""
    sizes = {cs.predicted_class: cs.n_notes for cs in strategies.classes}
    tested = strategies.tested()
    measured = [t for t in tested if t.verdict != "undecided"]
    rule = strategies.rule
    out = [depended_segments(t, sizes[t.predicted_class], class_names, rule) for t in strategies.depended()]
    small = [t for t in tested if t.verdict == "small effect"]
    if small:
        out.append(small_segments(small, rule, class_names))
    undecided = [t for t in tested if t.verdict == "undecided"]
    out += [undecided_segments(t, rule, len(measured), class_names) for t in undecided]
    if not strategies.depended():
        tail = "" if not undecided else f" ({len(undecided)} undecided, below)"
        out.insert(0, [
            {"text": "No token the model depends on", "claim": {"kind": "tokens_none", "tested": len(measured)}},
            {"text": f": deleting any of the {len(measured)} tokens tested (the {rule.top} most relevant of each "
                     f"predicted class, and any named) does not change the predictions by {rule.min_change:.2f} or more "
                     f"beyond deleting as many other words of the same notes{tail}."}])
    return out


def _text(segments: Sequence[dict]) -> str:
    return "".join(seg["text"] for seg in segments)


def token_sentences(strategies: Any, class_names: Sequence[str]) -> list[str]:
    """:func:`token_segments` as plain sentences (the command's output)."""
    return [_text(s) for s in token_segments(strategies, class_names)]


def _verdict_kind(segments: Sequence[dict]) -> str:
    kind = next((seg["claim"]["kind"] for seg in segments if seg.get("claim")), "")
    return {"token_depended": "verdict-bad", "token_small": "note", "token_undecided": "note"}.get(kind, "verdict-good")


def drivers_sentence(cs: Any, names: Sequence[str]) -> str:
    """Which tokens carry a class's relevance, in words."""
    cls = _name(names, cs.predicted_class)
    top = [t for t in cs.tokens if t.relevance_sum > 0][:DRIVERS]
    if not top:
        return f"No token carries positive relevance for the {cs.n_notes} notes predicted '{cls}'."
    listed = ", ".join(f"'{t.token}' (in {t.notes} notes, {t.relevance_mean:.0%} of their relevance)" for t in top)
    return f"The {cs.n_notes} notes predicted '{cls}' draw most of their relevance from {listed}."


def note_audit_report(
    analysis: Any,
    *,
    class_names: Sequence[str] = (),
    title: str = "medlens cohort audit (notes)",
    subtitle: str = "",
    show_identifiers: bool = False,
    contexts: Mapping[tuple[int, int], Sequence[tuple[str, str]]] | None = None,
    warnings: Sequence[str] = (),
) -> Report:
    """Build the report of a text audit.

    Parameters
    ----------
    analysis : NoteAnalysis
        ``results``, ``settings`` and ``strategies`` of a text audit
        (:func:`medlens.audit.run_notes.analyse_notes`).
    class_names : sequence of str
    show_identifiers : bool
        Whether ``contexts`` (note text) may be shown.
    contexts : mapping, optional
        ``{(class, token id): [(note name, words around the token)]}`` for the depended-on tokens.
    warnings : sequence of str
        What the model's own record says, shown first (:mod:`medlens.app.model_quality`).
    """
    results, settings, strategies = analysis.results, analysis.settings, analysis.strategies
    names = list(class_names)
    rule = strategies.rule
    report = Report(title, subtitle or f"{len(results)} notes; tokens ranked by {strategies.method}")

    sec = report.section("Summary")
    for warning in warnings:
        sec.add_text(warning, kind="verdict-bad")
    for segments in token_segments(strategies, names):
        sec.add_sentence(segments, kind=_verdict_kind(segments))
    for cs in strategies.classes:
        sec.add_text(drivers_sentence(cs, names))
    labelled = [r for r in results if r.label is not None]
    if labelled:
        acc = sum(r.label == r.predicted for r in labelled) / len(labelled)
        sec.add_text(f"Accuracy on the {len(labelled)} labelled notes: {acc:.1%}.")
    sec.add_text(
        f"How this works: every note is explained for its predicted class by {', '.join(settings.all_methods)}. A "
        f"token's relevance in a note is its share of the note's absolute {strategies.method} relevance; per predicted "
        "class the shares are summed over the notes (relevance) and averaged over the notes that contain the token. "
        f"The {rule.top} most relevant tokens of each class, and any named with --tokens, are tested: each is deleted "
        "from the notes of the class that contain it (taken out, the later words moving up) and the change of the "
        f"predicted probability is compared with the change when as many other words of the same note are deleted "
        f"({rule.n_draws} random draws per note), by a two-sided Wilcoxon signed-rank test, Holm-corrected over every "
        f"tested token. The model depends on a token when p < {rule.alpha}, the difference has one sign in at least "
        f"{rule.min_effect:.0%} of the notes, the token's own deletion moves the probability further than the "
        f"others' in that direction, and both average at least {rule.min_change:.2f} in probability (smaller: a "
        f"small effect); a token is undecided when fewer than {rule.min_size} notes contain it or too few for the "
        "corrected level. Relevance alone is not dependence: only a change in the decision is.",
        kind="note",
    )

    sec = report.section("Per-note numbers")
    sec.add_table(["column.metric", "mean", "notes"], [[c, m, n] for c, m, n in metric_means(results, settings.columns())])
    sec.add_text("Deletion AUC: the predicted probability as the highest-scoring tokens are deleted, step by step "
                 "(low: the scores find what the model needs); insertion AUC: as they are put back into an empty note "
                 "(high is good). Every note's numbers are in cases.csv (and cases.parquet), every token of every "
                 "class in tokens.csv.")

    contexts = contexts or {}
    for cs in strategies.classes:
        cls = _name(names, cs.predicted_class)
        sec = report.section(f"Tokens of '{cls}'")
        sec.add_text(drivers_sentence(cs, names))
        shown = cs.tokens[:SHOWN] + [t for t in cs.tokens[SHOWN:] if t.tested]
        if shown:
            sec.add_image(figure_png(token_bars_figure([t.token for t in shown], [t.relevance_sum for t in shown],
                                                       [t.verdict for t in shown], f"tokens of '{cls}'")),
                          f"The {len(shown)} most relevant (and the tested) tokens of the {cs.n_notes} notes predicted "
                          f"'{cls}', coloured by the verdict of their deletion test")
        sec.add_table(
            ["rank", "token", "notes", "notes elsewhere", "relevance", "mean share", "tested notes", "change (deleted)",
             "change (others deleted)", "same-sign share", "p (Wilcoxon, Holm)", "verdict"],
            [[t.rank, t.token, t.notes, t.notes_elsewhere, t.relevance_sum, t.relevance_mean,
              t.n_tested if t.tested else "", -t.change, -t.null_change, t.effect, t.p_value, t.verdict or "not tested"]
             for t in shown],
        )
        sec.add_text("Change: the mean change of the predicted probability when the token is deleted from the notes "
                     "that contain it, and when as many other words of the same notes are; empty where the token was "
                     "not tested.")
        for t in [t for t in cs.tokens if t.verdict == "depended on"]:
            sec.add_sentence(depended_segments(t, cs.n_notes, names, rule), kind="verdict-bad")
            examples = contexts.get((cs.predicted_class, t.token_id), ()) if show_identifiers else ()
            if examples:
                sec.add_table(["note", f"words around '{t.token}'"], [list(e) for e in examples])
        for t in [t for t in cs.tokens if t.verdict == "undecided"]:
            sec.add_sentence(undecided_segments(t, rule, len([u for u in strategies.tested()
                                                              if u.verdict != "undecided"]), names), kind="note")
    return report
