"""The computing side of the case report: run the model, the methods, the trust checks, the
prediction basis and the generated sentence on one case (:func:`case_report`)."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from medlens.app.case_report.calibration import calibration_sentence
from medlens.app.findings import THRESHOLD, findings_fields, predicted_findings, true_findings_words
from medlens.app.case_report.checks import case_checks
from medlens.app.case_report.inputs import CaseInput, CaseReportSettings
from medlens.app.case_report.trust import trust_from_checks, trust_from_evaluation, within_model_record
from medlens.app.model_quality import with_model_warnings
from medlens.data.kinds import channel_names_of_model, facts_of_model
from medlens.evaluation.familiarity import familiarity
from medlens.core.classes import class_labels
from medlens.core.engine import Budget
from medlens.core.targets import model_probabilities, multilabel_of
from medlens.errors import InputError, MedlensError
from medlens.report.case import BasisCase, CaseReport
from medlens.report.viewer import MapLayer


def _native_map(values: torch.Tensor, x: torch.Tensor, native_shape: tuple[int, ...] | None, kind: str,
                geometry: Any = None) -> np.ndarray:
    """``(1, C', *s')`` attribution -> one map on the native grid (channels summed).

    With the recipe's ``geometry`` the map on the model's grid goes through its exact inverse
    (:func:`medlens.data.recipe.invert`: crops and pads undone, other slices zero), the map
    ``medlens explain`` writes; without it the map is resized onto ``native_shape``.
    """
    from medlens.core.resize import upsample_to
    from medlens.data.recipe import invert

    on_grid = upsample_to(values.detach().double(), x.shape[2:])  # (1, C', *spatial)
    if geometry is not None and kind != "signal":
        return invert(geometry, on_grid[0]).double().cpu().numpy()
    v = on_grid.sum(1, keepdim=True)  # (1, 1, *spatial)
    if kind != "signal" and native_shape is not None and tuple(native_shape) != tuple(v.shape[2:]):
        v = upsample_to(v, native_shape)
    if kind == "signal" and native_shape is not None and native_shape[-1] != v.shape[-1]:
        v = upsample_to(v, native_shape[-1:])
    return v[0, 0].cpu().numpy()


def _kind(x: torch.Tensor) -> str:
    return {3: "signal", 4: "image", 5: "volume"}[x.ndim]


def case_report(
    model: nn.Module,
    x: torch.Tensor,
    target: int | None = None,
    *,
    case: CaseInput = CaseInput(),
    settings: CaseReportSettings | None = None,
    **settings_fields: Any,
) -> tuple[CaseReport, dict]:
    """Compute everything the case report shows for one case.

    Parameters
    ----------
    model : nn.Module
        Classifier ``(B, K)``.
    x : torch.Tensor
        ``(1, C, *spatial)`` the case as the model takes it (1D, 2D or 3D).
    target : int, optional
        Class to explain (default: the predicted class).
    case : CaseInput
        The native scan and what is known about it.
    settings : CaseReportSettings
        How the report is computed (methods, options, evaluation, basis data, budget, ...); its
        fields may also be given as keywords (``methods=["gradient"]``).

    Returns
    -------
    (CaseReport, dict)
        The report's content, and a JSON-ready summary (prediction, methods, trust levels).

    Raises
    ------
    InputError
        ``x`` is not one case, the target is out of range, basis data do not fit the model,
        or no method applies.
    """
    from medlens.attribution.explain import explain
    from medlens.attribution.registry import get_method
    from medlens.core.checks import evaluation_mode, model_outputs

    from medlens.attribution.registry import method_call_options

    settings = _settings(settings, settings_fields)
    meta, methods, seed = dict(settings.meta or {}), list(settings.methods), settings.seed
    batch_size, memory_mb, method_options = settings.batch_size, settings.memory_mb, settings.method_options
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4, 5) or len(x) != 1:
        raise InputError(f"a case report takes one case (1, C, *spatial), got shape {tuple(getattr(x, 'shape', ()))}")
    if not methods:
        raise InputError("name at least one method")
    for m in methods:
        get_method(m)
    options = {m: method_call_options(m, (method_options or {}).get(m, {}), seed=seed) for m in methods}
    unknown = set(method_options or {}) - set(methods)
    if unknown:
        raise InputError(f"options given for {sorted(unknown)[0]!r}, which is not among the methods shown")
    budget = Budget(batch_size=batch_size, memory_mb=memory_mb)
    dtype = next(iter(model.parameters())).dtype if any(True for _ in model.parameters()) else x.dtype
    if x.is_floating_point():
        x = x.to(dtype)
    with evaluation_mode(model), torch.inference_mode():
        raw = model_outputs(model, x, budget)
    if raw.ndim != 2:  # a class index out of a flattened segmentation map means nothing to a reader
        raise InputError(
            f"a case report explains a classifier (one score per class), but the model's output has shape "
            f"{tuple(raw.shape)}: explain a segmentation model with medlens explain --target-class K "
            "(--inferer sliding-window --roi D,H,W for a patch model)"
        )
    probs = model_probabilities(raw, model)[0].double()
    predicted = int(probs.argmax())
    n_classes = len(probs)
    explained = predicted if target is None else int(target)
    if not 0 <= explained < n_classes:
        raise InputError(f"target {explained} is out of range: the model has {n_classes} classes (0..{n_classes - 1})")
    class_names = class_labels(meta.get("class_names"), n_classes)
    kind = _kind(x)
    native = case.native
    if native is None:
        native = x[0].mean(0).cpu().numpy() if kind != "signal" else x[0].cpu().numpy()
    native = np.asarray(native, dtype=np.float64)
    if kind == "signal" and native.ndim == 1:
        native = native[None]
    if native.ndim != (2 if kind == "signal" else x.ndim - 2):
        raise InputError(f"the native scan has shape {native.shape}, which does not match a {kind} "
                         f"input of shape {tuple(x.shape[1:])}")
    geometry = case.geometry if case.native is not None else None
    if geometry is not None and tuple(geometry.original_shape) != native.shape:
        raise InputError(f"the recipe's geometry maps back onto shape {tuple(geometry.original_shape)}, "
                         f"not onto the native scan's {native.shape}")
    attributions, maps, notes = {}, [], list(case.notes)
    for m in methods:
        try:
            attr = explain(model, x, explained, m, batch_size=batch_size, memory_mb=memory_mb, **options[m])
        except MedlensError as err:  # options were checked above: the method does not fit this model
            notes.append(f"{m} does not apply to this model and is not shown ({' '.join(str(err).split())}).")
            continue
        attributions[m] = attr.values
        maps.append(MapLayer(m, _native_map(attr.values, x, native.shape, kind, geometry)))
    if not maps:
        raise InputError(f"none of the methods {', '.join(methods)} applies to this model")
    if settings.evaluation is not None:
        trust = trust_from_evaluation(model, settings.evaluation, list(attributions), model_name=settings.model_name)
    else:
        trust = trust_from_checks(case_checks(model, x, explained, attributions, method_options=options,
                                              seed=seed, budget=budget))
    basis = None
    basis_summary = ""
    if settings.basis_inputs is not None:
        basis, basis_summary = _basis(model, x, settings.basis_inputs, settings.basis_labels, settings.k, maps[0].name, options[maps[0].name],
                                      class_names, predicted, budget, folder=settings.basis_folder)
    sentence = _sentence(model, x, budget)
    familiar = with_model_warnings(familiarity(model, x, meta.get("familiarity"), reading=case.reading,
                                               facts=facts_of_model(meta), channels=channel_names_of_model(meta)), meta)
    warnings = [*case.warnings, *familiar.warnings]  # the input's own (identifying pixels, beat alignment) first
    trust = within_model_record(trust, warnings)
    calibration, calibration_rows = calibration_sentence(meta.get("calibration"), float(probs[predicted]),
                                                         like_training=familiar.unlike is not True)
    identifiers = dict(case.identifiers)
    multilabel = multilabel_of(model) is not None
    findings = predicted_findings(probs, class_names) if multilabel else None
    report = CaseReport(
        scan=case.description, kind=kind, base=np.zeros_like(native) if case.pixels_withheld else native, maps=maps, class_names=class_names,
        probabilities=[float(p) for p in probs], predicted=predicted, explained=explained, trust=trust,
        label=None if case.label is None else class_names[case.label] if 0 <= case.label < len(class_names) else str(case.label),
        calibration=calibration, calibration_rows=calibration_rows, basis=basis, basis_summary=basis_summary,
        sentence=sentence, metadata=dict(case.metadata), withheld=withheld_names(identifiers),
        identifiers=identifiers if settings.show_identifiers else None, model=_model_words(meta),
        spacing=case.spacing, planes=case.planes, affine=case.affine, annotations=list(case.annotations), rate=case.rate, start=case.start, window=case.window, notes=notes,
        familiarity=familiar.sentence, familiarity_unlike=familiar.unlike, familiarity_rows=familiar.rows,
        warnings=warnings, findings=findings, findings_threshold=THRESHOLD,
    )
    summary = {
        "prediction": predicted,
        "predicted_class": class_names[predicted],
        "probabilities": {class_names[i]: float(p) for i, p in enumerate(probs)},
        **(findings_fields(probs, class_names) if multilabel else {}),
        "explained": explained,
        "methods": [m.name for m in maps],
        "trust": {"source": trust.source, "level": trust.level, "headline": trust.headline,
                  "methods": {t.method: t.level for t in trust.methods}},
        "basis": None if basis is None else [{"train_index": b.index, **({"case": b.name} if b.name else {}), "label": b.label, "similarity": b.similarity,
                                              "relative_distance": b.relative_distance, "same_image": b.same_image,
                                              "same_patient": b.same_patient} for b in basis],
        "sentence": sentence,
        "familiarity": familiar.as_dict(),
        "warnings": warnings,
        "identifiers_withheld": [] if settings.show_identifiers else withheld_names(identifiers),
        "reading": dict(case.reading) or None,
    }
    return report, summary


def _settings(settings: CaseReportSettings | None, given: dict[str, Any]) -> CaseReportSettings:
    """``settings`` with the keywords ``given`` applied (an unknown keyword is a TypeError)."""
    known = {f.name for f in fields(CaseReportSettings)}
    extra = sorted(set(given) - known)
    if extra:
        raise TypeError(f"case_report() got an unexpected keyword argument {extra[0]!r}")
    return replace(settings or CaseReportSettings(), **given)


def withheld_names(identifiers: dict[str, str]) -> list[str]:
    """Readable names of withheld identifiers: top-level attributes (an identifier nested in a
    sequence is named by its sequence), private elements counted, not listed."""
    names, private = set(), 0
    for key in identifiers:
        top = key.split("[", 1)[0]
        if top.startswith("private ("):
            private += 1
        else:
            names.add(top)
    out = sorted(names)
    if private:
        out.append(f"{private} private element{'s' if private != 1 else ''}")
    return out


def _model_words(meta: dict) -> str:
    parts = []
    if meta.get("data"):
        parts.append(f"trained on {meta['data']}")
    test = meta.get("test") or {}
    if isinstance(test.get("accuracy"), (int, float)) and math.isfinite(test["accuracy"]):
        from medlens.app.recipes import majority_words

        parts.append(f"test accuracy {test['accuracy']:.2f}{majority_words(test, digits=2)}")
    return ", ".join(parts) or "a classifier"


def _basis(model, x, inputs, labels, k, method, options, class_names, predicted, budget, *, folder=None):
    """The ``k`` training cases most alike ``x`` and the section's sentence; ``folder``
    (:class:`medlens.app.folder_basis.FolderBasis`): the cases are a folder's, named by their ids,
    flagged when of the query's patient, drawn blank when their pixels identify the patient."""
    import dataclasses

    from medlens.selfexplain.basis import prediction_basis

    if labels is None or len(labels) != len(inputs):
        raise InputError("basis data need one label per case")
    if tuple(inputs.shape[1:]) != tuple(x.shape[1:]):
        raise InputError(
            f"basis data have cases of shape {tuple(inputs.shape[1:])}, the model takes {tuple(x.shape[1:])}"
        )
    if not 1 <= k <= len(inputs):
        raise InputError(f"k must lie in 1..{len(inputs)} (the basis data's size), got {k}")
    pb = prediction_basis(model, x, inputs.to(x.dtype), labels, k=k, method=method, **budget.kwargs(), **options)
    from medlens.app.pixel_privacy import withheld_words
    from medlens.core.resize import upsample_to

    withheld: list[int] = []
    if folder is not None:
        pb = dataclasses.replace(pb, same_patient=folder.same_patient(pb.indices))
        withheld = folder.withheld(pb.indices[0].tolist())

    sal = upsample_to(pb.saliency[0].double(), x.shape[2:]) if pb.saliency is not None else None
    cases = [
        BasisCase(
            index=int(pb.indices[0, j]), name=folder.name(int(pb.indices[0, j])) if folder is not None else "",
            image=_shown(inputs[int(pb.indices[0, j])], int(pb.indices[0, j]) in withheld),
            saliency=None if sal is None else sal[j].cpu().numpy(),
            label=_label_words(pb.labels[0, j], class_names),
            predicted=class_names[int(pb.predictions[0, j])], similarity=float(pb.similarity[0, j]),
            relative_distance=None if pb.relative_distance is None else float(pb.relative_distance[0, j]),
            same_image=pb.same_image is not None and bool(pb.same_image[0, j]),
            same_patient=None if pb.same_patient is None else bool(pb.same_patient[0, j]),
        )
        for j in range(pb.indices.shape[1])
    ]
    findings = pb.labels.ndim == 3  # (1, k, K) 0/1 rows of a multi-label model's findings
    same = int(pb.labels[0][:, predicted].sum()) if findings else int((pb.labels[0] == predicted).sum())
    carry = "have the finding" if findings else "carry the label"
    text = (f"The {len(cases)} training cases the model sees as most alike this one: {same} of them {carry} "
            f"{class_names[predicted]}, the model's finding here. Each is shown with its own {method} map, the cosine "
            "similarity of the model's features centred on the training mean (unrelated cases score near or below 0) "
            "and its distance in units of a typical training case's distance to its nearest neighbour.")
    if withheld:
        text += " " + withheld_words(len(withheld), "similar case(s)")
    return cases, text


def _shown(image: torch.Tensor, withhold: bool) -> np.ndarray:
    """A retrieved case's picture: zeros when its pixels identify the patient."""
    shown = image.double().cpu().numpy()
    return np.zeros_like(shown) if withhold else shown


def _label_words(label: torch.Tensor, class_names: Sequence[str]) -> str:
    """A training case's label in words: its class's name, or its true findings (a ``(K,)`` 0/1 row
    of a multi-label data set, :func:`~medlens.app.findings.true_findings_words`)."""
    if label.ndim == 1:
        return true_findings_words(label.tolist(), class_names)
    k = int(label)
    if k < 0:  # a folder's case its labels file leaves out (medlens.app.reference_cases.UNKNOWN)
        return "unknown"
    return class_names[k] if k < len(class_names) else str(k)


def _sentence(model: nn.Module, x: torch.Tensor, budget: Budget) -> str | None:
    """The sentence an InterpNET-style model writes about the case (Kim et al. 2018), else ``None``."""
    from medlens.selfexplain.interpnet import InterpNet, generate

    if not isinstance(model, InterpNet):
        return None
    return generate(model, x, **budget.kwargs()).sentences[0]
