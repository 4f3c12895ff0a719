"""Head-CT phantoms: HU per tissue, exact masks, each subtype where it belongs, real files."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import distance_transform_edt

from medlens.data.synthetic.head_ct import HU_RANGES, SUBTYPES, TISSUES, make_head_ct, write_head_ct
from medlens.data.recipe import Recipe, WINDOW_PRESETS, prepare
from medlens.data.formats.read import read
from medlens.errors import InputError

ALL = list(range(5))  # every subtype once


@pytest.fixture(scope="module")
def clean():
    return make_head_ct(5, subtypes=ALL, noise=False, seed=4)


@pytest.fixture(scope="module")
def noisy():
    return make_head_ct(5, subtypes=ALL, seed=4)


def _dilate(mask: torch.Tensor, r: int = 1) -> torch.Tensor:
    m = mask.float()[None, None]
    return F.max_pool3d(m, 2 * r + 1, stride=1, padding=r)[0, 0] > 0


def test_hu_range_of_every_tissue_without_noise(clean):
    blood = clean.haemorrhage > 0
    for k, name in enumerate(TISSUES):
        values = clean.volumes[(clean.tissue == k) & ~blood]
        lo, hi = HU_RANGES[name]
        assert values.numel() > 0, name
        assert float(values.min()) >= lo - 1e-3 and float(values.max()) <= hi + 1e-3, name
    lo, hi = HU_RANGES["blood"]
    assert float(clean.volumes[blood].min()) >= lo and float(clean.volumes[blood].max()) <= hi
    # the anatomy is there in every head: bone, brain, ventricles and sulci
    for i in range(len(clean)):
        counts = torch.bincount(clean.tissue[i].flatten().long(), minlength=len(TISSUES))
        assert (counts > 50).all(), counts


def test_noise_and_streaks_keep_tissues_apart(noisy, clean):
    med = {name: float(noisy.volumes[noisy.tissue == k].median()) for k, name in enumerate(TISSUES)}
    assert med["air"] < -990 and med["skull"] > 900
    assert 25 < med["parenchyma"] < 40 and 0 < med["ventricle"] < 10 and 0 < med["sulcal csf"] < 10
    sd = float((noisy.volumes - clean.volumes)[noisy.tissue == 3].std())  # same cases without noise
    assert 3 < sd < 12  # quantum noise 3-6 HU plus streaks


def test_masks_equal_the_inserted_regions(noisy):
    twins = make_head_ct(5, subtypes=ALL, seed=4, haemorrhage=False)
    assert (twins.haemorrhage == 0).all()
    changed = noisy.volumes != twins.volumes
    assert torch.equal(changed, noisy.haemorrhage > 0)
    # mask values name the case's subtype
    for i in range(len(noisy)):
        assert set(noisy.haemorrhage[i].unique().tolist()) == {0, int(noisy.subtype[i]) + 1}


def test_each_subtype_where_it_belongs(clean):
    brain = lambda i: clean.tissue[i] >= 3  # noqa: E731 - parenchyma, ventricles, CSF
    thickness = {"epidural": [], "subdural": []}
    for i in range(len(clean)):
        name = SUBTYPES[int(clean.subtype[i])]
        mask = clean.haemorrhage[i] > 0
        tissue = clean.tissue[i][mask]
        assert mask.sum() >= 12
        assert brain(i)[mask].all(), name  # never in bone, scalp or air
        if name in ("epidural", "subdural"):
            assert (mask & _dilate(clean.tissue[i] == 2)).any(), name  # against the skull
            # thickness: the deepest blood voxel's distance (mm) to the skull
            dist = distance_transform_edt(clean.tissue[i].numpy() != 2, sampling=clean.spacing)
            thickness[name].append(float(dist[mask.numpy()].max()))
        elif name == "subarachnoid":
            assert (tissue == TISSUES.index("sulcal csf")).all()
        elif name == "intraparenchymal":
            assert (tissue == TISSUES.index("parenchyma")).all()
            assert not (mask & _dilate(clean.tissue[i] == 2, 2)).any()  # deep, off the skull
        else:
            assert (tissue == TISSUES.index("ventricle")).all()
    # lens-shaped epidurals are thicker than thin subdural crescents; crescents are longer
    assert min(thickness["epidural"]) > max(thickness["subdural"])


def test_subdural_crescents_are_longer_than_epidural_lenses(clean):
    def span(i):  # largest in-plane extent (mm) over slices
        m = clean.haemorrhage[i] > 0
        idx = torch.nonzero(m).double() * torch.tensor(clean.spacing, dtype=torch.float64)
        return float(torch.cdist(idx, idx).max())

    epi = [span(i) for i in range(len(clean)) if SUBTYPES[int(clean.subtype[i])] == "epidural"]
    sub = [span(i) for i in range(len(clean)) if SUBTYPES[int(clean.subtype[i])] == "subdural"]
    assert min(sub) > max(epi)


def test_seeded_and_labels(noisy):
    again = make_head_ct(2, subtypes=ALL[:2], seed=4)
    assert torch.equal(again.volumes, noisy.volumes[:2])
    other = make_head_ct(2, subtypes=ALL[:2], seed=3)
    assert not torch.equal(other.volumes, noisy.volumes[:2])
    drawn = make_head_ct(6, prevalence=0.5, seed=1, noise=False)
    assert set(drawn.subtype.tolist()) - {-1} <= set(range(5)) and (drawn.subtype == -1).any()
    assert torch.equal(drawn.labels, (drawn.haemorrhage.flatten(1) > 0).any(1).long())
    per_slice = noisy.slice_subtypes(min_voxels=1)
    has = (noisy.haemorrhage > 0).flatten(2).any(-1)
    assert torch.equal(per_slice >= 0, has)
    with pytest.raises(InputError, match="subtype"):
        make_head_ct(1, subtypes=["aneurysm"])
    with pytest.raises(InputError, match="shape"):
        make_head_ct(1, shape=(8, 32, 32))


def test_nifti_files_read_back_in_hu(tmp_path, noisy):
    data = make_head_ct(2, subtypes=[1, -1], seed=5)
    out = write_head_ct(data, tmp_path / "nii")
    vol = read(out / "images" / "case_000.nii.gz")
    assert vol.format == "NIfTI" and vol.array.shape == (32, 64, 64)
    assert np.array_equal(vol.array.numpy(), np.rint(data.volumes[0].numpy()))
    assert vol.spacing == pytest.approx(data.spacing)
    mask = nib.load(out / "masks" / "case_000.nii.gz").get_fdata()
    assert np.array_equal(mask, data.haemorrhage[0].numpy())
    rows = list(csv.DictReader(open(out / "labels.csv", encoding="utf-8")))
    assert [r["subtype"] for r in rows] == ["subdural", "none"] and [r["label"] for r in rows] == ["1", "0"]
    assert [r["case"] for r in rows] == ["case_000.nii.gz", "case_001.nii.gz"]  # as the folder walker names them
    assert sorted(p.name for p in (out / "images").iterdir()) == ["case_000.nii.gz", "case_001.nii.gz"]
    assert json.loads((out / "dataset.json").read_text())["subtypes"] == list(SUBTYPES)


def test_dicom_series_carries_hu_through_rescale_tags(tmp_path):
    data = make_head_ct(1, subtypes=[0], seed=6)
    out = write_head_ct(data, tmp_path / "dcm", fmt="dicom")
    files = sorted((out / "images" / "case_000").iterdir())
    assert len(files) == 32
    ds = pydicom.dcmread(files[5])
    assert ds.Modality == "CT" and float(ds.RescaleIntercept) == -1024.0 and float(ds.RescaleSlope) == 1.0
    raw = ds.pixel_array.astype(np.float64)
    assert raw.min() >= 0  # stored unsigned, HU only through the rescale tags
    vol = read(out / "images" / "case_000")
    assert vol.format == "DICOM" and vol.array.shape == (32, 64, 64)
    assert np.array_equal(vol.array.numpy(), np.rint(data.volumes[0].numpy()))
    assert vol.spacing == pytest.approx(data.spacing)
    # the recipe's CT windows (Lee et al.: brain, subdural, bone) become channels
    wins = tuple(WINDOW_PRESETS[k] for k in ("brain", "subdural", "bone"))
    x = prepare(vol, Recipe(windows=wins)).x
    assert x.shape == (1, 3, 32, 64, 64)
    hu = torch.from_numpy(np.rint(data.volumes[0].numpy()))
    for ch, (c, w) in enumerate(wins):
        assert torch.allclose(x[0, ch], ((hu - (c - w / 2)) / w).clamp(0, 1).float(), atol=1e-6)
    with pytest.raises(InputError, match="format"):
        write_head_ct(data, tmp_path / "x", fmt="png")
    with pytest.raises(InputError, match="not an empty folder"):  # never written over
        write_head_ct(data, out)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_epidural_lenses_stop_at_sutures_subdural_crescents_spread(clean):
    # an epidural is short across slices too (the dura is stripped only between two sutures)
    spans = {SUBTYPES[int(clean.subtype[i])]: int((clean.haemorrhage[i] > 0).flatten(1).any(1).sum())
             for i in range(len(clean))}
    assert spans["epidural"] < spans["subdural"]
    assert spans["epidural"] * clean.spacing[0] <= 2 * 16 + clean.spacing[0]  # 10-16 mm half-height


def test_intraventricular_blood_lies_below_a_fluid_level(clean):
    i = SUBTYPES.index("intraventricular")
    case = int(torch.nonzero(clean.subtype == i)[0, 0])
    blood = clean.haemorrhage[case] > 0
    ventricle = clean.tissue[case] == TISSUES.index("ventricle")
    assert blood.any() and (ventricle[blood]).all()
    # along each column of a slice, once the blood starts (going back), the ventricle stays bloody
    rows = torch.arange(blood.shape[1])[None, :, None]
    first = torch.where(blood, rows, torch.full_like(rows.expand_as(blood), 10**6)).amin(1, keepdim=True)
    behind = ventricle & (rows >= first)
    assert torch.equal(behind, blood)
