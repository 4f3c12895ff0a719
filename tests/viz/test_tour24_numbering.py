"""One numbering for people: a volume's figure titles count slices from 1 with their total
("axial slice 13 of 20"), as the report's viewer labels the same slice (its caption before the
script runs, and the script's own label); the note of ``--slice`` says the count beside the option's
0-based value. Before, the figures said "axial 12" for the slice the viewer called "axial slice 13 of 20"."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from medlens.core.numbering import slice_words
from medlens.report.viewer import MapLayer, viewer_html
from medlens.viz.figures import attribution_figure


def _volume():
    volume = torch.rand(1, 20, 64, 48, generator=torch.Generator().manual_seed(0))
    values = torch.zeros(1, 20, 64, 48)
    values[0, 12, 40, 30] = 5.0
    return volume, values


def test_figure_titles_and_viewer_captions_agree():
    volume, values = _volume()
    fig = attribution_figure(volume, values, "vol")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["axial slice 13 of 20", "coronal slice 41 of 64", "sagittal slice 31 of 48"]
    html = viewer_html(volume[0].numpy(), [MapLayer("gradient", values[0].numpy())])
    captions = re.findall(r'<output class="ml-slice-value" data-plane="\d">([^<]*)</output>', html)
    assert captions == titles


def test_the_viewer_script_counts_from_one_too():
    import medlens.report

    script = (Path(medlens.report.__file__).parent / "static" / "viewer.js").read_text()
    assert '" slice " + (self.slices[plane] + 1) + " of " + d.shape[plane]' in script
    assert slice_words(0, 5, "axial") == "axial slice 1 of 5"


def test_the_slice_note_gives_the_count_and_the_option(tmp_path):
    import nibabel as nib

    from medlens.data.formats.read import read
    from medlens.data.recipe import Recipe, prepare

    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 9, 6)).astype(np.float32), np.eye(4)), path)
    prepared = prepare(read(path), Recipe(size=(8, 9), slice=2))
    assert "slice 3 of 6 (--slice 2) along" in " ".join(prepared.notes)
