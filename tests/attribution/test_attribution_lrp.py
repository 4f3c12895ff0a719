"""LRP against Zennit (the reference implementation), conservation, hooks and canonizers."""

import copy

import pytest
import torch
from torch import nn

import medlens
from medlens.attribution.lrp import Epsilon, NameMap, ZPlus, attached, composite_named
from medlens.attribution.lrp.canonizers import residual_sums
from medlens.core.hooks import count_hooks
from medlens.core.targets import Target
from tests.attribution.lrp_models import (
    ResNet,
    cnn3d,
    for_zennit,
    import_zennit,
    vgg,
    zennit_composite,
    zennit_lrp,
    zero_biases,
)

COMPOSITES = ["epsilon-plus", "epsilon-alpha2-beta1", "epsilon-plus-flat", "epsilon-alpha2-beta1-flat",
              "epsilon-gamma-box"]
MODELS = {  # name: (model factory, input shape, whether Zennit needs its batch-norm canonizer)
    "vgg2d": (lambda: vgg(2), (3, 1, 16, 16), False),
    "vgg1d": (lambda: vgg(1), (3, 1, 32), False),
    "resnet-bn": (lambda: ResNet(2), (3, 1, 16, 16), True),
    "resnet-bn-plain-add": (lambda: ResNet(2, plain_add=True), (3, 1, 16, 16), True),
    "cnn3d-bn": (cnn3d, (3, 1, 8, 8, 8), True),
}
TARGET = [0, 1, 2]


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


def _input(shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("composite", COMPOSITES)
@pytest.mark.parametrize("model_name", list(MODELS))
def test_lrp_equals_zennit(model_name, composite):
    zennit = import_zennit()
    make, shape, canonize = MODELS[model_name]
    x = _input(shape)
    bounds = {"low": -4.0, "high": 4.0} if composite == "epsilon-gamma-box" else {}
    model = make()
    before = count_hooks(model)
    ours = medlens.explain(model, x, target=TARGET, method="lrp", composite=composite, **bounds).values
    assert count_hooks(model) == before
    # Zennit gets the same weights, its residual sums (a Sum layer over stacked branches) and
    # its SequentialMergeBatchNorm canonizer; "plain-add" is explained by medlens from a + b
    reference = ResNet(2) if model_name == "resnet-bn-plain-add" else copy.deepcopy(model)
    theirs = zennit_lrp(for_zennit(reference, zennit), x, TARGET, zennit_composite(zennit, composite, canonize))
    assert relative_error(ours, theirs) <= 1e-4


@pytest.mark.parametrize("dims,shape", [(1, (3, 1, 32)), (2, (3, 1, 16, 16)), (3, (3, 1, 8, 8, 8))])
def test_epsilon_rule_conserves_the_logit(dims, shape):
    model, x = zero_biases(vgg(dims)), _input(shape)
    attr = medlens.explain(model, x, target=TARGET, method="lrp", composite="epsilon", epsilon=1e-12).values
    logits = model(x)[torch.arange(3), TARGET]
    error = ((attr.flatten(1).sum(1) - logits).abs() / logits.abs()).max().item()
    assert error <= 1e-4


def test_plain_residual_additions_are_split_like_the_sum_module():
    x = _input((2, 1, 16, 16))
    with_module = medlens.explain(ResNet(2), x, target=[1, 2], method="lrp").values
    plain = ResNet(2, plain_add=True)
    torch.testing.assert_close(medlens.explain(plain, x, target=[1, 2], method="lrp").values, with_module,
                               rtol=1e-10, atol=1e-14)
    # without the canonizer, a + b hands both branches the whole relevance: different maps
    uncanonized = _uncanonized(plain, x, Target(torch.tensor([1, 2])))
    assert not torch.allclose(uncanonized, with_module, rtol=1e-3, atol=0)


def _uncanonized(model, x, tgt):
    from medlens.attribution.lrp import core
    from medlens.core import engine

    with core.attached(model, composite_named("epsilon-plus"), canonize=False):
        out, grads = engine.gradient(model, x, tgt)
    return grads * tgt(out).view(-1, 1, 1, 1)


class Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def test_no_hook_left_after_an_error_and_inplace_restored():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True), Boom())
    with pytest.raises(RuntimeError, match="boom"):
        with attached(model, composite_named("epsilon-plus")):
            model(torch.randn(1, 1, 8, 8))
    assert count_hooks(model) == 0 and model[1].inplace is True
    assert torch._C._len_torch_function_stack() == 0


def test_residual_mode_only_rewrites_during_the_forward():
    a, b = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    model = nn.Identity()
    with residual_sums(model) as mode:
        (a + b).sum()  # outside the model's forward: untouched
        assert mode.count == 0
        model(a)
    assert mode.count == 0


