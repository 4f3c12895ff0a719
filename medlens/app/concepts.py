"""The ``concepts`` use case: explain a trained classifier by a few sparse concepts (Qi and Li 2017).

:func:`concept_report` fits a concept autoencoder on the model's features of the training split,
scores its fidelity on the test split, and writes ``concepts.pt``, ``concepts.json`` and
``report.html``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class ConceptsRequest:
    """The arguments of ``medlens concepts``: ``data`` a data set (its train split fitted, its
    test split held out) or a folder of scans with an optional ``labels`` CSV, read through the
    model's recipe with ``recipe`` applied (the model's own split of it when it was trained on
    it, else a seeded share held out); a folder's cases are named by their ids."""

    model: str
    data: str
    out: str
    k: int = 5
    layer: str | None = None
    head: str = "auto"
    epochs: int = 300
    sparsity: float = 0.05
    top: int = 4
    method: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    limit: int | None = None
    batch_size: int | None = None
    memory_mb: float | None = None
    seed: int = 0
    labels: str | None = None
    recipe: Any = None
    show_identifiers: bool = False
    multi_label: bool = False  # one sigmoid per finding (also the model file's meta["multilabel"])


@dataclass
class ConceptsResult:
    """The fitted concepts, their held-out scores (or ``None``), their number and the folder;
    ``splits`` how a folder of scans was split (``fitted_on``, ``held_out``), empty for a data set;
    how many cases the concepts were fitted on and held out on; the page's sentences on scans drawn
    without their image or to check for burned-in text (:mod:`medlens.app.pixel_privacy`)."""

    concepts: Any
    held_out: Any
    k: int
    out: str
    splits: dict[str, Any] = field(default_factory=dict)
    n_fitted: int = 0
    n_held_out: int = 0
    pixel_warnings: tuple[str, ...] = ()


def concept_report(request: ConceptsRequest | None = None, **kwargs) -> ConceptsResult:
    """Fit a concept autoencoder on the model's features of the training split and write
    concepts.pt, concepts.json and report.html into ``request.out``."""
    from medlens.app.options import scope_options
    from medlens.app.reference_cases import reference_sets
    from medlens.core.files import staged_folder, write_csv, write_json
    from medlens.attribution.registry import get_method
    from medlens.errors import MedlensError
    from medlens.app.inputs import load_model_file
    from medlens.models import save_model
    from medlens.report import Report
    from medlens.selfexplain.concepts import evaluate_concepts, learn_concepts
    from medlens.app.selfexplain_sections import add_concepts

    request = request if request is not None else ConceptsRequest(**kwargs)
    if request.k < 1 or request.epochs < 1 or request.top < 1:
        raise MedlensError("--k, --epochs and --top must be positive")
    if request.method:
        get_method(request.method)
    model, meta = load_model_file(request.model, request.multi_label)  # meta multilabel: one sigmoid per finding
    train, test = reference_sets(request.data, meta, held_out=True, labels=request.labels, recipe=request.recipe,
                                 show_identifiers=request.show_identifiers, memory_mb=request.memory_mb, seed=request.seed,
                                 limit=request.limit)  # a folder's cases beyond --limit are never read
    inputs, labels, names = train.inputs, train.labels, train.names
    dtype = next(iter(model.parameters())).dtype
    inputs = inputs.to(dtype)
    concepts = learn_concepts(model, inputs, k=request.k, layer=request.layer, head=request.head, epochs=request.epochs,
                              sparsity=request.sparsity, seed=request.seed, batch_size=request.batch_size, memory_mb=request.memory_mb)
    held_out = None if test is None else evaluate_concepts(model, concepts, test.inputs.to(dtype))
    class_names = list(meta.get("class_names") or train.class_names)
    data = str(request.data) if train.names is None or request.show_identifiers else "the user's folder of scans"
    splits = {} if train.names is None else {"fitted_on": train.chosen, "held_out": None if test is None else test.chosen}
    with staged_folder(request.out) as out:
        report = Report("medlens concepts", f"{request.model} on {data}: {request.k} concepts")
        sec = report.section("Concepts (explanation space)")
        if splits:
            sec.add_text(f"Fitted on {train.chosen}; held out: {splits['held_out'] or 'none'}.")
        withheld: list[str] = []
        summary = add_concepts(sec, model, concepts, inputs, labels, class_names, held_out=held_out, n_top=request.top,
                               method=request.method, method_options=scope_options(request.options)[""], names=names,
                               shown=_drawn(train, inputs, withheld, request.show_identifiers))
        for sentence in withheld:
            sec.add_text(sentence, kind="note")
        save_model(concepts.autoencoder, out / "concepts.pt",
                   {"model": str(request.model), "data": data, "layer": request.layer, "k": request.k,
                    "head": "model" if concepts.classifier is not None else "linear", **summary})
        write_json(out / "concepts.json", {"model": str(request.model), "data": data, "layer": request.layer,
                                           "k": request.k, **splits, "history": concepts.history[-1:], **summary})
        report.write(out / "report.html")
        if train.cases is not None:
            write_csv(out / "identifiers.csv", train.cases.identifier_rows())
    return ConceptsResult(concepts, held_out, request.k, request.out, splits, len(inputs), 0 if test is None else len(test.inputs),
                          tuple(withheld))


def _drawn(train: Any, inputs: Any, withheld: list[str], show_identifiers: bool) -> Any:
    """``top -> inputs`` with the top rows whose pixels identify the patient as zeros unless
    ``show_identifiers`` (:mod:`medlens.app.pixel_privacy`), the sentences that say how many, and
    how many drawn ones to check, appended to ``withheld``."""
    from medlens.app.pixel_privacy import blank_rows, check_words, reference_privacy, withheld_words

    def drawn(top: Any) -> Any:
        identifying, unsure = reference_privacy(train, top.flatten().tolist())
        rows = [] if show_identifiers else identifying
        withheld.extend([withheld_words(len(rows), "top-activating scan(s)")] if rows else [])
        withheld.extend([check_words(len(unsure), "top-activating scan(s)")] if unsure else [])
        return blank_rows(inputs, rows)

    return drawn
