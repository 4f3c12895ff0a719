"""The text audit's pieces against naive references: token deletion, the deletion and insertion
curves, the token test's changes and null draws, the per-class relevance and the verdicts."""

from __future__ import annotations

import math

import pytest
import torch

from medlens.audit.cases import CaseResult
from medlens.audit.notes import NoteAuditSettings, delete_positions, token_curves
from medlens.audit.tokens import TokenRemoval, TokenRule, find_token_strategies
from medlens.core.engine import Budget
from medlens.models import AttentionRNN

VOCAB = ["[pad]", "[unk]", "xxxx", "a", "b", "c", "d", "e"]


def _model(seed: int = 0) -> AttentionRNN:
    torch.manual_seed(seed)
    return AttentionRNN(2, vocab_size=len(VOCAB), embed_dim=6, hidden_size=5, attention_size=4).double().eval()


def _probability(model, tokens: list[int], cls: int, length: int) -> float:
    """The naive reference: one note as a list, padded, through the model alone."""
    ids = torch.zeros(1, length, dtype=torch.long)
    ids[0, : len(tokens or [1])] = torch.tensor(tokens or [1])  # an empty note is one [unk]
    with torch.no_grad():
        return float(torch.softmax(model(ids), 1)[0, cls])


def test_deleting_positions_takes_tokens_out_and_closes_the_gap():
    ids = torch.tensor([[5, 6, 7, 8, 0, 0], [3, 4, 0, 0, 0, 0], [2, 2, 2, 0, 0, 0]])
    remove = torch.tensor([[0, 1, 0, 1, 1, 0], [1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    out = delete_positions(ids, remove)
    assert out.tolist() == [[5, 7, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [2, 2, 2, 0, 0, 0]]


def test_deletion_and_insertion_curves_match_a_naive_loop():
    model, length, steps = _model(), 7, 4
    ids = torch.tensor([[3, 4, 5, 6, 7, 2, 0], [5, 5, 3, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0, 0]])
    torch.manual_seed(1)
    scores = torch.randn(3, length)
    target = torch.tensor([0, 1, 1])
    deletion, insertion = token_curves(model, ids, scores, target, steps, Budget(batch_size=5))
    for i in range(3):
        note = [int(t) for t in ids[i] if t != 0]
        order = sorted(range(len(note)), key=lambda j: (-float(scores[i, j]), j))
        d_curve, i_curve = [], []
        for k in range(steps + 1):
            top = set(order[: round(k * len(note) / steps)])
            d_curve.append(_probability(model, [t for j, t in enumerate(note) if j not in top], int(target[i]), length))
            i_curve.append(_probability(model, [t for j, t in enumerate(note) if j in top], int(target[i]), length))
        trapezoid = lambda c: sum((c[k] + c[k + 1]) / 2 for k in range(steps)) / steps
        assert deletion[i] == pytest.approx(trapezoid(d_curve), abs=1e-10)
        assert insertion[i] == pytest.approx(trapezoid(i_curve), abs=1e-10)


def _note(index: int, tokens: list[int], scores: list[float], predicted: int = 0) -> CaseResult:
    probs = (0.7, 0.3) if predicted == 0 else (0.3, 0.7)
    return CaseResult(index, f"case-{index:04d}", None, predicted, probs, {},
                      torch.tensor([scores, scores], dtype=torch.float32), torch.zeros(0), torch.tensor(tokens))


SETTINGS = NoteAuditSettings(methods=("integrated_gradients",), attention=True)


def test_token_removal_deletes_the_token_and_as_many_others(tmp_path):
    model, length = _model(3), 8
    notes = [_note(0, [3, 4, 3, 5, 6], [1] * 5), _note(1, [3, 3, 4], [1] * 3, predicted=1), _note(2, [4, 5], [1, 1])]
    removal = TokenRemoval(model, notes, length, batch_size=4, seed=0, n_draws=3)
    changes = removal((3,), [0, 1])
    assert changes.shape == (2, 4)
    for row, (note, cls) in enumerate(((notes[0], 0), (notes[1], 1))):
        tokens = note.tokens.tolist()
        before = _probability(model, tokens, cls, length)
        assert changes[row, 0] == pytest.approx(before - _probability(model, [t for t in tokens if t != 3], cls, length))
    assert math.isnan(changes[1, 1])  # the second note has one other token for two deletions
    assert not changes[0].isnan().any()
    # each null draw deletes two of the three other tokens of the first note: one of three outcomes
    tokens = notes[0].tokens.tolist()
    others = [j for j, t in enumerate(tokens) if t != 3]
    possible = {round(_probability(model, tokens, 0, length)
                      - _probability(model, [t for j, t in enumerate(tokens) if j != a and j != b], 0, length), 9)
                for a in others for b in others if a < b}
    assert {round(float(c), 9) for c in changes[0, 1:]} <= possible
    torch.testing.assert_close(changes, removal((3,), [0, 1]), rtol=0, atol=0, equal_nan=True)  # seeded draws


def _strong(token: int, change: float, null: float):
    """A fake removal: notes change by ``change`` when ``token`` is deleted, others by ``null``."""

    def removal(cells, positions):
        n = len(positions)
        own = torch.full((n, 1), change if cells[0] == token else 0.0, dtype=torch.float64)
        jitter = torch.linspace(-0.01, 0.01, n, dtype=torch.float64)[:, None]
        return torch.cat([own + jitter, torch.full((n, 2), null, dtype=torch.float64)], 1)

    return removal


def test_relevance_is_each_notes_share_summed_per_class():
    notes = [_note(0, [3, 4, 3], [1.0, -2.0, 1.0]), _note(1, [4, 5], [3.0, 1.0]), _note(2, [3, 6], [1.0, 1.0], predicted=1)]
    found = find_token_strategies(notes, SETTINGS, VOCAB, rule=TokenRule(top=1))
    zero = {t.token: t for t in found.classes[0].tokens}
    assert zero["b"].relevance_sum == pytest.approx(-2 / 4 + 3 / 4) and zero["b"].notes == 2
    assert zero["a"].relevance_sum == pytest.approx(2 / 4) and zero["a"].relevance_mean == pytest.approx(2 / 4)
    assert zero["a"].notes_elsewhere == 1 and zero["c"].relevance_sum == pytest.approx(1 / 4)
    assert [t.token for t in found.classes[0].tokens] == ["a", "b", "c"]
    # only the top one is tested, and with two notes it is undecided without a test
    assert [t.tested for t in found.classes[0].tokens] == [True, False, False]
    assert found.classes[0].tokens[0].verdict == "undecided" and found.classes[0].tokens[0].why == "few"


def test_verdicts_follow_the_numbers():
    notes = [_note(i, [3, 4, 5, 6], [4.0, 3.0, 2.0, 1.0]) for i in range(30)]
    rule = TokenRule(top=3)
    depended = find_token_strategies(notes, SETTINGS, VOCAB, rule=rule, removal=_strong(3, 0.5, 0.0))
    verdicts = {t.token: t.verdict for t in depended.tested()}
    assert verdicts == {"a": "depended on", "b": "not depended on", "c": "not depended on"}
    a = depended.tested()[0]
    assert a.p_value < 0.01 and a.effect == 1.0 and len(a.hits) == 30 and a.change == pytest.approx(0.5)
    small = find_token_strategies(notes, SETTINGS, VOCAB, rule=rule, removal=_strong(3, 0.05, 0.0))
    assert small.tested()[0].verdict == "small effect" and not small.depended()
    # a token that matters less than the words its null deletes is not depended on, whatever p says
    weaker = find_token_strategies(notes, SETTINGS, VOCAB, rule=rule, removal=_strong(3, 0.0, 0.3))
    assert weaker.tested()[0].p_value < 0.01 and weaker.tested()[0].verdict == "not depended on"
    unmeasured = find_token_strategies(notes, SETTINGS, VOCAB, rule=rule)
    assert {t.why for t in unmeasured.tested()} == {"unmeasured"}
    # eight notes could reach p < 0.01 once, not after the correction for three tests
    few = find_token_strategies(notes[:8], SETTINGS, VOCAB, rule=rule, removal=_strong(3, 0.5, 0.0))
    assert few.tested()[0].verdict == "undecided" and few.tested()[0].why == "power"


def test_named_tokens_must_be_in_the_vocabulary():
    from medlens.errors import InputError

    with pytest.raises(InputError, match="vocabulary"):
        find_token_strategies([_note(0, [3], [1.0])], SETTINGS, VOCAB, tokens=("zzz",))


def test_the_store_keeps_a_notes_token_ids(tmp_path):
    from medlens.audit.store import AuditStore

    notes = [_note(0, [3, 4, 3], [1.0, -2.0, 1.0]), _note(1, [4, 5], [3.0, 1.0])]
    with AuditStore(tmp_path / "audit.sqlite") as store:
        store.start({"settings": "x"})
        store.add(notes)
        back = store.results()
    assert [r.tokens.tolist() for r in back] == [[3, 4, 3], [4, 5]]
    assert back[1].summaries.shape == (2, 2) and back[1].summaries[0].tolist() == [3.0, 1.0]
