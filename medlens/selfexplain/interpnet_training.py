"""Training and scoring an InterpNet on a lesion benchmark: the data splits, the two-phase
training recipe and the explanations' BLEU-4 and attribute accuracy (the model itself is in
:mod:`medlens.selfexplain.interpnet`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.progress import Progress
from medlens.core.random import derive_seed, generator, seeded
from medlens.models.training import as_progress_flag, fit
from medlens.errors import InputError, MedlensError
from medlens.selfexplain.bleu import corpus_bleu
from medlens.selfexplain.captions import (
    LesionAttributes,
    attribute_accuracy,
    benchmark_attributes,
    parse_report,
    tokenize,
    write_reports,
)
from medlens.selfexplain.schedule import warmup_cosine

from medlens.selfexplain.interpnet import InterpNet, _Context, generate, Explanations


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
    progress: bool | Progress = True,
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

            def batches(epoch: int):
                order = torch.randperm(n, generator=gen)
                pick = torch.randint(phrasings, (n,), generator=gen)
                for start in range(0, n, batch_size):
                    idx = order[start : start + batch_size]
                    if len(idx) >= 2:  # batch norm needs two samples; one image skips one step
                        yield idx, train_ids[idx, pick[idx]]

            def freeze_statistics(epoch: int) -> None:
                if phase == 2:
                    model.cnn.eval()  # frozen batch-norm statistics

            records = fit(
                model, batches, lambda batch: (step_loss(*batch), len(batch[0])),
                epochs=n_epochs, optimizer=optimizer, scheduler=scheduler, clip_grad=5.0,
                before_epoch=freeze_statistics, validate=lambda: {"val_loss": float(val_loss())},
                score=lambda record: -record["val_loss"], progress=as_progress_flag(progress),
                desc=f"training ({phase}/2)",
            )
            history.extend({"phase": phase, **record} for record in records)

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
    says_its_class : float
        Share of sentences that state the class the classifier predicted (lesion or none): a
        sentence that contradicts the model's own decision, or states neither, explains nothing.
    """

    bleu4: float
    attributes: dict[str, float]
    classifier_accuracy: float
    explanations: Explanations
    references: list[list[str]]
    says_its_class: float = float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"bleu4": self.bleu4, "attribute_accuracy": dict(self.attributes),
                "classifier_accuracy": self.classifier_accuracy, "says_its_class": self.says_its_class}


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
        says_its_class=float(sum(p.present is not None and int(p.present) == int(c)
                                 for p, c in zip(parsed, out.predictions)) / max(len(parsed), 1)),
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
    from medlens.models.metrics import majority_share
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
        "val": {**evaluate_classifier(model, val.inputs, val.labels).as_dict(), "majority_share": majority_share(val.labels)},
        "test": {**evaluate_classifier(model, test.inputs, test.labels).as_dict(),
                 "majority_share": majority_share(test.labels)},
        "explanations": {"greedy": greedy.as_dict(), "beam4": beam.as_dict()},
    }
    return model, meta
