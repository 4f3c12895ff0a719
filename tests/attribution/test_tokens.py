"""Per-token rows of a tiny text model: every score column, attention, tokens.csv and pictures."""

from __future__ import annotations

import csv

import torch

from medlens.attribution.sequence import sequence_attributions
from medlens.attribution.tokens import explain_tokens, token_rows, top_tokens
from medlens.data.tokenizer import NoteTokenizer
from medlens.models.attention_rnn import AttentionRNN
from medlens.viz.notes import write_note_explanation

NOTES = ["Mild cardiomegaly. Lungs clear.", "The lungs are clear. Normal heart size. XXXX seen."]


def tiny():
    tok = NoteTokenizer.train(NOTES, min_frequency=1, max_length=12)
    torch.manual_seed(0)
    model = AttentionRNN(2, vocab_size=tok.vocab_size, embed_dim=6, hidden_size=5, attention_size=4).double().eval()
    return tok, model


def test_token_rows_of_a_tiny_model(tmp_path):
    tok, model = tiny()
    enc = tok.encode(NOTES + ["Cardiomegaly with tamponade."])
    ex = explain_tokens(model, enc.ids, target=1, methods=("grad_x_input", "integrated_gradients"), n_steps=8)
    assert set(ex.columns()) == {"grad_x_input", "integrated_gradients", "attention"}
    assert ex.target.tolist() == [1, 1, 1] and torch.allclose(ex.probabilities.sum(1), torch.ones(3, dtype=ex.probabilities.dtype))
    ref = sequence_attributions(model, enc.ids, 1, "grad_x_input").values
    assert torch.allclose(ex.scores["grad_x_input"], ref)
    _, att = model.forward_with_attention(enc.ids)
    assert torch.allclose(ex.attention, att.detach())
    rows = token_rows(ex, 2, enc.tokens[2], enc.words[2])
    assert [r["position"] for r in rows] == list(range(4))
    assert [r["token"] for r in rows] == ["cardiomegaly", "[unk]", "[unk]", "."]
    assert [r["word"] for r in rows] == ["cardiomegaly", "with", "tamponade", "."]
    assert abs(sum(r["attention"] for r in rows) - 1) < 1e-9
    assert rows[0]["grad_x_input"] == float(ref[2, 0])
    paths = write_note_explanation(tmp_path, rows, title="note 3")
    with open(paths["tokens.csv"], newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == ["position", "token", "word", "grad_x_input", "integrated_gradients", "attention"]
    assert len(table) == 4 and (tmp_path / "note.png").stat().st_size > 1000 and (tmp_path / "note.html").is_file()
    assert (tmp_path / "note_attention.png").is_file()
    top = top_tokens(ex.attention, ex.lengths, k=2)
    assert all(len(t) == 2 for t in top) and all(max(t) < n for t, n in zip(top, ex.lengths.tolist()))


def test_jain_wallace_tests_run_on_encoded_notes():
    from medlens.evaluation.attention import attention_faithfulness

    tok, model = tiny()
    enc = tok.encode(NOTES)
    res = attention_faithfulness(model, enc.ids, n_permutations=5, ig_steps=4)
    summary = res.summary()
    assert summary["n_sequences"] == 2 and summary["tau_gradient_mean"] is not None
