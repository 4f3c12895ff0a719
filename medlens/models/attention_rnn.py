"""A bidirectional recurrent encoder with additive attention, for signals and token sequences.

The architecture of Bahdanau, Cho and Bengio, "Neural machine translation by jointly learning to
align and translate" (ICLR 2015), used as a classifier the way Jain and Wallace, "Attention is
not Explanation" (NAACL 2019), study it::

    input ──► features (B, F, L) ──► [strided conv front end] ──► BiGRU/BiLSTM states h_t
          ──► a = softmax_t( v^T tanh(W h_t + b) )  over valid steps only
          ──► context c = sum_t a_t h_t ──► linear ──► logits

* Signals ``(B, C, L)`` (ECG, EEG): the features are the channels. An optional front end of
  ``downsample_layers`` strided convolutions (each halves the length) shortens long recordings;
  attention is then over ``ceil(L / 2**k)`` steps and :meth:`AttentionRNN.to_input_resolution`
  spreads each step's weight evenly over the samples it covers. (The convolutions see a few
  neighbouring samples too, so that mapping is the step's footprint, not its receptive field.)
* Tokens ``(B, L)`` int64: an embedding layer turns ids into features ``(B, E, L)``. Id
  ``pad_id`` marks trailing padding; ids at or beyond ``vocab_size`` are read as ``unk_id``.

Variable lengths: padding is excluded everywhere. Padded positions are zeroed before the front
end and after each of its layers, the recurrent layer runs on packed sequences (so the backward
direction starts at the last real position), and padded steps get exactly zero attention. A
padded sequence therefore gives the same logits and attention as the sequence alone.

The model exposes its pieces, which :mod:`medlens.evaluation.attention` and
:mod:`medlens.attribution.sequence` use to perturb the attention itself (permutation test) or
to differentiate with respect to embeddings (token attributions):

``valid_mask(x, lengths) -> (B, L) bool``, ``features(x) -> (B, F, L)``,
``encode_features(features, mask) -> (states (B, T, D), step_mask (B, T))``,
``attend(states, step_mask) -> (B, T)``, ``classify(states, attention) -> (B, K)``, ``stride``.
Any module with these members (see :class:`AttentionModel`) works with those tools.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from medlens.errors import InputError
from medlens.models.io import register_architecture

_CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}
_ATTENTIONS = ("additive", "uniform")


@runtime_checkable
class AttentionModel(Protocol):
    """What the attention analysis needs from a model (structural; no base class)."""

    stride: int

    def valid_mask(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor: ...

    def features(self, x: torch.Tensor) -> torch.Tensor: ...

    def encode_features(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def attend(self, states: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor: ...

    def classify(self, states: torch.Tensor, attention: torch.Tensor) -> torch.Tensor: ...


def is_attention_model(model: object) -> bool:
    """True if ``model`` exposes the pieces of :class:`AttentionModel`."""
    return isinstance(model, nn.Module) and isinstance(model, AttentionModel)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis restricted to ``mask``; masked entries get exactly 0.

    ``scores`` ``(B, T)``, ``mask`` ``(B, T)`` bool with at least one True per row.
    """
    return scores.masked_fill(~mask, float("-inf")).softmax(-1).masked_fill(~mask, 0.0)


def spread_to_input(attention: torch.Tensor, mask: torch.Tensor, stride: int) -> torch.Tensor:
    """Spread step attention ``(B, T)`` evenly over the valid samples each step covers: ``(B, L)``.

    Step ``t`` covers samples ``t*stride .. (t+1)*stride - 1``; ``mask`` ``(B, L)`` marks the
    valid ones. Rows keep their sum (one) and padded samples get zero.
    """
    m = mask.to(attention.dtype)
    if stride == 1:
        return attention * m
    b, size = mask.shape
    t = attention.shape[1]
    cover = F.pad(m, (0, t * stride - size)).view(b, t, stride)  # which samples each step covers
    per_sample = (attention / cover.sum(-1).clamp(min=1))[:, :, None] * cover
    return per_sample.reshape(b, t * stride)[:, :size]


def step_lengths(lengths: torch.Tensor, layers: int) -> torch.Tensor:
    """Valid steps after ``layers`` stride-2 convolutions with padding k//2: ceil(l / 2) each."""
    for _ in range(layers):
        lengths = (lengths + 1) // 2
    return lengths


def lengths_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, size)`` bool, True where the position index is below the row's length."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


