"""Clinical notes: reader errors, the tokenizer (placeholders, round trip through a model file), encoding."""

from __future__ import annotations

import json

import pytest
import torch

from medlens.data.formats.text import read_notes, split_by_group
from medlens.data.tokenizer import DEID, PAD, UNK, NoteTokenizer, notes_dataset
from medlens.errors import FileFormatError, InputError

NOTES = [
    ("Heart size is normal. The lungs are clear. No pleural effusion.", "normal", "p1"),
    ("Mild cardiomegaly. Lungs clear. XXXX-year-old with chest pain.", "cardiomegaly", "p1"),
    ("Enlarged cardiac silhouette, cardiomegaly. No pneumothorax.", "cardiomegaly", "p2"),
    ("Normal chest x-XXXX. No acute cardiopulmonary abnormality.", "normal", "p3"),
    ("Stable cardiomegaly; otherwise clear lungs. Dr. [**Name**] notified.", "cardiomegaly", "p4"),
    ("The lungs are clear. Heart size normal. Seen by ___ today.", "normal", "p5"),
]


def write_csv(path, rows, header="case,text,label,group"):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header.split(","))
        for i, (text, label, group) in enumerate(rows):
            w.writerow([f"c{i}", text, label, group])
    return path


def test_reads_csv_jsonl_and_txt(tmp_path):
    notes = read_notes(write_csv(tmp_path / "n.csv", NOTES))
    assert len(notes) == 6 and notes.labels[1] == "cardiomegaly" and notes.cases[0] == "c0"
    assert notes.groups[:3] == ("p1", "p1", "p2")
    assert notes.class_names() == ("cardiomegaly", "normal")
    assert notes.label_indices(["normal", "cardiomegaly"])[:3] == [0, 1, 1]
    jl = tmp_path / "n.jsonl"
    jl.write_text("\n".join(json.dumps({"note": t, "finding": lab}) for t, lab, _ in NOTES) + "\n", encoding="utf-8")
    notes = read_notes(jl, text_column="note", label_column="finding")
    assert notes.labels[2] == "cardiomegaly" and notes.cases[0] == "1" and notes.groups is None
    txt = tmp_path / "one.txt"
    txt.write_text(NOTES[0][0], encoding="utf-8")
    one = read_notes(txt)
    assert one.texts == (NOTES[0][0],) and one.labels is None and one.cases == ("one",)


def test_reader_errors_are_one_line(tmp_path):
    path = write_csv(tmp_path / "n.csv", NOTES, header="case,body,label,group")
    with pytest.raises(FileFormatError, match=r"no text column 'text'; its columns are 'case', 'body'"):
        read_notes(path)
    path = write_csv(tmp_path / "m.csv", NOTES, header="case,text,finding,group")
    with pytest.raises(FileFormatError, match="no label column 'label'"):
        read_notes(path, require_labels=True)
    assert read_notes(path).labels is None  # predicting: labels optional
    empty = write_csv(tmp_path / "e.csv", [NOTES[0], ("  ", "normal", "p9")])
    with pytest.raises(InputError, match=r"empty 'text' in row 3"):
        read_notes(empty)
    bad = tmp_path / "latin.csv"
    bad.write_bytes("text,label\nPatient r\xe9sum\xe9,normal\n".encode("latin-1"))
    with pytest.raises(FileFormatError, match=r"not UTF-8 text \(byte 20"):
        read_notes(bad)
    with pytest.raises(FileFormatError, match="not found"):
        read_notes(tmp_path / "missing.csv")
    with pytest.raises(FileFormatError, match="not a notes file"):
        read_notes(tmp_path / "x.docx")
    jl = tmp_path / "b.jsonl"
    jl.write_text('{"text": "a", "label": "x"}\nnot json\n', encoding="utf-8")
    with pytest.raises(FileFormatError, match="line 2 is not JSON"):
        read_notes(jl)
    for err in (FileFormatError, InputError):
        assert issubclass(err, ValueError)


