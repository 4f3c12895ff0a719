"""The cases of a file or a folder of scans, in a stable order, and the labels a CSV gives them.

A folder holds one case per readable file, with two exceptions: DICOM slices of one series
(``SeriesInstanceUID``) are one case, whether they lie loose in the folder, fill a subfolder of
their own or are split across folders (:mod:`~medlens.data.formats.dicom_series`); and a WFDB record (``.hea`` + ``.dat`` + ``.atr``) is one case (a multi-segment
record's segments and layout header are read through its master header, not cases of their own). Subfolders are walked
too. Each case is named by its path relative to the folder (a series lying loose among other
files by ``series<k>-<first file>``), and cases come sorted by name, so index ``i`` is the same
case on every run: the resumable audit and leaderboard key their results by it.

What is no case is left out and counted by kind (:func:`walk_cases`): DICOM objects without an
image or not diagnostic (:mod:`~medlens.data.formats.dicom_kinds`), second copies of an instance,
empty files, a DICOMDIR and thumbnail caches.

``medlens explain``, ``evaluate`` and ``audit`` all read folders through :func:`scan_cases` and
:meth:`ScanCase.read`; nothing here knows a model (the recipe that turns a record into a model
input is :func:`medlens.data.recipe.prepare`).
"""

from __future__ import annotations

import contextlib
import csv
import os
import pathlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from medlens.data.formats.common import PathLike
from medlens.errors import FileFormatError, InputError

if TYPE_CHECKING:
    from medlens.data.formats.dicom_series import DicomFile

__all__ = ["NOT_CASES", "NOT_CASE_NAMES", "ConfinedWalk", "ScanCase", "ScanSet", "class_names_in", "confine", "data_folder", "folder_cases",
           "is_one_series", "no_case_named", "rows_without_file_note", "read_labels", "read_labels_counted", "scan_cases", "scan_cases_left_out", "walk_cases"]

#: Suffixes of notes, tables and settings that sit beside the cases in a folder; not cases.
NOT_CASES = frozenset({".txt", ".md", ".rst", ".csv", ".tsv", ".json", ".yaml", ".yml", ".html", ".pdf", ".log"})

#: Names of files an export or a file browser leaves beside the scans: an index, thumbnail caches.
NOT_CASE_NAMES = frozenset({"dicomdir", "thumbs.db", "desktop.ini", "ehthumbs.db"})


@dataclass(frozen=True)
class ScanCase:
    """One case of a folder: a file, a WFDB record, or the DICOM files of one series.

    Attributes
    ----------
    name : str
        Path relative to the folder (``"a.png"``, ``"ct/001"`` for a series folder,
        ``"series1-slice0"`` for a series lying loose among other files).
    paths : tuple of Path
        The file (or WFDB header), or every file of the series.
    series : bool
        ``paths`` are the slices of one DICOM series.
    """

    name: str
    paths: tuple[pathlib.Path, ...]
    series: bool = False

    def read(self, memory_mb: float | None = None):
        """The case as read: :func:`medlens.data.formats.read.read`, or the series assembled by
        :func:`medlens.data.formats.dicom.load_dicom`, each refusing a file that declares more
        than the decoding limit of ``memory_mb``. Raises a one-line ``MedlensError``."""
        from medlens.data.formats.dicom import load_dicom
        from medlens.data.formats.read import read

        if self.series:
            return load_dicom(list(self.paths), memory_mb=memory_mb)
        return read(self.paths[0], memory_mb=memory_mb)

    @property
    def where(self) -> pathlib.Path:
        """The file, or the folder of a series."""
        return self.paths[0].parent if self.series else self.paths[0]


def scan_cases(path: PathLike) -> list[ScanCase]:
    """The cases of ``path``: a file (or WFDB record name) is one case, a folder holding one DICOM
    series is one case, any other folder gives :func:`folder_cases`.

    Raises
    ------
    FileFormatError
        ``path`` does not exist, or a folder holds no candidate file.
    """
    return scan_cases_left_out(path)[0]


