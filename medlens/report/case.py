"""The case report: one scan, its explanation, how far to trust it, for a clinician.

:func:`render_case_report` turns a :class:`CaseReport` (results only: arrays, numbers, sentences;
:mod:`medlens.app.case_report` computes them) into one self-contained HTML page:

* a summary (the only part printed: one page) with the finding and its probability (and what
  that probability means when the model file holds calibration data), the scan with the maps in
  the shared viewer (:mod:`medlens.report.viewer`), how far to trust the highlighted areas in
  one sentence, and the fixed caveats;
* how far to trust each method, in plain words, with the numbers one click away;
* the prediction basis (the most similar training cases with their labels and their own maps,
  as in Lee et al. 2019's haemorrhage detector);
* the sentence the model wrote (InterpNET-style models);
* about the scan: acquisition details that identify no one, and which identifiers were withheld
  (their values only with ``show_identifiers``; always escaped).

The pattern is that of the seed's application systems (Lee et al., Nature Biomedical Engineering
2019; Tomita et al., JAMA Network Open 2019): one case, the evidence for the decision, and the
cases it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from medlens.report.html import Report, sentence_html
from medlens.report.selfexplain import leak_words
from medlens.report.viewer import Annotation, MapLayer, viewer_html

__all__ = [
    "CAVEATS",
    "BasisCase",
    "CaseReport",
    "MethodTrust",
    "TrustAssessment",
    "render_case_report",
    "write_case_report",
]

#: Fixed caveats, in plain words: what a saliency map does and does not show.
CAVEATS: tuple[str, ...] = (
    "The coloured areas show which parts of the scan changed the model's output most. They are not a "
    "segmentation of disease and do not show why the model decided as it did.",
    "A highlighted area can be a true finding, an artefact, a marker or text on the image: look at the "
    "scan itself before relying on the highlight.",
    "Different methods can highlight different areas for the same decision; where they disagree, none of "
    "them can be taken at face value.",
    "The probability is the model's output, not a diagnosis. The model has only seen cases like those it was "
    "trained on; it can be confidently wrong on a case unlike them.",
)


def noun(kind: str) -> str:
    """What the report calls its input: a record for a signal, a scan otherwise."""
    return "record" if kind == "signal" else "scan"


def caveats(kind: str) -> tuple[str, ...]:
    """:data:`CAVEATS` in the words of the input's kind (a record's samples, not a scan's areas)."""
    if kind != "signal":
        return CAVEATS
    return tuple(c.replace("parts of the scan", "parts of the record").replace("text on the image", "noise on the trace")
                 .replace("scan itself", "record itself") for c in CAVEATS)

_EXTRA_CSS = """
.finding{font-size:20px;margin:4px 0 8px} .finding b{color:#12355b}
.warnings{list-style:none;padding:0;margin:4px 0} .warnings li{margin:4px 0}
.caveats li{font-size:13px;line-height:1.4;margin:2px 0}
.trust-supported{border-left:4px solid #2e7d32;padding:6px 10px;background:#eef7ee}
.trust-caution{border-left:4px solid #f0b400;padding:6px 10px;background:#fff8e1}
.trust-unsupported{border-left:4px solid #c62828;padding:6px 10px;background:#fbeeee}
.withheld{font-size:13px;color:#333}
@media print{
 @page{size:A4;margin:12mm}
 body{background:#fff;font-size:11px} header h1{font-size:17px} header p{font-size:11px}
 section.summary h2{font-size:14px;margin:2px 0 4px} .finding{font-size:15px}
 section.summary p,.caveats li{font-size:10.5px;line-height:1.3;margin:2px 0}
 details{display:none}
}
"""


