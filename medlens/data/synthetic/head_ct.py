"""Head-CT phantoms in Hounsfield units with intracranial haemorrhages of known place and subtype.

Ground truth for the haemorrhage system of Lee et al., "An explainable deep-learning algorithm
for the detection of acute intracranial haemorrhage from small datasets", Nature Biomedical
Engineering 3, 173-182 (2019): a detector and subtype classifier can only be scored for *where*
it looks if the blood's voxels are known exactly. Each phantom is an unenhanced head CT of
``(D, H, W)`` axial slices (default 32 x 64 x 64 at 4 x 3 x 3 mm), built in millimetres so that
shapes do not depend on the voxel grid:

* anatomy: air (-1000 HU), scalp (soft tissue, about 20-40 HU), skull (an ellipsoidal shell,
  cortical and diploic bone, about 700-1500 HU), brain parenchyma (grey/white texture about
  24-40 HU), CSF (about 0-10 HU) in the two lateral ventricles, the subarachnoid rim under the
  inner table, the interhemispheric fissure and radial sulci; head size, shape and position vary;
* acquisition: Gaussian quantum noise (3-6 HU) and beam-hardening-like streaks (thin straight
  bands of -25..+15 HU across each slice);
* at most one acute haemorrhage per case (about 50-90 HU, with a slight texture), of one of the
  five subtypes of Lee et al., placed and shaped as radiologists know them:

  ===================  ==================================================================
  epidural             biconvex lens against the inner table, thick (12-20 mm), short (limited
                       by sutures: 16-24 mm in-plane half-length, 10-16 mm across slices)
  subdural             crescent along the inner table, thin (3-6 mm), long (50-75 mm in-plane
                       half-length, 28-44 mm across slices)
  subarachnoid         blood in the sulci and the fissure near the surface
  intraparenchymal     a lobulated blob deep in the parenchyma, away from the skull
  intraventricular     blood below a fluid level in the dependent (posterior) part of one or
                       both lateral ventricles
  ===================  ==================================================================

Every case draws from three generators seeded from ``(seed, case index)`` (anatomy,
haemorrhage, acquisition), so the same case without its haemorrhage differs from it exactly on
the haemorrhage mask: :func:`make_head_ct` with ``haemorrhage=False`` returns those twins.

:func:`write_head_ct` writes the cases as NIfTI files or as DICOM CT series whose pixel data
carry HU through ``RescaleSlope``/``RescaleIntercept`` (written with pydicom, the reference
library of the reader that reads them back), with the masks as NIfTI and the labels as CSV, so
that the phantoms go through the same readers and recipes as a hospital's files.
"""

from __future__ import annotations

import math
import os
import pathlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from medlens.core.files import staged_folder, write_csv, write_json
from medlens.core.random import generator
from medlens.errors import InputError

__all__ = ["SUBTYPES", "TISSUES", "HeadCTSet", "make_head_ct", "write_head_ct", "HU_RANGES"]

SUBTYPES = ("epidural", "subdural", "subarachnoid", "intraparenchymal", "intraventricular")
#: tissue label map values: index into this tuple
TISSUES = ("air", "scalp", "skull", "parenchyma", "ventricle", "sulcal csf")
#: HU ranges of the noise-free tissues (and of blood) the generator draws from
HU_RANGES: dict[str, tuple[float, float]] = {
    "air": (-1000.0, -1000.0),
    "scalp": (20.0, 40.0),
    "skull": (700.0, 1500.0),
    "parenchyma": (22.0, 42.0),
    "ventricle": (0.0, 10.0),
    "sulcal csf": (0.0, 10.0),
    "blood": (50.0, 90.0),
}
RESCALE_INTERCEPT = -1024.0


