"""explain inside the caller's torch.inference_mode() or torch.no_grad(): the same maps."""

import pytest
import torch

import medlens
from tests.conftest import make_input, make_model


@pytest.mark.parametrize("method", ["gradient", "integrated_gradients", "gradcam", "occlusion"])
def test_explain_inside_inference_mode_or_no_grad_gives_the_same_map(method):
    """A user's `with torch.inference_mode():` around explain: gradient methods raised 'element 0
    of tensors does not require grad', and inference-tensor inputs cannot enter autograd."""
    model, x = make_model(2), make_input(2)
    want = medlens.explain(model, x, target=1, method=method).values
    for context in (torch.inference_mode, torch.no_grad):
        with context():
            got = medlens.explain(model, x.clone(), target=1, method=method).values
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-13)
