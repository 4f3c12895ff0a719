"""Generated over the registry: every method runs on 1D, 2D and 3D inputs, per-sample targets,
seeded where random, and leaves no hook behind, also when the model fails mid-way."""

import itertools

import pytest
import torch

from medlens.errors import InputError

import medlens
from medlens.core.engine import Budget
from medlens.core.hooks import count_hooks
from medlens.attribution.registry import get_method
from medlens.core.targets import Target
from tests.conftest import make_input, make_model


# small settings so that the generated tests stay fast; defaults are exercised by the demo
FAST = {
    "integrated_gradients": {"n_steps": 4},
    "smoothgrad": {"n_samples": 3},
    "occlusion": {"window": 6, "stride": 6},
    "rise": {"n_masks": 8},
}
ALL = medlens.methods()


def test_every_issue_method_is_registered():
    expected = {"gradient", "grad_x_input", "integrated_gradients", "smoothgrad", "gradcam", "gradcam_pp",
                "occlusion", "rise", "fastcam"}
    assert expected <= set(ALL)
    for name in ALL:
        info = get_method(name)
        assert info.summary and info.reference
        assert ("seed" in info.options()) == info.random


@pytest.mark.parametrize("name", ALL)
def test_method_runs_on_every_rank_with_per_sample_targets(name, spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    before = count_hooks(model)
    attr = medlens.explain(model, x, target=[2, 0, 1], method=name, **FAST.get(name, {}))
    values = attr.values
    assert values.shape[0] == 3 and values.shape[2:] == x.shape[2:] and values.shape[1] in (1, x.shape[1])
    assert torch.isfinite(values).all() and values.dtype == x.dtype
    assert attr.target.tolist() == [2, 0, 1]
    assert count_hooks(model) == before and all(p.grad is None for p in model.parameters())
    # each sample's map is what it gets when explained alone with its own target
    alone = medlens.explain(model, x[1:2], target=0, method=name, **FAST.get(name, {})).values
    torch.testing.assert_close(values[1:2], alone, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", [n for n in ALL if get_method(n).random])
def test_random_methods_are_seeded(name):
    model, x = make_model(1), make_input(1)
    a = medlens.explain(model, x, method=name, seed=7, **FAST.get(name, {})).values
    b = medlens.explain(model, x, method=name, seed=7, **FAST.get(name, {})).values
    c = medlens.explain(model, x, method=name, seed=8, **FAST.get(name, {})).values
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


class Fused(torch.nn.Module):
    """Wraps a model and raises on its ``fuse``-th forward call (a model failing mid-way)."""

    def __init__(self, model, fuse):
        super().__init__()
        self.model, self.fuse, self._calls = model, fuse, itertools.count(1)  # chunks may run side by side

    def forward(self, x):
        if next(self._calls) == self.fuse:
            raise RuntimeError("model failed mid-way")
        return self.model(x)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("fuse", [1, 2, 3])
def test_failing_model_leaves_no_hook(name, fuse):
    inner, x = make_model(2), make_input(2)
    model = Fused(inner, fuse)
    before = count_hooks(model)
    target = Target(torch.tensor([0, 1, 2]))
    # A failure in an engine run's first chunk is reported as an input that does not fit the
    # model (that chunk doubles as the input check), keeping the model's message; later
    # failures pass through unchanged. Either way no hook may be left behind.
    with pytest.raises((RuntimeError, InputError), match="failed mid-way"):
        get_method(name).fn(model, x, target, budget=Budget(batch_size=1), **FAST.get(name, {}))
    assert count_hooks(model) == before == 0
    assert all(p.grad is None for p in model.parameters())
    assert not any("forward" in vars(m) for m in inner.modules())  # no short-circuited layer left
