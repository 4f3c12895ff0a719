"""``predict --limit 5`` on mtsamples said "233 of 298 notes were truncated": the count was of the whole
file, not of the five notes predicted. It now counts only the notes used."""

from __future__ import annotations

import csv

from medlens.cli import main
from medlens.data.tokenizer import NoteTokenizer
from medlens.models.attention_rnn import AttentionRNN
from medlens.models.io import save_model

SHORT = "Lungs clear."
LONG = "Heart size is normal. The lungs are clear. No pleural effusion. No pneumothorax today."


def test_predict_with_a_limit_counts_the_truncated_notes_it_used(tmp_path, capsys):
    texts = [SHORT, SHORT, LONG, LONG, LONG, LONG]
    notes = tmp_path / "notes.csv"
    with open(notes, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["case", "text", "label"])
        w.writerows([f"c{i}", t, "normal"] for i, t in enumerate(texts))
    tok = NoteTokenizer.train(texts, min_frequency=1, max_length=6)
    model = AttentionRNN(2, vocab_size=tok.vocab_size, embed_dim=4, hidden_size=4, attention_size=4)
    save_model(model, tmp_path / "m.pt", {"tokenizer": tok.to_json(), "class_names": ["normal", "abnormal"],
                                          "input_kind": "notes"})
    assert main(["predict", "--model", str(tmp_path / "m.pt"), "--data", str(notes), "--limit", "3",
                 "--out", str(tmp_path / "p"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "1 of 3 notes were truncated" in printed and "of 6 notes" not in printed
    assert main(["predict", "--model", str(tmp_path / "m.pt"), "--data", str(notes), "--limit", "2",
                 "--out", str(tmp_path / "q"), "--quiet"]) == 0
    assert "truncated" not in capsys.readouterr().out  # the two notes used are short