class _AddsWhenPositive(nn.Module):
    """Adds a branch only when the input's sum is positive: its forward depends on the values."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.head = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(1, 3, 3, padding=1), nn.Linear(3 * 64, 2)

    def forward(self, x):
        h = self.a(x).relu()
        if float(x.sum()) > 0:
            h = h + self.b(x).relu()
        return self.head(h.flatten(1))


def test_a_forward_without_additions_skips_the_function_mode_and_is_checked_each_time():
    from medlens.attribution.lrp import canonizers

    model = _AddsWhenPositive()
    negative = -torch.rand(1, 1, 8, 8) - 0.1
    positive = torch.rand(1, 1, 8, 8) + 0.1
    first = medlens.explain(model, negative, target=1, method="lrp").values
    assert ((1, 8, 8), torch.float32, torch.device("cpu")) in canonizers._WITHOUT_ADDITIONS[model]
    again = medlens.explain(model, negative, target=1, method="lrp").values  # without the mode
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    # the same shape now adds two branches: the graph shows it, and the pass is made again with the
    # proportional split - the same map as a copy of the model explains from scratch
    split = medlens.explain(model, positive, target=1, method="lrp").values
    fresh = medlens.explain(copy.deepcopy(model), positive, target=1, method="lrp").values
    torch.testing.assert_close(split, fresh, rtol=0, atol=0)
    assert ((1, 8, 8), torch.float32, torch.device("cpu")) not in canonizers._WITHOUT_ADDITIONS[model]
    assert torch._C._len_torch_function_stack() == 0 and count_hooks(model) == 0


def test_branch_additions_are_read_from_the_graph():
    from medlens.attribution.lrp.canonizers import branch_additions

    x = torch.randn(4, requires_grad=True)
    w = nn.Parameter(torch.randn(4))
    assert branch_additions(x.relu() + x.sin())
    assert not branch_additions(torch.cat([x.relu(), x.sin()]))
    assert not branch_additions(x.relu() + w)  # a parameter added: not a branch
    assert not branch_additions(x.relu() + 1.0)
    assert branch_additions((x * 2, (x.exp() + x.cos()).sum()))


def test_name_map_composite_by_name_and_type():
    model, x = vgg(2), _input((2, 1, 16, 16))
    by_type = medlens.explain(model, x, target=[0, 1], method="lrp",
                              composite={nn.Conv2d: ZPlus(), nn.Linear: Epsilon()}).values
    named = medlens.explain(model, x, target=[0, 1], method="lrp", composite="epsilon-plus").values
    torch.testing.assert_close(by_type, named, rtol=1e-12, atol=1e-15)
    first = NameMap({"0": "flat"}, fallback="epsilon-plus")
    flat = medlens.explain(model, x, target=[0, 1], method="lrp", composite=first).values
    torch.testing.assert_close(flat, medlens.explain(model, x, target=[0, 1], method="lrp",
                                                     composite="epsilon-plus-flat").values, rtol=1e-12, atol=1e-15)


def test_lrp_runs_through_the_engine_in_chunks():
    model, x = ResNet(2), _input((5, 1, 16, 16))
    whole = medlens.explain(model, x, target=1, method="lrp").values
    chunked = medlens.explain(model, x, target=1, method="lrp", batch_size=2).values
    torch.testing.assert_close(whole, chunked, rtol=1e-10, atol=1e-15)


def test_torchscript_is_refused():
    from medlens.errors import InputError

    model = torch.jit.script(vgg(2))
    with pytest.raises(InputError, match="hooks"):
        medlens.explain(model, _input((1, 1, 16, 16)), target=0, method="lrp")


def cancelling_chain(depth: int = 24) -> nn.Module:
    """Every layer's output (1, 1) nearly cancels its contributions (100, -99): epsilon-LRP
    multiplies the antisymmetric part of the relevance by 199 / (1 + eps) per layer, as it
    multiplied UNETR's by 15-150 per layer at epsilon 1e-6, until float32 overflows."""
    layers = []
    for _ in range(depth):
        layer = nn.Conv1d(2, 2, 1, bias=False)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor([[100.0, -99.0], [-99.0, 100.0]]).view(2, 2, 1))
        layers.append(layer)
    head = nn.Conv1d(2, 1, 1, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([1.0, 2.0]).view(1, 2, 1))
    return nn.Sequential(*layers, head, nn.Flatten()).eval()


