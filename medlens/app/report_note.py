"""``report`` on a note: the case report of a text model for one note (a ``.txt`` note, or a row of a notes file).

The page (``report.html``) and its data (``case.json``) hold:

* the prediction and the probability of every class, by name;
* the note's words highlighted by a gradient method (grad x input), integrated gradients and the
  model's attention (:func:`medlens.attribution.tokens.explain_tokens`);
* trust checks: what the model's validation record says of this confidence (the reliability
  table stored at training), whether the note was truncated, the share of its words the model's
  vocabulary does not know (read as ``[unk]``; beyond 99% of the held-out notes' shares the note is
  unlike the training notes: :mod:`medlens.evaluation.note_familiarity`), and whether the attention and the gradient
  method agree on the five most important words;
* with ``--basis-data NOTES`` (the training notes), the most similar notes: nearest by cosine
  similarity of the model's attention-pooled representation, with their labels (and, with
  ``--show-identifiers``, their case ids and text: other patients' notes may name them).

Case ids are withheld unless ``--show-identifiers``; every text on the page is escaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from medlens.app.text_inputs import note_cases
from medlens.core.files import staged_folder, write_json
from medlens.data.notes_cases import NoteCases, NoteColumns
from medlens.errors import InputError

__all__ = ["note_representation", "report_notes"]

METHODS = ("grad_x_input", "integrated_gradients")
TOP = 5
SNIPPET = 400  # characters of a similar note shown


def note_representation(model: Any, x: torch.Tensor) -> torch.Tensor:
    """The attention-pooled state of each row of token ids ``(B, L)``: ``(B, D)`` (what the classifier reads)."""
    with torch.inference_mode():
        mask = model.valid_mask(x)
        states, step_mask = model.encode_features(model.features(x), mask)
        attention = model.attend(states, step_mask)
        return (attention.unsqueeze(-1) * states).sum(1)


def _similar(model: Any, x: torch.Tensor, basis: NoteCases, k: int) -> list[tuple[int, float]]:
    query = torch.nn.functional.normalize(note_representation(model, x), dim=1)
    found = []
    for start in range(0, len(basis), 256):
        rows = basis.encoded.ids[start : start + 256]
        found.append(torch.nn.functional.normalize(note_representation(model, rows), dim=1) @ query[0])
    sims = torch.cat(found)
    top = torch.topk(sims, min(k, len(sims)))
    return [(int(i), float(s)) for s, i in zip(top.values, top.indices)]


def report_notes(request: Any, model: Any, meta: dict[str, Any]) -> Any:
    """Write the report of the note(s) of ``request.input`` (a :class:`~medlens.app.report_case.ReportRequest`)."""
    from medlens.app.case_report import calibration_sentence
    from medlens.app.model_quality import model_warnings
    from medlens.app.report_case import ReportResult
    from medlens.attribution.tokens import explain_tokens, top_tokens
    from medlens.data.tokenizer import UNK
    from medlens.evaluation.familiarity import familiarity
    from medlens.report import Report
    from medlens.viz.text import highlighted_html

    columns = NoteColumns(text=request.text_column, label=request.label_column)
    cases = note_cases(request.input, meta, columns, show_identifiers=request.show_identifiers)
    basis = note_cases(request.basis_data, meta, columns, show_identifiers=request.show_identifiers) if request.basis_data else None
    names = list(meta.get("class_names") or cases.class_names)
    limit = 1 if request.limit is None else request.limit
    indices = [i for i in range(request.index, request.index + limit) if i < len(cases)]
    if not indices:
        raise InputError(f"index {request.index} is out of range: {cases.title} has {len(cases)} notes")
    written = []
    warnings = model_warnings(meta)
    with staged_folder(request.out) as out:
        for i in indices:
            x = cases.load([i]).x
            ex = explain_tokens(model, x, request.target, METHODS, batch_size=request.batch_size,
                                memory_mb=request.memory_mb)
            probs, target = ex.probabilities[0], int(ex.target[0])
            k = int(probs.argmax())
            tokens, words = cases.tokens(i)
            shown = [w or t for t, w in zip(tokens, words)]
            columns_ = ex.columns()
            tops = {m: set(top_tokens(v, ex.lengths, TOP)[0]) for m, v in columns_.items()}
            agreement = len(tops["attention"] & tops["grad_x_input"]) / max(1, len(tops["attention"]))
            unknown = sum(t == UNK for t in tokens) / max(1, len(tokens))
            calibration, _rows = calibration_sentence(meta.get("calibration"), float(probs.max()))
            truncated = bool(cases.encoded.truncated[i])
            familiar = familiarity(model, x, meta.get("familiarity"))
            checks = [
                *[("model", w["message"]) for w in warnings],
                ("familiarity", familiar.sentence),
                ("confidence", calibration or "the model file holds no validation record of its confidence"),
                *([("input", cases.skipped)] if cases.skipped else []),
                ("length", cases.truncation if truncated else
                 f"the whole note was read ({cases.encoded.n_tokens[i]} tokens of {cases.encoded.max_length})"),
                ("vocabulary", f"{unknown:.0%} of the note's words are unknown to the model (read as {UNK})"
                 + ("; its vocabulary may not fit this note" if unknown > 0.2 else "")),
                ("agreement", f"attention and grad x input share {agreement:.0%} of their {TOP} highest-scoring words"
                 + ("; read the highlighted words with care" if agreement < 0.4 else "")),
            ]
            similar = _similar(model, x, basis, request.k) if basis is not None else []
            name = cases.names[i] if request.show_identifiers else f"note {i + 1}"
            report = Report("medlens case report (note)", f"{name} of {cases.title if request.show_identifiers else 'the input'}")
            sec = report.section("Prediction")
            for w in [*warnings, *familiar.warnings]:
                sec.add_text(w["message"], kind="verdict-bad")
            sec.add_table(["class", "probability"], [[c, float(probs[j])] for j, c in enumerate(names)])
            sec.add_text(f"Predicted {names[k]} (p = {float(probs[k]):.3f}); words scored for {names[target]}.")
            sec = report.section("The note, highlighted")
            for m, values in columns_.items():
                sec.add_trusted_html(highlighted_html(shown, values[0, : len(shown)], title=m))
            report.section("Trust checks").add_table(["check", "finding"], checks)
            if basis is not None:
                sec = report.section(f"The {len(similar)} most similar notes of {basis.title}")
                shown_ids = request.show_identifiers
                sec.add_table(["similarity", "label", *(["case", "text"] if shown_ids else [])], [
                    [s, "" if basis.labels[j] is None else names[basis.labels[j]],
                     *([basis.names[j], basis.notes.texts[j][:SNIPPET]] if shown_ids else [])]
                    for j, s in similar])
                if not shown_ids:
                    sec.add_text("Their case ids and text are withheld: other patients' notes may name them "
                                 "(--show-identifiers shows them).")
            summary = {
                "note": name, "label": None if cases.labels[i] is None else names[cases.labels[i]],
                "prediction": k, "predicted_class": names[k],
                "probabilities": {c: float(probs[j]) for j, c in enumerate(names)},
                "explained_class": names[target],
                "top_words": {m: [shown[p] for p in top_tokens(v, ex.lengths, TOP)[0]] for m, v in columns_.items()},
                "methods": list(columns_),
                "checks": dict(checks),
                "warnings": [*warnings, *familiar.warnings],
                "familiarity": familiar.as_dict(),
                "trust": {"level": "caution" if warnings or familiar.unlike or truncated or unknown > 0.2 or agreement < 0.4 else "no warning",
                          "unknown_share": unknown, "top_agreement": agreement, "truncated": truncated},
                "similar": [{"similarity": s, "label": None if basis.labels[j] is None else names[basis.labels[j]],
                             **({"case": basis.names[j]} if request.show_identifiers else {})}
                            for j, s in similar] if basis is not None else None,
            }
            folder = out if len(indices) == 1 else out / f"case-{i}"
            folder.mkdir(parents=True, exist_ok=True)
            report.write(folder / "report.html")
            write_json(folder / "case.json", summary)
            written.append((i, summary, Path(request.out) / ("report.html" if len(indices) == 1 else f"case-{i}/report.html")))
    return ReportResult(request.out, written)