@dataclass(frozen=True)
class HeadCTSet:
    """Head-CT phantoms with exact haemorrhage masks.

    Attributes
    ----------
    volumes : torch.Tensor
        float32 ``(N, D, H, W)`` in HU (axial slices along ``D``, from foot to head).
    haemorrhage : torch.Tensor
        int8 ``(N, D, H, W)``: 0 where there is no blood, ``k`` for subtype ``SUBTYPES[k - 1]``.
    tissue : torch.Tensor
        int8 ``(N, D, H, W)``: index into :data:`TISSUES` of the anatomy under the blood.
    subtype : torch.Tensor
        int64 ``(N,)``: index into :data:`SUBTYPES`, -1 for a case without haemorrhage.
    spacing : tuple of float
        ``(dz, dy, dx)`` in mm.
    seed : int
    """

    volumes: torch.Tensor
    haemorrhage: torch.Tensor
    tissue: torch.Tensor
    subtype: torch.Tensor
    spacing: tuple[float, float, float]
    seed: int

    def __len__(self) -> int:
        return int(self.volumes.shape[0])

    @property
    def labels(self) -> torch.Tensor:
        """int64 ``(N,)``: 1 if the case holds a haemorrhage."""
        return (self.subtype >= 0).long()

    def slice_subtypes(self, min_voxels: int = 3) -> torch.Tensor:
        """int64 ``(N, D)``: the case's subtype on slices with at least ``min_voxels`` of blood, else -1."""
        counts = (self.haemorrhage > 0).flatten(2).sum(-1)  # (N, D)
        return torch.where(counts >= min_voxels, self.subtype[:, None].expand_as(counts), torch.full_like(counts, -1))


def _u(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


def _field(gen: torch.Generator, shape: Sequence[int], cells: Sequence[int]) -> torch.Tensor:
    """Smooth random field ``shape`` in about [-1, 1] (coarse uniform noise, trilinear upsampling)."""
    coarse = torch.rand((1, 1, *cells), generator=gen, dtype=torch.float64) * 2 - 1
    return F.interpolate(coarse, size=tuple(shape), mode="trilinear", align_corners=True)[0, 0]


def _case_generators(seed: int, index: int) -> tuple[torch.Generator, torch.Generator, torch.Generator]:
    """The anatomy, blood and noise generators of phantom ``index``."""
    return tuple(generator(int(seed), "phantom", int(index), stream) for stream in ("anatomy", "blood", "noise"))  # type: ignore[return-value]


def _anatomy(gen: torch.Generator, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> dict:
    """Noise-free anatomy of one head: HU, tissue labels and the geometry the haemorrhages need."""
    d, h, w = shape
    z, y, x = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) * s for n, s in zip(shape, spacing)], indexing="ij")
    pos = torch.stack([z, y, x], dim=-1)  # (D, H, W, 3) mm
    extent = torch.tensor([d * spacing[0], h * spacing[1], w * spacing[2]], dtype=torch.float64)
    centre = extent / 2 + torch.tensor([_u(gen, -0.05, 0.05) * extent[0], _u(gen, -3, 3) * spacing[1],
                                        _u(gen, -3, 3) * spacing[2]], dtype=torch.float64)
    ap = _u(gen, 0.38, 0.44) * float(extent[1])  # semi-axis front-back (rows)
    lr = ap * _u(gen, 0.80, 0.90)  # semi-axis left-right (columns)
    si = _u(gen, 0.62, 0.75) * float(extent[0])  # semi-axis along the slices
    scalp_t, skull_t = _u(gen, 3.0, 5.0), _u(gen, 5.0, 8.0)
    outer = torch.tensor([si, ap, lr], dtype=torch.float64)
    rel = pos - centre
    rho_head = (rel / (outer + scalp_t)).norm(dim=-1)
    rho_outer = (rel / outer).norm(dim=-1)
    inner_axes = outer - skull_t
    rho_inner = (rel / inner_axes).norm(dim=-1)
    mean_inner = float(inner_axes[1:].mean())
    depth = (1.0 - rho_inner) * mean_inner  # mm below the inner table (approximate, > 0 inside)
    head, bone, brain = rho_head < 1, (rho_outer < 1) & (rho_inner >= 1), rho_inner < 1

    # lateral ventricles: two ellipsoids beside the midline, a little behind and above the centre
    v_axes = torch.tensor([_u(gen, 12, 16), _u(gen, 22, 28), _u(gen, 6, 9)], dtype=torch.float64)
    v_off = torch.tensor([_u(gen, 4, 12), _u(gen, 0, 6), _u(gen, 7, 10)], dtype=torch.float64)
    ventricles = []
    for side in (-1.0, 1.0):
        c = centre + v_off * torch.tensor([1.0, 1.0, side], dtype=torch.float64)
        ventricles.append(((pos - c) / v_axes).norm(dim=-1) < 1)
    ventricle = (ventricles[0] | ventricles[1]) & brain & (depth > 10)

    # CSF spaces near the surface: the subarachnoid rim, the interhemispheric fissure, radial sulci
    theta = torch.atan2(rel[..., 1] / ap, rel[..., 2] / lr)
    k, phase = int(torch.randint(9, 14, (), generator=gen)), _u(gen, 0, 2 * math.pi)
    wobble = 0.6 * _field(gen, shape, (3, 4, 4))
    sulci = (torch.sin(k * theta + phase + wobble).abs() < 0.16) & (depth < _u(gen, 10, 14))
    rim = depth < 1.6
    fissure = (rel[..., 2].abs() < 1.6) & (depth < 30) & (rel[..., 1] > -ap)  # midline
    csf = brain & (sulci | rim | fissure) & ~ventricle

    tissue = torch.zeros(shape, dtype=torch.int8)
    tissue[head] = 1
    tissue[bone] = 2
    tissue[brain] = 3
    tissue[ventricle] = 4
    tissue[csf] = 5

    hu = torch.full(shape, -1000.0, dtype=torch.float64)
    hu[head] = _u(gen, 22, 38) + 2.0 * _field(gen, shape, (4, 6, 6))[head]
    bone_hu = 1100 + 350 * _field(gen, shape, (6, 10, 10))  # cortical and diploic bone
    hu[bone] = bone_hu[bone]
    grey_white = 32 + 8 * torch.tanh(2.5 * _field(gen, shape, (5, 9, 9)))  # 24..40 HU
    hu[brain] = grey_white[brain]
    csf_hu = 5 + 4 * _field(gen, shape, (3, 5, 5))
    hu[ventricle | csf] = csf_hu[ventricle | csf]
    return {"hu": hu, "tissue": tissue, "pos": pos, "centre": centre, "rel": rel, "depth": depth,
            "brain": brain, "ventricles": ventricles, "ventricle": ventricle, "csf": csf,
            "axes": (si, ap, lr), "inner_axes": inner_axes}


