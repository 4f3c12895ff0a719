"""The ``explain`` use case: explain one case (or every case of a folder) and write maps on the
input's own grid.

:func:`explain_file` takes an :class:`ExplainRequest` (what ``medlens explain`` builds from its
arguments, and what a notebook builds by hand) and returns an :class:`ExplainResult`. The input
comes from the case workflow (:func:`medlens.app.inputs.model_cases`); the map goes back through
the recipe's inverse geometry and is written by :mod:`medlens.app.explain_outputs`.
"""

from __future__ import annotations

import dataclasses
import warnings

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from medlens.app.inputs import RecipeOptions, load_model_file, model_cases, refuse_index, target_class
from medlens.core.files import check_output_folder, staged_folder, write_csv
from medlens.core.progress import Progress
from medlens.errors import InputError, MedlensError


@dataclass(frozen=True)
class ExplainRequest:
    """What to explain and where to write it (the arguments of ``medlens explain``).

    ``input`` is a file, a DICOM series folder, a folder of cases, an npz data set or a bundled
    name (``index`` / ``split`` pick the case of a data set); ``target`` the class to explain
    (default: the predicted one); ``target_mask`` a mask for segmentation models (needs
    ``target``); ``regression`` explains the sum of the output; ``options`` are the method's
    options; ``quiet`` silences progress. ``memory_mb`` is the engine's budget and the readers'
    decoding limit. Scans are named by pseudonymous ids, their files listed in
    ``identifiers.csv`` (``show_identifiers`` names them by path everywhere); DICOM objects that
    carry the patient's attributes (Secondary Capture, Parametric Map) only with ``dicom_out``.
    ``inferer`` runs a patch model through sliding-window
    inference on the volume's native grid (a mapping with ``roi_size``, ``overlap``, ``mode``,
    ``sw_batch_size``, or a MONAI ``SlidingWindowInferer``; :mod:`medlens.app.explain_sliding`).
    """

    model: str
    input: str
    out: str
    method: str = "gradient"
    index: int = 0
    split: str = "test"
    target: int | str | None = None  # a class index or a class name (medlens.app.inputs.target_class)
    target_mask: str | None = None
    regression: bool = False
    dicom_out: bool = False
    show_identifiers: bool = False
    recipe: RecipeOptions = field(default_factory=RecipeOptions)
    options: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    memory_mb: float | None = None
    seed: int = 0
    quiet: bool = True
    text_column: str = "text"  # notes (a text model): medlens.app.explain_note
    label_column: str = "label"
    inferer: Any = None
    limit: int | None = None  # a folder or a notes file: its first ``limit`` cases
    multi_label: bool = False  # one sigmoid per finding (also the model file's meta["multilabel"])

    def validate(self) -> None:
        """Fail, in one line, on what can be told before any work."""
        from medlens.attribution.registry import get_method

        check_output_folder(self.out)
        get_method(self.method)
        if self.target_mask and self.target is None:
            raise InputError("--target-mask needs --target-class K: the output channel summed inside the mask")
        if self.inferer is not None:
            from medlens.app.explain_sliding import check_sliding_request

            check_sliding_request(self.method, self.inferer, self.target, self.regression)


