"""Small models and the Zennit oracle for the LRP tests, and the models of
``benchmarks/lrp_speed.py`` (which imports them from here: one builder for both).

``zennit`` imports ``torchvision`` (which breaks torch here) only for its ResNet canonizers:
:func:`load_zennit` puts a stub ``torchvision.models.resnet`` in ``sys.modules`` while zennit
is imported and takes it away again, so no other test sees the stub.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import pytest
import torch
from torch import nn

from medlens.attribution.lrp import Sum

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVGPOOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
GAP = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}


def import_zennit():
    """The ``zennit`` package (skips the test when it is not installed)."""
    zennit = load_zennit()
    if zennit is None:
        pytest.skip("zennit is not installed (make installs it: pip install --no-deps zennit)")
    return zennit


def load_zennit():
    """The ``zennit`` package, or ``None`` when it is not installed."""
    if importlib.util.find_spec("zennit") is None:
        return None
    if "zennit" in sys.modules:
        return sys.modules["zennit"]
    # never the real torchvision, even where it is installed: it breaks torch here
    tv, models, resnet = (types.ModuleType(n) for n in ("torchvision", "torchvision.models", "torchvision.models.resnet"))
    resnet.Bottleneck = type("Bottleneck", (nn.Module,), {})
    resnet.BasicBlock = type("BasicBlock", (nn.Module,), {})
    tv.models, models.resnet = models, resnet
    stubbed = {"torchvision": tv, "torchvision.models": models, "torchvision.models.resnet": resnet}
    saved = {name: sys.modules.get(name) for name in stubbed}
    sys.modules.update(stubbed)
    try:
        return importlib.import_module("zennit")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _randomise_norms(model: nn.Module) -> nn.Module:
    """Non-trivial statistics; ``eps = 0`` because Zennit's merge leaves each batch norm computing
    ``x / sqrt(1 + eps)`` instead of the identity (a 1e-5 change of the model, not of LRP)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, tuple(BN.values())):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.eps = 0.0
    return model.eval()


def vgg(dims: int = 2, channels: int = 1, classes: int = 3, seed: int = 0, *,
        widths: tuple[int, int, int, int] = (6, 8, 8, 10), hidden: int = 16, double: bool = True) -> nn.Module:
    """conv-relu x2, max-pool, conv-relu, average pool, conv-relu, adaptive average pool, two
    dense layers (VGG-like); the benchmark's is the same with wider layers in float32."""
    torch.manual_seed(seed)
    a, b, c, d = widths
    model = nn.Sequential(
        CONV[dims](channels, a, 3, padding=1), nn.ReLU(),
        CONV[dims](a, b, 3, padding=1), nn.ReLU(), MAXPOOL[dims](2),
        CONV[dims](b, c, 3, padding=1), nn.ReLU(), AVGPOOL[dims](2),
        CONV[dims](c, d, 3, padding=1), nn.ReLU(), GAP[dims](2), nn.Flatten(),
        nn.Linear(d * 2 ** dims, hidden), nn.ReLU(), nn.Linear(hidden, classes),
    )
    return (model.double() if double else model).eval()


def cnn3d(seed: int = 0) -> nn.Module:
    """A 3D CNN with batch norms after its convolutions."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(), nn.MaxPool3d(2),
        nn.Conv3d(4, 6, 3, padding=1), nn.BatchNorm3d(6), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(),
        nn.Linear(6, 3),
    ).double()
    return _randomise_norms(model)


def zero_biases(model: nn.Module) -> nn.Module:
    """The model with every bias zero: then LRP-0, z+ and the proportional sums conserve relevance."""
    with torch.no_grad():
        for m in model.modules():
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
    return model


class Block(nn.Module):
    """A ResNet basic block; ``add`` is the residual sum (a module, or None for a plain ``+``)."""

    def __init__(self, dims: int, cin: int, cout: int, stride: int, add: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = CONV[dims](cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = BN[dims](cout)
        self.relu1 = nn.ReLU()
        self.conv2 = CONV[dims](cout, cout, 3, padding=1, bias=False)
        self.bn2 = BN[dims](cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(CONV[dims](cin, cout, 1, stride=stride, bias=False), BN[dims](cout))
        self.add = add
        self.relu2 = nn.ReLU()

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.add(out, identity) if self.add is not None else out + identity
        return self.relu2(out)


class ResNet(nn.Module):
    def __init__(self, dims: int = 2, plain_add: bool = False, classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = CONV[dims](1, 6, 3, padding=1, bias=False)
        self.bn = BN[dims](6)
        self.relu = nn.ReLU()
        self.layer1 = Block(dims, 6, 6, 1, None if plain_add else Sum())
        self.layer2 = Block(dims, 6, 8, 2, None if plain_add else Sum())
        self.pool = GAP[dims](1)
        self.fc = nn.Linear(8, classes)
        self.double()
        _randomise_norms(self)

    def forward(self, x):
        x = self.layer2(self.layer1(self.relu(self.bn(self.conv(x)))))
        return self.fc(self.pool(x).flatten(1))


class ZennitSum(nn.Module):
    """The residual sum as Zennit canonizes it: stack the branches, then its ``Sum`` layer."""

    def __init__(self, zennit) -> None:
        super().__init__()
        self.sum = zennit.layer.Sum(-1)

    def forward(self, a, b):
        return self.sum(torch.stack([a, b], dim=-1))


def for_zennit(model: nn.Module, zennit) -> nn.Module:
    """The same model with every ``Sum`` swapped for Zennit's stacked sum (in place)."""
    for module in model.modules():
        if isinstance(getattr(module, "add", None), Sum):
            module.add = ZennitSum(zennit)
    return model


def zennit_lrp(model: nn.Module, x: torch.Tensor, target: list[int], composite) -> torch.Tensor:
    """Zennit's relevance with the target logits as output relevance."""
    with composite.context(model) as modified:
        x = x.clone().requires_grad_(True)
        out = modified(x)
        grad_out = torch.zeros_like(out)
        rows = torch.arange(len(x))
        grad_out[rows, target] = out[rows, target].detach()
        (relevance,) = torch.autograd.grad(out, x, grad_outputs=grad_out)
    return relevance


def zennit_composite(zennit, name: str, canonize: bool, low=-4.0, high=4.0):
    canonizers = [zennit.canonizers.SequentialMergeBatchNorm()] if canonize else None
    c = zennit.composites
    made = {
        "epsilon-plus": lambda: c.EpsilonPlus(canonizers=canonizers),
        "epsilon-alpha2-beta1": lambda: c.EpsilonAlpha2Beta1(canonizers=canonizers),
        "epsilon-plus-flat": lambda: c.EpsilonPlusFlat(canonizers=canonizers),
        "epsilon-alpha2-beta1-flat": lambda: c.EpsilonAlpha2Beta1Flat(canonizers=canonizers),
        "epsilon-gamma-box": lambda: c.EpsilonGammaBox(low=low, high=high, canonizers=canonizers),
    }
    return made[name]()
