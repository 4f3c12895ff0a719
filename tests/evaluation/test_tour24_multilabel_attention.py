"""``medlens attention``'s tests read a multi-label attention model (one sigmoid per finding) by each
finding's own sigmoid: leave-one-out and permutation changes are the mean over findings of each
sigmoid's change, a decision changes when the set of findings at p >= 0.5 does. Before, they took a
softmax across the findings, and the command read a model file's ``meta["multilabel"]`` not at all."""

from __future__ import annotations

import json

import pytest
import torch

from medlens import MultiLabel
from medlens.attribution.sequence import PackedSequenceModel, pack
from medlens.cli import main
from medlens.evaluation.attention import leave_one_out, permutation_test
from medlens.models import save_model
from medlens.models.attention_rnn import AttentionRNN


def _net(classes: int = 3) -> AttentionRNN:
    torch.manual_seed(0)
    return AttentionRNN(classes, in_channels=2, hidden_size=6, attention_size=5, front_channels=4,
                        downsample_layers=1).double().eval()


def test_leave_one_out_is_each_findings_sigmoid_change():
    net, x = _net(), torch.randn(2, 2, 16, dtype=torch.float64)
    loo = leave_one_out(MultiLabel(net), x)
    packed, wrapped = pack(net, x), PackedSequenceModel(net)
    s = net.stride
    with torch.no_grad():
        base = torch.sigmoid(wrapped(packed))
        for step in range(packed.shape[-1] // s):
            moved = torch.cat([packed[..., :step * s], packed[..., (step + 1) * s:], torch.zeros_like(packed[..., :s])], -1)
            expected = (torch.sigmoid(wrapped(moved)) - base).abs().mean(1)
            torch.testing.assert_close(loo[:, step], expected, atol=1e-9, rtol=0)


def test_a_permutation_flips_when_the_predicted_findings_change():
    net, x = _net(), torch.randn(3, 2, 16, dtype=torch.float64)
    tvd, flipped = permutation_test(MultiLabel(net), x, n_permutations=4)
    assert tvd.shape == (3, 4) and bool((tvd <= 1).all())
    # the same model read as one softmax gives other numbers: the multi-label reading is in use
    plain, _ = permutation_test(net, x, n_permutations=4)
    assert not torch.allclose(tvd, plain)


def test_the_command_reads_a_multilabel_model_file(tmp_path, capsys):
    pytest.importorskip("wfdb")
    from tests.app.kinds_data import write_beats_record

    folder = tmp_path / "records"
    folder.mkdir()
    write_beats_record(folder, seconds=6.0)
    windows = {"fs": 250.0, "before": 0.25, "after": 0.45, "leads": ["MLII", "V5"], "normalize": "none",
               "kind": "beats", "annotation_labels": {"N": "normal", "V": "ventricular"}, "step": None}
    torch.manual_seed(0)
    net = AttentionRNN(2, in_channels=2, hidden_size=6, attention_size=5, front_channels=4).eval()
    model = save_model(net, tmp_path / "m.pt", {"class_names": ["normal", "ventricular"], "input_shape": [2, 175],
                                                "windows": windows, "multilabel": True})
    out = tmp_path / "a"
    assert main(["attention", "--model", str(model), "--data", str(folder), "--limit", "3", "--permutations", "2",
                 "--ig-steps", "0", "--examples", "0", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    found = json.loads((out / "attention.json").read_text())
    assert found["summary"]["multilabel"] is True
    assert any("the predicted findings" in s for s in found["sentences"])
