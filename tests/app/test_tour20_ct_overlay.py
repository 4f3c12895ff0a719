"""A CT's overlay is drawn in a CT window, the same in every panel, and says which (tour20): the
recipe's first window, else soft tissue (40/400 HU) for values that look like CT. Each panel was
drawn from its own least to greatest value, -1024 to 3071 HU: every soft tissue one grey."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

import medlens.viz
from medlens.cli import main
from medlens.data.recipe import Recipe
from medlens.models.cnn import CNN
from medlens.models.io import save_model
from medlens.viz.figures import overlay_image
from tests.evaluation.test_tour20_ct_values import _head_ct, _t2_mri


@pytest.fixture
def drawn(tmp_path, monkeypatch):
    """Explain a NIfTI volume with a 3-D classifier; the overlay figure's title and grey limits."""
    figures = []
    original = medlens.viz.attribution_figure

    def keep(*args, **kwargs):
        figures.append(original(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(medlens.viz, "attribution_figure", keep)
    torch.manual_seed(0)
    save_model(CNN(3, 1, 2, widths=(4, 8), input_shape=(1, 8, 8, 8)), tmp_path / "m.pt",
               {"class_names": ["a", "b"], "recipe": Recipe(normalize="minmax", channels=1, size=(8, 8, 8))})

    def run(volume, *extra):
        nib.save(nib.Nifti1Image(volume, np.diag([0.9, 0.9, 2.5, 1.0])), tmp_path / "scan.nii.gz")
        assert main(["explain", "--model", str(tmp_path / "m.pt"), "--input", str(tmp_path / "scan.nii.gz"),
                     "--method", "gradient", "--out", str(tmp_path / "out"), "--quiet", *extra]) == 0
        fig = figures[-1]
        return fig._suptitle.get_text(), {ax.images[0].get_clim() for ax in fig.axes if ax.images}

    return run


def test_a_nifti_ct_is_drawn_in_the_soft_tissue_window(drawn):
    title, limits = drawn(_head_ct())
    assert title.endswith("[CT window 40/400 HU]") and limits == {(-160.0, 240.0)}


def test_the_recipe_window_wins(drawn):
    title, limits = drawn(_head_ct(), "--window", "-600,1500")  # a lung window as typed
    assert title.endswith("[CT window -600/1500 HU]") and limits == {(-1350.0, 150.0)}


def test_an_mri_is_drawn_from_its_own_range(drawn):
    title, limits = drawn(_t2_mri())
    assert "CT window" not in title and len(limits) == 3  # each panel its own range, as before


def test_a_slice_is_clipped_to_the_window():
    ct = torch.tensor([[-1000.0, 40.0], [3000.0, -160.0]])
    rgb = overlay_image(ct, torch.zeros(2, 2), grey=(-160.0, 240.0))
    assert rgb[..., 0].tolist() == [[0, 128], [255, 0]]


def test_the_report_viewer_draws_a_nifti_ct_in_the_same_window(tmp_path, monkeypatch):
    import medlens.report.viewer as viewer

    windows = []
    original = viewer.quantise_base
    monkeypatch.setattr(viewer, "quantise_base", lambda base, window=None: windows.append(window) or original(base, window))
    torch.manual_seed(0)
    save_model(CNN(3, 1, 2, widths=(4, 8), input_shape=(1, 8, 8, 8)), tmp_path / "m.pt",
               {"class_names": ["a", "b"], "recipe": Recipe(normalize="minmax", channels=1, size=(8, 8, 8))})
    nib.save(nib.Nifti1Image(_head_ct(), np.diag([0.9, 0.9, 2.5, 1.0])), tmp_path / "scan.nii.gz")
    assert main(["report", "--model", str(tmp_path / "m.pt"), "--input", str(tmp_path / "scan.nii.gz"),
                 "--methods", "gradient", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert windows == [(-160.0, 240.0)]  # it was the 0.5-99.5 percentile range, -1000 to 1200 HU here
