"""``--slice K`` where the input already has the model's dimensionality: said, not silently ignored.

Seen: ``medlens explain --slice 3`` on a PNG for a 2-D model, or on a NIfTI volume for a 3-D model,
ran as if the option had not been given, and nothing said so. A warning (one line) and the case's
input note now say it was not used; a folder mixing pictures and volumes still explains both.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from medlens.cli import main
from medlens.data.recipe import Recipe
from medlens.models import CNN, save_model


def _model(path, spatial_dims, shape):
    torch.manual_seed(0)
    recipe = Recipe(normalize="minmax", channels=1, size=shape[1:])
    return str(save_model(CNN(spatial_dims, 1, 2, widths=(4, 8), input_shape=shape), path,
                          {"input_shape": list(shape), "class_names": ["a", "b"], "recipe": recipe}))


@pytest.mark.parametrize("dims, shape, kind", [(2, (1, 16, 16), "2-D image"), (3, (1, 8, 16, 16), "3-D volume")])
def test_an_unused_slice_is_a_one_line_warning_and_an_input_note(tmp_path, capsys, dims, shape, kind):
    rng = np.random.default_rng(0)
    if dims == 2:
        data = tmp_path / "cxr.png"
        Image.fromarray((rng.random((24, 20)) * 255).astype(np.uint8)).save(data)
    else:
        data = tmp_path / "head.nii.gz"
        nib.save(nib.Nifti1Image(rng.normal(size=(10, 20, 20)).astype(np.float32), np.eye(4)), data)
    model = _model(tmp_path / "m.pt", dims, shape)
    out = tmp_path / "out"
    assert main(["explain", "--model", model, "--input", str(data), "--method", "gradient", "--slice", "3",
                 "--out", str(out), "--quiet"]) == 0
    said = (f"--slice 3 not used for a {kind}: the model takes {kind}s and sees it whole (--slice picks the slice "
            "of a volume given to a 2-D model)")
    assert capsys.readouterr().err == f"medlens: warning: {said}\n"
    assert said in json.loads((out / "summary.json").read_text())["input_note"]
