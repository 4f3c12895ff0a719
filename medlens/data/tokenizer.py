"""A word-level tokenizer of clinical notes, learnt from the training notes, stored in the model file.

Built on Hugging Face ``tokenizers`` (the whole pipeline lives in the library's JSON, so what is
stored is what runs):

* normaliser: Unicode NFKC; de-identification placeholders (``XXXX`` as in the OpenI/Indiana
  reports, ``[**Name**]`` as in MIMIC, runs of three or more underscores) replaced by the one
  placeholder token :data:`DEID` (``"xxxx"``); lower-casing (optional);
* pre-tokeniser: split on white space, every punctuation mark its own token;
* model: word level, at most ``max_vocab`` entries (most frequent words first, words seen fewer
  than ``min_frequency`` times left out); ids 0, 1, 2 are :data:`PAD`, :data:`UNK` and
  :data:`DEID`, whatever their frequency.

:meth:`NoteTokenizer.encode` turns notes into fixed-length id tensors ``(N, max_length)``
padded with 0 at the end (the padding :class:`medlens.models.AttentionRNN` skips), and says how
many notes were cut; long notes are truncated or cut into overlapping chunks
(``overflow="chunk"``). :meth:`NoteTokenizer.to_json` / :meth:`NoteTokenizer.from_json` give
the plain-text form stored in a model file's ``meta["tokenizer"]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import torch

from medlens.data.datasets.labelled import LabelledSet
from medlens.data.formats.text import Notes
from medlens.errors import FileFormatError, InputError

PAD, UNK, DEID = "[pad]", "[unk]", "xxxx"
#: De-identification placeholders replaced by :data:`DEID` (regular expression, Rust syntax).
PLACEHOLDERS = r"X{2,}|\[\*\*[^\]]*\*\*\]|_{3,}"
FORMAT = "medlens-tokenizer"
VERSION = 1
OVERFLOWS = ("truncate", "chunk")


@dataclass(frozen=True)
class Encoded:
    """Notes encoded as fixed-length token ids.

    Attributes
    ----------
    ids : torch.Tensor
        int64 ``(M, max_length)``; trailing padding is id 0. ``M`` is the number of notes, or of
        chunks when long notes were chunked.
    lengths : torch.Tensor
        int64 ``(M,)``: real tokens of each row (at least 1: an empty note is one ``[unk]``).
    note : torch.Tensor
        int64 ``(M,)``: which note each row came from (the identity unless chunked).
    tokens : list of list of str
        The vocabulary token at each real position of each row.
    words : list of list of str
        The note's own text at each real position (the original spelling of an unknown word;
        the placeholder as written).
    n_tokens : list of int
        Tokens of each whole note before truncation.
    truncated : torch.Tensor
        bool ``(N,)`` per note: True when tokens were dropped (``overflow="truncate"``).
    overflow : str
    max_length : int
    offsets : list of list of (int, int)
        The characters of its note each real position of each row was read from.
    """

    ids: torch.Tensor
    lengths: torch.Tensor
    note: torch.Tensor
    tokens: list[list[str]]
    words: list[list[str]]
    n_tokens: list[int]
    truncated: torch.Tensor
    overflow: str
    max_length: int
    stride: int = 0
    offsets: list[list[tuple[int, int]]] = field(default_factory=list)

    @property
    def n_truncated(self) -> int:
        """How many notes lost tokens to truncation (0 when chunked: nothing is dropped)."""
        return int(self.truncated.sum())

    def per_note(self, values: torch.Tensor) -> torch.Tensor:
        """Rows ``(M, ...)`` (a prediction per chunk) averaged per note: ``(N, ...)``."""
        values = torch.as_tensor(values)
        if values.shape[0] != len(self.note):
            raise InputError(f"{values.shape[0]} rows given for {len(self.note)} encoded rows")
        n = len(self.n_tokens)
        out = torch.zeros((n, *values.shape[1:]), dtype=torch.float64)
        out.index_add_(0, self.note, values.double())
        counts = torch.bincount(self.note, minlength=n).double().reshape(n, *([1] * (values.ndim - 1)))
        return (out / counts).to(values.dtype if values.is_floating_point() else torch.float64)

    def statement(self, first: int | None = None) -> str:
        """One sentence on what happened to long notes: all of them, or the ``first`` (those used
        under ``--limit``)."""
        lengths = list(self.n_tokens) if first is None else list(self.n_tokens)[: max(0, int(first))]
        n = len(lengths)
        longest = max(lengths) if lengths else 0
        if self.overflow == "chunk":
            chunked = sum(1 for k in lengths if k > self.max_length)
            chunks = len(self.ids) if first is None else int((self.note < n).sum())
            return (f"{chunked} of {n} notes were longer than {self.max_length} tokens and were cut into "
                    f"{chunks} chunks in all (overlap {self.stride} tokens); the longest had {longest} tokens")
        dropped = sum(max(0, k - self.max_length) for k in lengths)
        truncated = int(self.truncated[:n].sum())
        return (f"{truncated} of {n} notes were truncated to {self.max_length} tokens "
                f"({dropped} tokens dropped in all; the longest note had {longest} tokens)")


    def note_statement(self, index: int) -> str:
        """One sentence on what truncation did to note ``index`` alone; ``""`` when it lost no token."""
        if not bool(self.truncated[index]):
            return ""
        total = self.n_tokens[index]
        return (f"this note was truncated to {self.max_length} tokens ({total - self.max_length} of its "
                f"{total} tokens dropped)")


class NoteTokenizer:
    """Word-level tokenizer of notes (see the module docstring); wraps a ``tokenizers.Tokenizer``."""

    def __init__(self, tokenizer: Any, *, max_length: int = 256, lowercase: bool = True) -> None:
        if not isinstance(max_length, int) or max_length < 1:
            raise InputError(f"max_length must be a positive whole number, got {max_length!r}")
        self._tok = tokenizer
        self._tok.no_truncation()
        self._tok.no_padding()
        self.max_length = max_length
        self.lowercase = lowercase
        vocab = self._tok.get_vocab()
        for special, want in ((PAD, 0), (UNK, 1), (DEID, 2)):
            if vocab.get(special) != want:
                raise FileFormatError(f"tokenizer: {special!r} must have id {want}, has {vocab.get(special)}")
        self._id_to_token = {i: t for t, i in vocab.items()}
        self.vocab_size = max(vocab.values()) + 1

    # ---------------------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        *,
        max_vocab: int = 5000,
        min_frequency: int = 2,
        lowercase: bool = True,
        max_length: int = 256,
    ) -> "NoteTokenizer":
        """Learn the vocabulary from the training notes.

        Parameters
        ----------
        texts : iterable of str
            The training notes only (learning from test notes would leak their words).
        max_vocab : int
            At most this many entries, the three special tokens included.
        min_frequency : int
            Words seen fewer times become ``[unk]``.
        lowercase : bool
        max_length : int
            Tokens per encoded row (:meth:`encode`'s default).
        """
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers, Regex

        if max_vocab < 4:
            raise InputError(f"max_vocab must be at least 4 (three special tokens and one word), got {max_vocab}")
        texts = list(texts)
        if not texts:
            raise InputError("cannot learn a vocabulary from no notes")
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        steps = [normalizers.NFKC(), normalizers.Replace(Regex(PLACEHOLDERS), f" {DEID} ")]
        if lowercase:
            steps.append(normalizers.Lowercase())
        tok.normalizer = normalizers.Sequence(steps)
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")]
        )
        trainer = trainers.WordLevelTrainer(
            vocab_size=max_vocab, min_frequency=min_frequency, special_tokens=[PAD, UNK, DEID], show_progress=False
        )
        tok.train_from_iterator(texts, trainer)
        # the trainer numbers the specials first, but a special that is also a word (the
        # placeholder) can leave a gap: renumber so that ids are 0..V-1 with the specials first
        vocab = tok.get_vocab()
        words = sorted((w for w in vocab if w not in (PAD, UNK, DEID)), key=lambda w: vocab[w])
        ordered = {PAD: 0, UNK: 1, DEID: 2, **{w: i + 3 for i, w in enumerate(words)}}
        fresh = Tokenizer(models.WordLevel(vocab=ordered, unk_token=UNK))
        fresh.normalizer, fresh.pre_tokenizer = tok.normalizer, tok.pre_tokenizer
        return cls(fresh, max_length=max_length, lowercase=lowercase)

    def to_json(self) -> str:
        """Plain JSON text (for ``meta["tokenizer"]`` of a model file)."""
        return json.dumps({
            "format": FORMAT, "version": VERSION, "max_length": self.max_length, "lowercase": self.lowercase,
            "tokenizer": json.loads(self._tok.to_str()),
        })

    @classmethod
    def from_json(cls, text: str) -> "NoteTokenizer":
        """Restore a tokenizer written by :meth:`to_json`."""
        from tokenizers import Tokenizer

        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("not a medlens tokenizer")
            if int(data.get("version", 0)) > VERSION:
                raise ValueError(f"written by a newer medlens (version {data['version']})")
            tok = Tokenizer.from_str(json.dumps(data["tokenizer"]))
        except (ValueError, KeyError, TypeError, Exception) as err:  # tokenizers raises its own Exception
            raise FileFormatError(f"the stored tokenizer cannot be read: {str(err).splitlines()[0] if str(err) else err}") from err
        return cls(tok, max_length=int(data.get("max_length", 256)), lowercase=bool(data.get("lowercase", True)))

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "NoteTokenizer":
        """The tokenizer of a text model's metadata (``meta["tokenizer"]``)."""
        if not meta.get("tokenizer"):
            raise InputError("this model has no tokenizer: it was not trained on notes, so it cannot read text")
        return cls.from_json(meta["tokenizer"])

    # ---------------------------------------------------------------------------------------
    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def deid_id(self) -> int:
        return 2

    def token(self, i: int) -> str:
        """The vocabulary entry of id ``i`` (``[unk]`` for ids outside the vocabulary)."""
        return self._id_to_token.get(int(i), UNK)

    def tokenize(self, text: str) -> list[str]:
        """The vocabulary tokens of one note (no truncation)."""
        return list(self._tok.encode(text).tokens)

    def encode(
        self,
        texts: Sequence[str] | str,
        *,
        max_length: int | None = None,
        overflow: str = "truncate",
        stride: int = 0,
    ) -> Encoded:
        """Token ids of notes, padded to a fixed length.

        Parameters
        ----------
        texts : str or sequence of str
        max_length : int, optional
            Tokens per row; default the tokenizer's :attr:`max_length`.
        overflow : {"truncate", "chunk"}
            Long notes lose their tail (``Encoded.truncated`` / :meth:`Encoded.statement` say
            which and how much), or are cut into chunks of ``max_length`` tokens that overlap by
            ``stride`` tokens (one row per chunk; ``Encoded.note`` maps rows to notes).
        stride : int
            Overlap of consecutive chunks.
        """
        if isinstance(texts, str):
            texts = [texts]
        length = self.max_length if max_length is None else int(max_length)
        if length < 1:
            raise InputError(f"max_length must be positive, got {max_length}")
        if overflow not in OVERFLOWS:
            raise InputError(f"overflow must be one of {', '.join(OVERFLOWS)}, got {overflow!r}")
        if not 0 <= stride < length:
            raise InputError(f"stride must lie in 0..{length - 1}, got {stride}")
        rows_ids: list[list[int]] = []
        rows_tok: list[list[str]] = []
        rows_words: list[list[str]] = []
        rows_offsets: list[list[tuple[int, int]]] = []
        note_of: list[int] = []
        n_tokens: list[int] = []
        truncated: list[bool] = []
        for k, (text, enc) in enumerate(zip(texts, self._tok.encode_batch(list(texts)), strict=True)):
            ids, toks, offsets = list(enc.ids), list(enc.tokens), [tuple(o) for o in enc.offsets]
            words = [w if t != UNK else text[a:b] for t, w, (a, b) in
                     zip(toks, toks, enc.offsets, strict=True)]
            if not ids:  # an empty note: one unknown token, so every row has a real position
                ids, toks, words, offsets = [self.unk_id], [UNK], [""], [(0, 0)]
            n_tokens.append(len(ids))
            truncated.append(overflow == "truncate" and len(ids) > length)
            if overflow == "truncate" or len(ids) <= length:
                starts = [0]
            else:
                step = length - stride
                starts = list(range(0, max(1, len(ids) - stride), step))
                starts = [s for s in starts if s < len(ids)]
            for s in starts:
                rows_ids.append(ids[s : s + length])
                rows_tok.append(toks[s : s + length])
                rows_words.append(words[s : s + length])
                rows_offsets.append(offsets[s : s + length])
                note_of.append(k)
        out = torch.zeros(len(rows_ids), length, dtype=torch.long)
        for i, r in enumerate(rows_ids):
            out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return Encoded(
            out, torch.tensor([len(r) for r in rows_ids], dtype=torch.long), torch.tensor(note_of, dtype=torch.long),
            rows_tok, rows_words, n_tokens, torch.tensor(truncated, dtype=torch.bool), overflow, length, stride,
            rows_offsets,
        )

    def __repr__(self) -> str:
        return f"NoteTokenizer(vocab_size={self.vocab_size}, max_length={self.max_length}, lowercase={self.lowercase})"


@dataclass(frozen=True)
class NoteSet:
    """A split of notes as token ids: the :class:`LabelledSet` a text model trains on, and how it was made."""

    data: LabelledSet
    encoded: Encoded
    cases: tuple[str, ...] = field(default=())


def notes_dataset(
    notes: Notes,
    tokenizer: NoteTokenizer,
    class_names: Sequence[str],
    *,
    name: str = "notes",
    max_length: int | None = None,
    overflow: str = "truncate",
    stride: int = 0,
) -> NoteSet:
    """Encode labelled notes into a :class:`LabelledSet` of token ids ``(N, max_length)``.

    With ``overflow="chunk"`` each chunk becomes a row carrying its note's label (and case id);
    ``NoteSet.encoded.note`` maps rows back to notes, to average chunk predictions per note.
    """
    if notes.labels is None:
        raise InputError(f"{notes.source or 'the notes'} have no labels to train or score on")
    labels = torch.tensor(notes.label_indices(class_names), dtype=torch.long)
    enc = tokenizer.encode(notes.texts, max_length=max_length, overflow=overflow, stride=stride)
    data = LabelledSet(enc.ids, labels[enc.note], None, name, tuple(class_names))
    return NoteSet(data, enc, tuple(notes.cases[i] for i in enc.note.tolist()))
