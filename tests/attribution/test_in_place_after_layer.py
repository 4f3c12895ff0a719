"""A layer whose output the next operation changes in place (conv -> ReLU(inplace=True), as in VGG
and many hand-written CNNs): maps and recorded activations are those of the layer itself."""

import pytest
import torch
from torch import nn

import medlens
from medlens.core.hooks import capture


def _pair():
    torch.manual_seed(0)
    conv, conv2, linear = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3), nn.Linear(4 * 20 * 20, 2)
    in_place = nn.Sequential(conv, nn.ReLU(inplace=True), conv2, nn.ReLU(inplace=True), nn.Flatten(), linear)
    plain = nn.Sequential(conv, nn.ReLU(), conv2, nn.ReLU(), nn.Flatten(), linear)
    return in_place.double().eval(), plain.double().eval()


@pytest.mark.parametrize("method", ["gradcam", "gradcam_pp"])
def test_a_cam_at_a_convolution_followed_by_an_in_place_relu_is_the_convolutions(method):
    """It was the CAM of the ReLU's output (activations and gradients after the ReLU): a
    different map, as large as the right one."""
    in_place, plain = _pair()
    x = torch.randn(2, 1, 24, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got = medlens.explain(in_place, x, target=1, method=method, layer="0").values
    want = medlens.explain(plain, x, target=1, method=method, layer="0").values
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-13)


def test_a_recorded_output_is_the_layers_own_not_the_in_place_result():
    in_place, _ = _pair()
    x = torch.randn(1, 1, 24, 24, dtype=torch.float64)
    with torch.no_grad(), capture(in_place, "0") as record:
        in_place(x)
    torch.testing.assert_close(record.activation, in_place[0](x))
    assert bool((record.activation < 0).any())  # the ReLU did not reach it
