"""Reference reports: every phrasing parses back to the attributes it was written from."""

import itertools
import re

import numpy as np
import pytest
import torch

from medlens.errors import FileFormatError, InputError
from medlens.selfexplain.captions import (
    ABSENT_TEMPLATES,
    LOCATIONS,
    NEGATIONS,
    NOUNS,
    PRESENT_TEMPLATES,
    SIZE_THRESHOLD,
    WORDS,
    LesionAttributes,
    attribute_accuracy,
    attributes_from_benchmark,
    detokenize,
    load_lesion_attributes,
    parse_report,
    tokenize,
    vocabulary,
    write_report,
    write_reports,
)

ALL_PRESENT = [
    LesionAttributes(True, v, h, s, b, sh)
    for v, h, s, b, sh in itertools.product(
        *(list(WORDS[n]) for n in ("vertical", "horizontal", "size", "brightness", "shape"))
    )
]


def test_every_phrasing_of_every_attribute_combination_parses_back():
    gen = torch.Generator().manual_seed(0)
    vocab = set(vocabulary())
    for attrs in ALL_PRESENT + [LesionAttributes(False)]:
        for _ in range(30):
            sentence = write_report(attrs, gen)
            assert parse_report(sentence) == attrs, sentence
            assert set(tokenize(sentence)) <= vocab, sentence


def test_phrasings_vary_and_use_every_synonym_and_template():
    attrs = LesionAttributes(True, "lower", "right", "large", "dark", "elongated")
    sentences = write_reports([attrs], seed=3, per_case=400)[0]
    assert len(set(sentences)) > 100
    words = {t for s in sentences for t in tokenize(s)}
    for name, value in attrs.as_dict().items():
        if name != "present":
            assert set(WORDS[name][value]) <= words, name
    assert set(NOUNS) <= words
    # each template leaves a recognisable trace: "outline", "in shape", ":", "there is" ...
    assert any("outline" in s for s in sentences) and any("in shape" in s for s in sentences)
    assert any(":" in s for s in sentences) and any(s.startswith("there is") for s in sentences)
    assert any(" an " in f" {s} " for s in sentences)  # "an elongated", "an oval"
    assert not any(re.search(r"\ba [aeiou]", s) for s in sentences)


def test_value_words_never_appear_as_filler():
    filler = set()
    for template in PRESENT_TEMPLATES + ABSENT_TEMPLATES + LOCATIONS:
        filler.update(tokenize(re.sub(r"\{\w+\}", " ", template)))
    value_words = [w for values in WORDS.values() for syns in values.values() for w in syns]
    assert len(value_words) == len(set(value_words)), "a word names two values"
    assert not filler & set(value_words)
    assert not set(NEGATIONS) & set(value_words) and not set(NEGATIONS) & set(NOUNS)
    assert not any(set(NEGATIONS) & set(tokenize(t)) for t in PRESENT_TEMPLATES + LOCATIONS)
    assert all(set(NEGATIONS) & set(tokenize(t)) for t in ABSENT_TEMPLATES)


def test_parser_on_unseen_contradictory_and_empty_sentences():
    assert parse_report("A TINY, BRIGHT nodule at the top left; oval.") == LesionAttributes(
        True, "upper", "left", "small", "bright", "elongated"
    )
    assert parse_report("a small large lesion in the upper left") == LesionAttributes(True, "upper", "left")
    assert parse_report("lesion") == LesionAttributes(True)
    assert parse_report("") == LesionAttributes(None)
    assert parse_report("the image shows") == LesionAttributes(None)
    assert parse_report("no bright lesion") == LesionAttributes(False)
    assert detokenize(["a", "spot", ".", "<eos>", "ignored"]) == "a spot."


def test_attributes_from_benchmark_arrays():
    labels = torch.tensor([1, 0, 1])
    centers = torch.tensor([[3.0, 20.0], [float("nan")] * 2, [30.0, 5.0]])
    radii = torch.tensor([0.05 * 32, 0.0, 0.12 * 32])
    contrasts = torch.tensor([0.4, 0.0, -0.3])
    shapes = torch.tensor([2, -1, 0])
    got = attributes_from_benchmark(labels, centers, radii, contrasts, shapes, image_size=(32, 32))
    assert got == [
        LesionAttributes(True, "upper", "right", "small", "bright", "irregular"),
        LesionAttributes(False),
        LesionAttributes(True, "lower", "left", "large", "dark", "round"),
    ]
    # 3D: (depth, row, col); rows and columns decide, as in 2D
    got3 = attributes_from_benchmark(torch.tensor([1]), torch.tensor([[1.0, 30.0, 30.0]]), radii[2:], contrasts[:1],
                                     shapes[:1], image_size=(32, 32, 32))
    assert got3[0].vertical == "lower" and got3[0].horizontal == "right"
    assert 0.06 < SIZE_THRESHOLD < 0.13  # inside the benchmark's radius range


def test_attributes_of_the_lesion_benchmark_agree_with_its_masks(tmp_path):
    from medlens.data.synthetic.lesions import write_lesion_benchmark

    path = write_lesion_benchmark(tmp_path / "les.npz", size=32, n_train=0, n_val=0, n_test=24, seed=1)
    attrs = load_lesion_attributes(path, "test")
    data = np.load(path)
    masks, labels = data["test_masks"], data["test_labels"]
    assert len(attrs) == 24 and [a.present for a in attrs] == [bool(v) for v in labels]
    for a, mask in zip(attrs, masks):
        if not a.present:
            continue
        rows, cols = np.nonzero(mask)
        # the mask centroid lies on the stated side unless the lesion straddles the middle
        if abs(rows.mean() - 15.5) > 3:
            assert a.vertical == ("upper" if rows.mean() < 15.5 else "lower")
        if abs(cols.mean() - 15.5) > 3:
            assert a.horizontal == ("left" if cols.mean() < 15.5 else "right")


def test_load_lesion_attributes_refuses_other_files(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, train_images=np.zeros((2, 8, 8)), train_labels=np.zeros(2))
    with pytest.raises(FileFormatError, match="lesion benchmark"):
        load_lesion_attributes(path, "train")
    with pytest.raises(FileFormatError):
        load_lesion_attributes(tmp_path / "missing.npz", "train")


def test_attribute_accuracy_counts_lesion_attributes_on_true_lesions_only():
    truth = [LesionAttributes(True, "upper", "left", "small", "bright", "round"), LesionAttributes(False)]
    said = [LesionAttributes(True, "upper", "right", "small", None, "round"), LesionAttributes(False)]
    acc = attribute_accuracy(said, truth)
    assert acc["present"] == 1.0
    assert (acc["vertical"], acc["horizontal"], acc["size"], acc["brightness"], acc["shape"]) == (1, 0, 1, 0, 1)
    assert acc["mean"] == pytest.approx(4 / 6)
    assert acc["exact"] == 0.5
    assert attribute_accuracy(truth, truth)["exact"] == 1.0
    with pytest.raises(InputError):
        attribute_accuracy(said[:1], truth)
    with pytest.raises(InputError, match="shape"):
        LesionAttributes(True, shape="square")
    with pytest.raises(InputError, match="missing"):
        write_report(LesionAttributes(True, "upper"), torch.Generator())
