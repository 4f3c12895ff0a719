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

import copy
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from medlens.core import engine
from medlens.core import layers as by_rank
from medlens.core.engine import Budget
from medlens.core.random import derive_seed, generator, seeded
from medlens.core.targets import probabilities
from medlens.errors import InputError, MedlensError
from medlens.models.cnn import CNN
from medlens.selfexplain.bleu import corpus_bleu
from medlens.selfexplain.captions import (
    BOS,
    EOS,
    PAD,
    UNK,
    LesionAttributes,
    attribute_accuracy,
    benchmark_attributes,
    detokenize,
    parse_report,
    tokenize,
    vocabulary,
    write_reports,
)
from medlens.selfexplain.schedule import warmup_cosine



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
    from medlens.core.checks import check_input, evaluation_mode

    if not isinstance(model, InterpNet):
        raise InputError(f"generated explanations need an InterpNet model, got {type(model).__name__}")
    x = check_input(x).to(engine.model_device(model))
    if not isinstance(beam_size, int) or beam_size < 1:
        raise InputError(f"beam_size must be a positive integer, got {beam_size!r}")
    wrapper = _Generate(model, beam_size, max_len or model.config["max_len"], length_penalty)
    with evaluation_mode(wrapper):
        probs = probabilities(engine.forward(model, x, budget)).cpu()
        tokens = engine.forward(wrapper, x, budget).long().cpu()
    return Explanations(probs, probs.argmax(1), tokens, [model.sentence(row) for row in tokens])


# --- data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LesionSplit:
    """Images, labels and ground-truth attributes of one split of a lesion benchmark."""

    inputs: torch.Tensor  # (N, C, *spatial)
    labels: torch.Tensor  # (N,)
    attributes: list[LesionAttributes]


def lesion_split(arrays: Mapping[str, Any], split: str, *, source: str = "the data") -> LesionSplit:
    """One split of a lesion benchmark held as arrays (the dict of
    :func:`medlens.data.synthetic.lesions.make_lesion_benchmark` or an open npz file)."""
    import numpy as np

    attributes = benchmark_attributes(arrays, split, source=source)
    images = torch.from_numpy(np.asarray(arrays[f"{split}_images"], dtype=np.float32))
    labels = torch.from_numpy(np.asarray(arrays[f"{split}_labels"]).astype(np.int64).reshape(-1))
    if not torch.isfinite(images).all():
        raise InputError(f"{source}: {split}_images holds NaN or infinite values")
    return LesionSplit(images[:, None], labels, attributes)  # (N, 1, *spatial): one channel


def load_lesion_split(path: str | os.PathLike, split: str) -> LesionSplit:
    """One split of a lesion benchmark npz file (:func:`medlens.data.synthetic.lesions.write_lesion_benchmark`)."""
    import numpy as np

    from medlens.errors import FileFormatError

    if not os.path.isfile(path):
        raise FileFormatError(f"lesion benchmark file {os.fspath(path)!r} does not exist")
    try:
        with np.load(os.fspath(path), allow_pickle=False) as data:
            return lesion_split(data, split, source=repr(os.fspath(path)))
    except MedlensError:
        raise
    except (OSError, ValueError) as err:
        raise FileFormatError(f"cannot read {os.fspath(path)!r} as an npz file: {err}") from err


def encode_reports(sentences: Sequence[str], vocab: Sequence[str], max_len: int) -> torch.Tensor:
    """Token ids ``(N, max_len + 1)``: each sentence's tokens, ``<eos>``, then ``<pad>``."""
    index = {w: i for i, w in enumerate(vocab)}
    out = torch.zeros(len(sentences), max_len + 1, dtype=torch.long)
    for i, s in enumerate(sentences):
        ids = [index.get(t, 3) for t in tokenize(s)][:max_len] + [2]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def _contexts(model: InterpNet, x: torch.Tensor, budget: Budget = Budget()) -> torch.Tensor:
    from medlens.core.checks import evaluation_mode

    wrapper = _Context(model)
    with evaluation_mode(wrapper):
        return engine.forward(wrapper, x, budget)