def scan_cases_left_out(path: PathLike) -> tuple[list[ScanCase], str]:
    """:func:`scan_cases`, and the line counting the files of a folder that are no case
    (:func:`walk_cases`)."""
    p = pathlib.Path(os.fspath(path)).expanduser()
    if p.is_file() or (not p.exists() and not p.suffix and p.with_suffix(".hea").is_file()):
        return [ScanCase(p.stem if _is_wfdb(p) else p.name, (p.with_suffix(".hea") if _is_wfdb(p) else p,))], ""
    if not p.is_dir():
        raise FileFormatError(f"{p} does not exist")
    cases, left_out = walk_cases(p)
    if not cases:
        raise FileFormatError(f"folder {p} holds no files" + (f" to read as cases ({left_out})" if left_out else ""))
    if len(cases) == 1 and cases[0].series and cases[0].where == p:
        return [ScanCase(p.name, cases[0].paths, True)], left_out
    return cases, left_out


def is_one_series(folder: PathLike) -> bool:
    """``folder`` holds the DICOM slices of one series and nothing else (then it is one case)."""
    p = pathlib.Path(os.fspath(folder)).expanduser()
    if not p.is_dir() or any(e.is_dir() for e in p.iterdir() if not e.name.startswith(".")):
        return False
    cases = folder_cases(p)
    return len(cases) == 1 and cases[0].series


def folder_cases(folder: PathLike) -> list[ScanCase]:
    """Every case under ``folder``, walked recursively, sorted by name (see the module's text).

    The walk is confined (:class:`ConfinedWalk`): it never leaves ``folder``, follows a symbolic
    link only when its target lies inside, visits each real folder once (so a link loop ends) and
    makes each real file one case, named by its path without links when it has one."""
    return walk_cases(folder)[0]


def walk_cases(folder: PathLike) -> tuple[list[ScanCase], str]:
    """:func:`folder_cases`, and one line counting by kind the files that are no case (DICOM
    objects without an image, scouts, copies of one instance, empty files); ``""`` when none."""
    from medlens.data.formats.dicom_series import series_cases

    root = pathlib.Path(os.fspath(folder)).expanduser()
    walk = ConfinedWalk(root)
    cases = _cases_in(root, root, walk)
    cases = [c for c in cases if not _is_descriptor(c.paths[0], walk, counted=True)]
    walk.dicom = [f for f in walk.dicom if not _is_descriptor(f.path, walk)]
    cases += series_cases(walk.dicom, walk.others, root, walk.leave_out)
    return sorted(cases, key=lambda c: c.name), left_out_statement(walk.left_out)


def _is_descriptor(path: pathlib.Path, walk: ConfinedWalk, counted: bool = False) -> bool:
    """``path`` is a file-set descriptor a DICOMDIR of the walk names: counted as left out, and
    no longer among its folder's other cases (``counted``: it was)."""
    if path.resolve() not in walk.descriptors:
        return False
    walk.leave_out("file-set descriptor of a DICOMDIR")
    if counted and walk.others.get(path.parent):
        walk.others[path.parent] -= 1
    return True


def left_out_statement(left_out: dict[str, int]) -> str:
    """One line: the files a folder walk left out, counted by kind."""
    if not left_out:
        return ""
    total = sum(left_out.values())
    return (f"left out {total} file(s) that are no case: "
            + "; ".join(f"{kind}: {n}" for kind, n in sorted(left_out.items(), key=lambda kv: (-kv[1], kv[0]))))


class ConfinedWalk:
    """The state of one confined walk of a folder: what was seen, what was not followed.

    ``plain`` holds the real paths of every file reachable without following a link, so that a
    file reached both directly and through a link is named by its direct path. ``skipped``
    counts the links not followed: pointing outside the folder, or back into a folder already walked.
    """

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root.resolve()
        self.folders: set[pathlib.Path] = set()
        self.files: set[pathlib.Path] = set()
        self.skipped = 0
        self.plain = _plain_files(root)
        self.dicom: list[DicomFile] = []  # DICOM images, grouped into series after the walk
        self.others: dict[pathlib.Path, int] = {}  # per folder: its cases that are not DICOM images of a series
        self.left_out: dict[str, int] = {}  # files that are no case, by kind (never by name)
        self.descriptors: set[pathlib.Path] = set()  # real paths of the file-set descriptors DICOMDIRs name

    def leave_out(self, kind: str) -> None:
        self.left_out[kind] = self.left_out.get(kind, 0) + 1

    def inside(self, real: pathlib.Path) -> bool:
        return real == self.root or self.root in real.parents

    def enter(self, folder: pathlib.Path) -> bool:
        """Walk ``folder`` unless its real path lies outside the root or was walked already."""
        real = folder.resolve()
        if not self.inside(real) or real in self.folders:
            self.skipped += 1
            return False
        self.folders.add(real)
        return True

    def take(self, entry: pathlib.Path, linked: bool) -> bool:
        """``entry`` is a file to make a case of: inside the root, not yet taken, and (when
        reached through a link) not reachable without one."""
        real = entry.resolve()
        if not self.inside(real) or real in self.files or (linked and real in self.plain):
            self.skipped += linked
            return False
        self.files.add(real)
        return True