def _surface_point(gen: torch.Generator, a: dict, lateral: bool) -> torch.Tensor:
    """A point on the inner table (mm) at a random angle, in the upper middle slices."""
    si, ap, lr = (float(v) for v in a["inner_axes"])
    ang = _u(gen, -0.9, 0.9) + (0.0 if _u(gen, 0, 1) < 0.5 else math.pi) if lateral else _u(gen, 0, 2 * math.pi)
    zf = _u(gen, -0.15, 0.35)  # fraction of the SI semi-axis above the centre
    ring = math.sqrt(max(1e-6, 1 - zf * zf))
    off = torch.tensor([zf * si, ring * ap * math.sin(ang), ring * lr * math.cos(ang)], dtype=torch.float64)
    return a["centre"] + off


def _haemorrhage(gen: torch.Generator, a: dict, subtype: str) -> torch.Tensor:
    """The bool mask ``(D, H, W)`` of one haemorrhage of ``subtype`` in the anatomy ``a``."""
    pos, brain, depth = a["pos"], a["brain"], a["depth"]
    for _attempt in range(50):
        if subtype in ("epidural", "subdural"):
            q = _surface_point(gen, a, lateral=True)
            u = pos - q
            along = u[..., 1:].norm(dim=-1)  # in-plane distance from the contact point (mm)
            if subtype == "epidural":
                # biconvex lens: the dura is stripped from the bone only between two sutures, so
                # the blood is short (in-plane and across slices) and bulges deep at its centre
                thick, length, height = _u(gen, 12, 20), _u(gen, 16, 24), _u(gen, 10, 16)
                s2 = (along / length) ** 2 + (u[..., 0] / height) ** 2
                mask = brain & (depth < thick * (1 - s2))
            else:
                # crescent: spreads freely along the inner table (crosses sutures), thin, of almost
                # constant thickness tapering only at its ends
                thick, length, height = _u(gen, 3, 6), _u(gen, 50, 75), _u(gen, 28, 44)
                s2 = (along / length) ** 2 + (u[..., 0] / height) ** 2
                mask = brain & (depth < thick * (1 - s2).clamp(min=0) ** 0.25) & (s2 < 1)
        elif subtype == "subarachnoid":
            # blood in the sulci and the fissure near the surface (not as a sheet under the bone)
            q = _surface_point(gen, a, lateral=False)
            mask = a["csf"] & ((pos - q).norm(dim=-1) < _u(gen, 28, 40)) & (depth > 1.6) & (depth < 16)
        elif subtype == "intraparenchymal":
            inside = brain & (depth > 22) & (a["tissue"] == 3)
            idx = torch.nonzero(inside)
            if len(idx) == 0:
                continue
            c = pos[tuple(idx[int(torch.randint(len(idx), (), generator=gen))])]
            r = _u(gen, 8, 14)
            lobes = 0.25 * _field(gen, depth.shape, (6, 12, 12))
            mask = ((pos - c).norm(dim=-1) / r + lobes < 1) & (a["tissue"] == 3)
        elif subtype == "intraventricular":
            # blood layering in the dependent (posterior, largest row) part of one or both lateral
            # ventricles of a supine patient, below a straight fluid level
            sides = [v & a["ventricle"] for v in a["ventricles"]]
            if _u(gen, 0, 1) < 0.5:
                sides = [sides[int(torch.randint(2, (), generator=gen))]]
            mask = torch.zeros_like(brain)
            level_q = _u(gen, 0.35, 0.6)
            for side in sides:
                idx = torch.nonzero(side)
                if len(idx) == 0:
                    continue
                rows = idx[:, 1].double()
                level = float(torch.quantile(rows, level_q))
                mask |= side & (torch.arange(side.shape[1], dtype=torch.float64)[None, :, None] >= level)
        else:
            raise InputError(f"unknown haemorrhage subtype {subtype!r}; known: {', '.join(SUBTYPES)}")
        if int(mask.sum()) >= 12:
            return mask
    raise InputError(f"could not place a {subtype} haemorrhage in this head; use a larger volume")