@dataclass(frozen=True)
class MethodTrust:
    """How far one method's map can be trusted, in words and numbers.

    Attributes
    ----------
    method : str
    level : {"supported", "caution", "unsupported"}
    sentence : str
        Plain words for a clinician, each claim backed by a number in ``numbers``.
    numbers : list of (str, str)
        ``(what, value)`` rows shown one click away.
    segments : list of dict
        The sentence as segments whose comparative phrases carry their claims
        (:func:`medlens.report.html.sentence_html`); empty: the plain ``sentence`` is shown.
    """

    method: str
    level: str
    sentence: str
    numbers: list[tuple[str, str]] = field(default_factory=list)
    segments: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class TrustAssessment:
    """Where the trust statement comes from and what it says.

    Attributes
    ----------
    source : str
        ``"evaluation"`` (a leaderboard run of this model) or ``"case"`` (checks run on this case).
    headline : str
        One sentence for the summary.
    level : {"supported", "caution", "unsupported"}
    methods : list of MethodTrust
    details : str
        Where the numbers come from (data set, number of cases, checks run).
    best : str or None
        The method to show first (the one the evidence favours).
    """

    source: str
    headline: str
    level: str
    methods: list[MethodTrust]
    details: str = ""
    best: str | None = None


@dataclass(frozen=True)
class BasisCase:
    """One retrieved training case of the prediction basis.

    Attributes
    ----------
    index : int
        Row in the training set.
    image : np.ndarray
        ``(C, *spatial)`` the case as the model sees it.
    saliency : np.ndarray or None
        ``(C', *spatial)`` its map for its own predicted class.
    label, predicted : str
    similarity : float
        Cosine similarity of the model's features centred on the training mean, in [-1, 1].
    relative_distance : float or None
        Distance in feature space over a typical training case's nearest-neighbour distance.
    same_image, same_patient : bool, bool or None
        The case is the query (or a copy of it), or of the query's patient (``None``: the patients
        are not known), as :func:`medlens.selfexplain.basis.prediction_basis` flags them.
    name : str
        Its case id in a folder of scans (``case-0003``); ``""``: a data set's row, named by ``index``.
    """

    index: int
    image: np.ndarray
    saliency: np.ndarray | None
    label: str
    predicted: str
    similarity: float
    relative_distance: float | None = None
    same_image: bool = False
    same_patient: bool | None = None
    name: str = ""

    @property
    def words(self) -> str:
        """The case in a caption: ``case-0003`` (a folder's id) or ``case #3`` (a data set's row)."""
        return self.name or f"case #{self.index}"


@dataclass(frozen=True)
class CaseReport:
    """Everything a case report shows (results only; nothing here runs a model).

    Attributes
    ----------
    scan : str
        What the scan is, identifying no one (``"CT, 128 x 128 pixels"``).
    kind : {"image", "volume", "signal"}
    base : np.ndarray
        The scan at its native resolution: ``(H, W)``, ``(D, H, W)`` or ``(L, T)``.
    maps : list of MapLayer
        One map per method, on the base's grid (a signal's: ``(T,)``).
    class_names : list of str
    probabilities : list of float
        The model's probability per class.
    predicted : int
    explained : int
        The class the maps explain.
    label : str or None
        The known label of the case (data sets only).
    calibration : str or None
        What the probability means, from the model file's calibration data.
    calibration_rows : list of (str, str)
    trust : TrustAssessment
    basis : list of BasisCase or None
    basis_summary : str
    sentence : str or None
        The explanation the model generated.
    metadata : dict of str to str
        Non-identifying acquisition details.
    withheld : list of str
        Names of the identifying fields left out.
    identifiers : dict of str to str or None
        Their values, only when the user asked to show them.
    model : str
        What the model is (architecture, data set, test accuracy), identifying no one.
    spacing : sequence of float or None
    planes : sequence of str or None
        A volume's plane names per axis (the viewer's ``plane_names``).
    affine : 4 x 4 sequence of float or None
        A volume's stored indices to RAS millimetres (the viewer's ``affine``): its planes drawn
        as a radiologist reads them.
    annotations : list of Annotation
    rate : float or None
    start : float
        Time (s) in its record of a signal window's first sample.
    window : (float, float) or None
        Grey-level window of the scan (e.g. the DICOM's own CT window), low and high.
    notes : list of str
        Anything the reader should know about how the input was read.
    familiarity : str or None
        Whether the scan resembles the model's training data, in plain words.
    familiarity_unlike : bool or None
        ``True``: the scan is unlike the training data (shown as a warning); ``None``: unknown.
    familiarity_rows : list of (str, str)
        The distances behind that sentence.
    warnings : list of dict
        ``{code, message}`` entries shown above the finding (``downsampled``, ``modality``,
        ``unlike_training``).
    findings : list of str or None
        A multi-label model's predicted findings (each finding's own probability at the threshold
        ``findings_threshold`` or above; ``probabilities`` are then one sigmoid per finding, not a
        distribution); ``None`` for a single-label model.
    findings_threshold : float
    """

    scan: str
    kind: str
    base: np.ndarray
    maps: list[MapLayer]
    class_names: list[str]
    probabilities: list[float]
    predicted: int
    explained: int
    trust: TrustAssessment
    label: str | None = None
    calibration: str | None = None
    calibration_rows: list[tuple[str, str]] = field(default_factory=list)
    basis: list[BasisCase] | None = None
    basis_summary: str = ""
    sentence: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    withheld: list[str] = field(default_factory=list)
    identifiers: dict[str, str] | None = None
    model: str = ""
    spacing: Sequence[float] | None = None
    planes: Sequence[str] | None = None
    affine: Sequence[Sequence[float]] | None = None
    annotations: list[Annotation] = field(default_factory=list)
    rate: float | None = None
    start: float = 0.0
    window: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)
    familiarity: str | None = None
    familiarity_unlike: bool | None = None
    familiarity_rows: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    findings: list[str] | None = None
    findings_threshold: float = 0.5