@dataclass
class CaseOutcome:
    """One explained case: its prediction and where its files went (or its error)."""

    case: str
    output: str
    prediction: int | None = None
    predicted_class: str | None = None
    probability: float | None = None
    seconds: float | None = None
    headline: str = ""
    note: str | None = None
    error: str = ""
    warnings: list[dict[str, str]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The case's line of ``summary.csv``."""
        if self.error:
            return {"case": self.case, "output": "", "status": "error", "prediction": "", "predicted_class": "",
                    "probability": "", "seconds": "", "error": self.error, "warnings": ""}
        return {"case": self.case, "output": self.output, "status": "ok", "prediction": self.prediction,
                "predicted_class": self.predicted_class or "",
                "probability": "" if self.probability is None else f"{self.probability:.6f}",
                "seconds": f"{self.seconds:.3f}", "error": "",
                "warnings": ",".join(w["code"] for w in self.warnings)}


@dataclass
class ExplainResult:
    """What :func:`explain_file` did: the cases explained (one, or a folder's) and the output folder."""

    method: str
    out: str
    cases: list[CaseOutcome]
    folder: bool = False
    notes: list[str] = field(default_factory=list)  # about the input as a whole (empty notes skipped)

    @property
    def explained(self) -> int:
        return sum(not c.error for c in self.cases)

    @property
    def failed(self) -> list[CaseOutcome]:
        """The cases that could not be explained (each with its one-line error)."""
        return [c for c in self.cases if c.error]


def explain_file(request: ExplainRequest | None = None, **kwargs: Any) -> ExplainResult:
    """Explain ``request.input`` with ``request.method`` and write the maps to ``request.out``
    (``attribution.npy`` on the input's grid, ``overlay.png``, NIfTI/DICOM objects for such
    inputs, ``summary.json``; a folder gives one subfolder per case and ``summary.csv``).

    Takes an :class:`ExplainRequest` or its fields as keywords.
    """
    from medlens.attribution.explain import check_runnable
    from medlens.app.options import scope_options
    from medlens.data.cases import is_dataset
    from medlens.data.formats.folders import is_one_series

    request = request if request is not None else ExplainRequest(**kwargs)
    request.validate()
    model, meta = load_model_file(request.model, request.multi_label)
    request = dataclasses.replace(request, target=target_class(request.target, meta))  # a class by name too
    if meta.get("tokenizer"):
        from medlens.app.explain_note import explain_notes

        return explain_notes(request, model, meta)
    check_runnable(model, request.method, scope_options(request.options)[""])
    refuse_index(request.index, request.input)
    where = Path(request.input)
    if where.is_dir() and not is_one_series(where):
        return _explain_folder(request, model, meta)
    if is_dataset(request.input):
        case = model_cases(request.input, meta, split=request.split).case(request.index)
        outcome = explain_case(request, model, meta, case, Path(request.out))
    else:
        from medlens.data.formats.slice_geometry import SliceGeometryWarning

        cases = _scan_cases(request, meta)
        with warnings.catch_warnings():  # its slice grid's problems are said once, as the result's warnings
            warnings.filterwarnings("ignore", category=SliceGeometryWarning)
            case = cases.case(0)
        with staged_folder(request.out) as out:
            outcome = explain_case(request, model, meta, case, out, staged=False)
            write_csv(out / IDENTIFIERS, cases.identifier_rows())
        outcome.output = request.out
    return ExplainResult(request.method, request.out, [outcome])


#: The one file of an output folder that maps the cases' ids to the files they came from.
IDENTIFIERS = "identifiers.csv"


def _scan_cases(request: ExplainRequest, meta: dict) -> Any:
    return model_cases(request.input, meta, recipe=request.recipe, show_identifiers=request.show_identifiers,
                       memory_mb=request.memory_mb, native_grid=request.inferer is not None)


def _explain_folder(request: ExplainRequest, model: Any, meta: dict) -> ExplainResult:
    from medlens.app.explain_beats import FIRST_BEATS, BeatCases, beat_model_folder, beats_note

    beats = beat_model_folder(request.input, meta, request.recipe)
    cases = _scan_cases(request, meta) if beats is None else BeatCases(
        request.input, meta, beats, request.recipe, show_identifiers=request.show_identifiers, memory_mb=request.memory_mb)
    progress = Progress(quiet=request.quiet)
    outcomes: list[CaseOutcome] = []
    with staged_folder(request.out) as out:
        limit = FIRST_BEATS if request.limit is None and beats is not None else request.limit
        n = len(cases) if limit is None else min(limit, len(cases))
        for i in progress.over(range(n), "explain", unit="case"):
            name = cases.names[i]
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
            try:
                outcome = explain_case(request, model, meta, cases.case(i), out / safe, staged=False)
                outcome.case, outcome.output = name, safe
            except MedlensError as err:
                outcome = CaseOutcome(name, "", error=" ".join(str(err).split()))
            outcomes.append(outcome)
        if not any(not o.error for o in outcomes):
            first = next((o.error for o in outcomes if o.error), "")
            raise MedlensError(f"nothing readable in folder --input ({len(outcomes)} file(s); first error: {first})")
        write_csv(out / "summary.csv", [o.row() for o in outcomes])
        write_csv(out / IDENTIFIERS, cases.identifier_rows())
    notes = beats_note(n, len(cases)) if beats is not None else []
    notes += [text for text in [getattr(cases, "skipped", "")] if text]  # a folder's files that are no case
    return ExplainResult(request.method, request.out, outcomes, folder=True, notes=notes)


def explain_case(request: ExplainRequest, model: Any, meta: dict, case: Any, out_dir: Path,
                 staged: bool = True) -> CaseOutcome:
    """Explain one :class:`~medlens.data.cases.Case` and write its files into ``out_dir``."""
    import torch

    from medlens.app.options import scope_options
    from medlens.attribution.explain import explain
    from medlens.attribution.registry import method_call_options
    from medlens.core.checks import model_outputs
    from medlens.core.targets import model_probabilities

    if request.inferer is not None:
        from medlens.app.explain_sliding import sliding_attribution

        mask = _mask_on_model_grid(request.target_mask, case) if request.target_mask else None
        what = "every class" if request.target is None else f"class {request.target}"
        where = f" inside {Path(request.target_mask).name}" if request.target_mask else ""
        attribution, probs, target_note = sliding_attribution(model, case, request.method, request.inferer,
                                                              request.target, mask, scope_options(request.options)[""],
                                                              f"sum of {what}{where}", Progress(quiet=request.quiet))
        familiar = _familiarity(model, meta, case, distances=False)
        return _write_case(request, meta, case, out_dir, staged, attribution, probs, target_note, familiar)
    options = method_call_options(request.method, scope_options(request.options)[""], seed=request.seed)
    explained, target, target_note = _target_model(request, model, case)
    try:
        with torch.inference_mode():
            raw = model_outputs(explained, case.x)
    except RuntimeError as err:
        raise InputError(
            f"the model rejects an input of shape {tuple(case.x.shape)} (does the recipe fit the model?): "
            f"{str(err).splitlines()[0]}"
        ) from err
    if raw.ndim != 2:
        raise InputError(
            f"the model output has shape {tuple(raw.shape)}: explain a segmentation model with "
            "--target-class K --target-mask FILE, or a regression model with --regression"
        )
    probs = model_probabilities(raw, model)[0] if not target_note else raw[0]
    if target is None:
        target = int(probs.argmax())  # spares a second pass
    attribution = explain(explained, case.x, target, request.method, batch_size=request.batch_size,
                          memory_mb=request.memory_mb, **options)
    familiar = _beat_alignment(_familiarity(model, meta, case, distances=not target_note), meta, case)
    return _write_case(request, meta, case, out_dir, staged, attribution, probs, target_note, familiar)


def _beat_alignment(familiar: Any, meta: dict, case: Any) -> Any:
    """``familiar`` with a ``beat_alignment`` warning when a beat model's window of a record does not
    start where its training windows did before a beat (:func:`medlens.data.record_cases.beat_alignment`)."""
    import dataclasses

    from medlens.data.record_cases import beat_alignment_warnings

    found = beat_alignment_warnings(meta, case)
    return dataclasses.replace(familiar, warnings=[*familiar.warnings, *found]) if found else familiar


def _pixel_warning(familiar: Any, case: Any, show_identifiers: bool) -> Any:
    """``familiar`` with an ``identifying_pixels`` warning, first, when the scan's header says (or
    its modality suggests) that its pixels name the patient (:mod:`medlens.app.pixel_privacy`)."""
    import dataclasses

    from medlens.app.pixel_privacy import pixel_privacy

    warning = pixel_privacy(getattr(case.record, "metadata", None) or {}, show_identifiers=show_identifiers).warning
    return familiar if warning is None else dataclasses.replace(familiar, warnings=[warning, *familiar.warnings])


def _familiarity(model: Any, meta: dict, case: Any, *, distances: bool) -> Any:
    """Whether the case is like the model's training data (the case report's check): its native
    facts against the model's, and, for a classifier on the model's grid, the distances stored at
    training (``distances=False`` for sliding-window and segmentation/regression targets)."""
    from medlens.data.kinds import channel_names_of_model, facts_of_model
    from medlens.evaluation.familiarity import familiarity

    from medlens.app.model_quality import with_model_warnings

    reference = meta.get("familiarity") if distances else None
    return with_model_warnings(familiarity(model, case.x, reference, reading=case.reading, facts=facts_of_model(meta),
                                           channels=channel_names_of_model(meta)), meta)


def _write_case(request: ExplainRequest, meta: dict, case: Any, out_dir: Path, staged: bool, attribution: Any,
                probs: Any, target_note: str, familiar: Any) -> CaseOutcome:
    """Write one explained case's files (the map on the input's own grid) and describe it."""
    import contextlib

    from medlens.app.explain_outputs import write_case_outputs
    from medlens.core.classes import class_labels
    from medlens.core.resize import upsample_to

    familiar = _pixel_warning(familiar, case, request.show_identifiers)  # sliding-window runs included
    class_names = class_labels(meta.get("class_names"), len(probs))
    values = attribution.values[0]
    if values.shape[1:] != case.x.shape[2:]:
        values = upsample_to(attribution.values, case.x.shape[2:])[0]
    scope = staged_folder(out_dir) if staged else contextlib.nullcontext(out_dir)
    with scope as out:
        out.mkdir(parents=True, exist_ok=True)
        write_case_outputs(out, case, attribution, values, probs, class_names, request.method, target_note,
                           dicom_out=request.dicom_out, familiar=familiar, show_identifiers=request.show_identifiers,
                           multilabel=bool(meta.get("multilabel")))
    if target_note:  # a segmentation or regression target: one score, no class was predicted
        return CaseOutcome(case.source, str(out_dir), None, None, None, attribution.seconds, target_note,
                           attribution.extras.get("note"), warnings=list(familiar.warnings))
    k = int(probs.argmax())
    headline = f"predicted {class_names[k]} (p={float(probs.max()):.3f})"
    if meta.get("multilabel"):
        from medlens.app.findings import THRESHOLD, predicted_findings

        found = predicted_findings(probs, class_names)
        headline = (f"findings at p >= {THRESHOLD}: {', '.join(found) or 'none'}; "
                    f"highest {class_names[k]} (p={float(probs.max()):.3f})")
    if request.target is not None and request.target != k and 0 <= request.target < len(class_names):
        headline += f"; explained {class_names[request.target]} (p={float(probs[request.target]):.3f}, --target-class)"
    return CaseOutcome(case.source, str(out_dir), k, class_names[k], float(probs.max()), attribution.seconds, headline,
                       attribution.extras.get("note"), warnings=list(familiar.warnings))


def _target_model(request: ExplainRequest, model: Any, case: Any) -> tuple[Any, int | None, str]:
    """The model (wrapped for segmentation/regression targets), the target class, a description."""
    from medlens.core.targets import ReducedOutput

    if request.regression:
        return ReducedOutput(model), 0, "sum of the whole output"
    if request.target_mask:
        mask = _mask_on_model_grid(request.target_mask, case, request.memory_mb)
        return (ReducedOutput(model, channel=request.target, mask=mask), 0,
                f"sum of class {request.target} inside the --target-mask")
    return model, request.target, ""


def _mask_on_model_grid(path: str, case: Any, memory_mb: float | None = None) -> Any:
    """Read a mask on the input's grid and carry it through the case's geometry to the model's."""
    from medlens.data import read
    from medlens.data.formats.common import Volume
    from medlens.data.recipe import mask_on_model_grid

    mask = read(path, memory_mb=memory_mb)
    if not isinstance(mask, Volume):
        raise InputError(f"--target-mask {path} is a signal, not a mask")
    if case.record is None or case.prepared is None:
        want = tuple(case.x.shape[2:])
        if tuple(mask.spatial_shape) != want:
            raise InputError(f"--target-mask has shape {tuple(mask.spatial_shape)} but the input is {want}")
        return (mask.array > 0).float().reshape(want)
    original = tuple(case.prepared.geometry.original_shape)
    if tuple(mask.spatial_shape) != original:
        raise InputError(f"--target-mask has shape {tuple(mask.spatial_shape)} but the input is {original}")
    return mask_on_model_grid(case.prepared.geometry, mask.array).float()
