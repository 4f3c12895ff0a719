"""The cases of an input: the one answer to "what does this --input / --data hold?".

Every command that reads inputs (train, explain, evaluate, audit, report, attention, basis,
concepts) opens its input with :func:`open_cases` and gets a :class:`Cases`: a stable list of
case ids, and per case (:meth:`Cases.case`) or per batch (:meth:`Cases.load`) the prepared model
input with its label, mask, native record and identifiers, the identifiers kept in a field of
their own. Two kinds of input exist, told apart in one place (:func:`is_dataset`):

* a labelled data set: an npz archive or a bundled name (inputs already on the model's grid,
  labels, masks and shortcut markers inside);
* scans: a file, a DICOM series folder, or a folder of cases with an optional labels CSV
  (``case,label[,mask]``), read by :mod:`medlens.data.formats.folders` and turned into model
  inputs by the recipe (:func:`medlens.data.recipe.prepare`).

Reading is lazy: a folder of thousands of volumes is read case by case, as asked. Nothing here
knows a model: the caller gives the recipe and the input shape.

Identifiers kept apart: a scan's file name, folder name or UID may name a patient (an NIH chest
X-ray is called ``00000013_005.png``, patient 13's fifth study; a DICOM file is often called by its
SOP Instance UID), so by default scans are named by pseudonymous ids (:func:`pseudonym`:
``case-0003`` is the case at position 3 of the folder's stable sorted order, the position the
resumable audit and leaderboard already key their results by, so an id is the same on every run
over the same folder and means nothing outside it). The id -> file mapping is
:meth:`ScanCases.identifier_rows`, written by the use cases to one ``identifiers.csv``;
``show_identifiers=True`` names cases by their paths instead. A case's error messages say its id,
never its path. Why not a hash of the path: file names such as NIH's come from a small space, so
an unkeyed hash is inverted by trying them all, and a keyed one needs a secret stored beside the
outputs, which ``identifiers.csv`` already is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from medlens.errors import FileFormatError, InputError, MedlensError

__all__ = ["Case", "CaseBatch", "Cases", "data_words", "is_dataset", "labelled_set", "open_cases", "pseudonym",
           "withhold"]


def pseudonym(index: int) -> str:
    """The pseudonymous id of the scan at ``index`` of its input's sorted cases: ``case-0003``."""
    return f"case-{int(index):04d}"


def withhold(text: str, names: Sequence[str] | dict[str, str], shown: str = "") -> str:
    """``text`` with every one of ``names`` (paths, file names, UIDs) replaced by ``shown`` (or,
    for a mapping, each name by its own replacement), longest first so that a path is replaced
    whole before its file name."""
    pairs = dict(names) if isinstance(names, dict) else {n: shown for n in names}
    for name in sorted({n for n in pairs if n and len(n) > 2}, key=len, reverse=True):
        text = text.replace(name, pairs[name])
    return text


def data_words(data: str | os.PathLike, what: str | None = None) -> str:
    """What a model was trained on, in words that name no path: a bundled data set by its name,
    the user's own data by its kind (``what``, e.g. ``"notes"``; else told from the path).

    The model file is shared with colleagues and its ``data`` entry reaches the case report: a
    folder or file name may name a patient or a study, so it is never stored.
    """
    from medlens.data.datasets import BUNDLED

    name = str(data)
    if name.lower() in BUNDLED:
        return name.lower()
    if what:
        return f"the user's {what}"
    path = Path(name)
    if path.suffix.lower() == ".npz":
        return "the user's data set (npz)"
    return "the user's folder of scans" if path.is_dir() else f"the user's {path.suffix.lower().lstrip('.') or 'data'} file"


def is_dataset(data: str | os.PathLike) -> bool:
    """``data`` names a labelled data set (an npz archive or a bundled name), not scans."""
    from medlens.data.datasets import BUNDLED

    return str(data) in BUNDLED or str(data).lower().endswith(".npz")


