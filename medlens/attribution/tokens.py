"""Explaining a note token by token: one row per token, one score column per method, and attention.

:func:`explain_tokens` runs the sequence attribution methods
(:func:`medlens.attribution.sequence.sequence_attributions`: ``gradient``, ``grad_x_input``,
``integrated_gradients`` on the embeddings) and reads the model's own attention weights, for a
batch of encoded notes; :func:`token_rows` lays one note out as rows ``position, token, word,
<method>..., attention`` (the table ``tokens.csv`` holds; write it with
:func:`medlens.viz.notes.write_note_explanation`). :func:`top_tokens` gives each row's highest
scoring positions, for checks such as "is the finding word among the five top tokens".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from medlens.attribution.sequence import METHODS, pack, require_attention_model, sequence_attributions
from medlens.attribution.token_ids import IDS_METHODS, token_attributions
from medlens.core import engine
from medlens.core.checks import evaluation_mode
from medlens.core.targets import TargetLike, probabilities
from medlens.errors import InputError, UnknownNameError
from medlens.models.attention_rnn import spread_to_input

#: Every method of a note explanation: the sequence methods, then those run on the ids
#: (:mod:`medlens.attribution.token_ids`; attention_rollout and transformer_attribution (Chefer et al.) need self-attention layers, a transformer).
TOKEN_METHODS = METHODS + tuple(m for m in IDS_METHODS if m not in METHODS)

#: The default methods of a note explanation.
DEFAULT_METHODS = ("grad_x_input", "integrated_gradients")


@dataclass(frozen=True)
class TokenExplanation:
    """Per-token scores of a batch of token sequences.

    Attributes
    ----------
    scores : dict of str to torch.Tensor
        Method name -> ``(B, L)`` attribution (zero on padding).
    attention : torch.Tensor or None
        ``(B, L)`` attention weights (rows sum to one), None for a model without attention.
    probabilities : torch.Tensor
        ``(B, K)``.
    target : torch.Tensor
        ``(B,)`` the class each row was explained for.
    lengths : torch.Tensor
        ``(B,)`` real tokens per row.
    """

    scores: dict[str, torch.Tensor]
    attention: torch.Tensor | None
    probabilities: torch.Tensor
    target: torch.Tensor
    lengths: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> dict[str, torch.Tensor]:
        """Every score, then ``attention`` when there is one."""
        out = dict(self.scores)
        if self.attention is not None:
            out["attention"] = self.attention
        return out


def _attention(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        packed = pack(model, x)
        mask = packed[:, -1] > 0.5
        states, step_mask = model.encode_features(packed[:, :-1], mask)
        steps = model.attend(states, step_mask)
        return spread_to_input(steps, mask, getattr(model, "stride", 1))


def explain_tokens(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    *,
    n_steps: int = 32,
    batch_size: int | None = None,
    memory_mb: float | None = None,
) -> TokenExplanation:
    """Scores of every token of every row of ``x`` ``(B, L)`` for each method, and the attention.

    Parameters
    ----------
    model : nn.Module
        A token attention model (:class:`medlens.models.AttentionRNN` trained on notes).
    x : torch.Tensor
        int64 ``(B, L)`` token ids, trailing padding 0 (:meth:`NoteTokenizer.encode`).
    target : int, sequence, tensor or None
        The class to explain (``None``: the predicted class), as in :func:`medlens.explain`.
    methods : sequence of str
        Any of :data:`medlens.attribution.sequence.METHODS`.
    n_steps : int
        Integrated-gradients path points.
    """
    require_attention_model(model)
    if not isinstance(x, torch.Tensor) or x.is_floating_point() or x.ndim != 2:
        raise InputError("explain_tokens takes int64 token ids (batch, length)")
    unknown = [m for m in methods if m not in TOKEN_METHODS]
    if unknown:
        raise UnknownNameError(f"unknown token method {unknown[0]!r}; available: {', '.join(TOKEN_METHODS)}")
    with evaluation_mode(model):
        x = x.to(engine.model_device(model))
        from medlens.attribution.sequence import PackedSequenceModel

        probs = probabilities(engine.forward(PackedSequenceModel(model), pack(model, x), engine.Budget(batch_size, memory_mb))).cpu()
        if target is None:
            target_t = probs.argmax(1)
        elif isinstance(target, int):
            target_t = torch.full((len(x),), int(target), dtype=torch.long)
        else:
            target_t = torch.as_tensor(target, dtype=torch.long).reshape(-1)
            if target_t.numel() == 1:
                target_t = target_t.expand(len(x)).clone()
        if ((target_t < 0) | (target_t >= probs.shape[1])).any():
            from medlens.errors import TargetError

            raise TargetError(f"target {target_t.tolist()[:4]} out of range for {probs.shape[1]} classes")
        scores = {}
        for method in methods:
            if method in METHODS:
                attr = sequence_attributions(model, x, target_t, method, n_steps=n_steps,
                                             batch_size=batch_size, memory_mb=memory_mb)
            else:  # on the ids; rollout and Chefer read through the model's pooling attention
                query = _attention(model, x) if method in ("attention_rollout", "transformer_attribution") else None
                attr = token_attributions(model, x, None, method, target=target_t.to(x.device), n_steps=n_steps,
                                          pad_id=model.config["pad_id"], query=query,
                                          embedding=getattr(model, "embedding", None))
            scores[method] = attr.values.detach().cpu()
        attention = None
        if getattr(model, "config", {}).get("attention", "additive") == "additive":
            attention = _attention(model, x).cpu()
        lengths = model.valid_mask(x).sum(1).cpu()
    return TokenExplanation(scores, attention, probs, target_t.cpu(), lengths, {"n_steps": n_steps})


def token_rows(
    explanation: TokenExplanation,
    row: int,
    tokens: Sequence[str],
    words: Sequence[str] | None = None,
    *,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The rows of ``tokens.csv`` for sequence ``row``: position, token, word, one column per score.

    ``tokens`` are the vocabulary tokens of the row (``Encoded.tokens[row]``), ``words`` the
    note's own spelling (``Encoded.words[row]``); ``offset`` shifts positions (a chunk of a note).
    """
    n = int(explanation.lengths[row])
    if len(tokens) < n:
        raise InputError(f"{len(tokens)} tokens given for a row of {n} real positions")
    cols = explanation.columns()
    out = []
    for i in range(n):
        r: dict[str, Any] = {"position": offset + i, "token": tokens[i]}
        if words is not None:
            r["word"] = words[i]
        for name, values in cols.items():
            r[name] = float(values[row, i])
        out.append(r)
    return out


def top_tokens(values: torch.Tensor, lengths: torch.Tensor, k: int = 5, *, signed: bool = True) -> list[list[int]]:
    """Positions of the ``k`` highest scores of each row among its real tokens.

    ``signed``: rank by value (evidence for the explained class first); else by magnitude.
    """
    v = values.detach().double().clone()
    if not signed:
        v = v.abs()
    out = []
    for i in range(len(v)):
        n = int(lengths[i])
        row = v[i, :n]
        out.append(torch.topk(row, min(k, n)).indices.tolist())
    return out
