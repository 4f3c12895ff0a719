"""The explained note's own identifiers (name, MRN, dates, phone, e-mail, address) stay out of
explain's tokens.csv / note.html / note.png and report's HTML / case.json unless ``--show-identifiers``.

Seen: ``medlens explain --model m.pt --input note.txt`` on an MTSamples transcription with a header
"Patient John Smithers, MRN 00482913, DOB 03/14/1961, ..." wrote every one of them into
tokens.csv (the ``word`` column keeps an unknown word's own spelling) and note.html.
"""

from __future__ import annotations


from medlens.cli import main
from tests.notes_files import write_notes

PHI = ("Patient John Smithers, MRN 00482913, DOB 03/14/1961, seen 2024-02-11. Phone (617) 555-0142, "
       "e-mail john.smithers@example.org, 42 Elm Street, Springfield, MA 01103. Dr. Maria Gonzalez. ")
SECRETS = ("Smithers", "00482913", "03/14/1961", "2024-02-11", "555-0142", "example.org", "Elm Street",
           "Springfield", "Gonzalez")


def _train(tmp_path):
    notes, model = tmp_path / "notes.csv", tmp_path / "notes.pt"
    write_notes(notes, [("kidney stone hematuria cystoscopy" if i % 2 else "hernia repair mesh laparoscopic",
                         "urology" if i % 2 else "surgery") for i in range(16)])
    assert main(["train", "--data", str(notes), "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    note = tmp_path / "note.txt"
    note.write_text(PHI + "Cystoscopy showed a kidney stone; hematuria resolved.", encoding="utf-8")
    return model, note


def _written(folder):
    return "\n".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


def test_explain_and_report_hide_the_notes_identifiers_unless_asked(tmp_path):
    model, note = _train(tmp_path)
    for command in ("explain", "report"):
        hidden, shown = tmp_path / f"{command}-hidden", tmp_path / f"{command}-shown"
        extra = ["--method", "grad_x_input"] if command == "explain" else []
        assert main([command, "--model", str(model), "--input", str(note), *extra, "--out", str(hidden), "--quiet"]) == 0
        text = _written(hidden)
        assert not [s for s in SECRETS if s in text], command
        assert "[identifier]" in text and "hematuria" in text  # the rest of the note is still shown
        assert main([command, "--model", str(model), "--input", str(note), *extra, "--show-identifiers",
                     "--out", str(shown), "--quiet"]) == 0
        assert "Smithers" in _written(shown)


def test_finding_identifiers_takes_linear_time():
    """Seen: 5,000 capitalised words took 1.9 s (the "City, ST 01103" pattern backtracked over every
    run of capitalised words; an all-capitals report is such a run) and a 10,000-character run of
    word characters 0.3 s (the e-mail pattern)."""
    import time

    from medlens.data.formats.text_identifiers import identifier_spans

    started = time.perf_counter()
    for text in (" ".join(["Word"] * 20000), "a." * 20000):
        identifier_spans(text)
    assert time.perf_counter() - started < 1.5