@dataclass
class Case:
    """One case ready for the model, with what is known about it.

    ``x`` is the model input ``(1, C, *spatial)``; ``name`` the stable case id; ``source`` a
    description (``"PNG scan.png"``, ``"pneumoniamnist/test[3]"``); ``record`` the file as read
    and ``prepared`` the recipe's result (whose geometry maps a map back onto the record's grid),
    both ``None`` for a data-set case, already on the model's grid. ``identifiers`` holds what
    the reader kept apart (patient fields, UIDs), never mixed with ``metadata``.
    """

    x: torch.Tensor
    label: int | None
    source: str
    note: str = ""
    record: Any = None
    prepared: Any = None
    name: str = ""
    recipe_summary: dict[str, Any] = field(default_factory=dict)
    mask: torch.Tensor | None = None
    path: str | None = None

    @property
    def native(self) -> torch.Tensor | None:
        """The image or volume as read, on its own grid, when its rank matches the model input's;
        ``None`` otherwise (and for data-set cases)."""
        array = getattr(self.record, "array", None)
        if array is None or array.ndim != self.x.ndim - 2 or getattr(self.record, "channels", 1) not in (1, None):
            return None
        return torch.as_tensor(array).float()

    @property
    def spacing(self) -> tuple[float, ...] | None:
        """Pixel / voxel size of :attr:`native` in mm, when the file says."""
        spacing = getattr(self.record, "spacing", None)
        return None if spacing is None or self.native is None else tuple(float(v) for v in spacing)

    @property
    def metadata(self) -> dict[str, str]:
        """Non-identifying header fields of the file."""
        return {str(k): str(v) for k, v in dict(getattr(self.record, "metadata", {}) or {}).items()}

    file: str = ""

    @property
    def reading(self) -> dict[str, Any]:
        """How the file was made into the model's input, as plain data for every output: its kind,
        native shape and the model's, the slice a 2-D model saw of a volume (``--slice``), a
        signal's sampling rate and the model's (resampled when they differ), and the native facts
        the familiarity check compares (modality, bit depth, photometric interpretation, spacing).
        Empty for a data-set case (already on the model's grid)."""
        from medlens.data.kinds import kind_of_record

        if self.record is None or self.prepared is None:
            return {}
        g = self.prepared.geometry
        meta = dict(getattr(self.record, "metadata", {}) or {})
        out: dict[str, Any] = {"kind": kind_of_record(self.record), "native_shape": list(g.original_shape),
                               "model_shape": list(g.model_shape)}
        if g.slice_index is not None:
            out["slice"] = int(g.slice_index)
            out["slice_axis"] = int(g.slice_axis)
        if g.kind == "signal":
            out["sampling_rate"] = {"record_hz": g.record_fs, "model_hz": g.model_fs,
                                    "resampled": g.record_fs != g.model_fs}
        spacing = getattr(self.record, "spacing", None)
        if spacing is not None and g.kind != "signal":
            out["spacing"] = [float(v) for v in spacing]
        bits = meta.get("BitsStored") or meta.get("BitDepth")
        if bits:
            out["bit_depth"] = int(float(bits))
        for key, name in (("Modality", "modality"), ("PhotometricInterpretation", "photometric")):
            if meta.get(key):
                out[name] = str(meta[key]).strip()
        if "modality" not in out and g.kind != "signal" and self.native is not None:
            from medlens.data.hounsfield import looks_like_ct

            if looks_like_ct(self.native):  # a NIfTI or .npy CT names no modality: its values do
                out["modality_from_values"] = "CT"
        if getattr(self.record, "geometry_warnings", ()):
            out["geometry_warnings"] = list(self.record.geometry_warnings)
        if "photometric" not in out and meta.get("Colour") == "RGB":
            out["photometric"] = "RGB"  # a colour PNG, JPEG or TIFF (grey stored as RGB is grey)
        return out

    @property
    def identifiers(self) -> dict[str, str]:
        """What is kept apart as identifying: the input's path relative to its folder (``file``)
        and what the reader kept apart (patient fields, UIDs); empty for data-set cases."""
        found = {"file": self.file} if self.file else {}
        found.update({str(k): str(v) for k, v in dict(getattr(self.record, "identifiers", {}) or {}).items()})
        return found


@dataclass(frozen=True)
class CaseBatch:
    """Cases read together: inputs ``(B, C, *spatial)``, labels, masks ``(B, *spatial)`` or None.

    ``failed`` maps the index of each requested case that could not be read to its one-line
    error; ``x``, ``labels``, ``indices`` and ``cases`` hold the others (``x`` is ``None`` when
    none could be read).
    """

    x: torch.Tensor | None
    labels: list[int | None]
    masks: torch.Tensor | None
    indices: list[int]
    cases: list[str]
    failed: dict[int, str] = field(default_factory=dict)


