"""BLEU-4: a corpus computed by hand, the paper's clipping example, the brevity penalty."""

import math

import pytest

from medlens.errors import InputError
from medlens.selfexplain.bleu import closest_reference_length, corpus_bleu, ngrams


def toks(s):
    return s.split()


HYPS = [toks("the cat sat on the mat"), toks("a small round lesion in the upper left")]
REFS = [
    [toks("the cat is on the mat"), toks("there is a cat on the mat")],
    [toks("a small round lesion in the upper left region"), toks("small lesion at the top left")],
]


def test_corpus_bleu_matches_a_hand_computed_value():
    # Counted by hand (see the comments): clipped matches / hypothesis n-grams, summed over the
    # corpus. Sentence 1: p1 5/6 (the x2 clipped to 2, "sat" unmatched), p2 3/5, p3 1/4, p4 0/3.
    # Sentence 2 is a prefix of its first reference: 8/8, 7/7, 6/6, 5/5.
    p = [13 / 14, 10 / 12, 7 / 10, 5 / 8]
    # c = 6 + 8; r = 6 (closest to 6 among 6 and 7) + 9 (closest to 8 among 9 and 6).
    bp = math.exp(1 - 15 / 14)
    expected = bp * math.exp(sum(math.log(x) for x in p) / 4)
    score = corpus_bleu(HYPS, REFS)
    assert score.precisions == pytest.approx(tuple(p), abs=1e-12)
    assert (score.hypothesis_length, score.reference_length) == (14, 15)
    assert score.brevity_penalty == pytest.approx(bp, abs=1e-12)
    assert score.bleu == pytest.approx(expected, abs=1e-12)
    assert score.bleu == pytest.approx(0.710202, abs=1e-6)


def test_corpus_bleu_is_not_the_mean_of_sentence_scores():
    # Sentence 1 alone has no 4-gram match (BLEU 0), sentence 2 alone scores exp(1 - 9/8);
    # the corpus score pools the counts instead.
    alone = [corpus_bleu([h], [r]).bleu for h, r in zip(HYPS, REFS)]
    assert alone[0] == 0.0
    assert alone[1] == pytest.approx(math.exp(1 - 9 / 8))
    assert abs(corpus_bleu(HYPS, REFS).bleu - sum(alone) / 2) > 0.1


def test_clipping_example_of_the_paper():
    # Papineni et al. 2002, section 2.1: "the the the the the the the" scores 2/7 unigram precision.
    score = corpus_bleu([toks("the the the the the the the")],
                        [[toks("the cat is on the mat"), toks("there is a cat on the mat")]], max_n=1)
    assert score.precisions[0] == pytest.approx(2 / 7)


def test_identical_sentences_score_one_and_short_ones_pay_the_brevity_penalty():
    ref = toks("a dark oval nodule in the lower right region")
    assert corpus_bleu([ref], [[ref]]).bleu == pytest.approx(1.0)
    short = ref[:5]
    score = corpus_bleu([short], [[ref]])
    assert score.precisions == (1.0, 1.0, 1.0, 1.0)
    assert score.bleu == pytest.approx(math.exp(1 - len(ref) / 5))
    longer = ref + ["today"]
    assert corpus_bleu([longer], [[ref]]).brevity_penalty == 1.0


def test_closest_reference_length_prefers_the_shorter_on_a_tie():
    assert closest_reference_length(5, [toks("a b c d"), toks("a b c d e f")]) == 4
    assert closest_reference_length(5, [toks("a b c d e f"), toks("a b")]) == 6
    assert ngrams(toks("a b a b"), 2) == {("a", "b"): 2, ("b", "a"): 1}


def test_against_nltk_when_installed():
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    assert corpus_bleu(HYPS, REFS).bleu == pytest.approx(nltk_bleu.corpus_bleu(REFS, HYPS), abs=1e-12)


def test_bad_input_is_rejected():
    with pytest.raises(InputError, match="hypotheses"):
        corpus_bleu(HYPS, REFS[:1])
    with pytest.raises(InputError, match="at least one reference"):
        corpus_bleu([HYPS[0]], [[]])
    assert corpus_bleu([[]], [[toks("a b")]]).bleu == 0.0