def _plain_files(root: pathlib.Path) -> set[pathlib.Path]:
    """Real paths of the files under ``root`` reachable without a link (hidden names skipped)."""
    found: set[pathlib.Path] = set()
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.update(pathlib.Path(top, f).resolve() for f in files
                     if not f.startswith(".") and not os.path.islink(os.path.join(top, f)))
    return found


def _cases_in(folder: pathlib.Path, root: pathlib.Path, walk: ConfinedWalk, linked: bool = False) -> list[ScanCase]:
    """The cases of ``folder`` and its subfolders that are not DICOM images; those go to
    ``walk.dicom``, to be made into series once the whole walk is done."""
    from medlens.data.formats.dicom_series import dicom_file, file_set_descriptors
    from medlens.data.formats.read import sniff

    if not walk.enter(folder):
        return []
    prefix = "" if folder == root else folder.relative_to(root).as_posix() + "/"
    cases: list[ScanCase] = []
    records: set[str] = set()
    unknown: set[str] = set()  # files of no format medlens reads
    try:
        entries = sorted(e for e in folder.iterdir() if not e.name.startswith("."))
    except OSError:
        return []
    for entry in entries:
        via_link = linked or entry.is_symlink()
        try:
            is_dir, is_file = entry.is_dir(), entry.is_file()
        except OSError:  # a link too deep to resolve
            walk.skipped += 1
            continue
        if is_dir:
            cases.extend(_cases_in(entry, root, walk, via_link))
        elif not is_file:
            walk.skipped += entry.is_symlink()  # a dangling link
        elif entry.name.lower() == "dicomdir":
            if walk.inside(entry.resolve()):
                walk.descriptors |= file_set_descriptors(entry)
        elif (entry.suffix.lower() not in NOT_CASES and entry.name.lower() not in NOT_CASE_NAMES
              and walk.take(entry, via_link)):
            if _empty(entry):
                walk.leave_out("empty file (0 bytes)")
                continue
            kind = sniff(entry)
            if not kind:
                unknown.add(entry.name)
            if kind == "DICOM":
                what, found = dicom_file(entry)
                if found is not None:
                    walk.dicom.append(found)
                elif what != "index":
                    walk.leave_out(what)
                else:  # a DICOMDIR under another name (DICOMDIR-implicit): an index, no image
                    walk.descriptors |= file_set_descriptors(entry)
            elif kind == "WFDB":
                if entry.stem not in records:
                    records.add(entry.stem)
                    cases.append(ScanCase(prefix + entry.stem, (entry.with_suffix(".hea"),)))
            else:
                cases.append(ScanCase(prefix + entry.name, (entry,)))
    if records:  # a multi-segment record's segments, and any signal file a header names, are read through it
        from medlens.data.formats.signals import segment_records, signal_files

        headers = [folder / f"{stem}.hea" for stem in sorted(records)]
        parts = {prefix + h.stem for h in segment_records(headers)}
        parts |= {prefix + name for h in headers for name in signal_files(h)}
        cases = [c for c in cases if c.name not in parts and not _annotation_of(c, records, unknown, prefix)]
    walk.others[folder] = sum(1 for c in cases if c.name.count("/") == prefix.count("/"))
    return cases


