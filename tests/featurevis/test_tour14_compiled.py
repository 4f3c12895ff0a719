"""Feature visualisation of a torch.compile'd model: its layers are named as in the module it
compiled (as medlens.explain names them), and the values are those of the eager module."""

from __future__ import annotations

import torch
from torch import nn

from medlens import featurevis as fv
from medlens.core.hooks import count_hooks


class Block(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Block(1, 4), Block(4, 6)])
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean((2, 3)))


def test_compiled_model_layers_by_their_own_names():
    torch.manual_seed(0)
    eager = Net().eval()
    compiled = torch.compile(eager)
    objective = fv.channel("blocks.1.act", 2)
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(fv.objective_values(compiled, objective, x), fv.objective_values(eager, objective, x))
    torch.testing.assert_close(fv.objective_values_over(compiled, [objective], x),
                               fv.objective_values_over(eager, [objective], x))
    a = fv.render(compiled, objective, (1, 1, 8, 8), steps=3)
    b = fv.render(eager, objective, (1, 1, 8, 8), steps=3)
    torch.testing.assert_close(a.images, b.images)
    assert count_hooks(eager) == 0
