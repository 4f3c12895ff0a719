"""A NIfTI volume keeps its stored voxel axes, whose first usually runs left-right: the planes of
the explain overlay and of the case report's viewer are named from the affine (a slice through
that axis is sagittal, not axial), and the overlay keeps the voxels' true proportions."""

from __future__ import annotations

import re

import nibabel as nib
import numpy as np
import torch

import medlens.viz
from medlens.cli import main
from medlens.data import read
from medlens.data.recipe import Recipe
from medlens.models import CNN, save_model
from medlens.viz import attribution_figure

SHAPE = (12, 10, 8)  # i: left-right, j: posterior-anterior, k: inferior-superior (2 mm slices)


def _nifti(path, affine=None):
    data = np.random.default_rng(0).integers(0, 1000, SHAPE).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 2.0, 1.0]) if affine is None else affine), str(path))
    return path


def _model(tmp_path):
    torch.manual_seed(0)
    model = CNN(3, 1, 2, widths=(4, 6), input_shape=(1, *SHAPE)).eval()
    recipe = Recipe(normalize="minmax", channels=1, size=SHAPE)
    return save_model(model, tmp_path / "m.pt", {"input_shape": [1, *SHAPE], "class_names": ["a", "b"], "recipe": recipe})


def test_planes_are_named_from_the_affine(tmp_path):
    assert read(_nifti(tmp_path / "ras.nii.gz")).plane_names == ("sagittal", "coronal", "axial")
    # stored slice-first (as a DICOM series is): axis 0 runs inferior-superior
    swapped = np.array([[0, 0, 1.0, 0], [0, 1.0, 0, 0], [2.0, 0, 0, 0], [0, 0, 0, 1]])
    assert read(_nifti(tmp_path / "axial_first.nii.gz", swapped)).plane_names == ("axial", "coronal", "sagittal")


def test_overlay_names_planes_and_keeps_proportions(tmp_path, monkeypatch):
    seen = {}
    original = medlens.viz.attribution_figure

    def spy(*args, **kwargs):
        seen.update(kwargs)
        seen["figure"] = original(*args, **kwargs)
        return seen["figure"]

    monkeypatch.setattr(medlens.viz, "attribution_figure", spy)
    path = _nifti(tmp_path / "ras.nii.gz")
    assert main(["explain", "--model", str(_model(tmp_path)), "--input", str(path), "--method", "gradient",
                 "--out", str(tmp_path / "ex"), "--quiet"]) == 0
    titles = [ax.get_title().split()[0] for ax in seen["figure"].axes[:3]]
    assert titles == ["axial", "coronal", "sagittal"]  # reading order since tour16, named from the affine
    assert tuple(seen["spacing"]) == (1.0, 1.0, 2.0)


def test_figure_panels_share_one_millimetre_scale():
    image, values = torch.rand(1, *SHAPE), torch.rand(1, *SHAPE)
    fig = attribution_figure(image, values, spacing=(1.0, 1.0, 2.0), planes=("sagittal", "coronal", "axial"))
    fig.canvas.draw()
    boxes = [ax.get_window_extent() for ax in fig.axes[:3]]
    # sagittal: 10 mm (j) tall by 16 mm (k) wide; axial: 12 mm by 10 mm
    assert abs(boxes[0].width / boxes[0].height - 16 / 10) < 0.05
    assert abs(boxes[0].height / boxes[2].width - 10 / 10) < 0.05


def test_report_viewer_names_planes_from_the_affine(tmp_path):
    path = _nifti(tmp_path / "ras.nii.gz")
    assert main(["report", "--model", str(_model(tmp_path)), "--input", str(path), "--methods", "gradient",
                 "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    page = (tmp_path / "rep" / "report.html").read_text()
    planes = re.findall(r'aria-label="[^"]*, (\w+) plane"', page)
    assert planes == ["axial", "coronal", "sagittal"]  # reading order since tour16
    # the sliders keep the stored axes: the axial slider moves along the third stored axis (k)
    assert re.search(r'Axial slice <input[^>]*data-plane="2" min="0" max="7"', page)