def _streaks(gen: torch.Generator, shape: tuple[int, int, int]) -> torch.Tensor:
    """Beam-hardening-like streaks: per slice a few thin straight bands across the image (HU)."""
    d, h, w = shape
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    out = torch.zeros(shape, dtype=torch.float64)
    for k in range(d):
        for _ in range(int(torch.randint(1, 4, (), generator=gen))):
            ang = _u(gen, 0, math.pi)
            cy, cx = _u(gen, 0.3, 0.7) * h, _u(gen, 0.3, 0.7) * w
            dist = (yy - cy) * math.cos(ang) - (xx - cx) * math.sin(ang)
            out[k] += _u(gen, -25, 15) * torch.exp(-0.5 * (dist / 0.8) ** 2)
    return out


def make_head_ct(
    n: int,
    *,
    shape: Sequence[int] = (32, 64, 64),
    spacing: Sequence[float] = (4.0, 3.0, 3.0),
    prevalence: float = 0.75,
    subtypes: Sequence[int | str] | None = None,
    haemorrhage: bool = True,
    noise: bool = True,
    seed: int = 0,
) -> HeadCTSet:
    """Generate ``n`` head-CT phantoms (see the module docstring).

    Parameters
    ----------
    n : int
        Number of cases.
    shape : (int, int, int)
        ``(D, H, W)`` voxels; at least ``(16, 48, 48)``.
    spacing : (float, float, float)
        ``(dz, dy, dx)`` in mm; with the default shape the field of view is 128 x 192 x 192 mm.
    prevalence : float
        Share of cases with a haemorrhage (subtypes drawn uniformly), when ``subtypes`` is None.
    subtypes : sequence of int or str, optional
        The subtype of each case (``-1``/``"none"`` for none), overriding ``prevalence``.
    haemorrhage : bool
        ``False``: the same cases without their blood (anatomy and acquisition unchanged), the
        twins that differ from ``haemorrhage=True`` exactly on the mask; ``subtype`` is still
        the one drawn, ``haemorrhage`` masks are empty.
    noise : bool
        Add quantum noise and streaks.
    seed : int

    Returns
    -------
    HeadCTSet
    """
    shape = tuple(int(s) for s in shape)
    spacing = tuple(float(s) for s in spacing)
    if len(shape) != 3 or shape[0] < 16 or min(shape[1:]) < 48:
        raise InputError(f"head-CT phantoms need a shape (D, H, W) of at least (16, 48, 48), got {shape}")
    if len(spacing) != 3 or min(spacing) <= 0:
        raise InputError(f"spacing must be three positive sizes in mm, got {spacing}")
    if n < 1:
        raise InputError(f"the number of phantoms must be at least 1, got {n}")
    if subtypes is None:
        if not 0 <= prevalence <= 1:
            raise InputError(f"prevalence must lie in [0, 1], got {prevalence}")
        g = generator(int(seed), "subtypes")
        has = torch.rand(n, generator=g) < prevalence
        kinds = torch.where(has, torch.randint(len(SUBTYPES), (n,), generator=g), torch.full((n,), -1))
    else:
        if len(subtypes) != n:
            raise InputError(f"subtypes names {len(subtypes)} cases but n is {n}")
        kinds = torch.tensor([_subtype_index(s) for s in subtypes], dtype=torch.int64)
    volumes = torch.empty((n, *shape), dtype=torch.float32)
    masks = torch.zeros((n, *shape), dtype=torch.int8)
    tissues = torch.empty((n, *shape), dtype=torch.int8)
    for i in range(n):
        g_anat, g_blood, g_noise = _case_generators(seed, i)
        a = _anatomy(g_anat, shape, spacing)
        hu = a["hu"]
        kind = int(kinds[i])
        if kind >= 0:
            mask = _haemorrhage(g_blood, a, SUBTYPES[kind])
            blood = _u(g_blood, 58, 82) + 4 * _field(g_blood, shape, (4, 8, 8))
            if haemorrhage:
                hu = torch.where(mask, blood, hu)
                masks[i][mask] = kind + 1
        if noise:
            hu = hu + _u(g_noise, 3, 6) * torch.randn(shape, generator=g_noise, dtype=torch.float64)
            hu = hu + _streaks(g_noise, shape) * (a["tissue"] > 0)
        volumes[i] = hu.clamp(min=-1024.0).float()
        tissues[i] = a["tissue"]
    return HeadCTSet(volumes, masks, tissues, kinds, spacing, int(seed))  # type: ignore[arg-type]


