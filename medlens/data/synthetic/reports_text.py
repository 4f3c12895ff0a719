"""Synthetic radiology-style reports whose label rests on known rationale words.

A report is five to eight short chest-radiograph sentences in random order. Label 1
("pneumonia") reports hold exactly one affirmed finding sentence ("patchy consolidation in the
right lower lobe", "airspace opacity ... consistent with pneumonia"); its finding words
(:data:`RATIONALE_WORDS`) and the sentence that affirms them are the ground-truth rationale:
the token mask marks either the whole finding sentence (``rationale="sentence"``, the default,
a phrase-level human rationale as in the reference document's Figure 9) or only its finding
words (``rationale="words"``). Label 0
reports hold none, but half of them mention the same words negated ("no focal consolidation",
"no evidence of pneumonia"), so a model must read context, not spot words. Both classes share
distractors: other findings that do not decide the label (atelectasis, pleural effusion,
cardiomegaly, lines and tubes, degenerative change) and normal boilerplate.

The vocabulary is fixed by the templates (it does not depend on the seed): id 0 is ``<pad>``
(trailing padding), id 1 ``<unk>``, then the words in sorted order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from medlens.core.random import derive_seed, generator
from medlens.data.datasets import LabelledSet
from medlens.errors import FileFormatError, InputError

CLASS_NAMES = ("no pneumonia", "pneumonia")
PAD, UNK = "<pad>", "<unk>"

#: Words that carry the label when affirmed: the ground-truth rationale of positive reports.
RATIONALE_WORDS = frozenset({"consolidation", "opacity", "infiltrate", "pneumonia", "airspace"})

_SIDE = ("right", "left")
_LOBE = ("upper", "middle", "lower")
_QUAL = ("patchy", "focal", "dense", "new", "ill-defined")

# Templates: lists of alternatives per slot; a rationale slot is marked with a leading "*".
_FINDINGS = (
    (_QUAL, ("*consolidation",), ("in",), ("the",), _SIDE, _LOBE, ("lobe",)),
    (("*airspace",), ("*opacity",), ("in", "at"), ("the",), _SIDE, ("base", "mid zone", "apex"),
     ("consistent with", "suggestive of", "compatible with"), ("*pneumonia",)),
    (_QUAL, ("*infiltrate",), ("in",), ("the",), _SIDE, _LOBE, ("lobe",)),
    (("findings",), ("consistent with", "compatible with"), (_SIDE), _LOBE, ("lobe",), ("*pneumonia",)),
)
_NEGATED = (
    (("no",), ("focal", "new", "definite"), ("consolidation", "infiltrate", "opacity")),
    (("no",), ("evidence of", "radiographic evidence of"), ("pneumonia",)),
    (("no",), ("airspace",), ("disease", "opacity")),
)
_DISTRACTORS = (
    (("the",), ("heart size", "cardiac silhouette"), ("is",), ("normal", "mildly enlarged", "stable")),
    (("mild",), ("cardiomegaly",)),
    (("no",), ("pleural effusion", "pneumothorax")),
    (("small",), _SIDE, ("pleural effusion",)),
    (("bibasilar", "linear", "subsegmental"), ("atelectasis",)),
    (("the",), ("mediastinum", "hilar contour"), ("is",), ("unremarkable", "within normal limits")),
    (("degenerative changes of the",), ("thoracic spine", "shoulders")),
    (_SIDE, ("central venous catheter", "chest tube"), ("in",), ("place", "unchanged position")),
    (("compared with",), ("prior study", "radiograph from yesterday", "the previous examination")),
    (("the lungs are",), ("otherwise",), ("clear", "well expanded")),
    (("frontal and lateral views of the chest",),),
)


def _words(template: Sequence[Sequence[str]], gen: torch.Generator) -> list[tuple[str, bool]]:
    """Fill a template: ``[(word, is_rationale), ...]``."""
    out: list[tuple[str, bool]] = []
    for options in template:
        choice = options[int(torch.randint(len(options), (1,), generator=gen))]
        rationale = choice.startswith("*")
        out.extend((w, rationale) for w in choice.lstrip("*").split())
    return out


def _all_words() -> list[str]:
    words = {"."}
    for group in (_FINDINGS, _NEGATED, _DISTRACTORS):
        for template in group:
            for options in template:
                for choice in options:
                    words.update(choice.lstrip("*").split())
    return sorted(words)


#: The fixed vocabulary: ``VOCAB[id]`` is the word of token ``id``.
VOCAB: tuple[str, ...] = (PAD, UNK, *_all_words())
_IDS = {w: i for i, w in enumerate(VOCAB)}


def make_reports(
    n: int,
    *,
    positive_fraction: float = 0.5,
    negated_fraction: float = 0.5,
    n_sentences: tuple[int, int] = (5, 8),
    rationale: str = "sentence",
    seed: int = 0,
    name: str = "synthetic-reports",
) -> LabelledSet:
    """Generate ``n`` labelled reports with ground-truth rationale masks.

    Parameters
    ----------
    n : int
    positive_fraction : float
        Share of label-1 reports (in random order).
    negated_fraction : float
        Share of label-0 reports that mention a finding word negated.
    n_sentences : (int, int)
        Inclusive range of sentences per report.
    rationale : {"sentence", "words"}
        What the mask marks in positive reports: the affirmed finding sentence (its closing
        "." excluded), or only its finding words (:data:`RATIONALE_WORDS`). A bidirectional
        recurrent encoder carries a word's meaning into its neighbours, so its attention tends
        to land beside the finding words, inside the sentence.
    seed : int

    Returns
    -------
    LabelledSet
        ``inputs`` int64 ``(n, L)`` token ids into :data:`VOCAB` padded with 0 to the longest
        report, ``labels`` ``(n,)``, ``masks`` float32 ``(n, 1, L)`` (1 on rationale tokens of
        positive reports, 0 elsewhere and on every negative report).
    """
    if n < 1:
        raise InputError(f"need at least one report, got n={n}")
    if rationale not in ("sentence", "words"):
        raise InputError(f"rationale must be 'sentence' or 'words', got {rationale!r}")
    gen = generator(seed, "reports")
    labels = torch.zeros(n, dtype=torch.long)
    labels[torch.randperm(n, generator=gen)[: int(round(n * positive_fraction))]] = 1
    reports: list[list[tuple[str, bool]]] = []
    for label in labels.tolist():
        k = int(torch.randint(n_sentences[0], n_sentences[1] + 1, (1,), generator=gen))
        picks = torch.randperm(len(_DISTRACTORS), generator=gen)[: k - 1].tolist()
        sentences = [_words(_DISTRACTORS[i], gen) for i in picks]
        if label == 1:
            key = _words(_FINDINGS[int(torch.randint(len(_FINDINGS), (1,), generator=gen))], gen)
            if rationale == "sentence":
                key = [(w, True) for w, _ in key]
        elif float(torch.rand((), generator=gen)) < negated_fraction:
            key = _words(_NEGATED[int(torch.randint(len(_NEGATED), (1,), generator=gen))], gen)
        else:
            key = None
        if key is not None:
            sentences.insert(int(torch.randint(len(sentences) + 1, (1,), generator=gen)), key)
        reports.append([pair for s in sentences for pair in (*s, (".", False))])
    length = max(len(r) for r in reports)
    tokens = torch.zeros(n, length, dtype=torch.long)
    masks = torch.zeros(n, 1, length)
    for i, report in enumerate(reports):
        tokens[i, : len(report)] = torch.tensor([_IDS[w] for w, _ in report])
        masks[i, 0, : len(report)] = torch.tensor([float(r) for _, r in report])
    return LabelledSet(tokens, labels, masks, name, CLASS_NAMES)


def decode(tokens: torch.Tensor, vocab: Sequence[str] = VOCAB) -> list[str]:
    """Words of one report ``(L,)``, trailing padding dropped; unknown ids read ``<unk>``."""
    ids = tokens.tolist()
    while ids and ids[-1] == 0:
        ids.pop()
    return [vocab[i] if 0 <= i < len(vocab) else UNK for i in ids]


def write_reports_npz(
    path: str | Path, *, n_train: int = 600, n_val: int = 150, n_test: int = 150, seed: int = 0, **options
) -> Path:
    """Write a synthetic report data set in the MedMNIST-like npz layout.

    Keys ``{split}_tokens`` ``(N, L)``, ``{split}_labels``, ``{split}_masks`` ``(N, 1, L)``,
    ``class_names`` and ``vocab`` (the word of each id). Each split draws from its own
    seed, ``derive_seed(seed, split)``; each split is padded to its own longest report.
    """
    import numpy as np  # only to write the file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, object] = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        data = make_reports(n, seed=derive_seed(seed, split), **options)
        arrays[f"{split}_tokens"] = data.inputs.numpy()
        arrays[f"{split}_labels"] = data.labels.numpy()
        arrays[f"{split}_masks"] = data.masks.numpy().astype(np.uint8)
    arrays["class_names"] = np.array(CLASS_NAMES)
    arrays["vocab"] = np.array(VOCAB)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def load_vocab(path: str | Path) -> tuple[str, ...] | None:
    """The ``vocab`` array of an npz data set (word of each token id), or None if it has none."""
    import numpy as np

    try:
        with np.load(Path(path), allow_pickle=False) as data:
            if "vocab" not in data.files:
                return None
            vocab = data["vocab"]
    except (OSError, ValueError) as err:
        raise FileFormatError(f"cannot read the vocabulary of {str(path)!r}: {err}") from err
    if vocab.ndim != 1 or vocab.dtype.kind not in "US":
        raise FileFormatError(f"{str(path)!r}: 'vocab' must be a 1-D array of str")
    return tuple(str(w) for w in vocab.tolist())
