"""``explain`` on notes: token scores of a text model for each note of a notes file (or one ``.txt`` note).

For every note: ``tokens.csv`` (position, token, the note's own word, one column for the method and
one for the model's attention), ``note.png`` (the note's words highlighted by the method's scores),
``note_attention.png``, ``note.html`` and ``summary.json`` (prediction, probabilities by class name,
what truncation did, whether the note is unlike the training notes:
:mod:`medlens.evaluation.note_familiarity`). One note is written straight into OUT; a file of several notes gives one
folder per note (``note-1``, ``note-2``, ... by row), ``summary.csv`` and ``identifiers.csv`` (notes are named
``case-0000``... unless ``show_identifiers``). Notes longer than the
model's tokenizer allows are truncated, and ``summary.json`` says so.
"""

from __future__ import annotations

import time
from typing import Any

from medlens.app.text_inputs import note_cases
from medlens.core.files import staged_folder, write_csv, write_json
from medlens.core.progress import Progress
from medlens.data.notes_cases import NoteColumns
from medlens.errors import InputError

__all__ = ["explain_notes"]

CHUNK = 32  # notes explained together


def explain_notes(request: Any, model: Any, meta: dict[str, Any]) -> Any:
    """Explain the notes of ``request.input`` (an :class:`~medlens.app.explain_file.ExplainRequest`)
    with ``request.method`` and the attention; returns an :class:`~medlens.app.explain_file.ExplainResult`."""
    from medlens.app.explain_file import CaseOutcome, ExplainResult
    from medlens.app.model_quality import model_warnings
    from medlens.attribution.tokens import TOKEN_METHODS as METHODS
    from medlens.attribution.tokens import explain_tokens, token_rows
    from medlens.evaluation.familiarity import familiarity
    from medlens.viz.notes import write_note_explanation

    if request.method not in METHODS:
        raise InputError(f"notes are explained by {', '.join(METHODS)} (and the attention); got {request.method!r}")
    cases = note_cases(request.input, meta, NoteColumns(text=request.text_column, label=request.label_column),
                       show_identifiers=request.show_identifiers)
    names = list(meta.get("class_names") or cases.class_names)
    n_steps = int(dict(request.options).get("n_steps", 32))
    one = len(cases) == 1
    n = len(cases) if request.limit is None else min(request.limit, len(cases))
    warnings = model_warnings(meta)
    outcomes = []
    progress = Progress(quiet=request.quiet)
    with staged_folder(request.out) as out:
        for start in progress.over(range(0, n, CHUNK), "explain", unit="chunk"):
            rows = list(range(start, min(start + CHUNK, n)))
            batch = cases.load(rows)
            started = time.perf_counter()
            ex = explain_tokens(model, batch.x, request.target, (request.method,), n_steps=n_steps,
                                batch_size=request.batch_size, memory_mb=request.memory_mb)
            seconds = (time.perf_counter() - started) / len(rows)
            for j, i in enumerate(rows):
                folder = out if one else out / f"note-{i + 1}"
                tokens, words = cases.tokens(i)
                familiar = familiarity(model, batch.x[j : j + 1], meta.get("familiarity"))
                note_warnings = [*warnings, *familiar.warnings]
                k, target = int(ex.probabilities[j].argmax()), int(ex.target[j])
                title = f"note {i + 1}: P({_name(target, names)}) = {float(ex.probabilities[j, target]):.3f}"
                write_note_explanation(folder, token_rows(ex, j, tokens, words), title=title, picture=request.method)
                write_json(folder / "summary.json", {
                    "warnings": note_warnings,
                    "familiarity": familiar.as_dict(),
                    "input": f"note {i + 1} of {cases.title}",
                    "input_note": cases.encoded.note_statement(i),
                    "label": None if cases.labels[i] is None else _name(cases.labels[i], names),
                    "prediction": k, "predicted_class": _name(k, names),
                    "probabilities": {_name(c, names): float(p) for c, p in enumerate(ex.probabilities[j])},
                    "method": request.method, "target": target, "target_class": _name(target, names),
                    "tokens": int(ex.lengths[j]), "tokens_in_note": cases.encoded.n_tokens[i],
                    "max_length": cases.encoded.max_length,
                    "files": sorted(["tokens.csv", "note.png", "note_attention.png", "note.html", "summary.json"]),
                })
                outcomes.append(CaseOutcome(cases.names[i], "." if one else folder.name, k, _name(k, names),
                                            float(ex.probabilities[j, k]), seconds, f"predicted {_name(k, names)} "
                                            f"(p={float(ex.probabilities[j, k]):.3f})",
                                            cases.encoded.note_statement(i) or None,
                                            warnings=note_warnings))
        if not one:
            write_csv(out / "summary.csv", [o.row() for o in outcomes])
        write_csv(out / "identifiers.csv", cases.identifier_rows()[:n], ["case", "note", "row"])
    return ExplainResult(request.method, request.out, outcomes, folder=not one,
                         notes=[cases.skipped] if cases.skipped else [])


def _name(k: int, names: list[str]) -> str:
    return names[k] if 0 <= k < len(names) else str(k)
