"""The ``basis`` use case: the training cases a model sees as most alike a case (Lee et al. 2019).

:func:`prediction_basis_report` writes ``basis.json`` (indices, labels, predictions and
similarities of the nearest training cases) and ``report.html``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class BasisRequest:
    """The arguments of ``medlens basis``: ``data`` the training cases (a data set's train split,
    or a folder of scans with an optional ``labels`` CSV, read through the model's recipe with
    ``recipe`` applied), ``input`` the queries (default: ``data``'s ``split``, or the folder's
    cases), ``index`` the query cases of a data set or folder. A folder's cases are named by their
    ids (``case-0003``; ``show_identifiers``: by their paths), the files in ``identifiers.csv``."""

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
    labels: str | None = None
    recipe: Any = None
    show_identifiers: bool = False
    multi_label: bool = False  # one sigmoid per finding (also the model file's meta["multilabel"])


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
    import dataclasses

    import torch

    from medlens.app.inputs import load_model_file, model_cases
    from medlens.app.options import scope_options
    from medlens.app.reference_cases import reference_sets
    from medlens.core.files import staged_folder, write_csv, write_json
    from medlens.errors import InputError
    from medlens.attribution.registry import get_method
    from medlens.report import Report
    from medlens.selfexplain.basis import prediction_basis
    from medlens.app.selfexplain_sections import add_basis

    request = request if request is not None else BasisRequest(**kwargs)
    get_method(request.method)
    model, meta = load_model_file(request.model, request.multi_label)  # meta multilabel: one sigmoid per finding
    train, _ = reference_sets(request.data, meta, labels=request.labels, recipe=request.recipe,
                              show_identifiers=request.show_identifiers, memory_mb=request.memory_mb)
    dtype = next(iter(model.parameters())).dtype
    indices = request.index or [0]
    query = request.input or request.data
    source = model_cases(query, meta, split=request.split, recipe=request.recipe, what="--input" if request.input else "--data",
                         labels=request.labels if query == request.data else None,
                         show_identifiers=request.show_identifiers, memory_mb=request.memory_mb)
    for i in indices:  # a folder of scans is indexed like a data set: case i, not always its first
        if not 0 <= i < len(source):
            raise InputError(f"--index {i} is out of range: {query if source.is_dataset else 'the input'} "
                             f"has {len(source)} case(s) (0..{len(source) - 1})")
    cases = [source.case(i) for i in indices]
    queries = torch.cat([c.x for c in cases]).to(dtype)
    basis = prediction_basis(model, queries, train.inputs.to(dtype), train.labels, k=request.k, layer=request.layer,
                             method=request.method, batch_size=request.batch_size, memory_mb=request.memory_mb, **scope_options(request.options)[""])
    basis = dataclasses.replace(basis, same_patient=same_patient_flags(train, source, indices, basis.indices))
    class_names = list(meta.get("class_names") or train.class_names)
    names = [f"{c.source}" + (f" #{i}" if source.is_dataset else "")
             for c, i in zip(cases, indices)]
    with staged_folder(request.out) as out:
        report = Report("medlens prediction basis", f"{request.model}: nearest training cases in {_data_words(request)}")
        sec = report.section("Prediction basis: similar training cases")
        if train.names is not None:
            sec.add_text(f"Training cases: {train.chosen}.")
        shown_queries, shown_train, withheld = _shown_pictures(request, cases, queries, train, basis)
        if withheld:
            sec.add_text(withheld, kind="note")
        add_basis(sec, basis, shown_queries, [c.label for c in cases] if all(c.label is not None for c in cases) else None,
                  shown_train.to(dtype), class_names, query_names=names, train_names=train.names)
        write_json(out / "basis.json", {
            "model": str(request.model), "data": _data_words(request), "layer": request.layer, "k": request.k,
            **({"training_cases": train.chosen} if train.names is not None else {}),
            "queries": [
                {"query": names[q], "label": cases[q].label, "prediction": int(basis.query_predictions[q]),
                 "neighbours": [{"train_index": int(basis.indices[q, j]),
                                 **({"case": train.name(int(basis.indices[q, j]))} if train.names is not None else {}),
                                 "label": _label(basis.labels[q, j]),
                                 "prediction": int(basis.predictions[q, j]),
                                 "similarity": float(basis.similarity[q, j]),
                                 "relative_distance": None if basis.relative_distance is None
                                 else float(basis.relative_distance[q, j]),
                                 "same_image": bool(basis.same_image[q, j]),
                                 # None: no patient identity known (labels' group column, DICOM PatientID)
                                 "same_patient": None if basis.same_patient is None
                                 else bool(basis.same_patient[q, j])} for j in range(request.k)]}
                for q in range(len(cases))
            ],
        })
        report.write(out / "report.html")
        rows = _identifier_rows(train.cases, source if query != request.data else None)
        if rows:
            write_csv(out / "identifiers.csv", rows)
    lines = [f"{names[q]}: nearest training cases {[train.name(int(r)) for r in basis.indices[q]]} "
             f"(similarity {float(basis.similarity[q, 0]):.3f}..{float(basis.similarity[q, -1]):.3f})"
             for q in range(len(cases))]
    lines += [f"warning (identifying_pixels): {withheld}"] if withheld else []
    lines += [f"warning: {names[q]} is the same image as training {train.words(int(basis.indices[q, j]))} (labelled "
              f"{_label_words(class_names, int(basis.labels[q, j]))}): the case, or a copy of it, is in the training data"
              for q, j in basis.same_image.nonzero().tolist()]
    if basis.same_patient is not None:  # another image of the query's patient (an identical one is said above)
        lines += [f"warning: {names[q]} is of the same patient as training {train.words(int(basis.indices[q, j]))} "
                  f"(another image, labelled {_label_words(class_names, int(basis.labels[q, j]))}): the patient is in the "
                  "training data" for q, j in (basis.same_patient & ~basis.same_image).nonzero().tolist()]
    return BasisResult(basis, names, lines, request.out)


def same_patient_flags(train: Any, source: Any, indices: Sequence[int], retrieved: Any) -> Any:
    """``(Q, k)`` bool: each retrieved training case is of its query's patient, compared by digest
    (:mod:`medlens.data.patients`: the labels' group column, else the DICOM PatientID); ``None``
    when the patients of the queries or of the training cases are not known (a data set)."""
    import torch

    from medlens.data.patients import case_patients, known_patients

    if train.cases is None or getattr(source, "scans", None) is None:
        return None
    train_patients = known_patients(case_patients(train.cases.scans, train.positions))
    query_patients = case_patients(source.scans, indices)
    if not any(train_patients) or not any(query_patients):
        return None
    return torch.tensor([[p is not None and train_patients[int(r)] == p for r in row]
                         for p, row in zip(query_patients, retrieved.tolist())], dtype=torch.bool)


def _shown_pictures(request: BasisRequest, cases: list, queries: Any, train: Any, basis: Any) -> tuple[Any, Any, str]:
    """The queries and training cases as the report draws them: a scan whose header says its pixels
    identify the patient as zeros unless ``--show-identifiers`` (:mod:`medlens.app.pixel_privacy`),
    and the sentence that says how many ("" when none)."""
    from medlens.app.pixel_privacy import (blank_rows, check_words, pixels_identify, pixels_unsure, reference_privacy,
                                           withheld_words)

    train_rows, unsure_train = reference_privacy(train, basis.indices.flatten().tolist())
    unsure = sum(pixels_unsure(c) for c in cases) + len(unsure_train)
    check = check_words(unsure, "scan(s) of this page") if unsure else ""
    if request.show_identifiers:
        return queries, train.inputs, check
    query_rows = [q for q, c in enumerate(cases) if pixels_identify(c)]
    count = len(query_rows) + len(train_rows)
    withheld = withheld_words(count, "scan(s) of this page") if count else ""
    return blank_rows(queries, query_rows), blank_rows(train.inputs, train_rows), " ".join(filter(None, [withheld, check]))



def _data_words(request: BasisRequest) -> str:
    """The training data as outputs name it: a data set by its path or name, a folder of scans by
    its kind (its name may name a patient) unless identifiers are shown."""
    from medlens.data.cases import data_words, is_dataset

    return str(request.data) if is_dataset(request.data) or request.show_identifiers else data_words(request.data)


def _label(value: Any) -> int | None:
    """A training case's label for basis.json: ``None`` where it is not known."""
    from medlens.app.reference_cases import UNKNOWN

    return None if int(value) == UNKNOWN else int(value)


def _label_words(class_names: Sequence[str], k: int) -> str:
    from medlens.core.classes import class_label

    return "unknown" if k < 0 else class_label(class_names, k)


def _identifier_rows(train_cases: Any, query_cases: Any) -> list[dict[str, str]]:
    """identifiers.csv rows of the scans read (``of``: --data or --input); none for data sets."""
    rows = []
    for flag, cases in (("--data", train_cases), ("--input", query_cases)):
        if cases is not None and not cases.is_dataset:
            rows += [{**row, "of": flag} for row in cases.identifier_rows()]
    return rows
