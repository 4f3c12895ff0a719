"""What the case report takes: the case as read (:class:`CaseInput`) and the settings of a report
(:class:`CaseReportSettings`, the request object :func:`~medlens.app.case_report.case_report` takes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from medlens.report.viewer import Annotation

#: Methods shown when none are named: a gradient, a path method and a class activation map.
DEFAULT_METHODS = ("gradient", "integrated_gradients", "gradcam")


@dataclass(frozen=True)
class CaseInput:
    """One case as read from a file, before the model sees it.

    Attributes
    ----------
    native : np.ndarray or None
        The scan at its native resolution (``(H, W)``, ``(D, H, W)`` or ``(L, T)``); ``None``:
        show the model's input itself.
    description : str
        What the scan is, identifying no one (``"DICOM CT, 512 x 512"``).
    label : int or None
        Known label (cases from a data set).
    spacing : sequence of float or None
        Pixel / voxel size of ``native`` (mm).
    planes : sequence of str or None
        The plane a slice through each axis of a volume shows (``Volume.plane_names``).
    affine : 4 x 4 sequence of float or None
        ``native``'s stored indices to RAS millimetres (``Volume.affine``), when ``native`` is the
        volume as read: its planes are drawn as a radiologist reads them.
    metadata : dict of str to str
        Non-identifying acquisition details.
    identifiers : dict of str to str
        Identifying values found in the file (DICOM PS3.15 basic profile; a UID file name).
    notes : list of str
        How the input was read (resized, middle slice, ...).
    annotations : list of Annotation
        Labelled positions of a signal.
    rate : float or None
        Sampling rate of a signal (Hz).
    start : float
        Time (s) in its record of a signal window's first sample.
    window : (float, float) or None
        Grey-level window (low, high) to show the scan with, e.g. the DICOM's own.
    geometry : medlens.data.recipe.Geometry or None
        How the recipe made the model input from ``native`` (:func:`medlens.data.recipe.prepare`);
        the maps come back onto ``native`` through its exact inverse
        (:func:`medlens.data.recipe.invert`), as ``medlens explain`` writes ``attribution.npy``.
        ``None``: ``native`` is resized to (a data-set case, or a scan shown as the model saw it).
    reading : dict
        How the file became the model's input (:attr:`medlens.data.cases.Case.reading`: the slice
        of a volume, sampling rates, native shape, modality, bit depth); recorded in ``case.json``
        and used by the familiarity check.
    pixels_withheld : bool
        Draw the maps on a blank background, not on ``native`` (its pixels identify the patient:
        :mod:`medlens.app.pixel_privacy`).
    warnings : list of dict
        ``{code, message}`` about the input itself (pixels that identify the patient, a beat model's
        window that starts off its beat alignment), shown above the finding with the model's.
    """

    native: np.ndarray | None = None
    description: str = "scan"
    label: int | None = None
    spacing: Sequence[float] | None = None
    planes: Sequence[str] | None = None
    affine: Sequence[Sequence[float]] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    identifiers: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    rate: float | None = None
    start: float = 0.0
    window: tuple[float, float] | None = None
    geometry: Any = None
    reading: dict[str, Any] = field(default_factory=dict)
    pixels_withheld: bool = False
    warnings: list[dict[str, str]] = field(default_factory=list)




@dataclass(frozen=True)
class CaseReportSettings:
    """How a case report is computed (the request of :func:`~medlens.app.case_report.case_report`).

    Attributes
    ----------
    meta : dict
        The model file's metadata (class names, data set, test scores, calibration).
    methods : sequence of str
        Attribution methods to show; one that does not apply to this model is left out with a note.
    method_options : dict
        ``{method: {option: value}}``.
    evaluation : path, optional
        A ``medlens evaluate`` output folder of this model: its verdict says how far to trust
        the maps. Without it the per-case checks run.
    basis_inputs, basis_labels : torch.Tensor, optional
        ``(N, C, *spatial)`` and ``(N,)`` training cases for the prediction basis.
    basis_folder : FolderBasis, optional
        When the training cases are a folder of scans (:class:`medlens.app.folder_basis.FolderBasis`):
        their case ids, patients and pixels to withhold.
    k : int
        Similar training cases shown.
    show_identifiers : bool
        Put the identifying values into the report (escaped). Default: only their names.
    seed : int
        Seeds random methods, random maps and the randomised model.
    batch_size, memory_mb : optional
        Engine budget.
    model_name : str
        How the report names the model (a file name).
    """

    meta: dict[str, Any] | None = None
    methods: Sequence[str] = DEFAULT_METHODS
    method_options: dict[str, dict] | None = None
    evaluation: str | Path | None = None
    basis_inputs: torch.Tensor | None = None
    basis_labels: torch.Tensor | None = None
    basis_folder: Any = None
    k: int = 5
    show_identifiers: bool = False
    seed: int = 0
    batch_size: int | None = None
    memory_mb: float | None = None
    model_name: str = "the model"
