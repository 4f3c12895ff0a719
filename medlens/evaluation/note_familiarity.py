"""Is this note like the notes a text model was trained on? The share of its words the model does not know.

A note in another language, from another kind of service or written in another house style is
mostly made of words the tokenizer never met in the training notes: they all read as ``[unk]``
and the model decides on what is left. At training, :func:`note_familiarity_reference` stores
the unknown-word shares of the *validation* notes (``meta["familiarity"]``: their 95th and 99th
percentiles and largest); :func:`note_familiarity` calls a note unlike the training data when
its share exceeds that 99th percentile (and one word in twenty), a threshold chosen on notes it
is never judged on
(MTSamples urology vs surgery: 0 of 48 test notes flagged, 3 of 3 notes in German, Spanish and
Chinese flagged; a note of numbers only is not, its digits being known words).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["note_familiarity", "note_familiarity_reference", "unknown_shares"]

KIND = "notes"
#: A note is never called unlike for fewer unknown words than this share (one in twenty), however
#: clean the validation notes were: a small validation split of a small vocabulary can have none.
LEAST_THRESHOLD = 0.05


def unknown_shares(ids: torch.Tensor, unknown_id: int, padding_id: int) -> torch.Tensor:
    """Per row of token ids ``(N, L)``: the share of its real (non-padding) tokens that are ``unknown_id``."""
    real = ids != padding_id
    return ((ids == unknown_id) & real).sum(1).double() / real.sum(1).clamp(min=1).double()


def note_familiarity_reference(val_ids: torch.Tensor, *, unknown_id: int, padding_id: int) -> dict[str, Any] | None:
    """What :func:`note_familiarity` compares a note with (plain data for the model file), or
    ``None`` with fewer than two validation notes."""
    if len(val_ids) < 2:
        return None
    shares = unknown_shares(val_ids, unknown_id, padding_id)
    q = torch.quantile(shares, torch.tensor([0.95, 0.99], dtype=torch.float64))
    return {"kind": KIND, "split": "validation", "n_val": len(val_ids), "unknown_id": unknown_id,
            "padding_id": padding_id, "unknown_share": {"q95": float(q[0]), "q99": float(q[1]), "max": float(shares.max())}}


def is_note_reference(reference: dict | None) -> bool:
    """``reference`` was written by :func:`note_familiarity_reference`."""
    return bool(reference) and reference.get("kind") == KIND


def note_familiarity(x: torch.Tensor, reference: dict[str, Any]) -> Any:
    """:class:`~medlens.evaluation.familiarity.Familiarity` of the note ``x`` (token ids ``(1, L)``)."""
    from medlens.evaluation.familiarity import Familiarity

    ref = reference["unknown_share"]
    share = float(unknown_shares(x.reshape(1, -1), reference["unknown_id"], reference["padding_id"])[0])
    threshold = max(ref["q99"], LEAST_THRESHOLD)
    row = ("words unknown to the model", f"{share:.1%} (held-out notes: 99% at most {ref['q99']:.1%}, largest {ref['max']:.1%})")
    if share > threshold:
        reason = (f"{share:.1%} of its words are unknown to the model, more than in 99% of the held-out notes "
                  f"({ref['q99']:.1%}{'' if threshold == ref['q99'] else f'; never below {threshold:.1%}'})")
        sentence = (f"This note is unlike the notes the model was trained on ({reason}). The model reads those words as "
                    "[unk]: its prediction and the highlighted words may mean nothing here.")
        return Familiarity(sentence, True, [row], {"unknown_share": share}, [reason],
                           [{"code": "unlike_training", "message": sentence}], share / threshold)
    sentence = (f"This note resembles the model's training notes in its words ({share:.1%} unknown to the model; "
                f"99% of the held-out notes had at most {ref['q99']:.1%}).")
    return Familiarity(sentence, False, [row], {"unknown_share": share}, [], [], share / threshold)
