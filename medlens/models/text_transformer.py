"""A small transformer encoder that classifies token sequences: ``medlens train --arch transformer``.

Token and learned position embeddings, ``layers`` pre-norm encoder blocks (``nn.MultiheadAttention``
with the padding masked out as keys, a feed-forward block, residual connections) and an additive
attention pooling over the last layer's states, then a linear classifier. It exposes the pieces
of :class:`medlens.models.attention_rnn.AttentionModel` (``valid_mask``, ``features``,
``encode_features``, ``attend``, ``classify``), so everything medlens does with the attention
BiGRU on notes (token attributions through the embeddings, the pooling attention, the attention
tests) works on it unchanged; its self-attention layers are readable by
:func:`medlens.attribution.transformer.attention_maps.capture_attention` (rollout, Chefer et al.).
"""

from __future__ import annotations

import torch
from torch import nn

from medlens.errors import InputError
from medlens.models.attention_rnn import masked_softmax
from medlens.models.io import register_architecture


class EncoderBlock(nn.Module):
    """Pre-norm self-attention and feed-forward, each with a residual connection."""

    def __init__(self, width: int, heads: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.feed_forward = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a = self.norm1(h)
        a, _ = self.attention(a, a, a, key_padding_mask=~mask, need_weights=False)
        h = h + self.dropout(a)
        return h + self.dropout(self.feed_forward(self.norm2(h)))


@register_architecture("transformer")
class TextTransformer(nn.Module):
    """Transformer encoder classifier of token ids ``(B, L)`` (trailing padding ``pad_id``).

    Parameters
    ----------
    num_classes : int
    vocab_size : int
    width : int
        Embedding and state width.
    heads, layers : int
    hidden : int
        Feed-forward width.
    max_positions : int
        Longest sequence (learned position embeddings).
    dropout : float
    attention_size : int
        Width of the pooling attention's hidden layer.
    pad_id, unk_id : int
    attention : {"additive"}
        The pooling (stored in the config as the BiGRU's is).
    """

    arch = "transformer"
    tokens = True
    stride = 1

    def __init__(self, num_classes: int = 2, *, vocab_size: int, width: int = 32, heads: int = 2, layers: int = 1,
                 hidden: int = 64, max_positions: int = 512, dropout: float = 0.1, attention_size: int = 32,
                 pad_id: int = 0, unk_id: int = 1, attention: str = "additive") -> None:
        super().__init__()
        if attention != "additive":
            raise ValueError(f"the transformer pools with additive attention, got attention={attention!r}")
        if not (0 <= pad_id < vocab_size and 0 <= unk_id < vocab_size):
            raise ValueError(f"pad_id and unk_id must lie in 0..{vocab_size - 1}")
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.config = {"num_classes": num_classes, "vocab_size": vocab_size, "width": width, "heads": heads,
                       "layers": layers, "hidden": hidden, "max_positions": max_positions, "dropout": dropout,
                       "attention_size": attention_size, "pad_id": pad_id, "unk_id": unk_id, "attention": "additive"}
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=pad_id)
        self.positions = nn.Embedding(max_positions, width)
        self.blocks = nn.ModuleList(EncoderBlock(width, heads, hidden, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.attention_proj = nn.Linear(width, attention_size)
        self.attention_score = nn.Linear(attention_size, 1, bias=False)
        self.classifier = nn.Linear(width, num_classes)

    def _check(self, x: torch.Tensor) -> None:
        if x.is_floating_point() or x.ndim != 2:
            raise InputError(f"this transformer reads token ids: expected int64 (batch, length), got {x.dtype} "
                             f"of shape {tuple(x.shape)}")
        if x.shape[1] == 0 or (x < 0).any():
            raise InputError("token ids must be non-negative and sequences non-empty")
        if x.shape[1] > self.config["max_positions"]:
            raise InputError(f"{x.shape[1]} tokens: this transformer reads at most {self.config['max_positions']}")

    def valid_mask(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L)`` bool: True up to each row's last non-pad token (or its given length)."""
        self._check(x)
        size = x.shape[1]
        if lengths is None:
            real = x != self.config["pad_id"]
            lengths = torch.where(real.any(1), size - real.flip(1).int().argmax(1), 0)
        lengths = torch.as_tensor(lengths, device=x.device).long().reshape(-1)
        if lengths.shape != (x.shape[0],) or (lengths < 1).any() or (lengths > size).any():
            raise InputError(f"every row needs a length in 1..{size}; got {lengths.tolist()[:8]}")
        return torch.arange(size, device=x.device)[None] < lengths[:, None]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``(B, E, L)`` (ids beyond the vocabulary read as unknown)."""
        self._check(x)
        ids = torch.where(x >= self.config["vocab_size"], torch.full_like(x, self.config["unk_id"]), x)
        return self.embedding(ids).transpose(1, 2)

    def encode_features(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """States ``(B, L, E)`` of the last block and their validity ``(B, L)``."""
        h = features.transpose(1, 2) + self.positions.weight[: features.shape[-1]]
        for block in self.blocks:
            h = block(h, mask)
        return self.norm(h), mask

    def attend(self, states: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
        """Pooling attention ``(B, L)`` over the valid tokens (rows sum to one)."""
        scores = self.attention_score(torch.tanh(self.attention_proj(states))).squeeze(-1)
        return masked_softmax(scores, step_mask)

    def classify(self, states: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.einsum("bt,btd->bd", attention, states))

    def to_input_resolution(self, attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return attention * mask.to(attention.dtype)

    def forward_with_attention(self, x: torch.Tensor, lengths: torch.Tensor | None = None
                               ) -> tuple[torch.Tensor, torch.Tensor]:
        mask = self.valid_mask(x, lengths)
        states, step_mask = self.encode_features(self.features(x), mask)
        attention = self.attend(states, step_mask)
        return self.classify(states, attention), attention

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, K)``; a Hugging Face style ``attention_mask`` (1 on real tokens) gives the lengths."""
        if attention_mask is not None:
            lengths = attention_mask.sum(1)
        return self.forward_with_attention(x, lengths)[0]


def build_for_inputs(inputs: torch.Tensor, num_classes: int, **options) -> TextTransformer:
    """A :class:`TextTransformer` sized for training token ids ``(N, L)``: the ``transformer`` recipe."""
    if inputs.is_floating_point() or inputs.ndim != 2:
        raise InputError(f"the transformer trains on token ids (N, L); got {inputs.dtype} of shape {tuple(inputs.shape)}")
    defaults = {"vocab_size": max(2, int(inputs.max()) + 1), "max_positions": max(8, int(inputs.shape[1]))}
    return TextTransformer(num_classes, **{**defaults, **options})
