"""Reference reports for the lesion benchmark, and the parser that reads them back.

An explanation generator needs sentences to learn from and a way to check that what it says is
true. The lesion benchmark (:mod:`medlens.data.synthetic.lesions`) knows, for every image, whether a lesion
is present and its centre, equivalent radius, contrast and shape; :func:`write_report` turns these
into one sentence, choosing at random among several templates and several synonyms per value
(so a decoder cannot pass by memorising one template), and :func:`parse_report` maps any sentence
back to attributes by looking up the value words, which lets a generated explanation be scored
attribute by attribute (:func:`attribute_accuracy`).

Attributes (:class:`LesionAttributes`):

==============  ==========================================================================
``present``     a lesion is in the image (the class label)
``vertical``    ``"upper"`` / ``"lower"``: centre row above / below the image middle
``horizontal``  ``"left"`` / ``"right"``: centre column left / right of the middle, in image
                coordinates as displayed (the viewer's left, which on a radiograph in the
                standard view is the patient's right)
``size``        ``"small"`` / ``"large"``: equivalent radius below / above
                :data:`SIZE_THRESHOLD` times the image side (the benchmark's median)
``brightness``  ``"bright"`` / ``"dark"``: sign of the lesion contrast
``shape``       ``"round"`` / ``"elongated"`` / ``"irregular"``
==============  ==========================================================================

Text processing is plain Python (strings, lists); only the conversion of benchmark arrays
touches tensors.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from typing import Any, Iterable, Mapping, Sequence

import torch

from medlens.core.random import generator
from medlens.errors import FileFormatError, InputError, MedlensError

ATTRIBUTES = ("present", "vertical", "horizontal", "size", "brightness", "shape")
LESION_ATTRIBUTES = ATTRIBUTES[1:]
SIZE_THRESHOLD = 0.095

# value -> words that say it. Every word belongs to exactly one value of one attribute, and no
# template uses any of them as filler, so parsing is a dictionary lookup.
WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "vertical": {"upper": ("upper", "top", "superior"), "lower": ("lower", "bottom", "inferior")},
    "horizontal": {"left": ("left", "left-hand"), "right": ("right", "right-hand")},
    "size": {"small": ("small", "tiny", "little"), "large": ("large", "big", "sizeable")},
    "brightness": {
        "bright": ("bright", "hyperdense", "high-intensity"),
        "dark": ("dark", "hypodense", "low-intensity"),
    },
    "shape": {
        "round": ("round", "circular", "rounded"),
        "elongated": ("elongated", "oblong", "oval"),
        "irregular": ("irregular", "lobulated", "ill-defined"),
    },
}
NOUNS = ("lesion", "nodule", "spot")
NEGATIONS = ("no", "without", "normal")

# {v} {h}: location words, {s} size, {b} brightness, {sh} shape, {n} noun.
LOCATIONS = (
    "in the {v} {h} region",
    "in the {h} {v} part of the image",
    "at the {v} {h}",
    "in the {v} {h} quadrant",
)
PRESENT_TEMPLATES = (
    "a {s} {b} {sh} {n} {loc} .",
    "there is a {sh} {n} {loc} , {s} and {b} .",
    "{s} {b} {n} with a {sh} outline {loc} .",
    "the image shows a {b} {n} of {s} size {loc} , {sh} in shape .",
    "{loc} : {s} {sh} {b} {n} .",
)
ABSENT_TEMPLATES = (
    "no lesion is seen .",
    "the image shows no focal lesion .",
    "there is no visible nodule .",
    "normal image without lesion .",
    "no abnormality is detected .",
)

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)

_TOKEN = re.compile(r"[a-z]+(?:-[a-z]+)*|[.,:;]")
_ARTICLE = re.compile(r"\ba (?=[aeiou])")


@dataclass(frozen=True)
class LesionAttributes:
    """What a report says (or the ground truth knows) about one image.

    Lesion attributes are ``None`` when absent from the image, or when a parsed sentence does not
    state them (or states contradictory values).
    """

    present: bool | None
    vertical: str | None = None
    horizontal: str | None = None
    size: str | None = None
    brightness: str | None = None
    shape: str | None = None

    def __post_init__(self) -> None:
        for name in LESION_ATTRIBUTES:
            value = getattr(self, name)
            if value is not None and value not in WORDS[name]:
                raise InputError(f"{name} must be one of {', '.join(WORDS[name])} or None, got {value!r}")

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def tokenize(text: str) -> list[str]:
    """Lower-case words (hyphenated words kept whole) and punctuation marks."""
    return _TOKEN.findall(text.lower())


def detokenize(tokens: Iterable[str]) -> str:
    """Join tokens into a sentence (no space before punctuation), stopping at ``<eos>``."""
    out: list[str] = []
    for tok in tokens:
        if tok == EOS:
            break
        if tok in (PAD, BOS):
            continue
        if out and tok in ".,:;":
            out[-1] += tok
        else:
            out.append(tok)
    return " ".join(out)


def vocabulary() -> list[str]:
    """Every token a reference report can contain, after the special tokens; deterministic."""
    words: set[str] = set()
    for template in PRESENT_TEMPLATES + ABSENT_TEMPLATES + LOCATIONS:
        words.update(tokenize(re.sub(r"\{\w+\}", " ", template)))
    for values in WORDS.values():
        for synonyms in values.values():
            words.update(synonyms)
    words.update(NOUNS)
    words.add("an")  # the article before a vowel (see write_report)
    return list(SPECIALS) + sorted(words)


def _pick(options: Sequence[str], gen: torch.Generator) -> str:
    return options[int(torch.randint(len(options), (), generator=gen))]


def write_report(attributes: LesionAttributes, gen: torch.Generator) -> str:
    """One reference sentence for ``attributes``, phrasing drawn with ``gen``.

    Raises
    ------
    InputError
        A present lesion with an attribute missing.
    """
    if not attributes.present:
        return detokenize(tokenize(_pick(ABSENT_TEMPLATES, gen)))
    missing = [name for name in LESION_ATTRIBUTES if getattr(attributes, name) is None]
    if missing:
        raise InputError(f"a report of a present lesion needs every attribute; missing: {', '.join(missing)}")
    word = {name: _pick(WORDS[name][getattr(attributes, name)], gen) for name in LESION_ATTRIBUTES}
    loc = _pick(LOCATIONS, gen).format(v=word["vertical"], h=word["horizontal"])
    text = _pick(PRESENT_TEMPLATES, gen).format(
        s=word["size"], b=word["brightness"], sh=word["shape"], n=_pick(NOUNS, gen), loc=loc
    )
    return detokenize(tokenize(_ARTICLE.sub("an ", text)))


def write_reports(attributes: Sequence[LesionAttributes], *, seed: int = 0, per_case: int = 1) -> list[list[str]]:
    """``per_case`` independently phrased sentences for each case (``[case][variant]``)."""
    gen = generator(seed, "captions")
    return [[write_report(a, gen) for _ in range(per_case)] for a in attributes]


_LOOKUP: dict[str, tuple[str, str]] = {
    w: (name, value) for name, values in WORDS.items() for value, synonyms in values.items() for w in synonyms
}


def parse_report(text: str) -> LesionAttributes:
    """Read the attributes a sentence states.

    A negation word (``no``, ``without``, ``normal``) means no lesion; otherwise a lesion noun or
    any attribute word means a lesion; a sentence with neither states nothing
    (``present=None``). An attribute whose words name two different values is ``None``.
    """
    tokens = tokenize(text)
    if any(t in NEGATIONS for t in tokens):
        return LesionAttributes(False)
    found: dict[str, set[str]] = {name: set() for name in LESION_ATTRIBUTES}
    for t in tokens:
        if t in _LOOKUP:
            name, value = _LOOKUP[t]
            found[name].add(value)
    if not any(t in NOUNS for t in tokens) and not any(found.values()):
        return LesionAttributes(None)
    values = {name: next(iter(v)) if len(v) == 1 else None for name, v in found.items()}
    return LesionAttributes(True, **values)


def attributes_from_benchmark(
    labels: torch.Tensor,
    centers: torch.Tensor,
    radii: torch.Tensor,
    contrasts: torch.Tensor,
    shapes: torch.Tensor,
    *,
    image_size: Sequence[int],
    shape_names: Sequence[str] = ("round", "elongated", "irregular"),
) -> list[LesionAttributes]:
    """Ground-truth attributes of lesion-benchmark cases.

    Parameters
    ----------
    labels : torch.Tensor
        ``(N,)`` 1 = lesion present.
    centers : torch.Tensor
        ``(N, spatial_dims)`` lesion centre in pixels (``row, col`` in 2D, ``depth, row, col`` in
        3D); rows and columns give the vertical and horizontal location.
    radii, contrasts, shapes : torch.Tensor
        ``(N,)`` equivalent radius (pixels), signed contrast, index into ``shape_names``.
    image_size : sequence of int
        The spatial shape; the last two entries are the image height and width.
    """
    height, width = image_size[-2], image_size[-1]
    side = min(height, width)
    out = []
    for i in range(len(labels)):
        if int(labels[i]) != 1:
            out.append(LesionAttributes(False))
            continue
        row, col = float(centers[i, -2]), float(centers[i, -1])
        shape = str(shape_names[int(shapes[i])])
        out.append(
            LesionAttributes(
                True,
                vertical="upper" if row < (height - 1) / 2 else "lower",
                horizontal="left" if col < (width - 1) / 2 else "right",
                size="small" if float(radii[i]) < SIZE_THRESHOLD * side else "large",
                brightness="bright" if float(contrasts[i]) > 0 else "dark",
                shape=shape,
            )
        )
    return out


def benchmark_attributes(arrays: Mapping[str, Any], split: str, *, source: str = "the data") -> list[LesionAttributes]:
    """Ground-truth attributes of one split of a lesion benchmark held as arrays.

    ``arrays`` maps the benchmark keys (:mod:`medlens.data.synthetic.lesions`) to numpy arrays: the dict
    of ``make_lesion_benchmark`` or an open npz file.

    Raises
    ------
    FileFormatError
        A lesion key is missing (the data are not a lesion benchmark).
    """
    import numpy as np

    keys = [f"{split}_{k}" for k in ("labels", "lesion_center", "lesion_radius", "lesion_contrast", "lesion_shape")]
    names = list(arrays.keys()) if hasattr(arrays, "keys") else list(arrays)
    missing = [k for k in keys + [f"{split}_images"] if k not in names]
    if missing:
        raise FileFormatError(
            f"{source} has no {missing[0]!r}: explanation training needs a lesion benchmark "
            "(medlens.data.synthetic.lesions.write_lesion_benchmark)"
        )
    tensors = [torch.from_numpy(np.asarray(arrays[k])) for k in keys]
    shape_names = [str(v) for v in arrays["lesion_shape_names"]] if "lesion_shape_names" in names else None
    kwargs = {"shape_names": shape_names} if shape_names else {}
    return attributes_from_benchmark(*tensors, image_size=tuple(np.shape(arrays[f"{split}_images"])[1:]), **kwargs)


def load_lesion_attributes(path: str | os.PathLike, split: str) -> list[LesionAttributes]:
    """Ground-truth attributes of one split of a lesion benchmark npz file (see
    :func:`benchmark_attributes`)."""
    import numpy as np

    try:
        with np.load(os.fspath(path), allow_pickle=False) as data:
            return benchmark_attributes(data, split, source=repr(os.fspath(path)))
    except MedlensError:
        raise
    except (OSError, ValueError) as err:
        raise FileFormatError(f"cannot read {os.fspath(path)!r} as an npz file: {err}") from err


def attribute_accuracy(predicted: Sequence[LesionAttributes], truth: Sequence[LesionAttributes]) -> dict[str, float]:
    """Share of cases whose stated attributes match the ground truth.

    ``present`` is scored on every case; the lesion attributes on the cases that truly have a
    lesion (an unstated or contradictory attribute counts as wrong). ``mean`` averages the six;
    ``exact`` is the share of cases whose sentence gets everything right.
    """
    if len(predicted) != len(truth):
        raise InputError(f"got {len(predicted)} parsed reports for {len(truth)} cases")
    if not truth:
        raise InputError("attribute accuracy needs at least one case")
    scores: dict[str, float] = {"present": sum(p.present == t.present for p, t in zip(predicted, truth)) / len(truth)}
    positives = [(p, t) for p, t in zip(predicted, truth) if t.present]
    for name in LESION_ATTRIBUTES:
        scores[name] = (
            sum(getattr(p, name) == getattr(t, name) for p, t in positives) / len(positives)
            if positives
            else float("nan")
        )
    valid = [v for v in scores.values() if v == v]
    scores["mean"] = sum(valid) / len(valid)
    scores["exact"] = sum(
        p.present == t.present and (not t.present or all(getattr(p, n) == getattr(t, n) for n in LESION_ATTRIBUTES))
        for p, t in zip(predicted, truth)
    ) / len(truth)
    return scores