@register_architecture("attention-rnn")
class AttentionRNN(nn.Module):
    """Bidirectional GRU/LSTM with additive attention and a linear classifier on the context.

    Parameters
    ----------
    num_classes : int
    in_channels : int, optional
        Channels of signal inputs ``(B, C, L)``. Give exactly one of ``in_channels`` and
        ``vocab_size``.
    vocab_size : int, optional
        Size of the vocabulary of token inputs ``(B, L)``.
    embed_dim : int
        Embedding size (tokens only).
    hidden_size : int
        Units per direction of the recurrent layer; states are ``2 * hidden_size`` wide.
    cell : {"gru", "lstm"}
    downsample_layers : int
        Strided conv blocks before the recurrent layer (signals only); each halves the length.
    front_channels : int
        Channels of the front-end convolutions.
    attention_size : int
        Width of the additive attention's hidden layer.
    attention : {"additive", "uniform"}
        ``"uniform"`` fixes every valid step's weight to ``1 / n_valid`` (mean pooling): the
        baseline against which learned attention is judged.
    pad_id, unk_id : int
        Token ids for padding and for unknown words (tokens only).

    Input ``(B, C, L)`` float signals or ``(B, L)`` int64 tokens; :meth:`forward` returns
    logits ``(B, num_classes)``, :meth:`forward_with_attention` also the attention ``(B, L)``.
    """

    arch = "attention-rnn"

    def __init__(
        self,
        num_classes: int = 2,
        *,
        in_channels: int | None = None,
        vocab_size: int | None = None,
        embed_dim: int = 32,
        hidden_size: int = 32,
        cell: str = "gru",
        downsample_layers: int = 0,
        front_channels: int = 32,
        attention_size: int = 32,
        attention: str = "additive",
        pad_id: int = 0,
        unk_id: int = 1,
    ) -> None:
        super().__init__()
        if (in_channels is None) == (vocab_size is None):
            raise ValueError("give exactly one of in_channels (signals) and vocab_size (tokens)")
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
        if attention not in _ATTENTIONS:
            raise ValueError(f"attention must be one of {_ATTENTIONS}, got {attention!r}")
        if vocab_size is not None and downsample_layers:
            raise ValueError("the convolutional front end is for signals; token models attend to every token")
        if vocab_size is not None and not (0 <= pad_id < vocab_size and 0 <= unk_id < vocab_size):
            raise ValueError(f"pad_id and unk_id must lie in 0..{vocab_size - 1}")
        self.config = {
            "num_classes": num_classes,
            "in_channels": in_channels,
            "vocab_size": vocab_size,
            "embed_dim": embed_dim,
            "hidden_size": hidden_size,
            "cell": cell,
            "downsample_layers": downsample_layers,
            "front_channels": front_channels,
            "attention_size": attention_size,
            "attention": attention,
            "pad_id": pad_id,
            "unk_id": unk_id,
        }
        self.tokens = vocab_size is not None
        self.stride = 2**downsample_layers
        if self.tokens:
            self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
            width = embed_dim
        else:
            width = in_channels
        self.frontend = nn.ModuleList()
        for _ in range(downsample_layers):
            self.frontend.append(
                nn.Sequential(
                    nn.Conv1d(width, front_channels, 5, stride=2, padding=2),
                    nn.BatchNorm1d(front_channels),
                    nn.ReLU(),
                )
            )
            width = front_channels
        self.rnn = _CELLS[cell](width, hidden_size, batch_first=True, bidirectional=True)
        if attention == "additive":
            self.attention_proj = nn.Linear(2 * hidden_size, attention_size)
            self.attention_score = nn.Linear(attention_size, 1, bias=False)
        self.classifier = nn.Linear(2 * hidden_size, num_classes)

    # ----------------------------------------------------------------------------------------
    # the pieces
    # ----------------------------------------------------------------------------------------

    def _check(self, x: torch.Tensor) -> None:
        if self.tokens:
            if x.is_floating_point() or x.ndim != 2:
                raise InputError(
                    f"this attention model reads token ids: expected an int64 tensor (batch, length), "
                    f"got {x.dtype} of shape {tuple(x.shape)}"
                )
            if x.shape[1] == 0 or (x < 0).any():
                raise InputError("token ids must be non-negative and sequences non-empty")
        else:
            c = self.config["in_channels"]
            if not x.is_floating_point() or x.ndim != 3 or x.shape[1] != c or x.shape[2] == 0:
                raise InputError(
                    f"this attention model reads signals: expected floats (batch, {c}, length), "
                    f"got {x.dtype} of shape {tuple(x.shape)}"
                )

    def valid_mask(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L)`` bool: True on real positions, False on trailing padding.

        ``lengths`` ``(B,)`` gives each row's length; without it, signals are full length and
        token rows end at their last non-pad token.
        """
        self._check(x)
        b, size = x.shape[0], x.shape[-1]
        if lengths is None:
            if self.tokens:
                real = x != self.config["pad_id"]
                lengths = torch.where(real.any(1), size - real.flip(1).int().argmax(1), 0)
            else:
                return torch.ones(b, size, dtype=torch.bool, device=x.device)
        lengths = torch.as_tensor(lengths, device=x.device).long().reshape(-1)
        if lengths.shape != (b,):
            raise InputError(f"got {lengths.numel()} lengths for a batch of {b} sequences")
        if (lengths < 1).any() or (lengths > size).any():
            raise InputError(f"every length must lie in 1..{size}; got {lengths.tolist()[:8]}")
        return lengths_mask(lengths, size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-position features ``(B, F, L)``: the signal itself, or the token embeddings."""
        self._check(x)
        if not self.tokens:
            return x
        ids = torch.where(x >= self.config["vocab_size"], torch.full_like(x, self.config["unk_id"]), x)
        return self.embedding(ids).transpose(1, 2)  # (B, L, E) -> (B, E, L)

    def encode_features(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Recurrent states ``(B, T, 2H)`` and their validity ``(B, T)`` for features ``(B, F, L)``."""
        lengths = mask.sum(1)
        # zero the padding so that conv boundary effects match those of the unpadded sequence
        h = features * mask[:, None].to(features.dtype)
        for i, block in enumerate(self.frontend):
            h = block(h)
            step_mask = lengths_mask(step_lengths(lengths, i + 1), h.shape[-1])
            h = h * step_mask[:, None].to(h.dtype)
        steps = step_lengths(lengths, len(self.frontend))
        step_mask = lengths_mask(steps, h.shape[-1])
        seq = h.transpose(1, 2)  # (B, F', T) -> (B, T, F')
        if bool((steps == seq.shape[1]).all()):
            states, _ = self.rnn(seq)
        else:
            # packing makes the backward direction start at each row's last real step
            packed = pack_padded_sequence(seq, steps.cpu(), batch_first=True, enforce_sorted=False)
            states, _ = self.rnn(packed)
            states, _ = pad_packed_sequence(states, batch_first=True, total_length=seq.shape[1])
        return states, step_mask

    def attend(self, states: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
        """Attention ``(B, T)`` over the valid steps (rows sum to one, padding gets 0)."""
        if self.config["attention"] == "uniform":
            return step_mask.to(states.dtype) / step_mask.sum(1, keepdim=True).to(states.dtype)
        scores = self.attention_score(torch.tanh(self.attention_proj(states))).squeeze(-1)
        return masked_softmax(scores, step_mask)

    def classify(self, states: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K)`` from the attention-weighted context ``sum_t a_t h_t``."""
        context = torch.einsum("bt,btd->bd", attention, states)
        return self.classifier(context)

    def to_input_resolution(self, attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Step attention ``(B, T)`` spread over input positions ``(B, L)``: see :func:`spread_to_input`."""
        return spread_to_input(attention, mask, self.stride)

    # ----------------------------------------------------------------------------------------
    # the whole model
    # ----------------------------------------------------------------------------------------

    def forward_with_attention(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, K)`` and attention mapped to input positions ``(B, L)``.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, C, L)`` float signals or ``(B, L)`` int64 tokens.
        lengths : torch.Tensor, optional
            ``(B,)`` real length of each row; the rest is padding.
        """
        mask = self.valid_mask(x, lengths)
        states, step_mask = self.encode_features(self.features(x), mask)
        attention = self.attend(states, step_mask)
        return self.classify(states, attention), self.to_input_resolution(attention, mask)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        mask = self.valid_mask(x, lengths)
        states, step_mask = self.encode_features(self.features(x), mask)
        return self.classify(states, self.attend(states, step_mask))


def build_for_inputs(inputs: torch.Tensor, num_classes: int, **options) -> AttentionRNN:
    """An :class:`AttentionRNN` sized for training inputs: the ``attention-rnn`` recipe.

    Parameters
    ----------
    inputs : torch.Tensor
        ``(N, C, L)`` float signals, or ``(N, L)`` int64 token ids (the vocabulary is taken as
        ``inputs.max() + 1``; larger ids met later are read as unknown words).
    num_classes : int
    **options
        Overrides of the :class:`AttentionRNN` arguments.

    Signals longer than 96 samples get strided conv layers until at most 96 steps remain, which
    keeps the recurrence short enough to train on a CPU in seconds.
    """
    if inputs.is_floating_point():
        if inputs.ndim != 3:
            raise InputError(
                f"attention-rnn trains on signals (N, C, L) or token ids (N, L); got shape {tuple(inputs.shape)}"
            )
        layers = max(0, math.ceil(math.log2(inputs.shape[-1] / 96))) if inputs.shape[-1] > 96 else 0
        defaults = {"in_channels": int(inputs.shape[1]), "downsample_layers": layers}
    else:
        if inputs.ndim != 2:
            raise InputError(f"token inputs must be (N, L) ids; got shape {tuple(inputs.shape)}")
        defaults = {"vocab_size": max(2, int(inputs.max()) + 1)}
    return AttentionRNN(num_classes, **{**defaults, **options})
