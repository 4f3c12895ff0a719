"""The DICOM images a folder walk found, made into cases: one per series, however it is stored.

A PACS or CD export stores a series in nested ``PATIENT/STUDY/SERIES`` folders, sometimes split
across two folders, sometimes with a second copy of an instance (same ``SOPInstanceUID``). Here
the slices of one series (``SeriesInstanceUID``) are gathered from every folder of the walk, each
instance kept once (the largest copy: a cut-short copy loses), and made into one case when they
fill their folders alone or stack into one volume; otherwise each file is a case of its own.
Projection images and multi-frame objects carry no slice place and are each a case.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Callable, Sequence

from medlens.data.formats.folders import ScanCase

__all__ = ["DicomFile", "SlicePlace", "dicom_file", "file_set_descriptors", "series_cases"]


@dataclass(frozen=True)
class SlicePlace:
    """Where a tomographic slice lies: its series, its size and its plane (``None`` when the
    header does not say)."""

    series: str
    size: tuple[int, int]
    orientation: tuple[float, ...] | None
    position: tuple[float, float, float] | None


@dataclass(frozen=True)
class DicomFile:
    """A DICOM file of a folder walk: its folder, its instance UID (``""`` unknown) and its slice
    place (``None`` for a projection image, a multi-frame object or an unparsable header)."""

    path: pathlib.Path
    folder: pathlib.Path
    instance: str
    place: SlicePlace | None


#: The SOP class of a DICOMDIR (Media Storage Directory Storage): an index of the files, no image.
_MEDIA_INDEX = "1.2.840.10008.1.3.10"


def dicom_file(path: pathlib.Path) -> tuple[str, DicomFile | None]:
    """What the DICOM file ``path`` is to a folder walk: ``("index", None)`` for a DICOMDIR under
    any name, ``(kind, None)`` for an object that is no case (:func:`~medlens.data.formats.dicom_kinds.not_a_case`),
    ``("", DicomFile)`` for an image (or a file whose header pydicom cannot parse: read() names
    the problem later)."""
    from medlens.data.formats.dicom_kinds import not_a_case
    from medlens.data.formats.dicom_limits import read_header

    try:  # never inflates a whole deflated file (a bomb would be 4 GB here)
        ds = read_header(path, ["SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "Modality", "ImageType", "SeriesDescription",
                                "ImagePositionPatient", "ImageOrientationPatient", "NumberOfFrames", "Rows", "Columns",
                                "PhotometricInterpretation", "ConversionType"])
    except Exception:  # noqa: BLE001 - not DICOM after all, or a corrupt header
        return "", DicomFile(path, path.parent, "", None)
    try:
        meta = getattr(ds, "file_meta", None)
        if _MEDIA_INDEX in (str(ds.get("SOPClassUID", "")), str(getattr(meta, "MediaStorageSOPClassUID", "") or "")):
            return "index", None
        kind = not_a_case(ds)
        if kind:
            return kind, None
        instance = str(ds.get("SOPInstanceUID", "") or getattr(meta, "MediaStorageSOPInstanceUID", "") or "")
        return "", DicomFile(path, path.parent, instance, _slice_place(ds))
    except Exception:  # noqa: BLE001 - a corrupt value in the header: read() names the problem later
        return "", DicomFile(path, path.parent, "", None)


def file_set_descriptors(index: pathlib.Path) -> set[pathlib.Path]:
    """The real path of the file-set descriptor (often ``README``) the DICOMDIR ``index`` names
    in its FILE-SET DESCRIPTOR FILE ID, relative to its folder; empty when it names none."""
    from medlens.data.formats.dicom_limits import read_header

    try:
        parts = read_header(index, ["FileSetDescriptorFileID"]).get("FileSetDescriptorFileID")
    except Exception:  # noqa: BLE001 - an unreadable index names nothing
        return set()
    if not parts:
        return set()
    parts = [parts] if isinstance(parts, str) else list(parts)
    return {index.parent.joinpath(*(str(p).strip() for p in parts)).resolve()}


def _slice_place(ds) -> SlicePlace | None:
    ipp, iop = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
    uid = str(ds.get("SeriesInstanceUID", "")) or None
    if ipp is None or uid is None or int(ds.get("NumberOfFrames", 1) or 1) > 1:
        return None
    position = tuple(float(v) for v in ipp) if len(ipp) == 3 else None
    orientation = tuple(float(v) for v in iop) if iop is not None and len(iop) == 6 else None
    return SlicePlace(uid, (int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)), orientation, position)


def series_cases(files: Sequence[DicomFile], others: dict[pathlib.Path, int], root: pathlib.Path,
                 leave_out: Callable[[str], None]) -> list[ScanCase]:
    """The cases of the DICOM images ``files`` found under ``root``; ``others`` counts, per
    folder, its cases that are not among ``files``; ``leave_out`` is told of each copy dropped."""
    kept = _once_each(files, leave_out, _home_counts(files))
    series: dict[str, list[DicomFile]] = {}
    cases: list[ScanCase] = []
    for f in kept:
        if f.place is None:
            cases.append(ScanCase(_prefix(f.folder, root) + f.path.name, (f.path,)))
        else:
            series.setdefault(f.place.series, []).append(f)
    uids_in: dict[pathlib.Path, set[str]] = {}
    for f in kept:
        uids_in.setdefault(f.folder, set()).add(f.place.series if f.place else f"file:{f.path}")
    groups = [sorted(g, key=lambda f: (str(f.folder), f.path.name)) for g in series.values()]
    by_folder: dict[pathlib.Path, list[list[DicomFile]]] = {}
    for g in groups:  # a series split across folders is named by the folder holding most of it
        folders = [f.folder for f in g]
        by_folder.setdefault(max(dict.fromkeys(folders), key=folders.count), []).append(g)
    for folder, in_folder in by_folder.items():
        in_folder.sort(key=lambda g: min(f.path.name for f in g if f.folder == folder))
        for k, g in enumerate(in_folder):
            cases.extend(_group_cases(g, k, folder, root, others, uids_in))
    return cases


def _home_counts(files: Sequence[DicomFile]) -> dict[tuple[pathlib.Path, str], int]:
    """How many files of each series each folder holds."""
    counts: dict[tuple[pathlib.Path, str], int] = {}
    for f in files:
        if f.place is not None:
            counts[f.folder, f.place.series] = counts.get((f.folder, f.place.series), 0) + 1
    return counts


def _once_each(files: Sequence[DicomFile], leave_out: Callable[[str], None],
               home: dict[tuple[pathlib.Path, str], int]) -> list[DicomFile]:
    """``files`` with each instance once: of copies sharing a ``SOPInstanceUID``, the largest
    file (a cut-short copy loses), among equals the one lying with most of its series (``home``),
    then the first by path."""
    best: dict[str, DicomFile] = {}
    kept: list[DicomFile] = []
    for f in sorted(files, key=lambda f: str(f.path)):
        if not f.instance:
            kept.append(f)
            continue
        other = best.get(f.instance)
        if other is None:
            best[f.instance] = f
            continue
        leave_out("second copy of an instance (same SOPInstanceUID)")
        if _preference(f, home) > _preference(other, home):
            best[f.instance] = f
    return sorted(kept + list(best.values()), key=lambda f: str(f.path))


def _preference(f: DicomFile, home: dict[tuple[pathlib.Path, str], int]) -> tuple[int, int]:
    try:
        size = f.path.stat().st_size
    except OSError:
        size = 0
    return size, home.get((f.folder, f.place.series), 0) if f.place else 0


def _prefix(folder: pathlib.Path, root: pathlib.Path) -> str:
    return "" if folder == root else folder.relative_to(root).as_posix() + "/"


def _group_cases(group: list[DicomFile], k: int, folder: pathlib.Path, root: pathlib.Path,
                 others: dict[pathlib.Path, int], uids_in: dict[pathlib.Path, set[str]]) -> list[ScanCase]:
    """One series' cases: one case when its folders hold it alone (named by its first folder) or
    its slices stack, else one case per file. Images in planes at angles to each other (a derived
    MIP/MPR series rotated about the patient) are a set of images, never one volume: one case each."""
    files = tuple(f.path for f in group)
    folders = {f.folder for f in group}
    alone = all(not others.get(d) and len(uids_in.get(d, ())) == 1 for d in folders) and not _rotated(group)
    prefix = _prefix(folder, root)
    first = min((f for f in group if f.folder == folder), key=lambda f: f.path.name).path
    if len(files) > 1 and alone and folder != root:
        return [ScanCase(prefix.rstrip("/"), files, True)]  # a series folder (or folders)
    if len(files) > 1 and (alone or _stack(group)):
        return [ScanCase(f"{prefix}series{k + 1}-{first.stem}", files, True)]
    return [ScanCase(_prefix(f.folder, root) + f.path.name, (f.path,)) for f in group]


def _rotated(group: Sequence[DicomFile]) -> bool:
    """The images of ``group`` lie in planes at angles to each other (each says its plane)."""
    import numpy as np

    planes = [f.place.orientation for f in group]
    if len(planes) < 2 or any(p is None for p in planes):
        return False
    normals = [np.cross(np.asarray(p[:3]), np.asarray(p[3:])) for p in planes]
    return any(abs(abs(float(np.dot(n, normals[0]))) - 1.0) > 1e-3 for n in normals[1:])


def _stack(group: Sequence[DicomFile]) -> bool:
    """Slices of one series that make a volume: one size, parallel planes at distinct positions.

    Files of one series that do not (the same slice stored twice, key images of different sizes,
    echoes at one position) are separate images when they lie among other cases; a folder holding
    only them is still one series, refused in one line when read (``load_dicom``)."""
    import numpy as np

    places = [f.place for f in group]
    first = places[0]
    if any(p.size != first.size or p.orientation is None or p.position is None for p in places):
        return False
    if any(not np.allclose(p.orientation, first.orientation, atol=1e-4) for p in places):
        return False
    iop = np.asarray(first.orientation)
    normal = np.cross(iop[:3], iop[3:])
    normal = normal / (np.linalg.norm(normal) or 1.0)
    along = np.sort([float(np.dot(p.position, normal)) for p in places])
    return bool(np.all(np.diff(along) >= 1e-6))