def _caption_loss(model: InterpNet, context: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy of reference ids ``(B, T)`` (``<pad>`` ignored)."""
    tokens_in = torch.cat([torch.full_like(targets[:, :1], 1), targets[:, :-1]], dim=1)
    logits = model.word_logits(context, tokens_in)
    return nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=0)


def train_interpnet(
    train: LesionSplit,
    val: LesionSplit,
    *,
    epochs: int = 10,
    decoder_epochs: int = 30,
    widths: Sequence[int] = (16, 32, 64),
    hidden: int = 128,
    embed_dim: int = 32,
    grid: int = 2,
    phrasings: int = 8,
    caption_weight: float = 2.0,
    lr: float = 3e-3,
    batch_size: int = 32,
    blind: bool = False,
    seed: int = 0,
    progress: bool = True,
    **model_options: Any,
) -> tuple[InterpNet, list[dict[str, float]]]:
    """Train an InterpNet in two phases.

    1. ``epochs`` of joint training: class cross-entropy plus ``caption_weight`` times the
       sentence loss, back-propagated into the CNN, so that its activations come to hold what
       the sentences talk about (location, size, brightness, shape), not only "lesion or not".
    2. ``decoder_epochs`` with the CNN frozen: the generator alone learns from the frozen
       activations (computed once, so these epochs are cheap), the classifier is unchanged.

    Parameters
    ----------
    train, val : LesionSplit
    epochs, decoder_epochs : int
    phrasings : int
        Reference sentences drawn per training image; every epoch each image is paired with
        one of them at random, so the generator sees many phrasings of the same facts.
    blind : bool
        Train the ablation whose generator ignores the image (see :class:`InterpNet`).
    seed : int
        Seeds the weights, batch order and phrasing draws.

    Returns
    -------
    (model, history)
        The model (eval mode) with the weights of the lowest validation loss in each phase, and
        one record per epoch (``phase`` 1 or 2).
    """
    if epochs < 1 or decoder_epochs < 0:
        raise InputError(f"need epochs >= 1 and decoder_epochs >= 0, got {epochs} and {decoder_epochs}")
    if len(train.labels) < 2 or len(val.labels) < 1:
        raise InputError(
            f"training needs at least two training and one validation image, got {len(train.labels)} "
            f"and {len(val.labels)}"
        )
    x = train.inputs
    gen = generator(seed, "batches")
    # weight initialisation and dropout draw from torch's global generator: fork it for the run
    with seeded(seed):
        model = InterpNet(
            x.ndim - 2, x.shape[1], max(2, int(train.labels.max()) + 1), widths,
            input_shape=tuple(x.shape[1:]), embed_dim=embed_dim, hidden=hidden, grid=grid, blind=blind, **model_options,
        )
        max_len = model.config["max_len"]
        bank = write_reports(train.attributes, seed=seed, per_case=phrasings)
        train_ids = torch.stack([encode_reports(s, model.vocab, max_len) for s in zip(*bank)], 1)  # (N, P, T)
        val_ids = encode_reports([r[0] for r in write_reports(val.attributes, seed=derive_seed(seed, "validation reports"))], model.vocab, max_len)
        n = len(x)
        history: list[dict[str, float]] = []

        def run_phase(phase: int, n_epochs: int, step_loss, val_loss) -> None:
            params = [p for p in model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
            scheduler = warmup_cosine(optimizer, n_epochs * -(-n // batch_size), warmup=0.2)
            best_state, best = None, float("inf")
            bar = tqdm(range(n_epochs), desc=f"training ({phase}/2)", unit="epoch", disable=not progress, leave=False)
            for epoch in bar:
                model.train()
                if phase == 2:
                    model.cnn.eval()  # frozen batch-norm statistics
                order = torch.randperm(n, generator=gen)
                pick = torch.randint(phrasings, (n,), generator=gen)
                total = 0.0
                for start in range(0, n, batch_size):
                    idx = order[start : start + batch_size]
                    if len(idx) < 2:
                        continue  # batch norm needs two samples; one image skips one step
                    loss = step_loss(idx, train_ids[idx, pick[idx]])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(params, 5.0)
                    optimizer.step()
                    scheduler.step()
                    total += float(loss.detach()) * len(idx)
                model.eval()
                with torch.no_grad():
                    v = float(val_loss())
                history.append({"phase": phase, "epoch": epoch + 1, "loss": total / n, "val_loss": v})
                bar.set_postfix(loss=f"{total / n:.3f}", val_loss=f"{v:.3f}")
                if v < best:
                    best, best_state = v, copy.deepcopy(model.state_dict())
            if best_state is not None:
                model.load_state_dict(best_state)

        def joint_loss(inputs: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
            logits, context = model.introspect(inputs)
            return nn.functional.cross_entropy(logits, labels) + caption_weight * _caption_loss(model, context, ids)

        run_phase(
            1, epochs,
            lambda idx, ids: joint_loss(x[idx], train.labels[idx], ids),
            lambda: joint_loss(val.inputs, val.labels, val_ids),
        )
        if decoder_epochs:
            for p in model.cnn.parameters():
                p.requires_grad_(False)
            try:
                train_ctx, val_ctx = _contexts(model, x), _contexts(model, val.inputs)
                run_phase(
                    2, decoder_epochs,
                    lambda idx, ids: _caption_loss(model, train_ctx[idx], ids),
                    lambda: _caption_loss(model, val_ctx, val_ids),
                )
            finally:
                for p in model.cnn.parameters():
                    p.requires_grad_(True)
        return model.eval(), history


@dataclass(frozen=True)
class ExplanationScores:
    """Quality of generated explanations on one split.

    Attributes
    ----------
    bleu4 : float
        Corpus BLEU-4 against ``n_references`` independently phrased reference reports per case.
    attributes : dict
        :func:`medlens.selfexplain.captions.attribute_accuracy` of the parsed sentences.
    classifier_accuracy : float
    explanations : Explanations
    references : list of list of str
    """

    bleu4: float
    attributes: dict[str, float]
    classifier_accuracy: float
    explanations: Explanations
    references: list[list[str]]

    def as_dict(self) -> dict[str, Any]:
        return {"bleu4": self.bleu4, "attribute_accuracy": dict(self.attributes),
                "classifier_accuracy": self.classifier_accuracy}


def evaluate_explanations(
    model: InterpNet,
    data: LesionSplit,
    *,
    beam_size: int = 1,
    n_references: int = 4,
    seed: int = 0,
    batch_size: int | None = None, memory_mb: float | None = None,
) -> ExplanationScores:
    """BLEU-4 and attribute accuracy of the model's explanations of ``data``."""
    budget = Budget(batch_size, memory_mb)
    out = generate(model, data.inputs, beam_size=beam_size, **budget.kwargs())
    refs = write_reports(data.attributes, seed=seed, per_case=n_references)
    bleu = corpus_bleu([tokenize(s) for s in out.sentences], [[tokenize(r) for r in rs] for rs in refs])
    parsed = [parse_report(s) for s in out.sentences]
    return ExplanationScores(
        bleu4=bleu.bleu,
        attributes=attribute_accuracy(parsed, data.attributes),
        classifier_accuracy=float((out.predictions == data.labels.cpu()).double().mean()),
        explanations=out,
        references=refs,
    )


def train_on_lesions(
    path: str | os.PathLike, *, epochs: int = 10, seed: int = 0, progress: bool = True, **options: Any
) -> tuple[InterpNet, dict[str, Any]]:
    """Train an InterpNet on a lesion benchmark npz and score it: ``medlens train --arch interpnet``.

    ``epochs`` are joint epochs; the generator then trains alone for ``5 * epochs`` (on
    precomputed activations, so these epochs are cheap) unless ``decoder_epochs`` is given.

    Returns
    -------
    (model, meta)
        ``meta`` holds the data set, class names, input shape, histories, the classifier's
        validation and test scores and the explanations' BLEU-4 and attribute accuracy
        (greedy and beam search) on the test split.
    """
    from medlens.models.training import evaluate_classifier

    train, val, test = (load_lesion_split(path, s) for s in ("train", "val", "test"))
    options.setdefault("decoder_epochs", 5 * epochs)
    model, history = train_interpnet(train, val, epochs=epochs, seed=seed, progress=progress, **options)
    greedy = evaluate_explanations(model, test, beam_size=1, seed=seed)
    beam = evaluate_explanations(model, test, beam_size=4, seed=seed)
    meta = {
        "data": os.fspath(path),
        "arch": "interpnet",
        "class_names": ["no lesion", "lesion"],
        "input_shape": list(train.inputs.shape[1:]),
        "epochs": epochs,
        "seed": seed,
        "history": history,
        "val": evaluate_classifier(model, val.inputs, val.labels).as_dict(),
        "test": evaluate_classifier(model, test.inputs, test.labels).as_dict(),
        "explanations": {"greedy": greedy.as_dict(), "beam4": beam.as_dict()},
    }
    return model, meta
