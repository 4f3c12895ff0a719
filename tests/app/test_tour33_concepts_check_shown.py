"""``medlens concepts --show-identifiers`` on ultrasounds whose headers do not say whether they
carry burned-in text (tour 33): seen, the page drew them without the "check before sharing"
sentence that ``basis`` gives (and ``concepts`` gave without the flag). Now it says it, on the
page and on the command line as ``basis`` does."""

from __future__ import annotations

import torch

from medlens.cli import main
from medlens.data.recipe import Recipe
from medlens.models import CNN, save_model
from tests.data.burned_in_dicom import write_ultrasound


def test_concepts_asks_to_check_silent_ultrasounds_shown_by_request(tmp_path, capsys):
    torch.manual_seed(0)
    model = save_model(CNN(2, 1, 2, widths=(4,), input_shape=(1, 32, 32)), tmp_path / "m.pt",
                       {"input_shape": [1, 32, 32], "class_names": ["a", "b"],
                        "recipe": Recipe(normalize="minmax", channels=1, size=(32, 32))})
    scans = tmp_path / "scans"
    scans.mkdir()
    for k in range(4):
        write_ultrasound(scans / f"us{k}.dcm", None, seed=k)
    assert main(["concepts", "--model", str(model), "--data", str(scans), "--k", "2", "--epochs", "2", "--top", "2",
                 "--quiet", "--show-identifiers", "--out", str(tmp_path / "shown")]) == 0
    assert "Check before sharing (" in (tmp_path / "shown" / "report.html").read_text()
    assert "warning (identifying_pixels): Check before sharing (" in capsys.readouterr().out
