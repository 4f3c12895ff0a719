"""Forward chunks evaluated side by side (engine.run's ``parallel``): the same outputs as one after
the other, consumed in chunk order, each worker on one torch thread, errors passed through, and
occlusion's incremental chain (whose prepared outputs are per thread) giving the same map."""

import threading

import pytest
import torch

import medlens
from medlens.attribution.coarse_to_fine import coarse_to_fine_occlusion
from medlens.core import chunk_workers, engine
from medlens.core.engine import Budget
from medlens.core.targets import to_target
from medlens.core.threads import torch_threads
from medlens.errors import InputError
from tests.conftest import make_input, make_model


def _run(model, x, parallel, record=None, fail_at=None, meet=None):
    consumed = []

    def build(start, stop):
        if record is not None:
            record.append((start, threading.get_ident(), torch.get_num_threads()))
        if meet is not None and start in meet[0]:
            meet[1].wait()  # these chunks must be in flight at the same time
        if fail_at is not None and start <= fail_at < stop:
            raise InputError(f"row {fail_at} cannot be built")
        return x[start:stop] * 2

    def consume(start, stop, outputs, grads, aux):
        consumed.append((start, stop, outputs.clone()))

    engine.run(model, len(x), build, consume=consume, budget=Budget(batch_size=4), parallel=parallel)
    return consumed


def test_side_by_side_chunks_give_the_sequential_outputs_in_chunk_order():
    model, x = make_model(2), make_input(2, batch=13)
    with torch_threads(2):
        record = []
        # the first chunk runs alone (the model's attributes watched); then chunks 2-3 and 4-5 run at
        # once, or the barrier times out
        side = _run(model, x, parallel=True, record=record, meet=({2, 4}, threading.Barrier(2, timeout=10)))
        assert torch.get_num_threads() == 2  # the caller's thread count is left as it was
    one = _run(model, x, parallel=False)
    # two workers share each chunk of four: chunks of two, consumed in order
    assert [(a, b) for a, b, _ in side] == [(a, min(a + 2, 13)) for a in range(0, 13, 2)]
    torch.testing.assert_close(torch.cat([o for _, _, o in side]), torch.cat([o for _, _, o in one]),
                               rtol=1e-12, atol=1e-12)
    workers = {(ident, threads) for start, ident, threads in record[1:]}  # record[0]: the engine's first row
    assert {threads for _, threads in workers} == {1}  # each worker runs torch on one thread
    assert threading.get_ident() not in {ident for ident, _ in workers}


def test_one_torch_thread_or_gradient_mode_stays_sequential():
    model, x = make_model(2), make_input(2, batch=9)
    with torch_threads(1):
        record = []
        _run(model, x, parallel=True, record=record)
    assert {ident for _, ident, _ in record} == {threading.get_ident()}
    assert chunk_workers.worker_count(8, torch.device("cuda")) == 1


def test_an_error_in_a_worker_reaches_the_caller_and_later_chunks_are_dropped():
    model, x = make_model(2), make_input(2, batch=40)
    record = []
    with torch_threads(2), pytest.raises(InputError, match="row 9 cannot be built"):
        _run(model, x, parallel=True, record=record, fail_at=9)
    assert max(start for start, _, _ in record) < 40 - 2  # not every chunk was built after the failure


def _conv_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(4, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()


def test_occlusion_grid_through_the_incremental_chain_side_by_side_equals_one_thread(monkeypatch):
    model, x = _conv_net(), torch.randn(2, 1, 24, 24, 24, generator=torch.Generator().manual_seed(1))
    kwargs = dict(method="occlusion", strategy="grid", window=4, stride=4, batch_size=8)
    with torch_threads(2):
        side = medlens.explain(model, x, 1, **kwargs)
        monkeypatch.setattr(chunk_workers, "worker_count", lambda n, device: 1)
        one = medlens.explain(model, x, 1, **kwargs)
    torch.testing.assert_close(side.values, one.values, rtol=1e-5, atol=1e-6)


def test_coarse_to_fine_through_the_incremental_chain_side_by_side_equals_one_thread(monkeypatch):
    model, x = _conv_net(), torch.randn(1, 1, 24, 24, 24, generator=torch.Generator().manual_seed(1))
    with torch_threads(2):
        side, info = coarse_to_fine_occlusion(model, x, to_target(1, None, 1), evaluations=80, min_window=3)
        assert info["incremental_windows"] == info["windows"] == 80
        monkeypatch.setattr(chunk_workers, "worker_count", lambda n, device: 1)
        one, _ = coarse_to_fine_occlusion(model, x, to_target(1, None, 1), evaluations=80, min_window=3)
    torch.testing.assert_close(side, one, rtol=1e-5, atol=1e-6)


class KeepsFeatures(torch.nn.Module):
    """Keeps its features in an attribute between two steps of forward: two calls at once would
    mix their chunks' values, so its chunks must run one at a time."""

    def __init__(self):
        super().__init__()
        self.backbone, self.head = make_model(2), torch.nn.Identity()

    def forward(self, x):
        self.features = self.backbone(x)
        return self.head(self.features)


def test_a_model_that_keeps_state_in_forward_is_evaluated_one_chunk_at_a_time():
    model, x = KeepsFeatures().eval(), make_input(2, batch=12)
    with torch_threads(2):
        record = []
        side = _run(model, x, parallel=True, record=record)
    assert {ident for _, ident, _ in record} == {threading.get_ident()}  # every chunk in the calling thread
    torch.testing.assert_close(torch.cat([o for _, _, o in side]), torch.cat([o for _, _, o in _run(model, x, False)]))
    plain = make_model(2)
    with torch_threads(2):
        record = []
        _run(plain, x, parallel=True, record=record)
    assert record[0][1] == threading.get_ident() != record[1][1]  # the first chunk alone (watched), then workers
