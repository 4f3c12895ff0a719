"""A classifier that says why: a CNN whose activations condition an LSTM sentence generator.

Barratt, "InterpNET: Neural introspection for interpretable deep learning" (NIPS 2017 Symposium
on Interpretable Machine Learning), after Hendricks et al., "Generating visual explanations"
(ECCV 2016): the explanation module reads the classifier's *internal activations* and an LSTM
language model conditioned on them writes a sentence saying what the network found. Here the
activations are the output of every convolution block, max-pooled to a coarse ``grid`` (where
something responds) and averaged over the region where the classifier's own class activation map
puts its evidence (what the evidence looks like), with the predicted class probabilities.

Training has two phases (:func:`train_interpnet`): the classifier and the generator learn
jointly, the sentence loss reaching into the CNN so that its activations come to hold what the
sentences talk about; then the CNN is frozen and the generator alone is trained further on the
frozen activations. The sentences therefore report what the final classifier's activations hold.

Training data: the lesion benchmark (:mod:`medlens.data.synthetic.lesions`) with reference reports written
from its ground truth (:mod:`medlens.selfexplain.captions`, several phrasings per attribute).
Decoding: greedy or batched beam search. Scores: corpus BLEU-4 against several reference
phrasings per case, and attribute accuracy of the parsed sentences.

``InterpNet.forward(x)`` returns the class logits, so every attribution method explains its
decisions like any classifier's; :func:`generate` returns the sentences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from medlens.core import engine
from medlens.core import layers as by_rank
from medlens.core.engine import Budget
from medlens.core.targets import probabilities
from medlens.errors import InputError
from medlens.models.cnn import CNN
from medlens.selfexplain.captions import (
    BOS,
    EOS,
    PAD,
    UNK,
    detokenize,
    vocabulary,
)



class InterpNet(nn.Module):
    """CNN classifier with an introspective LSTM explanation generator.

    Parameters
    ----------
    spatial_dims, in_channels, num_classes, widths, kernel_size, input_shape
        Of the classifier, a :class:`medlens.models.CNN` (``self.cnn``).
    vocab : sequence of str, optional
        Tokens, the first four being ``<pad>, <bos>, <eos>, <unk>``; default: the lesion report
        vocabulary (:func:`medlens.selfexplain.captions.vocabulary`).
    embed_dim, hidden : int
        Word embedding and LSTM sizes.
    grid : int
        Each block's output is max-pooled to ``grid`` cells per spatial axis (see
        :meth:`introspect`).
    max_len : int
        Longest generated sentence, in tokens.
    blind : bool
        Ablation: the generator sees no activations (a constant context), only the words so far.
    dropout : float
        Dropout on the context during training.

    ``forward(x)`` ``(B, C, *spatial)`` -> logits ``(B, num_classes)``.
    """

    arch = "interpnet"

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        num_classes: int = 2,
        widths: Sequence[int] = (16, 32, 64),
        kernel_size: int = 3,
        input_shape: Sequence[int] | None = None,
        vocab: Sequence[str] | None = None,
        embed_dim: int = 32,
        hidden: int = 128,
        grid: int = 2,
        max_len: int = 32,
        blind: bool = False,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        vocab = list(vocab) if vocab is not None else vocabulary()
        if vocab[:4] != [PAD, BOS, EOS, UNK]:
            raise InputError(f"the vocabulary must start with {PAD}, {BOS}, {EOS}, {UNK}")
        self.config = {
            "spatial_dims": spatial_dims,
            "in_channels": in_channels,
            "num_classes": num_classes,
            "widths": list(widths),
            "kernel_size": kernel_size,
            "input_shape": list(input_shape) if input_shape is not None else None,
            "vocab": vocab,
            "embed_dim": embed_dim,
            "hidden": hidden,
            "grid": grid,
            "max_len": max_len,
            "blind": blind,
            "dropout": dropout,
        }
        self.vocab = vocab
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.cnn = CNN(spatial_dims, in_channels, num_classes, widths, kernel_size, input_shape)
        context_dim = sum(w * grid**spatial_dims for w in widths) + sum(widths) + num_classes
        # Per-feature standardisation (batch norm), not layer norm: the context mixes features
        # of very different scales, and an attribute carried by a few low-variance features
        # (a lesion's brightness in the first block) would drown in a per-sample normalisation.
        self.context_norm = nn.BatchNorm1d(context_dim)
        # A few hundred images against a context of hundreds of dimensions: dropout keeps the
        # generator from keying its words to individual activations of the training images.
        self.context_dropout = nn.Dropout(dropout)
        self.init_state = nn.Linear(context_dim, 2 * hidden)
        self.context_in = nn.Linear(context_dim, hidden)
        self.embedding = nn.Embedding(len(vocab), embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(embed_dim + hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, len(vocab))
        banned = torch.zeros(len(vocab), dtype=torch.bool)
        banned[[0, 1, 3]] = True  # never generate <pad>, <bos> or <unk>
        self.register_buffer("banned", banned, persistent=False)

    # --- classifier -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features of the classifier ``(B, widths[-1])``."""
        return self.cnn.embed(x)

    def introspect(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits ``(B, K)`` and the context the generator reads ``(B, context_dim)``.

        The context concatenates, for every block, (1) its output max-pooled to ``grid`` cells
        per axis (flattened channel-major): where something responds; and (2) its output averaged
        with the weights of the classifier's own class activation map: what the features look
        like where the evidence for the predicted class lies; then (3) the class probabilities.
        Zeros when ``blind``.
        """
        grid = self.config["grid"]
        h, acts = x, []
        for block in self.cnn.features:
            h = block(h)
            acts.append(h)
        logits = self.cnn.classifier(self.cnn.pool(h).flatten(1))
        evidence = self.evidence_weights(h, logits)  # (B, 1, *last spatial), sums to 1
        grids, focused = [], []
        for a in acts:
            spatial = a.shape[2:]
            # Max, not average: a lesion covers a few pixels of a cell, and averaging over the
            # cell would dilute its response into the background's.
            grids.append(by_rank.adaptive_max_pool_fn(a.ndim - 2)(a, grid).flatten(1))
            w = evidence
            if spatial != evidence.shape[2:]:
                w = nn.functional.interpolate(evidence, size=spatial, mode="nearest")
            w = w / w.flatten(1).sum(1).clamp_min(1e-12).view(-1, *[1] * (w.ndim - 1))
            focused.append((a * w).flatten(2).sum(2))
        context = torch.cat(grids + focused + [probabilities(logits)], dim=1)
        if self.config["blind"]:
            context = torch.zeros_like(context)
        return logits, context

    def evidence_weights(self, last: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Where the classifier found its evidence: the class activation map (Zhou et al. 2016)
        of the predicted class on the last block, as weights ``(B, 1, *spatial)`` summing to 1.

        The CNN ends in global average pooling and one linear layer, so the map is exact:
        ``cam(p) = sum_c w[k, c] a_c(p)``. A softmax over positions turns it into weights (a
        uniform average when the map is flat, e.g. without a lesion).
        """
        weight = self.cnn.classifier.weight[logits.argmax(1)]  # (B, C)
        cam = torch.einsum("bc,bc...->b...", weight, last)  # (B, *spatial)
        return torch.softmax(cam.flatten(1), dim=1).view(cam.shape)[:, None]

    # --- generator --------------------------------------------------------------------------
    def start(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Initial LSTM state ``(1, B, H)`` twice and the per-step context input ``(B, H)``."""
        context = self.context_dropout(self.context_norm(context))
        h, c = torch.tanh(self.init_state(context)).chunk(2, dim=1)
        return h[None].contiguous(), c[None].contiguous(), torch.tanh(self.context_in(context))

    def word_logits(self, context: torch.Tensor, tokens_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced next-token logits ``(B, T, V)`` for input tokens ``(B, T)`` (``<bos>`` first)."""
        h, c, ctx = self.start(context)
        steps = torch.cat([self.embedding(tokens_in), ctx[:, None].expand(-1, tokens_in.shape[1], -1)], dim=2)
        out, _ = self.lstm(steps, (h, c))
        return self.out(out)

    def step(
        self, tokens: torch.Tensor, h: torch.Tensor, c: torch.Tensor, ctx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoding step: log-probabilities ``(B, V)`` of the next token (banned tokens at
        ``-inf``) after ``tokens`` ``(B,)``, and the new state."""
        inp = torch.cat([self.embedding(tokens), ctx], dim=1)[:, None]
        out, (h, c) = self.lstm(inp, (h, c))
        logits = self.out(out[:, 0]).masked_fill(self.banned, float("-inf"))
        return torch.log_softmax(logits, dim=1), h, c

    def generate(
        self, x: torch.Tensor, *, beam_size: int = 1, max_len: int | None = None, length_penalty: float = 0.0
    ) -> torch.Tensor:
        """Token ids ``(B, max_len)`` of the explanation of each input (``<eos>`` then ``<pad>``).

        ``beam_size=1`` is greedy decoding. Prefer :func:`generate` (batched through the engine).
        """
        _, context = self.introspect(x)
        tokens, _ = beam_search(self, context, beam_size=beam_size, max_len=max_len or self.config["max_len"],
                                length_penalty=length_penalty)
        return tokens

    def sentence(self, tokens: Sequence[int]) -> str:
        return detokenize(self.vocab[int(t)] for t in tokens)


def beam_search(
    model: InterpNet, context: torch.Tensor, *, beam_size: int = 1, max_len: int = 32, length_penalty: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched beam search over the generator.

    Each of the ``B`` contexts keeps ``beam_size`` hypotheses; at every step all
    ``beam_size * V`` one-token extensions are scored by their summed log-probability and the
    best ``beam_size`` kept. A hypothesis that emitted ``<eos>`` is extended only by ``<pad>``
    at no cost, so it competes with the live ones on its final score. At the end the hypothesis
    with the best ``score / length ** length_penalty`` wins (``0``: the most probable sentence).
    With ``beam_size=1`` this is greedy decoding.

    Parameters
    ----------
    context : torch.Tensor
        ``(B, context_dim)`` from :meth:`InterpNet.introspect`.

    Returns
    -------
    (tokens, scores)
        ``(B, max_len)`` int64 token ids padded with ``<pad>`` after ``<eos>``; ``(B,)`` the
        summed log-probability of each returned sentence.
    """
    if not isinstance(beam_size, int) or beam_size < 1:
        raise InputError(f"beam_size must be a positive integer, got {beam_size!r}")
    if max_len < 1:
        raise InputError(f"max_len must be at least 1, got {max_len!r}")
    b, vocab = len(context), len(model.vocab)
    pad, bos, eos = 0, 1, 2
    h, c, ctx = model.start(context)
    rows = torch.arange(b, device=context.device).repeat_interleave(beam_size)
    h, c, ctx = h[:, rows], c[:, rows], ctx[rows]
    scores = torch.full((b, beam_size), float("-inf"), dtype=context.dtype, device=context.device)
    scores[:, 0] = 0.0  # one live hypothesis at the start, so the beams do not start as copies
    tokens = torch.full((b, beam_size, 0), pad, dtype=torch.long, device=context.device)
    finished = torch.zeros(b, beam_size, dtype=torch.bool, device=context.device)
    last = torch.full((b * beam_size,), bos, dtype=torch.long, device=context.device)
    after_end = torch.full((vocab,), float("-inf"), dtype=context.dtype, device=context.device)
    after_end[pad] = 0.0
    for t in range(max_len):
        logp, h, c = model.step(last, h, c, ctx)
        logp = torch.where(finished[..., None], after_end, logp.view(b, beam_size, vocab))
        top, idx = (scores[..., None] + logp).view(b, -1).topk(beam_size, dim=1)  # (B, beam)
        src, tok = idx // vocab, idx % vocab
        tokens = torch.cat([tokens.gather(1, src[..., None].expand(-1, -1, t)), tok[..., None]], dim=2)
        finished = finished.gather(1, src) | (tok == eos)
        scores = top
        flat = (torch.arange(b, device=context.device)[:, None] * beam_size + src).flatten()
        h, c, last = h[:, flat], c[:, flat], tok.flatten()
        if bool(finished.all()):
            break
    lengths = (tokens != pad).sum(2).clamp_min(1).to(scores.dtype)
    best = (scores / lengths**length_penalty).argmax(1)
    out = torch.full((b, max_len), pad, dtype=torch.long, device=context.device)
    chosen = tokens[torch.arange(b), best]
    out[:, : chosen.shape[1]] = chosen
    return out, scores[torch.arange(b), best]


class _Generate(nn.Module):
    """``x -> token ids`` (as floats, so the engine can batch it like any model output)."""

    def __init__(self, model: InterpNet, beam_size: int, max_len: int, length_penalty: float) -> None:
        super().__init__()
        self.model, self.beam_size, self.max_len, self.length_penalty = model, beam_size, max_len, length_penalty

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.model.generate(
            x, beam_size=self.beam_size, max_len=self.max_len, length_penalty=self.length_penalty
        )
        return tokens.to(x.dtype)


class _Context(nn.Module):
    """``x -> context`` the generator reads (for training on frozen activations)."""

    def __init__(self, model: InterpNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.introspect(x)[1]


@dataclass(frozen=True)
class Explanations:
    """What an InterpNet says about a batch.

    Attributes
    ----------
    probabilities : torch.Tensor
        ``(B, K)`` class probabilities.
    predictions : torch.Tensor
        ``(B,)`` predicted classes.
    tokens : torch.Tensor
        ``(B, max_len)`` generated token ids.
    sentences : list of str
        The generated explanations.
    """

    probabilities: torch.Tensor
    predictions: torch.Tensor
    tokens: torch.Tensor
    sentences: list[str]


def generate(
    model: InterpNet,
    x: torch.Tensor,
    *,
    beam_size: int = 1,
    max_len: int | None = None,
    length_penalty: float = 0.0,
    batch_size: int | None = None, memory_mb: float | None = None,
) -> Explanations:
    """Classify ``x`` ``(B, C, *spatial)`` and explain each decision in a sentence.

    Both the classifier and the generator run in eval mode through the batched engine.
    ``beam_size=1`` decodes greedily.
    """
    budget = Budget(batch_size, memory_mb)
    from medlens.core.checks import check_fits_model, check_input, evaluation_mode

    if not isinstance(model, InterpNet):
        raise InputError(f"generated explanations need an InterpNet model, got {type(model).__name__}")
    x = check_input(x).to(engine.model_device(model))
    check_fits_model(model, x)  # its sentences were learnt at one size: another one still "runs"
    if not isinstance(beam_size, int) or beam_size < 1:
        raise InputError(f"beam_size must be a positive integer, got {beam_size!r}")
    wrapper = _Generate(model, beam_size, max_len or model.config["max_len"], length_penalty)
    with evaluation_mode(wrapper):
        probs = probabilities(engine.forward(model, x, budget)).cpu()
        tokens = engine.forward(wrapper, x, budget).long().cpu()
    return Explanations(probs, probs.argmax(1), tokens, [model.sentence(row) for row in tokens])


_MOVED = {"LesionSplit", "lesion_split", "load_lesion_split", "encode_reports", "train_interpnet", "ExplanationScores", "evaluate_explanations", "train_on_lesions"}


def __getattr__(name: str):
    """The data splits and the training recipe moved to :mod:`medlens.selfexplain.interpnet_training`."""
    if name in _MOVED:
        from medlens.selfexplain import interpnet_training

        return getattr(interpnet_training, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