def test_group_split_keeps_patients_apart():
    groups = [f"p{i // 3}" for i in range(60)]
    train, val, test = split_by_group(groups, val=0.2, test=0.2, seed=1)
    assert sorted(train + val + test) == list(range(60))
    sets = [{groups[i] for i in s} for s in (train, val, test)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert split_by_group(groups, val=0.2, test=0.2, seed=1) == (train, val, test)


def test_tokenizer_placeholders_case_and_punctuation():
    tok = NoteTokenizer.train([t for t, _, _ in NOTES], min_frequency=1, max_length=32)
    assert [tok.token(i) for i in range(3)] == [PAD, UNK, DEID]
    assert tok.tokenize("Normal chest x-XXXX.") == ["normal", "chest", "x", "-", DEID, "."]
    # every placeholder style is the one special token, whatever its length
    assert tok.tokenize("XXXXX [**Name**] ____") == [DEID, DEID, DEID]
    assert tok.tokenize("CARDIOMEGALY;") == ["cardiomegaly", ";"]
    enc = tok.encode("Cardiomegaly with pericardial tamponade.")
    assert enc.tokens[0] == ["cardiomegaly", "with", UNK, UNK, "."]
    assert enc.words[0][2:4] == ["pericardial", "tamponade"]  # the note's own words for unknown tokens
    small = NoteTokenizer.train([t for t, _, _ in NOTES], max_vocab=10, min_frequency=1)
    assert 9 <= small.vocab_size <= 10  # at most max_vocab entries, the specials included


def test_tokenizer_round_trip_through_a_model_file(tmp_path):
    from medlens.models.attention_rnn import AttentionRNN
    from medlens.models.io import load_model, save_model

    tok = NoteTokenizer.train([t for t, _, _ in NOTES], min_frequency=1, max_length=16)
    model = AttentionRNN(2, vocab_size=tok.vocab_size, embed_dim=4, hidden_size=4, attention_size=4)
    save_model(model, tmp_path / "m.pt", {"tokenizer": tok.to_json(), "class_names": ["normal", "cardiomegaly"]})
    _, meta = load_model(tmp_path / "m.pt")
    back = NoteTokenizer.from_meta(meta)
    texts = [t for t, _, _ in NOTES] + ["Unseen words: tamponade XXXX."]
    assert torch.equal(back.encode(texts).ids, tok.encode(texts).ids)
    assert back.max_length == 16 and back.vocab_size == tok.vocab_size
    with pytest.raises(InputError, match="no tokenizer"):
        NoteTokenizer.from_meta({})
    with pytest.raises(FileFormatError, match="stored tokenizer"):
        NoteTokenizer.from_json('{"format": "something else"}')


def test_encoding_states_truncation_and_chunks(tmp_path):
    tok = NoteTokenizer.train([t for t, _, _ in NOTES], min_frequency=1, max_length=8)
    texts = [t for t, _, _ in NOTES]
    enc = tok.encode(texts)
    n_tok = [len(tok.tokenize(t)) for t in texts]
    assert enc.ids.shape == (6, 8) and enc.ids.dtype == torch.long
    assert enc.n_truncated == sum(k > 8 for k in n_tok) > 0
    assert f"{enc.n_truncated} of 6 notes were truncated to 8 tokens" in enc.statement()
    short = tok.encode("Lungs clear.", max_length=8)
    assert short.ids[0].tolist() == [*short.ids[0, :3].tolist(), 0, 0, 0, 0, 0] and short.lengths.item() == 3
    chunks = tok.encode(texts, overflow="chunk", stride=2)
    assert chunks.n_truncated == 0 and len(chunks.ids) > 6
    # every token of every note is in some chunk, in order
    for k, text in enumerate(texts):
        rows = (chunks.note == k).nonzero().flatten().tolist()
        ids = tok.encode(text, max_length=200).ids[0, : n_tok[k]].tolist()
        first = chunks.ids[rows[0], : chunks.lengths[rows[0]]].tolist()
        rest = [chunks.ids[r, 2 : chunks.lengths[r]].tolist() for r in rows[1:]]
        assert first + sum(rest, []) == ids
    probs = torch.rand(len(chunks.ids), 2, dtype=torch.float64)
    per_note = chunks.per_note(probs)
    assert per_note.shape == (6, 2)
    assert torch.allclose(per_note[0], probs[chunks.note == 0].mean(0))
    notes = read_notes(write_csv(tmp_path / "n.csv", NOTES))
    data = notes_dataset(notes, tok, ("normal", "cardiomegaly"), overflow="chunk", stride=2).data
    assert data.inputs.shape[1] == 8 and data.class_names == ("normal", "cardiomegaly")
    assert data.labels.tolist() == [notes.label_indices(("normal", "cardiomegaly"))[i] for i in chunks.note.tolist()]
