"""grad_x_input against its closed form and Captum's InputXGradient."""

import pytest
import torch

import medlens
from tests.conftest import make_input, make_model



def test_grad_x_input_of_linear_model_is_w_times_x(spatial_dims):
    x = make_input(spatial_dims)
    flat = x[0].numel()
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(flat, 3)).double()
    w = linear[1].weight.detach()
    attr = medlens.explain(linear, x, target=[2, 0, 1], method="grad_x_input").values
    expected = w[[2, 0, 1]].view_as(x) * x
    torch.testing.assert_close(attr, expected, rtol=1e-12, atol=1e-12)


def test_grad_x_input_equals_captum(spatial_dims):
    captum_attr = pytest.importorskip("captum.attr")
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    ours = medlens.explain(model, x, target=[0, 2, 1], method="grad_x_input").values
    theirs = captum_attr.InputXGradient(model).attribute(x, target=[0, 2, 1])
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-10)
