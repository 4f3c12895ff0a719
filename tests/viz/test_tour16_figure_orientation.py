"""The overlay figure of a volume draws each plane as a radiologist reads it, from the affine:
axial with anterior up and the patient's left on the image's right, coronal and sagittal with
superior up (sagittal: anterior on the left), whatever the stored axis order (tour16). The slice
shown is still the stored voxel of the map's maximum, and the maps written stay on the stored grid."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

import medlens.viz
from medlens.cli import main
from medlens.data import read
from medlens.data.recipe import Recipe
from medlens.models import CNN, save_model
from medlens.viz import attribution_figure
from tests.viz.oriented_volumes import CORNER, NIFTI_CASES, SHAPE, corner_of, write_dicom_series, write_nifti


def _panels(fig):
    """name -> (the grey panel array the figure drew, the stored slice index its title counts from 1:
    "axial slice 13 of 20")."""
    out = {}
    for ax in fig.axes[:3]:
        name, _slice, number, _of, _count = ax.get_title().split()
        out[name] = (np.asarray(ax.images[0].get_array()), int(number) - 1)
    return out


def _check(volume, marker):
    image = volume.array[None]
    fig = attribution_figure(image, image.clone(), spacing=volume.spacing, planes=volume.plane_names,
                             affine=volume.affine)
    drawn = _panels(fig)
    assert [ax.get_title().split()[0] for ax in fig.axes[:3]] == ["axial", "coronal", "sagittal"]
    for name, (panel, index) in drawn.items():
        assert corner_of(panel) == CORNER[name], name
        assert index == marker[volume.plane_names.index(name)]  # the stored slice through the marker


@pytest.mark.parametrize("case", sorted(NIFTI_CASES))
def test_nifti_marker_lands_in_the_radiological_corner(tmp_path, case):
    path, marker = write_nifti(tmp_path / f"{case}.nii.gz", case)
    _check(read(path), marker)


@pytest.mark.parametrize("plane", ["axial", "sagittal"])
def test_dicom_series_marker_lands_in_the_radiological_corner(tmp_path, plane):
    volume = read(write_dicom_series(tmp_path / plane, plane))
    marker = tuple(int(i) for i in np.unravel_index(int(volume.array.argmax()), volume.spatial_shape))
    _check(volume, marker)


def _expected_panel(data, affine, name, index):
    """What a radiologist sees, from nibabel's own reorientation to RAS: the slice of the
    canonical volume, transposed (the first canonical axis across) and turned so that anterior
    or superior is up and the patient's left (or posterior) on the right."""
    canonical = np.asarray(nib.as_closest_canonical(nib.Nifti1Image(data, affine)).dataobj)
    world, sign = nib.orientations.io_orientation(affine).astype(int).T
    across = {"axial": 2, "coronal": 1, "sagittal": 0}[name]
    axis = int(np.flatnonzero(world == across)[0])
    at = index if sign[axis] > 0 else data.shape[axis] - 1 - index
    return np.take(canonical, at, axis=across).T[::-1, ::-1]


def test_explain_overlay_reoriented_maps_written_on_the_stored_grid(tmp_path, monkeypatch):
    """``medlens explain`` on a NIfTI stored with permuted, reversed axes: the overlay's panels are
    the scan as a radiologist reads it, while attribution.npy and attribution.nii.gz hold the map
    voxel for voxel on the source grid."""
    seen = {}
    original = medlens.viz.attribution_figure

    def spy(*args, **kwargs):
        seen["figure"] = original(*args, **kwargs)
        return seen["figure"]

    monkeypatch.setattr(medlens.viz, "attribution_figure", spy)
    affine = NIFTI_CASES["PIR"][0]
    data = np.random.default_rng(0).integers(0, 1000, SHAPE).astype(np.int16)
    path = tmp_path / "pir.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(path))
    torch.manual_seed(0)
    model = CNN(3, 1, 2, widths=(4,), input_shape=(1, *SHAPE)).eval()
    recipe = Recipe(normalize="minmax", channels=1, size=SHAPE)
    model_path = save_model(model, tmp_path / "m.pt", {"input_shape": [1, *SHAPE], "class_names": ["a", "b"],
                                                        "recipe": recipe})
    out = tmp_path / "ex"
    assert main(["explain", "--model", str(model_path), "--input", str(path), "--method", "gradient",
                 "--out", str(out), "--quiet"]) == 0
    for name, (panel, index) in _panels(seen["figure"]).items():
        assert np.array_equal(panel, _expected_panel(data, affine, name, index)), name
    stored = np.load(out / "attribution.npy")
    assert stored.shape == SHAPE
    nifti = nib.load(str(out / "attribution.nii.gz"))
    assert np.array_equal(nifti.affine, affine)
    assert np.asarray(nifti.dataobj).astype(stored.dtype).tobytes() == stored.tobytes()
    # the slices shown go through the stored voxel of the map's maximum
    peak = np.unravel_index(int(np.abs(stored).argmax()), SHAPE)
    names = read(path).plane_names
    assert {name: index for name, (_p, index) in _panels(seen["figure"]).items()} == {
        name: int(peak[names.index(name)]) for name in names}
    assert json.loads((out / "summary.json").read_text())["attribution_shape"] == list(SHAPE)