class Cases:
    """An opened input: case ids (:attr:`names`), and cases by index, read when asked."""

    data: str
    names: list[str]
    has_labels: bool
    has_masks: bool
    has_markers: bool
    class_names: tuple[str, ...]
    is_dataset: bool
    findings: torch.Tensor | None = None  # a multi-label data set's (N, K) 0/1 labels, one column per finding

    def __len__(self) -> int:
        return len(self.names)

    def load(self, indices: Sequence[int]) -> CaseBatch:  # pragma: no cover - abstract
        raise NotImplementedError

    def case(self, index: int) -> Case:  # pragma: no cover - abstract
        raise NotImplementedError

    def markers(self, indices: Sequence[int]) -> torch.Tensor | None:
        """Shortcut-marker masks of the cases at ``indices`` (benchmark npz files only)."""
        return None

    def first_readable(self) -> torch.Tensor:
        """The first case that can be read, ``(1, C, *spatial)``; an :class:`InputError` naming
        the first error when nothing can."""
        failed: dict[int, str] = {}
        for i in range(len(self)):
            batch = self.load([i])
            if batch.x is not None:
                return batch.x
            failed.update(batch.failed)
        first = next(iter(failed.values()), "")
        raise InputError(f"nothing readable in {self.data} ({len(failed)} case(s); first error: {first})")


class DatasetCases(Cases):
    """The cases of one split of an npz archive or a bundled data set (held in memory).

    A multi-label data set (labels ``(N, K)`` of 0/1, one column per finding) gives its cases no
    single class (``label`` ``None``); :attr:`findings` holds the matrix (``None`` otherwise)."""

    is_dataset = True

    def __init__(self, data: str, split: str, input_shape: Sequence[int] | None, *,
                 memory_mb: float | None = None) -> None:
        from medlens.data.datasets import load_dataset

        self.data, self.split = str(data), split
        self.dataset = load_dataset(data, split, memory_mb=memory_mb)
        ds = self.dataset
        if input_shape is not None and tuple(ds.inputs.shape[1:]) != tuple(input_shape):
            raise InputError(_shape_mismatch(tuple(ds.inputs.shape[1:]), tuple(input_shape)))
        self.names = [str(i) for i in range(len(ds))]
        self.findings = ds.labels if ds.labels.ndim == 2 else None
        self.has_labels = self.findings is None
        self.has_masks = ds.masks is not None
        self.class_names = tuple(ds.class_names)
        self._markers = _npz_markers(self.data, split)
        self.has_markers = self._markers is not None
        path = Path(self.data)
        self.title = f"{path.name if path.suffix == '.npz' else self.data}/{split}"

    def load(self, indices: Sequence[int]) -> CaseBatch:
        indices = [int(i) for i in indices]
        idx = torch.as_tensor(indices, dtype=torch.long)
        ds = self.dataset
        masks = None if ds.masks is None else ds.masks[idx].reshape(len(idx), *ds.inputs.shape[2:]) > 0.5
        labels = [None] * len(indices) if self.findings is not None else [int(v) for v in ds.labels[idx]]
        return CaseBatch(ds.inputs[idx], labels, masks, indices,
                         [self.names[i] for i in indices])

    def case(self, index: int) -> Case:
        ds = self.dataset
        if not 0 <= index < len(ds):
            raise InputError(f"index {index} is out of range: {ds.name} has {len(ds)} cases (0..{len(ds) - 1})")
        name = f"{ds.name}[{index}]"
        mask = None if ds.masks is None else ds.masks[index : index + 1]
        label = None if self.findings is not None else int(ds.labels[index])
        return Case(ds.inputs[index : index + 1], label, name, name=name, mask=mask)

    def markers(self, indices: Sequence[int]) -> torch.Tensor | None:
        return None if self._markers is None else self._markers[torch.as_tensor(list(indices), dtype=torch.long)]


