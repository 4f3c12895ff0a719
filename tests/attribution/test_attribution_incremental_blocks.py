"""Incremental occlusion through padded max pooling and residual blocks (as single local units):
exactly the full evaluation, at the borders too, on hand-made blocks and on MONAI's ResNet-18 3D."""

import pytest
import torch
from torch import nn

import medlens
from medlens.attribution import incremental
from medlens.attribution.incremental import plan
from medlens.core.engine import Budget


@pytest.fixture(autouse=True)
def always_incremental(monkeypatch):
    monkeypatch.setattr(incremental, "BOOKKEEPING_S", 0.0)


CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
GAP = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}


class Block(nn.Module):
    """A basic residual block with its own activation modules and an in-place addition (the
    skip path is invisible to a trace of leaf calls)."""

    def __init__(self, dims, cin, cout, stride):
        super().__init__()
        conv, norm = CONV[dims], NORM[dims]
        self.conv1, self.bn1, self.act1 = conv(cin, cout, 3, stride, 1, bias=False), norm(cout), nn.ReLU()
        self.conv2, self.bn2, self.act2 = conv(cout, cout, 3, 1, 1, bias=False), norm(cout), nn.ReLU()
        self.downsample = (
            nn.Sequential(conv(cin, cout, 1, stride, bias=False), norm(cout)) if stride != 1 or cin != cout else None
        )

    def forward(self, x):
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        out += x if self.downsample is None else self.downsample(x)
        return self.act2(out)


class Net(nn.Module):
    def __init__(self, dims):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(CONV[dims](1, 4, 3, padding=1), NORM[dims](4), nn.ReLU(),
                                  POOL[dims](3, stride=2, padding=1))
        self.blocks = nn.Sequential(Block(dims, 4, 4, 1), Block(dims, 4, 6, 2))
        self.head = nn.Sequential(GAP[dims](1), nn.Flatten(), nn.Linear(6, 3))
        for m in self.modules():  # non-trivial running statistics
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def _compare(model, x, window, stride, target):
    fast = medlens.explain(model, x, target=target, method="occlusion", window=window, stride=stride).values
    full = medlens.explain(model, x, target=target, method="occlusion", window=window, stride=stride,
                           incremental=False).values
    torch.testing.assert_close(fast, full, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dims, size, window", [(1, 40, 5), (2, 24, 3), (3, 24, 3)])
def test_padded_max_pool_and_blocks_with_and_without_downsample_are_exact(dims, size, window):
    model = Net(dims).double().eval()
    x = torch.randn(2, 1, *(size,) * dims, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    chain = plan(model, x, (window,) * dims, Budget())
    kinds = [type(level.module) for level in chain.levels]
    assert POOL[dims] in kinds and Block in kinds  # through the padded pooling, into the blocks
    assert all(level.native for level in chain.levels if isinstance(level.module, Block))
    # windows at every border (stride = window, from 0 to the end) and overlapping ones
    _compare(model, x, window + (dims == 3), window + (dims == 3), [0, 2])
    if dims < 3:
        _compare(model, x, window + 1, max(1, window // 2), [1, 0])


def test_block_geometry_composes_both_paths():
    from medlens.attribution.local_units import block_geometry, record_calls

    model = Net(2).double().eval()
    log, calls = [], []
    with record_calls(model, log, calls), torch.no_grad():
        model(torch.randn(1, 1, 16, 16, dtype=torch.float64))
    geometry = {type(c[0].downsample).__name__: block_geometry(c, log, 2) for c in calls if isinstance(c[0], Block)}
    # two 3-convs (pad 1): kernel 5, stride 1, padding 2; with a stride-2 first conv: 3 + 2*2 = 7, stride 2, pad 1 + 2
    assert geometry["NoneType"][:3] == ((5, 5), (1, 1), (2, 2))
    assert geometry["Sequential"][:3] == ((7, 7), (2, 2), (3, 3))


def test_monai_resnet_3d_is_exact():
    """MONAI's ResNet (ResNet-18's stem: a 7^3 stride-1 convolution, a padded max pooling;
    basic blocks, with convolution downsamples), narrow so the test is quick."""
    monai = pytest.importorskip("monai.networks.nets")
    torch.manual_seed(0)
    model = monai.ResNet("basic", [2, 2, 1, 1], [4, 6, 8, 8], spatial_dims=3, n_input_channels=1, num_classes=2)
    model = model.double().eval()
    x = torch.randn(1, 1, 32, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    chain = plan(model, x, (8, 8, 8), Budget())
    names = [type(level.module).__name__ for level in chain.levels]
    assert "MaxPool3d" in names and "ResNetBlock" in names
    _compare(model, x, 8, 8, 1)