def test_overflowing_relevance_is_one_clear_error_not_a_nan_map():
    from medlens.errors import InputError

    model, x = cancelling_chain(), torch.ones(1, 2, 1)
    with pytest.raises(InputError, match="overflowed float32.*larger epsilon"):
        medlens.explain(model, x, target=0, method="lrp", composite="epsilon")
    assert count_hooks(model) == 0
    # two layers: finite (+-19800), and LRP-0 conserves the score
    short, score = cancelling_chain(2), 3.0
    values = medlens.explain(short, x, target=0, method="lrp", composite="epsilon", epsilon=1e-9).values
    assert torch.isfinite(values).all()
    torch.testing.assert_close(values.sum(), torch.tensor(score), rtol=1e-4, atol=0)
    # z+ on the same layers never divides by a cancelling sum
    plus = medlens.explain(model, x, target=0, method="lrp", composite={nn.Conv1d: "zplus"}).values
    assert torch.isfinite(plus).all()


def test_parameters_kept_across_calls_follow_every_change():
    """Folded and derived weights are kept from one explanation to the next (per layer); a change
    of a weight, a batch norm's statistics, the parameters' dtype or a replaced parameter makes
    them again: each map equals that of a fresh copy of the model."""
    x = _input((2, 1, 16, 16))

    def check(model, composite):
        ours = medlens.explain(model, x.to(next(model.parameters()).dtype), target=[0, 1], method="lrp",
                               composite=composite).values
        fresh = medlens.explain(copy.deepcopy(model), x.to(ours.dtype), target=[0, 1], method="lrp",
                                composite=composite).values
        torch.testing.assert_close(ours, fresh, rtol=0, atol=0)
        return ours

    for composite in ("epsilon-plus", "epsilon-alpha2-beta1", "epsilon-plus-flat"):
        model = ResNet(2)
        first = check(model, composite)
        with torch.no_grad():
            model.layer1.conv1.weight.mul_(-1.5)  # in place: a new version
        assert not torch.allclose(check(model, composite), first)
        with torch.no_grad():
            model.layer1.bn1.running_var.mul_(3.0)  # the folded batch norm's statistics
        check(model, composite)
        model.layer2.conv2.weight = nn.Parameter(model.layer2.conv2.weight.detach() * 0.5)  # replaced
        check(model, composite)
        model.float()  # the same parameters, new storage and dtype
        check(model, composite)
    assert count_hooks(model) == 0


@pytest.mark.parametrize("composite", ["epsilon-plus", "epsilon-alpha2-beta1"])
def test_inplace_leaky_relu_passes_relevance_like_an_out_of_place_one(composite):
    """An in-place activation's own backward stays in the graph whatever its hook returns, so
    in-place LeakyReLUs (MONAI's UNETR blocks) are made out-of-place for the pass: the map equals
    that of the same model with ``inplace=False`` (the pass rule), and the flags are restored."""
    torch.manual_seed(0)

    def make(inplace: bool) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.01, inplace=inplace),
                             nn.Conv2d(4, 4, 3, padding=1), nn.LeakyReLU(0.01, inplace=inplace),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).double().eval()

    x = _input((2, 1, 8, 8))
    inplace, plain = make(True), make(False)
    ours = medlens.explain(inplace, x, target=[0, 1], method="lrp", composite=composite).values
    reference = medlens.explain(plain, x, target=[0, 1], method="lrp", composite=composite).values
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=0)
    assert inplace[1].inplace and inplace[3].inplace and count_hooks(inplace) == 0


def test_kept_parameters_do_not_keep_the_model_alive():
    import gc
    import weakref

    from medlens.attribution.lrp.core import _KEPT

    model = ResNet(2)
    x = _input((1, 1, 16, 16))
    for composite in ("epsilon-plus", "epsilon-alpha2-beta1", "epsilon-gamma-box", "epsilon-plus-flat"):
        medlens.explain(model, x, target=0, method="lrp", composite=composite)
    layer = weakref.ref(model.layer1.conv1)
    assert layer() in _KEPT
    del model
    gc.collect()
    assert layer() is None


def test_a_forward_with_an_addition_the_mode_leaves_alone_keeps_the_mode():
    from medlens.attribution.lrp import canonizers

    class BroadcastAdd(nn.Module):  # adds a pooled branch: shapes differ, so the mode does not split it
        def __init__(self):
            super().__init__()
            self.conv, self.head = nn.Conv2d(1, 2, 3, padding=1), nn.Linear(2 * 64, 2)

        def forward(self, x):
            h = self.conv(x).relu()
            return self.head((h + h.mean(dim=(2, 3), keepdim=True)).flatten(1))

    model = BroadcastAdd()
    medlens.explain(model, torch.rand(1, 1, 8, 8), target=0, method="lrp")
    assert model not in canonizers._WITHOUT_ADDITIONS or not canonizers._WITHOUT_ADDITIONS[model]