class ScanCases(Cases):
    """The cases of a scan file or a folder of scans, read one by one through ``recipe``.

    ``names`` are pseudonymous ids (:func:`pseudonym`), or the cases' paths relative to the
    folder with ``show_identifiers``; ``files`` always the paths (what a labels file names).
    """

    is_dataset = False
    has_markers = False

    def __init__(self, data: str, recipe: Any, labels: str | None, class_names: Sequence[str],
                 input_shape: Sequence[int] | None = None, *, show_identifiers: bool = False,
                 memory_mb: float | None = None, allow_outside: bool = False) -> None:
        from medlens.data.formats.folders import ScanSet

        self.data, self.input_shape = str(data), input_shape
        self.scans = ScanSet(data, recipe, labels, class_names, memory_mb=memory_mb, allow_outside=allow_outside)
        self.files = list(self.scans.names)
        self.skipped = self.scans.skipped  # the folder's files that are no case, counted by kind
        self.rows_without_file = self.scans.rows_without_file  # rows of the labels file naming no file of the folder
        self.show_identifiers = show_identifiers
        self.names = list(self.files) if show_identifiers else [pseudonym(i) for i in range(len(self.files))]
        self.scans.shown = list(self.names)
        self.scans.reword = self.withheld  # warnings name the case's id, not its folder
        self.has_masks = any(path is not None for path in self.scans.mask_paths)
        self.has_labels = any(v is not None for v in self.scans.labels)
        self.class_names = tuple(class_names)
        self.title = Path(self.data).name if show_identifiers else f"{len(self.names)} scan case(s)"

    def identifier_rows(self) -> list[dict[str, str]]:
        """One row per case for ``identifiers.csv``: ``case`` (the id outputs use) and ``file``
        (its path relative to the input folder, or the file's name for a one-file input)."""
        return [{"case": name, "file": file} for name, file in zip(self.names, self.files)]

    def withheld(self, index: int, text: str) -> str:
        """``text`` (an error message) with case ``index``'s paths replaced by its id, for a
        folder's cases (a one-file input's messages name the file the user gave)."""
        if self.show_identifiers or not Path(self.data).is_dir():
            return text
        scan, case = self.scans.cases[index], self.names[index]
        names = {n: case for n in (self.files[index], str(scan.where), scan.where.name)}
        several = len(scan.paths) > 1  # a series: say which of its files, by position
        for k, path in enumerate(scan.paths):
            shown = f"{case} file {k + 1}" if several else case
            names.update({n: shown for n in (str(path), str(path.resolve()), path.name, path.stem)})
        return withhold(text, names)

    def require_every_mask(self) -> "ScanCases":
        """Refuse masks for some cases but not others (a stream cannot wait to find out)."""
        given = sum(path is not None for path in self.scans.mask_paths)
        if 0 < given < len(self.names):
            raise InputError(f"the labels file gives masks for {given} of {len(self.names)} cases "
                             "(give every case a mask, or none)")
        return self

    def load(self, indices: Sequence[int]) -> CaseBatch:
        x, kept, failed = self.scans.load(indices)
        failed = {i: self.withheld(i, err) for i, err in failed.items()}
        masks = self.scans.masks(kept)[:, 0] > 0.5 if self.has_masks and kept else None
        return CaseBatch(x, [self.scans.labels[i] for i in kept], masks, kept, [self.names[i] for i in kept], failed)

    def masks(self, kept: Sequence[int]) -> torch.Tensor | None:
        """Evidence masks ``(B, 1, *model_spatial)`` of cases already loaded, or ``None``."""
        return self.scans.masks(kept)

    def case(self, index: int) -> Case:
        """Case ``index`` read and prepared, named by its id; its error messages too."""
        scan = self.scans.cases[index]
        try:
            with self.scans.reworded_warnings(index):
                case = case_from_record(scan.read(self.scans.memory_mb), self.scans.recipe, str(scan.where),
                                        self.scans.labels[index], input_shape=self.input_shape)
        except MedlensError as err:
            raise type(err)(self.withheld(index, " ".join(str(err).split()))) from err
        case.file = self.files[index]
        if not self.show_identifiers:
            case.name = case.source = self.names[index]
            case.note = self.withheld(index, case.note)
        return case


def case_from_record(record: Any, recipe: Any, source: str, label: int | None = None, *,
                     input_shape: Sequence[int] | None = None) -> Case:
    """A read record made into a :class:`Case` by ``recipe``; a ``.npy`` array already of the
    model's ``input_shape`` is taken as it is."""
    from medlens.data.recipe import prepare

    p = Path(source)
    if input_shape is not None and record.format == "NumPy" and tuple(record.array.shape) == tuple(input_shape):
        return Case(record.array[None], label, f"array {p.name}", name=p.name, path=source)
    prepared = prepare(record, recipe)
    name = f"{record.format} {Path(record.source).name}" if getattr(record, "source", "") else source
    return Case(prepared.x, label, name, "; ".join(prepared.notes), record, prepared, p.name, prepared.summary(),
                path=source)


