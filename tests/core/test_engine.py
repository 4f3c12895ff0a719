import pytest
import torch

from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.targets import Target
from tests.conftest import make_input, make_model


def test_forward_chunked_equals_unchunked(spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims, batch=7)
    whole = engine.forward(model, x, Budget(batch_size=7))
    chunked = engine.run(model, len(x), x, budget=Budget(batch_size=2))
    assert chunked.chunk_size == 2
    torch.testing.assert_close(chunked.outputs, whole, rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(whole, model(x), rtol=1e-12, atol=1e-12)


def test_gradient_chunked_equals_unchunked_and_autograd(spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims, batch=5)
    target = Target(torch.tensor([0, 1, 2, 1, 0]))
    out1, g1 = engine.gradient(model, x, target, Budget(batch_size=5))
    out2, g2 = engine.gradient(model, x, target, Budget(batch_size=2))
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)
    xr = x.clone().requires_grad_(True)
    score = model(xr).gather(1, target.classes[:, None]).sum()
    (ref,) = torch.autograd.grad(score, xr)
    torch.testing.assert_close(g1, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out1, out2)


def test_memory_budget_sets_chunk_size():
    model, x = make_model(2), make_input(2, batch=64)
    per_item = engine.bytes_per_item(model, x[:1], "gradient")
    budget_mb = 10 * per_item / 2**20
    result = engine.run(model, len(x), x, mode="gradient", target=Target(torch.zeros(64, dtype=torch.long)),
                        budget=Budget(memory_mb=budget_mb))
    assert result.chunk_size == 10
    # forward mode keeps fewer activations alive, so the same budget holds more inputs
    assert engine.bytes_per_item(model, x[:1], "forward") < per_item
    assert engine.run(model, len(x), x, budget=Budget(memory_mb=budget_mb)).chunk_size > 10


def test_default_budget_is_bounded():
    b = engine.budget_bytes(Budget(), torch.device("cpu"))
    assert 0 < b <= engine.DEFAULT_MEMORY_CAP_MB * 2**20


def test_lazy_build_and_consume_see_every_row_once():
    model, x = make_model(1), make_input(1, batch=1)
    seen = []

    def build(start, stop):
        return x.expand(stop - start, *x.shape[1:]) * torch.arange(start, stop, dtype=x.dtype).view(-1, 1, 1), list(range(start, stop))

    def consume(start, stop, out, grad, aux):
        assert aux == list(range(start, stop)) and out.shape[0] == stop - start and grad is None
        seen.extend(aux)

    result = engine.run(model, 11, build, consume=consume, budget=Budget(batch_size=4))
    assert seen == list(range(11)) and result.outputs is None


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_budget_rejects_bad_batch_size(bad):
    from medlens.errors import InputError

    with pytest.raises(InputError, match="batch_size"):
        Budget(batch_size=bad)
