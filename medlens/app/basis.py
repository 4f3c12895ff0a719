"""The ``basis`` use case: the training cases a model sees as most alike a case (Lee et al. 2019).

:func:`prediction_basis_report` writes ``basis.json`` (indices, labels, predictions and
similarities of the nearest training cases) and ``report.html``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class BasisRequest:
    """The arguments of ``medlens basis``: ``data`` the training data set, ``input`` the queries
    (default: ``data``'s ``split``), ``index`` the query cases of a data set."""

    model: str
    data: str
    out: str
    input: str | None = None
    index: Sequence[int] = ()
    split: str = "test"
    k: int = 5
    layer: str | None = None
    method: str = "gradient"
    options: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    memory_mb: float | None = None


@dataclass
class BasisResult:
    """The basis (:class:`medlens.selfexplain.basis.PredictionBasis`), query names, summary lines."""

    basis: Any
    names: list[str]
    lines: list[str]
    out: str


def prediction_basis_report(request: BasisRequest | None = None, **kwargs) -> BasisResult:
    """Retrieve the ``k`` training cases most alike each query and write basis.json and
    report.html into ``request.out``."""
    import torch

    from medlens.app.options import scope_options
    from medlens.core.files import staged_folder, write_json
    from medlens.data.cases import is_dataset, labelled_set, open_cases
    from medlens.core.classes import class_label
    from medlens.errors import InputError
    from medlens.attribution.registry import get_method
    from medlens.models import load_model
    from medlens.report import Report
    from medlens.selfexplain.basis import prediction_basis
    from medlens.app.selfexplain_sections import add_basis

    request = request if request is not None else BasisRequest(**kwargs)
    get_method(request.method)
    model, meta = load_model(request.model)
    train = labelled_set(request.data, "train", memory_mb=request.memory_mb)
    dtype = next(iter(model.parameters())).dtype
    indices = request.index or [0]
    query = request.input or request.data
    shape = meta.get("input_shape")
    source = open_cases(query, split=request.split, memory_mb=request.memory_mb, input_shape=None if is_dataset(query) or shape is None else tuple(shape))
    for i in indices:  # a folder of scans is indexed like a data set: case i, not always its first
        if not 0 <= i < len(source):
            raise InputError(f"--index {i} is out of range: {query if source.is_dataset else 'the input'} "
                             f"has {len(source)} case(s) (0..{len(source) - 1})")
    cases = [source.case(i) for i in indices]
    queries = torch.cat([c.x for c in cases]).to(dtype)
    basis = prediction_basis(model, queries, train.inputs.to(dtype), train.labels, k=request.k, layer=request.layer,
                             method=request.method, batch_size=request.batch_size, memory_mb=request.memory_mb, **scope_options(request.options)[""])
    class_names = list(meta.get("class_names") or train.class_names)
    names = [f"{c.source}" + (f" #{i}" if source.is_dataset else "")
             for c, i in zip(cases, indices)]
    with staged_folder(request.out) as out:
        report = Report("medlens prediction basis", f"{request.model}: nearest training cases in {request.data}")
        sec = report.section("Prediction basis: similar training cases")
        add_basis(sec, basis, queries, [c.label for c in cases] if all(c.label is not None for c in cases) else None,
                  train.inputs.to(dtype), class_names, query_names=names)
        write_json(out / "basis.json", {
            "model": str(request.model), "data": str(request.data), "layer": request.layer, "k": request.k,
            "queries": [
                {"query": names[q], "label": cases[q].label, "prediction": int(basis.query_predictions[q]),
                 "neighbours": [{"train_index": int(basis.indices[q, j]), "label": int(basis.labels[q, j]),
                                 "prediction": int(basis.predictions[q, j]),
                                 "similarity": float(basis.similarity[q, j]),
                                 "relative_distance": None if basis.relative_distance is None
                                 else float(basis.relative_distance[q, j]),
                                 "same_image": bool(basis.same_image[q, j])} for j in range(request.k)]}
                for q in range(len(cases))
            ],
        })
        report.write(out / "report.html")
    lines = [f"{names[q]}: nearest training cases {basis.indices[q].tolist()} "
             f"(similarity {float(basis.similarity[q, 0]):.3f}..{float(basis.similarity[q, -1]):.3f})"
             for q in range(len(cases))]
    lines += [f"warning: {names[q]} is the same image as training case {int(basis.indices[q, j])} (labelled "
              f"{class_label(class_names, int(basis.labels[q, j]))}): the case, or a copy of it, is in the training data"
              for q, j in basis.same_image.nonzero().tolist()]
    return BasisResult(basis, names, lines, request.out)