def open_cases(data: str | os.PathLike, *, split: str = "test", recipe: Any = None,
               input_shape: Sequence[int] | None = None, labels: str | os.PathLike | None = None,
               class_names: Sequence[str] | None = None, what: str = "input", show_identifiers: bool = False,
               memory_mb: float | None = None, allow_outside: bool = False) -> Cases:
    """The cases of ``data``: an npz archive or bundled name (split ``split``), or scans (a file,
    a DICOM series folder or a folder of cases) made into model inputs by ``recipe`` (default:
    min-max scaling and resizing to ``input_shape``), labelled by the CSV ``labels``. ``what``
    names the input in the message for a missing one ("input", "data").

    ``class_names``: what the labels file's words mean, in class order (a model's names); by
    default the file's own words, sorted, as ``medlens train`` names the classes (``()``: labels
    must be class indices).

    Scans are named by pseudonymous ids unless ``show_identifiers`` (see the module's text);
    ``memory_mb`` is the memory budget the readers' decoding limit derives from; the labels
    file's mask paths must stay inside the data folder unless ``allow_outside``.

    Raises
    ------
    FileFormatError
        ``data`` does not exist (or is not a readable data set).
    MedlensError
        ``--labels`` given for a data set, which carries its own labels; a shape that does not fit.
    """
    from medlens.data.recipe import recipe_for_shape

    if not str(data):
        raise InputError("no data given")
    data = os.fspath(data)
    p = Path(data)
    if is_dataset(data):
        if labels is not None:
            raise MedlensError("--labels is for scans: an npz data set carries its own labels")
        if p.suffix == ".npz" and not p.exists():
            raise FileFormatError(f"{what} {data!r} does not exist")
        return DatasetCases(data, split, input_shape, memory_mb=memory_mb)
    if not p.exists() and not (not p.suffix and p.with_suffix(".hea").is_file()):
        raise FileFormatError(f"{what} {data!r} does not exist")
    _refuse_notes(p, input_shape)
    recipe = recipe if recipe is not None else recipe_for_shape(input_shape)
    if class_names is None:
        from medlens.data.formats.folders import class_names_in

        class_names = class_names_in(labels) if labels is not None else ()
    return ScanCases(data, recipe, None if labels is None else os.fspath(labels), class_names, input_shape,
                     show_identifiers=show_identifiers, memory_mb=memory_mb, allow_outside=allow_outside)


def _refuse_notes(p: Path, input_shape: Sequence[int] | None) -> None:
    """A notes file given to a model of scans or signals: refused naming both kinds."""
    from medlens.data.formats.text import NOTE_SUFFIXES
    from medlens.data.kinds import kind_of_rank, kind_words

    if not p.is_file() or p.suffix.lower() not in NOTE_SUFFIXES:
        return
    takes = ("images, volumes or signals" if not input_shape or len(input_shape) < 2 else
             kind_words(kind_of_rank(len(input_shape) - 1), int(input_shape[0]), tuple(input_shape[1:])))
    raise InputError(f"the model takes {takes} but the input is a notes file ({p.name}, text): "
                     "only a model trained on notes reads it")


def labelled_set(data: str | os.PathLike, split: str = "test", *, memory_mb: float | None = None) -> Any:
    """One split of a data set input (:class:`~medlens.data.datasets.LabelledSet`), for the
    commands that learn from or analyse a whole data set (attention, basis, concepts).
    Anything else is handed to :func:`~medlens.data.datasets.load_dataset`, which names the problem."""
    from medlens.data.datasets import load_dataset

    return load_dataset(os.fspath(data), split, memory_mb=memory_mb)


def _shape_mismatch(have: tuple[int, ...], want: tuple[int, ...]) -> str:
    """One line for a data set whose inputs ``(C, *spatial)`` do not fit the model's, naming both
    kinds when they differ."""
    from medlens.data.kinds import kind_of_rank, kind_words

    if len(have) != len(want) and {len(have), len(want)} <= {2, 3, 4}:
        return (f"the model takes {kind_words(kind_of_rank(len(want) - 1), want[0], want[1:])} but the data set holds "
                f"{kind_words(kind_of_rank(len(have) - 1), have[0], have[1:])}")
    return f"the data has inputs of shape {have}, the model expects {want}"


def _npz_markers(data: str, split: str) -> torch.Tensor | None:
    """The ``{split}_marker_masks`` of a shortcut benchmark npz, when it has them."""
    import numpy as np

    path = Path(data)
    if path.suffix != ".npz" or not path.exists():
        return None
    with np.load(path) as raw:
        key = f"{split}_marker_masks"
        return torch.from_numpy(np.asarray(raw[key], dtype=bool)) if key in raw.files else None
