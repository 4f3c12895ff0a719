"""``audit`` on notes: the cohort audit of a text model over a notes file.

:func:`audit_notes` is what :func:`medlens.app.audit.audit_cohort` runs for a text model (a
model file with a tokenizer). Every note is explained with the token methods and the model's
attention and scored (:mod:`medlens.audit.notes`), resumably, on the audit's store and engines
(:mod:`medlens.audit.run_notes`); then each predicted class's tokens are ranked and the top ones
tested by deletion against as many random other tokens of the same notes
(:mod:`medlens.audit.tokens`). OUT gets ``cases.csv`` / ``cases.parquet`` (one row per note,
named ``case-0000``... by row: no note text and no id of the file), ``tokens.csv``, ``identifiers.csv``
(the one file mapping ids to the file's own case ids) and ``audit.html``. ``--show-identifiers``
names notes by the file's case ids and adds the start of each note (``snippet``) to
``cases.csv`` and the words around each depended-on token to the page: notes carry patient
information, so their text stays out of the outputs unless asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medlens.data.notes_cases import NoteColumns, is_notes_file
from medlens.errors import InputError, MedlensError

__all__ = ["audit_notes", "note_settings"]

SNIPPET = 80  # characters of a note in cases.csv (--show-identifiers)
CONTEXT = 6  # words either side of a depended-on token on the page (--show-identifiers)
EXAMPLES = 3  # notes shown per depended-on token (--show-identifiers)


def note_settings(request: Any, model: Any) -> tuple[Any, str]:
    """The :class:`~medlens.audit.notes.NoteAuditSettings` of an :class:`~medlens.app.audit.AuditRequest`
    for the text ``model``, and where its methods came from; refuses, in one line, what only an
    image audit takes."""
    from medlens.app.options import options_per_method, options_per_metric
    from medlens.attribution.sequence import require_attention_model
    from medlens.audit.notes import (
        DEFAULT_NOTE_METHODS,
        NOTE_METRICS,
        NoteAuditSettings,
    )

    require_attention_model(model)
    if request.labels:
        raise InputError("--labels is for scans: a notes file carries its labels in a column (--label-column)")
    if request.leaderboard:
        raise InputError("--leaderboard ranks the methods of image and signal maps; a text audit takes --methods "
                         "(gradient, grad_x_input, integrated_gradients)")
    if request.cluster_method:
        raise InputError("--cluster-method is for image and signal maps: a text audit ranks the tokens by the first "
                         "of --methods")
    methods = tuple(request.methods) or DEFAULT_NOTE_METHODS
    options = options_per_method(request.options, methods) if request.options else {}
    n_steps = 32
    for method, given in options.items():
        extra = [k for k in given if not (method == "integrated_gradients" and k == "n_steps")]
        if extra:
            raise MedlensError(f"option {method}.{extra[0]} does not apply to notes: the token methods take only "
                               "integrated_gradients.n_steps")
        n_steps = int(given.get("n_steps", n_steps))
    steps = set()
    for metric, given in options_per_metric(request.metric_options).items():
        if metric not in NOTE_METRICS or set(given) - {"steps"}:
            raise MedlensError(f"--metric-option {metric}.{next(iter(given), '')} does not apply to notes: a text "
                               "audit takes deletion_auc.steps and insertion_auc.steps (one number for both)")
        steps.add(int(given["steps"]))
    if len(steps) > 1:
        raise MedlensError("deletion_auc.steps and insertion_auc.steps must be equal: a text audit draws both curves "
                           "with the same steps")
    attention = getattr(model, "config", {}).get("attention", "additive") == "additive"
    settings = NoteAuditSettings(methods=methods, attention=attention, n_steps=n_steps,
                                 steps=steps.pop() if steps else 10, cases_per_batch=request.cases_per_batch,
                                 **({"batch_size": request.batch_size} if request.batch_size is not None else {}),
                                 seed=request.seed)
    return settings, "chosen" if request.methods else "default"


def audit_notes(request: Any, model: Any, meta: dict[str, Any]) -> Any:
    """Audit the notes file ``request.data`` with the text ``model`` (an
    :class:`~medlens.app.audit.AuditRequest`); returns an :class:`~medlens.app.audit.AuditOutcome`."""
    from medlens.app.audit import AuditOutcome
    from medlens.audit.notes import NoteSpec, open_notes
    from medlens.audit.run_notes import analyse_notes, run_note_audit
    from medlens.audit.tokens import TokenRule
    from medlens.core.files import write_csv
    from medlens.app.model_quality import model_warnings
    from medlens.report.audit_notes import note_audit_report, token_sentences

    if not is_notes_file(request.data):
        raise InputError(f"{request.data} is not a notes file: a text model is audited on .csv, .tsv, .jsonl or .txt notes")
    settings, source_of_methods = note_settings(request, model)
    rule = TokenRule(top=request.top_tokens)
    class_names = list(meta.get("class_names") or ())
    spec = NoteSpec(str(request.data), meta["tokenizer"], tuple(class_names),
                    NoteColumns(text=request.text_column, label=request.label_column),
                    show_identifiers=request.show_identifiers)
    result = run_note_audit(model, spec, request.out, settings, meta=meta, engine=request.engine,
                            address=request.address, workers=request.workers, restart=request.restart,
                            progress=not request.quiet, limit=request.limit)
    source = open_notes(spec)
    extra = {}
    if request.show_identifiers:
        extra["snippet"] = {i: " ".join(text.split())[:SNIPPET] for i, text in enumerate(source.notes.texts)}
    analysis = analyse_notes(request.out, model=model, rule=rule, tokens=request.tokens, extra=extra)
    write_csv(Path(request.out) / "identifiers.csv", source.identifier_rows(), ["case", "note", "row"])
    names = class_names or list(analysis.info.get("class_names") or [])
    contexts = _contexts(analysis, source) if request.show_identifiers else {}
    where = Path(str(request.data)).name if request.show_identifiers else "notes (rows in identifiers.csv)"
    warnings = [w["message"] for w in model_warnings(meta)]
    report = note_audit_report(
        analysis, class_names=names, show_identifiers=request.show_identifiers, contexts=contexts, warnings=warnings,
        subtitle=f"model {Path(request.model).name}; data {where}; {len(analysis.results)} notes; methods "
                 f"({source_of_methods}): {', '.join(settings.all_methods)}; tokens ranked by {settings.rank_method}"
                 + (f"; {len(analysis.failures)} unreadable note(s) left out (unreadable.csv)" if analysis.failures else "")
                 + (f"; {source.skipped}" if source.skipped else ""),
    )
    report.write(Path(request.out) / "audit.html")
    files = ("cases.csv", "cases.parquet", "tokens.csv", "audit.html", "identifiers.csv") + (
        ("unreadable.csv",) if analysis.failures else ())
    return AuditOutcome(result, analysis, warnings + token_sentences(analysis.strategies, names)
                        + _untested(request.tokens, analysis), tuple(settings.all_methods),
                        source_of_methods, list(result.notes), request.out, True, files=files)


def _untested(tokens: Any, analysis: Any) -> list[str]:
    """A sentence for the ``--tokens`` that no audited note contains: they were asked for and
    could not be tested (``xxxx`` on notes without de-identification placeholders)."""
    seen = {t.token for cs in analysis.strategies.classes for t in cs.tokens}
    absent = [t for t in dict.fromkeys(tokens) if t not in seen]
    if not absent:
        return []
    one = len(absent) == 1
    return [f"Not tested: {', '.join(repr(t) for t in absent)} (named with --tokens) {'is' if one else 'are'} in none "
            f"of the {len(analysis.results)} audited notes."]


def _contexts(analysis: Any, source: Any) -> dict[tuple[int, int], list[tuple[str, str]]]:
    """``{(class, token id): [(note name, words around the token)]}`` for the depended-on tokens,
    in the note's own words (shown only with ``--show-identifiers``)."""
    out: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for t in analysis.strategies.depended():
        shown = []
        for p in (t.hits or t.members)[:EXAMPLES]:
            index = analysis.results[p].index
            tokens, words = source.tokens(index)
            at = tokens.index(t.token) if t.token in tokens else 0
            text = [w or k for k, w in zip(tokens, words)]
            shown.append((source.names[index], " ".join(text[max(0, at - CONTEXT): at + CONTEXT + 1])))
        out[(t.predicted_class, t.token_id)] = shown
    return out
