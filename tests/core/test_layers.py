"""The one rank -> layer table."""

import pytest
import torch.nn.functional as F
from torch import nn

from medlens.core import layers
from medlens.errors import InputError


def test_each_rank_names_its_layers():
    assert [layers.conv(r) for r in (1, 2, 3)] == [nn.Conv1d, nn.Conv2d, nn.Conv3d]
    assert layers.batch_norm(3) is nn.BatchNorm3d
    assert layers.max_pool(1) is nn.MaxPool1d and layers.avg_pool(2) is nn.AvgPool2d
    assert layers.adaptive_avg_pool(2) is nn.AdaptiveAvgPool2d
    assert layers.conv_fn(3) is F.conv3d and layers.adaptive_max_pool_fn(1) is F.adaptive_max_pool1d
    assert [layers.interpolation_mode(r) for r in (1, 2, 3)] == ["linear", "bilinear", "trilinear"]


@pytest.mark.parametrize("rank", [0, 4, True, "2"])
def test_other_ranks_are_refused_in_one_line(rank):
    with pytest.raises(InputError, match="spatial_dims must be 1, 2 or 3"):
        layers.conv(rank)
