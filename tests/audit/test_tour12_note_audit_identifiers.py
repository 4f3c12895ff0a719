"""The notes audit does not name the people its notes name: a vocabulary word read from an
identifier (a doctor's name after "Dr.", an MRN: at least half of its occurrences inside one) is
``[identifier ID]`` in tokens.csv and audit.html unless ``--show-identifiers``.

Seen: notes of urology all signed "Dr. Zelda Quixote", of surgery "Dr. Brandon Okafor": the names
became vocabulary words, and ``medlens audit`` listed 'quixote', 'zelda' and 'okafor' among the
words driving each class in tokens.csv and audit.html, without --show-identifiers.
"""

from __future__ import annotations


from medlens.cli import main
from tests.notes_files import write_notes
from medlens.data.tokenizer import NoteTokenizer
from medlens.models import load_model

NAMES = ("zelda", "quixote", "okafor", "brandon")


def _written(folder):
    return "\n".join(p.read_bytes().decode("latin-1").lower() for p in folder.rglob("*")
                     if p.is_file() and p.suffix in (".csv", ".html"))


def _signed_note(i: int) -> tuple[str, str]:
    urology = i % 2 == 1
    return (f"Seen by Dr. {'Zelda Quixote' if urology else 'Brandon Okafor'}. "
            f"{'Mr. Sample Patient' if i == 0 else 'The patient'} has "
            f"{'kidney stone' if urology else 'hernia mesh'}. MRN {100000 + i}.", "urology" if urology else "surgery")


def test_the_audit_hides_names_that_became_vocabulary_words(tmp_path):
    notes, model = tmp_path / "notes.csv", tmp_path / "m.pt"
    write_notes(notes, [_signed_note(i) for i in range(24)])
    assert main(["train", "--data", str(notes), "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    vocabulary = NoteTokenizer.from_meta(load_model(str(model))[1]).tokenize("zelda quixote okafor")
    assert vocabulary == ["zelda", "quixote", "okafor"]  # the names are words of the model
    out = tmp_path / "audit"
    assert main(["audit", "--model", str(model), "--data", str(notes), "--methods", "grad_x_input", "--top-tokens", "2",
                 "--out", str(out), "--quiet"]) == 0
    text = _written(out)
    assert not [n for n in NAMES if n in text] and "[identifier " in text
    tokens = [row.split(",")[3] for row in (out / "tokens.csv").read_text().splitlines()[1:]]
    assert "patient" in tokens  # a common word, once inside a name ("Mr. Sample Patient"), stays shown
