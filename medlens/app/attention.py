"""The ``attention`` use case: how far an attention model's attention can be trusted (Jain and
Wallace 2019). :func:`attention_analysis` writes ``attention.json``, ``verdict.txt``,
``report.html`` and one PNG per example figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AttentionRequest:
    """The arguments of ``medlens attention``."""

    model: str
    data: str
    out: str
    split: str = "test"
    permutations: int = 100
    ig_steps: int = 32
    examples: int = 4
    limit: int | None = None
    batch_size: int | None = None
    memory_mb: float | None = None
    seed: int = 0
    text_column: str = "text"  # notes, for a text model
    label_column: str = "label"
    labels: str | None = None  # a folder of scans or records: its labels CSV, the model's recipe with these flags applied
    recipe: Any = None
    show_identifiers: bool = False
    multi_label: bool = False  # one sigmoid per finding (also the model file's meta["multilabel"])


@dataclass
class AttentionResult:
    """The data analysed, how many sequences, the verdict and its sentences."""

    data_name: str
    n: int
    level: str
    sentences: list[str]
    out: str


def _npz_extras(path: str) -> tuple[tuple[str, ...] | None, float | None]:
    """The vocabulary and the sampling rate stored beside an npz data set, if any."""
    import numpy as np

    from medlens.data.synthetic.reports_text import load_vocab

    if not path.lower().endswith(".npz"):
        return None, None
    vocab = load_vocab(path)
    with np.load(path, allow_pickle=False) as data:
        fs = float(data["fs"]) if "fs" in data.files and data["fs"].size == 1 else None
    return vocab, fs


def _record_windows(data: str, settings: dict) -> tuple[Any, bool, list[tuple[str, float]], list[dict[str, str]]]:
    """The windows of the records of ``data`` as a model trained on records cuts them, named by their
    count (record names are file names), whether their labels are real (beats: the annotations;
    fixed windows carry a stand-in label here), each window's name and its first sample's time in
    its record (s; the example figures' time axis), and ``identifiers.csv``'s rows."""
    from medlens.data.record_cases import RecordCases

    cases = RecordCases(data, settings)
    w = cases.windows
    what = "beat windows" if settings.get("kind", "beats") == "beats" else "windows"
    where = [(name, float(t) - float(w.before)) for name, t in zip(cases.names, w.times.tolist())]
    return cases.windows.labelled(f"{cases.title} ({len(cases)} {what})"), cases.has_labels, where, cases.identifier_rows()


def _folder_set(request: AttentionRequest, meta: dict) -> tuple[Any, bool, list[dict[str, str]]]:
    """The cases of a folder (or file) read through the model's recipe (at most ``--limit``, the
    others never read), named by their count; whether every case is labelled (accuracy and the
    examples' classes need all); the id -> file rows."""
    from medlens.app.reference_cases import UNKNOWN, reference_sets
    from medlens.data.cases import data_words

    chosen, _ = reference_sets(request.data, meta, labels=request.labels, recipe=request.recipe,
                               show_identifiers=request.show_identifiers, memory_mb=request.memory_mb, limit=request.limit)
    rows = chosen.cases.identifier_rows() if chosen.cases is not None else []
    shown = request.data if request.show_identifiers else data_words(request.data)  # a folder's name may name a patient
    every = bool((chosen.labels != UNKNOWN).all())
    return chosen.labelled(f"{shown} ({len(chosen)} case(s): {chosen.chosen})"), every, rows


def attention_analysis(request: AttentionRequest | None = None, **kwargs) -> AttentionResult:
    """Test the attention of ``request.model`` on ``request.data`` and write attention.json,
    verdict.txt, report.html and the example figures into ``request.out``."""
    from medlens.app.attention_section import add_attention_analysis, pick_examples
    from medlens.attribution.sequence import require_attention_model
    from medlens.core.files import atomic_write, staged_folder, write_csv, write_json
    from medlens.data.cases import is_dataset, labelled_set
    from medlens.data.record_cases import model_windows
    from medlens.errors import MedlensError
    from medlens.evaluation.attention import attention_faithfulness, verdict
    from medlens.app.inputs import load_model_file
    from medlens.report import Report

    request = request if request is not None else AttentionRequest(**kwargs)
    if request.permutations < 1:
        raise MedlensError(f"--permutations must be at least 1, got {request.permutations}")
    if request.ig_steps < 0 or request.examples < 0:
        raise MedlensError("--ig-steps and --examples must not be negative")
    model, meta = load_model_file(request.model, request.multi_label)  # a multi-label file (meta multilabel): one sigmoid per finding
    require_attention_model(model)
    labelled, leads = True, None  # leads: the channel names of a records model's windows
    where = None  # a records model's windows: (name, start in its record)
    identifiers: list[dict[str, str]] = []  # the case ids of a folder's files or of the windows' records
    if meta.get("tokenizer"):  # a text model on a notes file: the notes through its own tokenizer
        from medlens.app.text_inputs import note_cases, note_set, untrained_rows, vocabulary
        from medlens.data.notes_cases import NoteColumns
        from medlens.errors import InputError

        notes = note_cases(request.data, meta, NoteColumns(text=request.text_column, label=request.label_column))
        rows = untrained_rows(notes, meta)  # the tests read held-out notes, as --split does for a data set
        if not rows:
            raise InputError(f"every note of {notes.title} was in the model's training split; give notes it was not trained on")
        trained = len(notes) - len(rows)
        name = f"{len(rows)} notes not trained on ({trained} training notes of the file left out)" if trained else None
        data, (vocab, fs) = note_set(notes, name, rows), (vocabulary(notes), None)
    elif model_windows(meta, request.data) is not None:  # a model trained on records: their windows, as it cuts them
        data, labelled, where, identifiers = _record_windows(request.data, model_windows(meta, request.data))
        vocab, fs, leads = None, float(meta["windows"]["fs"]), list(meta["windows"].get("leads") or ()) or None
    elif is_dataset(request.data):
        data = labelled_set(request.data, request.split, memory_mb=request.memory_mb)
        vocab, fs = _npz_extras(str(request.data))
    else:  # a folder of scans or records (or one file) through the model's recipe, as basis and concepts read it
        data, labelled, identifiers = _folder_set(request, meta)
        vocab, fs = None, (meta.get("recipe") or {}).get("fs")
    n = len(data) if request.limit is None else min(request.limit, len(data))
    x, labels = data.inputs[:n], data.labels[:n] if labelled else None
    masks = None if data.masks is None else data.masks[:n]
    result = attention_faithfulness(
        model, x, labels=labels, masks=masks, n_permutations=request.permutations, ig_steps=request.ig_steps, seed=request.seed,
        batch_size=request.batch_size, memory_mb=request.memory_mb,
    )
    summary = result.summary()
    level, sentences = verdict(summary)
    class_names = list(meta.get("class_names") or data.class_names)
    with staged_folder(request.out) as out:
        report = Report("medlens attention analysis", f"{getattr(model, 'arch', 'model')} on {data.name}")
        sec = report.section(f"Attention on {data.name}")
        sec.add_text(f"{n} sequences of {data.name}; model {request.model}.")
        pngs = add_attention_analysis(
            sec, result, x, cases=pick_examples(labels, masks, request.examples, count=n), class_names=class_names,
            masks=masks, vocab=vocab, fs=fs, channel_names=leads, windows=where,
        )
        for name, png in pngs.items():
            atomic_write(out / name, png)
        write_json(out / "attention.json", {
            "model": str(request.model),
            "data": data.name,  # a notes file is named by its count: its name may name a patient
            "split": request.split,
            "summary": summary,
            "verdict": level,
            "sentences": sentences,
            "params": result.params,
            "gradient_method": result.gradient_method,
        })
        atomic_write(out / "verdict.txt", "\n".join([f"verdict: {level}", *sentences]) + "\n")
        if identifiers:
            write_csv(out / "identifiers.csv", identifiers)
        report.write(out / "report.html")
    return AttentionResult(data.name, n, level, sentences, request.out)
