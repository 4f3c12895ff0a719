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
    """The arguments of ``medlens concepts``."""

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


@dataclass
class ConceptsResult:
    """The fitted concepts, their held-out scores (or ``None``), their number and the folder."""

    concepts: Any
    held_out: Any
    k: int
    out: str


def concept_report(request: ConceptsRequest | None = None, **kwargs) -> ConceptsResult:
    """Fit a concept autoencoder on the model's features of the training split and write
    concepts.pt, concepts.json and report.html into ``request.out``."""
    from medlens.app.options import scope_options
    from medlens.core.files import staged_folder, write_json
    from medlens.data.cases import labelled_set
    from medlens.attribution.registry import get_method
    from medlens.errors import MedlensError
    from medlens.models import load_model, save_model
    from medlens.report import Report
    from medlens.selfexplain.concepts import evaluate_concepts, learn_concepts
    from medlens.app.selfexplain_sections import add_concepts

    request = request if request is not None else ConceptsRequest(**kwargs)
    if request.k < 1 or request.epochs < 1 or request.top < 1:
        raise MedlensError("--k, --epochs and --top must be positive")
    if request.method:
        get_method(request.method)
    model, meta = load_model(request.model)
    train = labelled_set(request.data, "train", memory_mb=request.memory_mb)
    inputs, labels = train.inputs, train.labels
    if request.limit:
        inputs, labels = inputs[: request.limit], labels[: request.limit]
    dtype = next(iter(model.parameters())).dtype
    inputs = inputs.to(dtype)
    concepts = learn_concepts(model, inputs, k=request.k, layer=request.layer, head=request.head, epochs=request.epochs,
                              sparsity=request.sparsity, seed=request.seed, batch_size=request.batch_size, memory_mb=request.memory_mb)
    try:
        test = labelled_set(request.data, "test", memory_mb=request.memory_mb)
        held_out = evaluate_concepts(model, concepts, test.inputs.to(dtype))
    except MedlensError:
        held_out = None  # no test split
    class_names = list(meta.get("class_names") or train.class_names)
    with staged_folder(request.out) as out:
        report = Report("medlens concepts", f"{request.model} on {request.data}: {request.k} concepts")
        sec = report.section("Concepts (explanation space)")
        summary = add_concepts(sec, model, concepts, inputs, labels, class_names, held_out=held_out, n_top=request.top,
                               method=request.method, method_options=scope_options(request.options)[""])
        save_model(concepts.autoencoder, out / "concepts.pt",
                   {"model": str(request.model), "data": str(request.data), "layer": request.layer, "k": request.k,
                    "head": "model" if concepts.classifier is not None else "linear", **summary})
        write_json(out / "concepts.json", {"model": str(request.model), "data": str(request.data), "layer": request.layer,
                                           "k": request.k, "history": concepts.history[-1:], **summary})
        report.write(out / "report.html")
    return ConceptsResult(concepts, held_out, request.k, request.out)
