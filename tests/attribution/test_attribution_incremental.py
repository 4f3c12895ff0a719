"""Incremental occlusion: exactly the full evaluation, on every rank and on models that break
the chain in the ways the checks are meant to catch."""

import pytest
import torch
from torch import nn

import medlens
from medlens.attribution import incremental
from medlens.attribution.incremental import plan, short_circuit
from medlens.core import engine
from medlens.core.engine import Budget
from tests.conftest import make_input, make_model



@pytest.fixture(autouse=True)
def always_incremental(monkeypatch):
    """The test models are tiny: make the chain worth it whatever their speed."""
    monkeypatch.setattr(incremental, "BOOKKEEPING_S", 0.0)


def both(model, x, **options):
    fast = medlens.explain(model, x, target=[0, 2, 1], method="occlusion", **options).values
    full = medlens.explain(model, x, target=[0, 2, 1], method="occlusion", incremental=False, **options).values
    return fast, full


@pytest.mark.parametrize("window, stride", [(3, 2), (5, 5), (4, 3)])
def test_incremental_equals_full_evaluation(spatial_dims, window, stride):
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    chain = plan(model, x, (window,) * spatial_dims, Budget())
    assert chain is not None and chain.lean and isinstance(chain.levels[0].module, nn.modules.conv._ConvNd)
    for per_channel in (False, True):
        fast, full = both(model, x, window=window, stride=stride, per_channel=per_channel, baseline="mean")
        torch.testing.assert_close(fast, full, rtol=1e-10, atol=1e-13)


class Skip(nn.Module):
    """conv -> relu -> conv, plus a skip connection that reads the first conv's output."""

    def __init__(self, dims):
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
        self.conv1, self.act, self.conv2 = conv(1, 3, 3, padding=1), nn.ReLU(), conv(3, 3, 3, padding=2, dilation=2)
        self.head = nn.Linear(3, 3)

    def forward(self, x):
        h = self.conv1(x)
        y = self.conv2(self.act(h)) + h  # h is read twice
        return self.head(y.flatten(2).mean(2))


class Preprocessed(nn.Module):
    """A functional rescaling before the first layer: the chain does not start at the input."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(2 * x - 1)


def test_intermediate_read_elsewhere_switches_to_full_outputs(spatial_dims):
    torch.manual_seed(0)
    model = Skip(spatial_dims).double().eval()
    x = make_input(spatial_dims)[:, :1]
    chain = plan(model, x, (3,) * spatial_dims, Budget())
    assert chain is not None and not chain.lean
    fast, full = both(model, x, window=3, stride=2)
    torch.testing.assert_close(fast, full, rtol=1e-10, atol=1e-13)


def test_a_step_before_the_first_layer_is_measured_not_assumed():
    """The first layer does not receive the model input: each window's change is measured on
    what it does receive, so the chain stays exact, also after a step that changes everything."""
    model, x = Preprocessed(make_model(2)), make_input(2)
    chain = plan(model, x, (3, 3), Budget())
    assert chain is not None and chain.first_base is not None
    fast, full = both(model, x, window=3, stride=3)
    torch.testing.assert_close(fast, full, rtol=1e-10, atol=1e-13)
    centred = Centred(make_model(2))  # subtracts the mean: every element changes with any window
    fast, full = both(centred, x, window=3, stride=3)
    torch.testing.assert_close(fast, full, rtol=1e-10, atol=1e-13)


class Centred(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):  # each input's own mean (not the chunk's: rows must not depend on their chunk)
        return self.model(x - x.mean(dim=tuple(range(1, x.ndim)), keepdim=True))


def test_training_mode_batch_norm_ends_the_chain():
    model, x = make_model(2), make_input(2)
    model.features.block1.norm.train()  # batch statistics: not a per-element map
    chain = plan(model, x, (3, 3), Budget())
    assert chain is not None and [type(level.module) for level in chain.levels] == [nn.Conv2d]
    fast, full = both(model, x, window=3, stride=3)
    torch.testing.assert_close(fast, full, rtol=1e-10, atol=1e-13)


def test_short_circuit_restores_forward_even_on_error():
    model, x = make_model(2), make_input(2)
    chain = plan(model, x, (3, 3), Budget())
    with pytest.raises(RuntimeError, match="boom"):
        with short_circuit([level.module for level in chain.levels], lambda: None):
            assert all("forward" in vars(level.module) for level in chain.levels)
            raise RuntimeError("boom")
    assert not any("forward" in vars(m) for m in model.modules())
    # unrelated calls compute normally while the short circuit is active
    with short_circuit([level.module for level in chain.levels], lambda: None), torch.no_grad():
        torch.testing.assert_close(model(x), make_model(2)(x))


def test_cheap_inputs_are_evaluated_in_full(monkeypatch):
    monkeypatch.setattr(incremental, "BOOKKEEPING_S", 10.0)  # bookkeeping dearer than any forward pass
    model, x = make_model(2), make_input(2)
    assert plan(model, x, (3, 3), Budget()) is None


def test_windows_through_the_chain_go_in_chunks_of_eight_or_more_within_the_memory_budget(monkeypatch):
    model, x = make_model(3), make_input(3)
    chain = plan(model, x, (3,) * 3, Budget())
    assert chain is not None
    device = torch.device("cpu")
    assert incremental.window_chunk(chain, x, 5, Budget(), device).batch_size == 5
    assert incremental.window_chunk(chain, x, 20_000, Budget(), device).batch_size > 8  # small: the 16 MB set
    monkeypatch.setattr(engine, "CPU_CHUNK_TARGET_MB", 1e-3)  # as if each window were a large volume
    assert incremental.window_chunk(chain, x, 20, Budget(), device).batch_size == incremental.WINDOW_CHUNK == 8
    assert incremental.window_chunk(chain, x, 20, Budget(batch_size=3), device).batch_size == 3  # the user's
    assert incremental.window_chunk(chain, x, 20, Budget(memory_mb=1e-3), device).batch_size == 1
    sizes = []
    hook = model.register_forward_pre_hook(lambda module, inputs: sizes.append(len(inputs[0])))
    try:
        medlens.explain(model, x[:1], target=0, method="occlusion", window=3, stride=3)
    finally:
        hook.remove()
    assert max(sizes) == 8 and len(sizes) > 2  # (a probe pass plans the chain first)
