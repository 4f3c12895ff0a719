"""LRP refuses, in one line naming the layer, a model with a recurrent layer: no rule reaches
inside an LSTM or GRU, and a map made of its gradient would not conserve the logit."""

import pytest
import torch
from torch import nn

import medlens
from medlens.errors import InputError
from medlens.core.hooks import count_hooks


class Recurrent(nn.Module):
    def __init__(self, cell: type) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.front = nn.Conv1d(1, 4, 5, padding=2)
        self.rnn = cell(4, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        states, _ = self.rnn(self.front(x).transpose(1, 2))
        return self.head(states[:, -1])


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU, nn.RNN])
@pytest.mark.parametrize("method", ["lrp", "crp"])
def test_a_recurrent_layer_is_named_in_one_line(cell, method):
    model = Recurrent(cell).eval()
    with pytest.raises(InputError, match=rf"recurrent layer 'rnn' \({cell.__name__}\)") as err:
        medlens.explain(model, torch.randn(2, 1, 30), target=0, method=method)
    assert "\n" not in str(err.value)
    assert count_hooks(model) == 0
    assert medlens.explain(model, torch.randn(2, 1, 30), target=0, method="gradient").values.shape == (2, 1, 30)
