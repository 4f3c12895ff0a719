"""A CT saved as NIfTI names no modality; a model trained on MRI given it said nothing (tour20).
Its values say CT (Hounsfield units: air at about -1000): the case is flagged as unlike the
training data, with a ``modality`` warning that says how medlens knows; an MRI volume is not."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from medlens.cli import main
from medlens.data.hounsfield import looks_like_ct
from medlens.data.recipe import Recipe
from medlens.models.cnn import CNN
from medlens.models.io import save_model


def _head_ct(shape=(24, 24, 20)):
    """A head CT in HU, as dcm2niix writes one: air around, soft tissue inside, a skull ring."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape[:2]], indexing="ij"))
    radius = np.sqrt((grid**2).sum(0))[..., None].repeat(shape[2], axis=2)
    ct = np.where(radius < 0.7, 35, -1000) + np.where((radius > 0.6) & (radius < 0.7), 1200, 0)
    return (ct + np.random.default_rng(0).normal(0, 8, shape)).astype(np.int16)


def _t2_mri(shape=(24, 24, 20)):
    return (np.abs(np.random.default_rng(1).normal(300, 120, shape))).astype(np.int16)


def _outside_the_field_of_view(ct, padding=-1500):
    """The GE series of dcm_qa_ct: -1500 outside the scanner's circular field of view (a quarter here)."""
    ct = ct.copy()
    ct[:6, :6] = padding
    return ct


@pytest.mark.parametrize("volume, expected", [(_head_ct(), True), (_outside_the_field_of_view(_head_ct()), True),
                                              (_t2_mri(), False),
                                              (np.random.default_rng(2).integers(-4096, 4096, (20, 20, 20)), False)])
def test_hounsfield_values_are_recognised(volume, expected):
    assert looks_like_ct(torch.from_numpy(volume)) is expected  # a phase image spreads below air too: not CT


def _explain(tmp_path, volume):
    torch.manual_seed(0)
    meta = {"class_names": ["a", "b"], "recipe": Recipe(normalize="zscore", channels=1, size=(8, 8, 8)),
            "input": {"kind": "volume", "channels": "grey", "n_channels": 1, "shape": [24, 24, 20],
                      "modality": ["MR"]}}
    save_model(CNN(3, 1, 2, widths=(4, 8), input_shape=(1, 8, 8, 8)), tmp_path / "mri.pt", meta)
    nib.save(nib.Nifti1Image(volume, np.diag([0.9, 0.9, 2.5, 1.0])), tmp_path / "scan.nii.gz")
    out = tmp_path / "out"
    assert main(["explain", "--model", str(tmp_path / "mri.pt"), "--input", str(tmp_path / "scan.nii.gz"),
                 "--method", "gradient", "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "summary.json").read_text())


def test_a_nifti_ct_given_to_an_mri_model_is_said_to_be_unlike_its_training_data(tmp_path):
    summary = _explain(tmp_path, _head_ct())
    said = [w["message"] for w in summary["warnings"] if w["code"] == "modality"]
    assert said == ["This file names no modality, but its values look like CT (Hounsfield units, air at about "
                    "-1000); the model was trained on MR (MR)."]


def test_an_mri_nifti_gets_no_modality_warning(tmp_path):
    summary = _explain(tmp_path, _t2_mri())
    assert not [w for w in summary["warnings"] if w["code"] == "modality"]
