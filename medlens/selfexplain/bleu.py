"""Corpus BLEU (Papineni, Roukos, Ward and Zhu, "BLEU: a method for automatic evaluation of
machine translation", ACL 2002).

``BLEU = BP * exp(sum_n w_n log p_n)`` with

* ``p_n`` the *modified* n-gram precision over the whole corpus: each hypothesis n-gram counts
  at most as often as it occurs in the one reference where it occurs most (clipping), and the
  clipped counts and the hypothesis n-gram counts are each summed over all sentences before
  dividing (corpus level, not an average of sentence scores);
* ``BP = 1`` if ``c > r`` else ``exp(1 - r / c)``, with ``c`` the total hypothesis length and
  ``r`` the sum over sentences of the reference length closest to the hypothesis length (the
  shorter one on a tie), the "best match length" of the paper, as in NLTK and multi-bleu;
* uniform weights ``w_n = 1/N``, ``N = 4`` for BLEU-4. Without smoothing, a corpus with no
  matching n-gram of some order scores 0.

Plain Python on token lists: no tensors are involved.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from medlens.errors import InputError

Tokens = Sequence[str]


@dataclass(frozen=True)
class BleuScore:
    """A corpus BLEU score and its parts.

    Attributes
    ----------
    bleu : float
        In [0, 1].
    precisions : tuple of float
        Modified n-gram precisions ``p_1 .. p_N``.
    brevity_penalty : float
    hypothesis_length, reference_length : int
        ``c`` and ``r`` above.
    """

    bleu: float
    precisions: tuple[float, ...]
    brevity_penalty: float
    hypothesis_length: int
    reference_length: int


def ngrams(tokens: Tokens, n: int) -> Counter:
    """Counts of the n-grams (tuples) of a token sequence."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def closest_reference_length(hypothesis_length: int, references: Sequence[Tokens]) -> int:
    """Reference length nearest ``hypothesis_length``; the shorter on a tie."""
    return min((abs(len(r) - hypothesis_length), len(r)) for r in references)[1]


def corpus_bleu(
    hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]], max_n: int = 4
) -> BleuScore:
    """Corpus BLEU-``max_n`` of tokenised hypotheses against one or more references each.

    Parameters
    ----------
    hypotheses : sequence of token sequences
        One generated sentence per case.
    references : sequence of sequences of token sequences
        ``references[i]`` holds the reference sentences of case ``i`` (at least one).
    max_n : int
        Highest n-gram order (4 for BLEU-4).

    Returns
    -------
    BleuScore
    """
    if len(hypotheses) != len(references):
        raise InputError(f"got {len(hypotheses)} hypotheses but {len(references)} reference sets")
    if not hypotheses:
        raise InputError("BLEU needs at least one hypothesis")
    if max_n < 1:
        raise InputError(f"max_n must be at least 1, got {max_n}")
    matches = [0] * max_n
    totals = [0] * max_n
    c = r = 0
    for hyp, refs in zip(hypotheses, references):
        if not refs:
            raise InputError("every hypothesis needs at least one reference")
        c += len(hyp)
        r += closest_reference_length(len(hyp), refs)
        for n in range(1, max_n + 1):
            counts = ngrams(hyp, n)
            best: Counter = Counter()
            for ref in refs:
                best |= ngrams(ref, n)  # element-wise max: the clipping counts
            matches[n - 1] += sum(min(k, best[g]) for g, k in counts.items())
            totals[n - 1] += sum(counts.values())
    precisions = tuple(m / t if t else 0.0 for m, t in zip(matches, totals))
    if c == 0:
        return BleuScore(0.0, precisions, 0.0, c, r)
    bp = 1.0 if c > r else math.exp(1 - r / c)
    if min(precisions) == 0.0:
        return BleuScore(0.0, precisions, bp, c, r)
    score = bp * math.exp(sum(math.log(p) for p in precisions) / max_n)
    return BleuScore(score, precisions, bp, c, r)
