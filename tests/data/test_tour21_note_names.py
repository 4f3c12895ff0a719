"""Names written without a title in clinical notes (tour 21).

Seen: "Seen with John Smith today." kept both words in every output of ``explain`` and ``report``
(only names after a title or a label were found), a surname alone later in the note ("Smith
tolerated ...") likewise, and a notes file's ``patient_name`` column did not help find the name
in its own note. Now a capitalised pair that starts with a common given name (the bundled SSA
list), "Surname, Given", every later capitalised occurrence of a name's words, and the patient's
name from a name column are found, in time linear in the text.
"""

from __future__ import annotations

import csv
import time

import pytest

from medlens.cli import main
from medlens.data.formats.text import read_notes
from medlens.data.formats.text_identifiers import GIVEN_NAMES, identifier_spans
from tests.notes_files import write_notes


def _hidden(text: str, names=()) -> list[str]:
    return [text[a:b] for a, b in identifier_spans(text, names)]


@pytest.mark.parametrize("text, names", [
    ("Seen with John Smith today.", ["John Smith"]),
    ("History from Maria Gonzalez-Reyes and the chart.", ["Maria Gonzalez-Reyes"]),
    ("Her daughter, Linda K. Okafor, was present.", ["Linda K. Okafor"]),
    ("Discussed with Nguyen, Thomas.", ["Nguyen, Thomas"]),
    ("Dr. Harold Quimby saw her. Quimby advised rest.", ["Harold Quimby", "Quimby"]),
    ("Kevin Brennan was admitted. Brennan tolerated the procedure.", ["Kevin Brennan", "Brennan"]),
])
def test_bare_names_and_their_later_surnames_are_found(text, names):
    assert _hidden(text) == names


@pytest.mark.parametrize("text", [
    "Dressings consisted of Steri-Strips, Owen silk, 4x4s and Kling.",
    "A Foley catheter was placed. Major depression, Wilson disease and Grace period noted.",
    "She was seen in May 2004. Tanner Stage II. Mallory Weiss tear. Kelly clamp applied.",
    "The patient tolerated the procedure. Virginia Beach trip planned. Seen in the Emergency Department.",
])
def test_words_that_are_also_given_names_are_not_hidden(text):
    assert _hidden(text) == []


def test_a_name_known_from_elsewhere_is_found_wherever_it_is_capitalised():
    text = "SMITHFIELD reports pain. Mr Johnathan was calm; the smithfield ham was not discussed."
    assert _hidden(text, ["Johnathan Smithfield"]) == ["SMITHFIELD", "Johnathan"]


def test_the_given_names_list_is_small_and_has_no_common_words():
    assert 2500 <= len(GIVEN_NAMES) <= 3000 and "John" in GIVEN_NAMES and "Mary" in GIVEN_NAMES
    assert not [n for n in ("May", "Will", "Grace", "Major", "Unknown", "Wilson", "Georgia") if n in GIVEN_NAMES]


def test_finding_names_takes_linear_time():
    started = time.perf_counter()
    for text in (" ".join(["John"] * 20000), "Smith, " * 20000, "John Smith " * 10000, "J" + "a" * 40000):
        identifier_spans(text, ["John Smith"])
    assert time.perf_counter() - started < 2.0


def test_a_notes_files_patient_name_column_hides_the_name_in_its_note(tmp_path):
    """explain's tokens.csv of a note that names its patient only by surname, the CSV's
    ``patient_name`` column giving the full name."""
    path = tmp_path / "notes.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label", "patient_name"])
        for i in range(16):
            words = "kidney stone hematuria cystoscopy" if i % 2 else "hernia repair mesh laparoscopic"
            writer.writerow([f"Okonkwo reports {words}. Seen with Kevin Brennan today.", "urology" if i % 2 else "surgery",
                             "Adaeze Okonkwo"])
    assert read_notes(path).names == ("Adaeze Okonkwo",) * 16
    model = tmp_path / "notes.pt"
    assert main(["train", "--data", str(path), "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    out = tmp_path / "out"
    assert main(["explain", "--model", str(model), "--input", str(path), "--method", "grad_x_input", "--limit", "2",
                 "--out", str(out), "--quiet"]) == 0
    written = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in out.rglob("*.csv")
                        if p.name != "identifiers.csv")
    written += "\n".join(p.read_text(encoding="utf-8") for p in out.rglob("*.html"))
    assert "[identifier]" in written and ("hematuria" in written or "hernia" in written)
    assert not [s for s in ("Okonkwo", "okonkwo", "Brennan", "brennan", "Kevin", "kevin") if s in written]


def test_a_notes_file_without_a_name_column_has_no_names(tmp_path):
    assert read_notes(write_notes(tmp_path / "n.csv", [("a note", "x")])).names is None


def test_names_in_other_alphabets_are_found_by_their_unaccented_given_name():
    assert _hidden("Seen with José García and Zoë Müller today.") == ["José García", "Zoë Müller"]


def test_a_one_word_label_value_is_not_looked_for_elsewhere():
    """A label heads drug and device names too: only a two-word value (or a title's) is a name to find again."""
    text = "Generic Name: Lisinopril. Continue Lisinopril daily. Patient John Smithers. Smithers agreed."
    assert _hidden(text) == ["Lisinopril", "John Smithers", "Smithers"]


def test_a_column_called_name_is_not_taken_for_the_patients_name(tmp_path):
    """A bare ``name`` often names the document: its words ("Discharge Summary") would be hidden everywhere."""
    path = tmp_path / "notes.csv"
    path.write_text("text,label,name\nDischarge Summary of a stone.,urology,Discharge Summary\n", encoding="utf-8")
    assert read_notes(path).names is None
