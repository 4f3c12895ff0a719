"""Where the audited cases come from: a picklable description of an input, opened by each worker.

A :class:`SourceSpec` is a small picklable description; each engine worker opens it itself
(:func:`open_source`) and reads only the cases it is given, so inputs stream from storage to the
workers instead of through the driver. What the input holds is decided by the one case workflow,
:func:`medlens.data.cases.open_cases` (an npz data set, a bundled name, or scans read exactly as
``medlens explain`` reads them); a case that cannot be read is reported in
:attr:`~medlens.data.cases.CaseBatch.failed` and the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medlens.data.cases import CaseBatch, Cases, is_dataset, open_cases

__all__ = ["Batch", "Source", "SourceSpec", "open_source"]

#: The cases of one batch (the case workflow's :class:`~medlens.data.cases.CaseBatch`).
Batch = CaseBatch
#: An opened source (the case workflow's :class:`~medlens.data.cases.Cases`).
Source = Cases


@dataclass(frozen=True)
class SourceSpec:
    """Description of a data source.

    Attributes
    ----------
    data : str
        An npz path, a bundled data set name, a scan file, or a folder of scans.
    split : str
        Split of an npz or bundled data set.
    input_shape : tuple of int or None
        ``(C, *spatial)`` the model expects.
    recipe : dict or None
        Scans: the preprocessing recipe as plain data (``Recipe.to_dict``); ``None``: the one
        :func:`medlens.models.io.model_recipe` gives for ``input_shape``.
    labels : str or None
        Scans: a CSV with columns ``case,label``; without it the scans have no labels.
    class_names : tuple of str
        The model's classes (labels may be given by name).
    show_identifiers : bool
        Scans: name cases by their paths, not by pseudonymous ids.
    memory_mb : float or None
        The memory budget the readers' decoding limit derives from.
    allow_outside : bool
        Scans: let the labels file name masks outside the data folder.
    windows : dict or None
        Signal records of a model trained on windows: how it cuts them (its ``meta["windows"]``,
        :func:`medlens.data.record_cases.model_windows`); every window is a case.
    record_labels : dict or None
        Records cut into fixed windows: each record's label.
    """

    data: str
    split: str = "test"
    input_shape: tuple[int, ...] | None = None
    recipe: dict[str, Any] | None = None
    labels: str | None = None
    class_names: tuple[str, ...] = ()
    show_identifiers: bool = False
    memory_mb: float | None = None
    allow_outside: bool = False
    windows: dict[str, Any] | None = None
    record_labels: dict[str, str] | None = None

    @property
    def is_dataset(self) -> bool:
        """An npz data set or a bundled name (labels and masks inside), not scans."""
        return is_dataset(self.data)

    def recipe_object(self):
        """The :class:`~medlens.data.recipe.Recipe` applied to scans."""
        from medlens.data.recipe import Recipe
        from medlens.models.io import model_recipe

        meta = {"input_shape": list(self.input_shape)} if self.input_shape is not None else {}
        return model_recipe(meta, Recipe.from_dict(self.recipe) if self.recipe is not None else None)


def open_source(spec: SourceSpec) -> Cases:
    """Open a data source; fails with a one-line :class:`~medlens.errors.MedlensError`."""
    if spec.windows is not None:
        from medlens.data.record_cases import RecordCases

        return RecordCases(spec.data, spec.windows, spec.record_labels, show_identifiers=spec.show_identifiers)
    cases = open_cases(spec.data, split=spec.split, input_shape=spec.input_shape, labels=spec.labels,
                       class_names=spec.class_names, what="data",
                       recipe=None if spec.is_dataset else spec.recipe_object(),
                       show_identifiers=spec.show_identifiers, memory_mb=spec.memory_mb,
                       allow_outside=spec.allow_outside)
    return cases if cases.is_dataset else cases.require_every_mask()
