"""``medlens audit``/``explain`` on a PACS export: what it held besides its cases is said, as predict says it.

Seen on a PACS export (a radiograph beside a dose report and a scout): predict and evaluate noted
"left out 2 file(s) that are no case: ...", audit and explain said nothing of them, so a user
could not tell why 3 files gave 1 case.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pydicom")

from medlens.cli import main  # noqa: E402
from medlens.data.recipe import Recipe  # noqa: E402
from medlens.models import CNN, save_model  # noqa: E402
from tests.data.test_tour30_pacs_export import _CR, _CT, _write  # noqa: E402


@pytest.mark.parametrize("command", ["audit", "explain"])
def test_a_command_on_an_export_notes_the_files_it_left_out(tmp_path, capsys, command):
    import torch

    torch.manual_seed(0)
    cnn = CNN(2, 1, 2, widths=(4, 6), input_shape=(1, 16, 16)).eval()
    model = save_model(cnn, tmp_path / "m.pt", {"class_names": ["no", "yes"], "input_shape": [1, 16, 16],
                                                "recipe": Recipe(normalize="minmax", channels=1, size=(16, 16))})
    export = tmp_path / "export"
    _write(export / "PT0" / "ST0" / "SE0" / "IM0", _CR, "CR", "1.2.3.5", "1.2.3.5.0", image_type=("ORIGINAL", "PRIMARY"))
    _write(export / "PT0" / "ST0" / "SE1" / "IM0", _CT, "CT", "1.2.3.3", "1.2.3.3.0", z=0.0,
           image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    _write(export / "PT0" / "ST0" / "SE2" / "IM0", "1.2.840.10008.5.1.4.1.1.88.67", "SR", "1.2.3.6", "1.2.3.6.0",
           pixels=False)
    common = ["--model", str(model), "--out", str(tmp_path / "out"), "--quiet"]
    argv = {"audit": ["audit", *common, "--data", str(export), "--methods", "gradient", "--cluster-method", "gradient",
                      "--metric-option", "deletion_auc.steps=2", "--metric-option", "insertion_auc.steps=2"],
            "explain": ["explain", *common, "--input", str(export), "--method", "gradient"]}[command]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "left out 2 file(s) that are no case: dose report (SR): 1; scout/localizer: 1" in printed.out + printed.err