def _name(names: Sequence[str], k: int) -> str:
    return names[k] if 0 <= k < len(names) else f"class {k}"


def _basis_png(case: BasisCase, title: str) -> bytes:
    import torch

    from medlens.viz import attribution_figure, figure_png

    image = torch.from_numpy(np.asarray(case.image, dtype=np.float32))
    values = torch.from_numpy(np.asarray(case.saliency if case.saliency is not None else np.zeros_like(case.image),
                                         dtype=np.float32))
    return figure_png(attribution_figure(image, values, title), dpi=80)


def render_case_report(case: CaseReport) -> str:
    """The HTML page of one case (a string; :func:`write_case_report` writes it)."""
    report = Report("Case report", f"{case.scan}. Model: {case.model}" if case.model else case.scan,
                    extra_css=_EXTRA_CSS)
    p = case.probabilities[case.predicted]
    predicted = _name(case.class_names, case.predicted)
    summary = report.section("Summary", kind="summary")
    if case.warnings:  # above the finding: what the reader must know before reading it
        summary.add_trusted_html('<ul class="warnings">' + "".join(
            f'<li class="trust-unsupported" data-code="{_esc(w["code"])}">{_esc(w["message"])}</li>'
            for w in case.warnings) + "</ul>")
    if case.findings is None:
        summary.add_trusted_html(
            '<p class="finding">The model\'s finding: <b>'
            + _esc(predicted) + f"</b> (probability {p:.2f}).</p>"
        )
    else:  # one probability per finding: several findings can be present at once
        found = ", ".join(_esc(f) for f in case.findings) or "none"
        summary.add_trusted_html(
            f'<p class="finding">The model\'s findings (probability {case.findings_threshold:.2f} or more, each finding '
            f"scored on its own): <b>{found}</b>. Highest: {_esc(predicted)} (probability {p:.2f}).</p>"
        )
    if case.familiarity_unlike and not any(w.get("code") == "unlike_training" for w in case.warnings):
        summary.add_trusted_html('<p class="trust-unsupported">' + _esc(case.familiarity) + "</p>")
    if case.calibration:
        summary.add_text(case.calibration)
    if case.label is not None:
        summary.add_text(f"Recorded label of this case: {case.label}.")
    explained = _name(case.class_names, case.explained)
    kind_of_output = "class" if case.findings is None else "finding"  # a multi-label model's outputs are findings
    what = "the model's finding" if case.explained == case.predicted else f"the {kind_of_output} {explained}"
    summary.add_viewer(viewer_html(
        case.base, case.maps, kind=case.kind, spacing=case.spacing, plane_names=case.planes, affine=case.affine,
        annotations=case.annotations, rate=case.rate,
        start=case.start,
        window=case.window, initial=next((i for i, m in enumerate(case.maps) if m.name == case.trust.best), 0),
        title=f"Areas that drove {what}", alt=case.scan,
        note="Drag the sliders or use the arrow keys; switch methods to compare their maps.",
    ))
    summary.add_trusted_html(f'<p class="trust-{_esc(case.trust.level)}">' + _esc(case.trust.headline) + "</p>")
    if case.sentence:
        unlike = (" (written about an input unlike the model's training data: it may describe nothing that is there)"
                  if case.familiarity_unlike else "")
        summary.add_text(f"The model's own description{unlike}: \u201c{case.sentence}\u201d")
    summary.add_trusted_html('<ul class="caveats">' + "".join(f"<li>{_esc(c)}</li>" for c in caveats(case.kind))
                             + "</ul>")

    trust = report.section("How far to trust the highlighted areas", kind="detail")
    if case.trust.details:
        trust.add_text(case.trust.details)
    for m in case.trust.methods:
        words = sentence_html(m.segments) if m.segments else _esc(m.sentence)
        trust.add_trusted_html(f'<p class="trust-{_esc(m.level)}" data-method="{_esc(m.method)}"><b>{_esc(m.method)}</b>: '
                               f"{words}</p>")
        if m.numbers:
            trust.add_details(f"Numbers behind this ({m.method})", ["measure", "value"], m.numbers)

    probs = report.section("Probabilities", kind="detail")
    if case.findings is not None:
        probs.add_text("Each finding has its own probability (the model scores the findings one by one), "
                       "so they need not add up to 1.")
    probs.add_table(["class", "probability"], [[_name(case.class_names, k), f"{v:.3f}"]
                                              for k, v in enumerate(case.probabilities)])
    if case.calibration_rows:
        probs.add_details("How often the model was right at each probability", ["model probability", "observed"],
                          case.calibration_rows)
    if case.familiarity and not case.familiarity_unlike:
        probs.add_text(case.familiarity)
    if case.familiarity_rows:
        probs.add_details("How far this scan lies from the training data", ["measure", "value"], case.familiarity_rows)

    if case.basis is not None:
        sec = report.section("Similar cases from training", kind="detail")
        if case.basis_summary:
            sec.add_text(case.basis_summary)
        sec.add_images([
            (_basis_png(b, f"training {b.words}"),
             f"training {b.words}: label {b.label}, model said {b.predicted}, similarity {b.similarity:.3f}"
             + (f", distance {b.relative_distance:.1f}x a typical training neighbour's" if b.relative_distance is not None
                else "") + leak_words(b.same_image, b.same_patient))
            for b in case.basis
        ])

    about = report.section(f"About this {noun(case.kind)}", kind="detail")
    for note in case.notes:
        about.add_text(note)
    if case.metadata:
        about.add_table(["acquisition detail", "value"], sorted(case.metadata.items()))
    if case.identifiers is not None:
        about.add_text("Identifying information is shown because it was asked for (--show-identifiers).", kind="note")
        about.add_table(["identifier", "value"], sorted(case.identifiers.items()))
    elif case.withheld:
        about.add_trusted_html(
            '<p class="withheld">Withheld to protect the patient (DICOM PS3.15 basic de-identification profile): '
            + _esc(", ".join(case.withheld)) + ". Run with --show-identifiers to include them.</p>"
        )
    else:
        about.add_text("The input holds no patient identifiers.")
    return report.render()


def _esc(text: object) -> str:
    import html

    return html.escape(str(text))


def write_case_report(case: CaseReport, path: str | Path) -> Path:
    """Write the page atomically; return its path."""
    from medlens.core.files import atomic_write

    return atomic_write(Path(path), render_case_report(case))