def _subtype_index(s: int | str) -> int:
    if isinstance(s, str):
        key = s.strip().lower()
        if key in ("none", ""):
            return -1
        if key not in SUBTYPES:
            raise InputError(f"unknown haemorrhage subtype {s!r}; known: {', '.join(SUBTYPES)}")
        return SUBTYPES.index(key)
    if not -1 <= int(s) < len(SUBTYPES):
        raise InputError(f"subtype index {s} outside -1..{len(SUBTYPES) - 1}")
    return int(s)


def _nifti_affine(spacing: tuple[float, float, float]) -> np.ndarray:
    """Voxel ``(k, i, j)`` (slice, row, column) to RAS mm: slices go up, rows back, columns left."""
    dz, dy, dx = spacing
    return np.array([[0, 0, -dx, 0], [0, -dy, 0, 0], [dz, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)


def _write_dicom_series(hu: np.ndarray, spacing: tuple[float, float, float], folder: pathlib.Path,
                        case: str, seed: int) -> None:
    """One CT Image Storage file per slice; stored values ``HU - RescaleIntercept`` (uint16)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    uid = lambda *parts: generate_uid(entropy_srcs=["medlens-head-ct", str(seed), case, *map(str, parts)])  # noqa: E731
    study, series, frame = uid("study"), uid("series"), uid("frame")
    stored = np.clip(np.rint(hu - RESCALE_INTERCEPT), 0, 65535).astype(np.uint16)
    dz, dy, dx = spacing
    for k in range(stored.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = uid("slice", k)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality = "CT"
        ds.PatientName, ds.PatientID = "PHANTOM^HEADCT", f"PHANTOM-{case}"
        ds.SeriesDescription = "medlens head-CT phantom (synthetic)"
        ds.BodyPartExamined = "HEAD"
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(k * dz)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [float(dy), float(dx)]
        ds.SliceThickness = float(dz)
        ds.Rows, ds.Columns = int(stored.shape[1]), int(stored.shape[2])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = RESCALE_INTERCEPT, 1.0, "HU"
        ds.WindowCenter, ds.WindowWidth = 40, 80
        ds.PixelData = stored[k].tobytes()
        ds.save_as(folder / f"slice_{k:03d}.dcm", enforce_file_format=True)


def write_head_ct(data: HeadCTSet, folder: str | os.PathLike, *, fmt: str = "nifti") -> pathlib.Path:
    """Write phantoms as files a hospital's pipeline would read.

    Parameters
    ----------
    data : HeadCTSet
    folder : path
        A new (or empty) folder; written as a hidden sibling first and renamed when complete,
        so an interrupted run leaves nothing half-written under the name. Scans and masks lie
        apart, so that ``medlens explain|evaluate|audit --input FOLDER/images`` sees only scans:
        per case ``case_NNN``, the image ``images/case_NNN.nii.gz`` (int16 HU) or the DICOM series
        folder ``images/case_NNN/`` (``RescaleIntercept = -1024``, ``RescaleSlope = 1``), and the
        haemorrhage label map ``masks/case_NNN.nii.gz`` (0 none, ``k`` = subtype ``k - 1``);
        ``labels.csv`` (``case`` as those commands name it, ``label`` = haemorrhage 0/1, so it
        serves as their ``--labels``; ``subtype``; ``image`` and ``mask`` paths relative to the
        folder) and ``dataset.json`` (subtypes, spacing, seed).
    fmt : {"nifti", "dicom"}

    Returns
    -------
    pathlib.Path
        The folder.
    """
    import nibabel as nib

    if fmt not in ("nifti", "dicom"):
        raise InputError(f"head-CT format must be 'nifti' or 'dicom', got {fmt!r}")
    final = pathlib.Path(os.fspath(folder)).expanduser()
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise InputError(f"{final} already exists and is not an empty folder; choose a new output folder")
    with staged_folder(final) as out:
        (out / "images").mkdir()
        (out / "masks").mkdir()
        affine = _nifti_affine(data.spacing)
        rows = []
        for i in range(len(data)):
            case = f"case_{i:03d}"
            hu = data.volumes[i].double().numpy()
            if fmt == "nifti":
                img = nib.Nifti1Image(np.rint(hu).astype(np.int16), affine)
                img.header.set_xyzt_units("mm")
                name = f"{case}.nii.gz"
                nib.save(img, out / "images" / name)
            else:
                name = case
                _write_dicom_series(hu, data.spacing, out / "images" / case, case, data.seed)
            mask = nib.Nifti1Image(data.haemorrhage[i].numpy().astype(np.uint8), affine)
            mask.header.set_xyzt_units("mm")
            nib.save(mask, out / "masks" / f"{case}.nii.gz")
            kind = int(data.subtype[i])
            rows.append([name, int(kind >= 0), SUBTYPES[kind] if kind >= 0 else "none", f"images/{name}",
                         f"masks/{case}.nii.gz"])
        write_csv(out / "labels.csv", [dict(zip(("case", "label", "subtype", "image", "mask"), row)) for row in rows],
                  ["case", "label", "subtype", "image", "mask"])
        write_json(out / "dataset.json", {
            "kind": "head-ct", "format": fmt, "subtypes": list(SUBTYPES), "spacing_mm": list(data.spacing),
            "shape": list(data.volumes.shape[1:]), "seed": data.seed, "cases": len(data),
            "mask_values": {str(k + 1): s for k, s in enumerate(SUBTYPES)},
        })
    return final