def _empty(path: pathlib.Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def _annotation_of(case: ScanCase, records: set[str], unknown: set[str], prefix: str) -> bool:
    """``case`` is a file of no format medlens reads named like one of the folder's WFDB
    ``records`` (``100.qrs``, ``03700181.sqrs`` beside ``100.hea``, ``03700181.hea``: another
    annotator's beat labels): part of that record."""
    name = case.name[len(prefix):]
    return name in unknown and pathlib.Path(name).stem in records


def _is_wfdb(p: pathlib.Path) -> bool:
    from medlens.data.formats.read import sniff

    return sniff(p) == "WFDB"


def _labels_table(path: PathLike) -> tuple[pathlib.Path, set[str], list[dict[str, str]]]:
    """A labels CSV: its path, its column names and its rows (values stripped).

    Raises
    ------
    FileFormatError
        The file is missing or lacks the columns case,label.
    """
    p = pathlib.Path(os.fspath(path)).expanduser()
    if not p.is_file():
        raise FileFormatError(f"labels file {p} not found")
    with open(p, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"case", "label"} <= {f.strip() for f in reader.fieldnames}:
            raise FileFormatError(f"labels file {p} needs the columns case,label; it has {', '.join(reader.fieldnames or [])}")
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    return p, {f.strip() for f in reader.fieldnames}, rows


def read_labels(path: PathLike, names: Sequence[str], class_names: Sequence[str] = ()) -> list[int | None]:
    """Labels of the cases ``names`` from a CSV with columns ``case,label``.

    ``label`` is a class index or one of ``class_names``; a case the file does not list has no
    label (``None``); a row naming no case of ``names`` is left out (:func:`read_labels_counted`
    counts them).

    Raises
    ------
    FileFormatError
        The file is missing or lacks the two columns.
    InputError
        A label that is neither a class index nor a class name, a case listed twice, or no row
        naming a case of ``names``.
    """
    return read_labels_counted(path, names, class_names)[0]


def read_labels_counted(path: PathLike, names: Sequence[str],
                        class_names: Sequence[str] = ()) -> tuple[list[int | None], int]:
    """:func:`read_labels` and how many rows name no case of ``names`` (left out: NIH's full table
    beside a folder holding some of its images; the caller tells the user how many)."""
    p, _, rows = _labels_table(path)
    known = {n: i for i, n in enumerate(names)}
    lookup = {c.lower(): k for k, c in enumerate(class_names)}
    labels: list[int | None] = [None] * len(names)
    without_file = 0
    for row in rows:
        case, text = row["case"], row["label"]
        if case not in known:
            without_file += 1
            continue
        if text.lstrip("-").isdigit():
            label = int(text)
        elif text.lower() in lookup:
            label = lookup[text.lower()]
        else:
            raise InputError(f"labels file {p.name}: label {text!r} of case {case!r} is neither a class index nor a class name")
        if label < 0 or (class_names and label >= len(class_names)):
            top = f"0..{len(class_names) - 1}" if class_names else "0 or more"
            raise InputError(f"labels file {p.name}: label {label} of case {case!r} is out of range ({top})")
        if labels[known[case]] is not None:
            raise InputError(f"labels file {p.name} lists case {case!r} twice")
        labels[known[case]] = label
    if rows and without_file == len(rows):
        raise no_case_named(p.name, rows[0]["case"], len(names))
    return labels, without_file


def rows_without_file_note(count: int) -> list[str]:
    """The one line telling how many rows of a labels file name no case of the data (left out); none for 0."""
    return [f"{count} row(s) of the labels file name no file in the folder: left out"] if count else []


def no_case_named(file: str, first: str, n: int) -> InputError:
    """The one-line refusal of a labels file none of whose rows names one of the ``n`` cases."""
    return InputError(f"labels file {file} names none of the {n} cases of the data: its first row names case {first!r}, "
                      f"which is not among the {n} cases (a case is named by its path in the folder; the DICOM slices "
                      "of one series are one case, named by its folder, or 'seriesK-FIRSTFILE' when loose among other "
                      "files)")


def read_mask_paths(path: PathLike, names: Sequence[str], data: PathLike | None = None, *,
                    allow_outside: bool = False) -> list[pathlib.Path | None]:
    """The ``mask`` column of a labels CSV, per case of ``names``: evidence masks (a segmentation
    of the finding, NIfTI, PNG, TIFF or ``.npy`` on the scan's own grid), paths relative to the
    CSV's folder; ``None`` where a case has none or the file has no such column.

    A mask must lie inside the data folder of ``data`` (the folder, or a scan file's folder) or
    inside the labels file's own folder, links resolved, unless ``allow_outside``: a labels file
    from elsewhere must not make medlens open any file (``../../etc/passwd``). The labels file's
    folder is allowed too because masks cannot lie among the scans (every readable file there is
    a case): ``study/labels.csv`` naming ``masks/a.png`` beside ``study/scans/`` is the usual layout.

    Raises
    ------
    FileFormatError
        A named mask file does not exist.
    InputError
        A mask path leads outside the data folder (and ``allow_outside`` is false).
    """
    p, fields, rows = _labels_table(path)
    found: list[pathlib.Path | None] = [None] * len(names)
    if "mask" not in fields:
        return found
    known = {n: i for i, n in enumerate(names)}
    for row in rows:
        if row.get("mask") and row["case"] in known:
            mask = (p.parent / row["mask"]).resolve()
            if data is not None and not allow_outside:
                confine(mask, (data, p.parent), f"labels file {p.name}: mask {row['mask']!r} of case {row['case']!r}")
            if not mask.exists():
                raise FileFormatError(f"labels file {p.name}: mask {row['mask']!r} of case {row['case']!r} does not exist")
            found[known[row["case"]]] = mask
    return found


def data_folder(path: PathLike) -> pathlib.Path:
    """The folder a scan input's paths must stay in: the folder itself, or a file's folder."""
    p = pathlib.Path(os.fspath(path)).expanduser()
    return (p if p.is_dir() else p.parent).resolve()


def confine(path: PathLike, roots: Sequence[PathLike], what: str) -> pathlib.Path:
    """``path`` resolved (links followed), refused in one line unless it lies inside one of
    ``roots`` (each a folder, or a file standing for its folder); ``what`` names it in the message."""
    real = pathlib.Path(os.fspath(path)).resolve()
    folders = [data_folder(root) for root in roots]
    if not any(real == root or root in real.parents for root in folders):
        raise InputError(f"{what} leads outside the data folder and the labels file's folder; "
                         "paths in a labels file must stay inside them (--allow-outside to permit)")
    return real


def read_groups(path: PathLike, names: Sequence[str]) -> list[str | None] | None:
    """The ``group`` column of a labels CSV (a patient id), per case of ``names``; ``None`` when
    the file has no such column. Splits keep a group's cases together."""
    _p, fields, rows = _labels_table(path)
    if "group" not in fields:
        return None
    known = {n: i for i, n in enumerate(names)}
    found: list[str | None] = [None] * len(names)
    for row in rows:
        if row["case"] in known and row.get("group"):
            found[known[row["case"]]] = row["group"]
    return found


class ScanSet:
    """The cases of a file or folder made into model inputs by one recipe, with their labels.

    Parameters
    ----------
    path : str or Path
        A file, a DICOM series folder or a folder of cases (:func:`scan_cases`).
    recipe : Recipe
        The model's preprocessing (:func:`medlens.data.recipe.prepare`).
    labels : str or Path, optional
        CSV with columns ``case,label`` (:func:`read_labels`), and optionally ``mask``
        (:func:`read_mask_paths`); without it no case has a label or a mask.
    class_names : sequence of str
        The model's classes, so that labels may be given by name.
    memory_mb : float, optional
        Memory budget: the readers' decoding limit (:mod:`medlens.data.formats.limits`).
    allow_outside : bool
        Let the labels file name masks outside the data folder (:func:`read_mask_paths`).

    ``names`` are the cases' paths relative to the folder (what a labels file names); ``shown``
    what messages call them (the same by default; the case workflow sets pseudonymous ids).
    """

    def __init__(self, path: PathLike, recipe, labels: PathLike | None = None, class_names: Sequence[str] = (),
                 *, memory_mb: float | None = None, allow_outside: bool = False) -> None:
        self.recipe = recipe
        self.memory_mb = memory_mb
        self.cases, self.skipped = scan_cases_left_out(path)  # skipped: one line, files that are no case
        self.names = [c.name for c in self.cases]
        self.shown = list(self.names)
        self.labels, self.rows_without_file = (read_labels_counted(labels, self.names, class_names) if labels is not None
                                               else ([None] * len(self.cases), 0))
        self.mask_paths = (read_mask_paths(labels, self.names, path, allow_outside=allow_outside)
                           if labels is not None else [None] * len(self.cases))
        # the labels' group column (a patient id) per case, None without one: kept apart, never shown
        self.groups = read_groups(labels, self.names) if labels is not None else None
        self._geometry: dict[int, object] = {}  # of each case prepared by load(), for its mask
        self.reword: Callable[[int, str], str] = lambda index, text: text  # a case's messages as shown
        self._warned: set[str] = set()

    @contextlib.contextmanager
    def reworded_warnings(self, index: int) -> Iterator[None]:
        """The warnings raised while case ``index`` is read, raised again through :attr:`reword`
        (a folder's paths, which may hold a patient's name or id, replaced by the case's id), each
        once however often the case is read."""
        with warnings.catch_warnings(record=True) as caught:  # the filters in force stay (an "ignore" too)
            yield
        for w in caught:
            text = self.reword(index, str(w.message))
            if text not in self._warned:
                self._warned.add(text)
                warnings.warn(text, w.category, stacklevel=1)

    def __len__(self) -> int:
        return len(self.cases)

    def prepare(self, index: int):
        """Case ``index`` read and prepared (:class:`~medlens.data.recipe.Prepared`); raises a
        one-line ``MedlensError`` naming the problem."""
        from medlens.data.recipe import prepare

        with self.reworded_warnings(index):
            return prepare(self.cases[index].read(self.memory_mb), self.recipe)

    def load(self, indices: Sequence[int]):
        """Prepare the cases at ``indices``; an unreadable case is reported and the others go on.

        Returns
        -------
        (x, kept, failed)
            ``x`` ``(B, C, *spatial)`` the readable cases, ``kept`` their indices, ``failed``
            ``{index: one-line error}``. A case whose model input has another shape than the
            first readable one fails too (the recipe fixes no size).
        """
        import torch

        from medlens.errors import MedlensError

        xs, kept, failed = [], [], {}
        for i in (int(v) for v in indices):
            try:
                prepared = self.prepare(i)
                x = prepared.x
                self._geometry[i] = prepared.geometry
                if xs and tuple(x.shape) != tuple(xs[0].shape):
                    raise InputError(_unlike_first(self.shown[i], tuple(x.shape[1:]), tuple(xs[0].shape[1:])))
            except MedlensError as err:
                failed[i] = " ".join(str(err).split()) or type(err).__name__
                continue
            xs.append(x)
            kept.append(i)
        return (torch.cat(xs) if xs else None), kept, failed

    def masks(self, kept: Sequence[int]):
        """Evidence masks ``(B, 1, *model_spatial)`` of the cases ``kept`` by :meth:`load`, carried
        onto the model's grid as their scans were (:func:`~medlens.data.recipe.mask_on_model_grid`);
        ``None`` when the labels file gives none.

        Raises
        ------
        InputError
            Masks for some cases but not for others, or a mask not on its scan's grid (named).
        """
        import torch

        from medlens.data.formats.common import Volume
        from medlens.data.recipe import mask_on_model_grid
        from medlens.data.formats.read import read

        given = [i for i in kept if self.mask_paths[i] is not None]
        if not given:
            return None
        if len(given) != len(kept):
            missing = next(self.shown[i] for i in kept if self.mask_paths[i] is None)
            raise InputError(f"the labels file gives masks for {len(given)} of {len(kept)} readable cases; "
                             f"{missing!r} has none (give every case a mask, or none)")
        out = []
        for i in kept:
            mask = read(self.mask_paths[i], memory_mb=self.memory_mb)
            if not isinstance(mask, Volume) or mask.channels != 1:
                raise InputError(f"the mask of {self.shown[i]!r} is not a one-channel image or volume")
            try:
                out.append(mask_on_model_grid(self._geometry[i], mask.array))
            except InputError as err:
                raise InputError(f"the mask of {self.shown[i]!r}: {err}") from err
        return torch.stack(out)[:, None].float()


def _unlike_first(name: str, shape: tuple[int, ...], first: tuple[int, ...]) -> str:
    """Why case ``name``'s model input ``(C, *spatial)`` cannot join the first one's."""
    if shape[1:] == first[1:]:
        return (f"{name} has {shape[0]} channels after preprocessing (the volumes of a 4-D image are its channels; "
                f"colour is three), the first readable case {first[0]}")
    return f"{name} becomes a model input of shape {shape}, others {first}: give a recipe with a size"


def class_names_in(path: PathLike) -> tuple[str, ...]:
    """The class names a labels CSV uses: its label words, sorted, when they are words; ``()``
    when every label is a class index."""
    _, _, rows = _labels_table(path)
    texts = {row["label"] for row in rows if row.get("label")}
    if all(t.lstrip("-").isdigit() for t in texts):
        return ()
    return tuple(sorted(texts, key=str.lower))
