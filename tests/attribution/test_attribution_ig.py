"""Integrated gradients: closed forms, completeness, Captum as oracle."""

import pytest
import torch

import medlens
from medlens.attribution.entry import find_entry
from medlens.attribution.integrated_gradients import RULES, path_nodes
from medlens.errors import InputError, UnknownNameError
from tests.conftest import make_input, make_model



def linear_model(x, n_classes=3):
    torch.manual_seed(3)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x[0].numel(), n_classes)).double().eval()


@pytest.mark.parametrize("rule", RULES)
def test_ig_of_linear_model_is_w_times_difference(spatial_dims, rule):
    x = make_input(spatial_dims)
    model = linear_model(x)
    baseline = torch.full_like(x[:1], 0.3)
    attr = medlens.explain(model, x, target=[1, 0, 2], method="integrated_gradients",
                           baseline=baseline, n_steps=7, rule=rule)
    w = model[1].weight.detach()[[1, 0, 2]].view_as(x)
    torch.testing.assert_close(attr.values, w * (x - baseline), rtol=1e-12, atol=1e-12)
    # completeness is exact on a linear model, whatever the rule
    assert attr.extras["convergence_delta"].abs().max() < 1e-10


@pytest.mark.parametrize("dims, rule", [(1, "gausslegendre"), (2, "gausslegendre"), (3, "gausslegendre"),
                                        (2, "riemann_middle"), (2, "riemann_left"), (1, "riemann_right")])
def test_ig_equals_captum(dims, rule):
    captum_attr = pytest.importorskip("captum.attr")
    model, x = make_model(dims), make_input(dims)
    ours = medlens.explain(model, x, target=[0, 2, 1], method="integrated_gradients",
                           n_steps=16, rule=rule, batch_size=5)
    theirs, delta = captum_attr.IntegratedGradients(model).attribute(
        x, target=[0, 2, 1], n_steps=16, method=rule, return_convergence_delta=True)
    torch.testing.assert_close(ours.values, theirs, rtol=1e-4, atol=1e-10)
    torch.testing.assert_close(ours.extras["convergence_delta"], delta, rtol=1e-4, atol=1e-10)


def test_trapezoid_is_captums_rescaled_to_a_proper_rule():
    # Captum's trapezoid steps are 1/n on n nodes spaced 1/(n-1): its weights sum to (n-1)/n
    captum_attr = pytest.importorskip("captum.attr")
    model, x = make_model(2), make_input(2)
    n = 10
    ours = medlens.explain(model, x, target=1, method="integrated_gradients", n_steps=n,
                           rule="riemann_trapezoid").values
    theirs = captum_attr.IntegratedGradients(model).attribute(x, target=1, n_steps=n, method="riemann_trapezoid")
    torch.testing.assert_close(ours * (n - 1) / n, theirs, rtol=1e-4, atol=1e-10)
    _, weights = path_nodes("riemann_trapezoid", n)
    assert float(weights.sum()) == pytest.approx(1.0)


@pytest.mark.parametrize("rule", RULES)
def test_rules_integrate_polynomials(rule):
    # int_0^1 3 a^2 da = 1; Gauss-Legendre is exact, the others converge at their order
    alphas, weights = path_nodes(rule, 200)
    tol = 1e-12 if rule == "gausslegendre" else 2e-2
    assert float((weights * 3 * alphas**2).sum()) == pytest.approx(1.0, abs=tol)


def test_completeness_holds_for_a_relu_cnn(spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    coarse = medlens.explain(model, x, target=1, method="integrated_gradients", n_steps=4)
    fine = medlens.explain(model, x, target=1, method="integrated_gradients", n_steps=128)
    # the reported delta is what it claims to be
    with torch.no_grad():
        gap = model(x)[:, 1] - model(torch.zeros_like(x))[:, 1]
    torch.testing.assert_close(fine.extras["convergence_delta"], fine.values.flatten(1).sum(1) - gap)
    assert (fine.extras["convergence_delta"].abs() <= 2e-2 * gap.abs() + 2e-5).all()
    assert fine.extras["convergence_delta"].abs().sum() < coarse.extras["convergence_delta"].abs().sum()


def test_completeness_converges_fast_for_a_smooth_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 22 * 22, 3), torch.nn.Softplus()).double()
    x = make_input(2)
    attr = medlens.explain(model, x, target=0, method="integrated_gradients", n_steps=50)
    assert attr.extras["convergence_delta"].abs().max() < 1e-9


@pytest.mark.parametrize("baseline", ["zero", "blur", "mean", 0.5])
def test_named_baselines_satisfy_completeness_on_linear_model(baseline):
    x = make_input(2)
    model = linear_model(x)
    attr = medlens.explain(model, x, target=0, method="integrated_gradients", baseline=baseline, n_steps=3)
    assert attr.extras["convergence_delta"].abs().max() < 1e-10


def test_chunking_does_not_change_the_result():
    model, x = make_model(3), make_input(3)
    a = medlens.explain(model, x, target=[0, 1, 2], method="integrated_gradients", n_steps=9, batch_size=4)
    b = medlens.explain(model, x, target=[0, 1, 2], method="integrated_gradients", n_steps=9, batch_size=27)
    torch.testing.assert_close(a.values, b.values, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("options, error, message", [
    ({"rule": "simpson"}, UnknownNameError, "unknown integration rule"),
    ({"n_steps": 0}, InputError, "n_steps"),
    ({"baseline": "noise"}, InputError, "unknown baseline"),
    ({"baseline": torch.zeros(5)}, InputError, "does not broadcast"),
    ({"rule": "riemann_trapezoid", "n_steps": 1}, InputError, "trapezoid"),
])
def test_bad_options(options, error, message):
    model, x = make_model(2), make_input(2)
    with pytest.raises(error, match=message):
        medlens.explain(model, x, method="integrated_gradients", **options)


class ReadsInputTwice(torch.nn.Module):
    """A first convolution plus a second read of the raw input (a residual from the input)."""

    def __init__(self, dims):
        super().__init__()
        conv = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[dims]
        self.conv = conv(1, 4, 3, padding=1, padding_mode="reflect")
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x):
        scale = 1 + x.flatten(1).mean(1).view(-1, *[1] * (x.ndim - 1))  # per sample
        h = torch.tanh(self.conv(x)) * scale
        return self.head(h.flatten(2).mean(2))


def test_linear_entry_shortcut_is_exact(spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    with torch.no_grad():
        assert find_entry(model, x, model(x[:1])) is not None
    options = {"target": [2, 0, 1], "method": "integrated_gradients", "n_steps": 9, "baseline": "blur"}
    fast = medlens.explain(model, x, **options)
    full = medlens.explain(model, x, linear_entry=False, **options)
    torch.testing.assert_close(fast.values, full.values, rtol=1e-9, atol=1e-13)
    torch.testing.assert_close(fast.extras["convergence_delta"], full.extras["convergence_delta"], rtol=1e-7, atol=1e-13)


def test_linear_entry_is_refused_when_the_input_is_read_elsewhere(spatial_dims):
    torch.manual_seed(0)
    model = ReadsInputTwice(spatial_dims).double().eval()
    x = make_input(spatial_dims)[:, :1]
    with torch.no_grad():
        assert find_entry(model, x, model(x[:1])) is None
    # the result is still IG of the whole model: exact on the non-linear model via completeness
    attr = medlens.explain(model, x, target=1, method="integrated_gradients", n_steps=64)
    assert attr.extras["convergence_delta"].abs().max() < 1e-6


def test_padding_mode_does_not_matter_for_the_shortcut():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1, padding_mode="reflect"), torch.nn.Tanh(),
                                torch.nn.Flatten(), torch.nn.Linear(3 * 24 * 24, 2)).double().eval()
    x = make_input(2)
    with torch.no_grad():
        assert find_entry(model, x, model(x[:1])) is not None
    fast = medlens.explain(model, x, target=1, method="integrated_gradients", n_steps=5).values
    full = medlens.explain(model, x, target=1, method="integrated_gradients", n_steps=5, linear_entry=False).values
    torch.testing.assert_close(fast, full, rtol=1e-9, atol=1e-13)


def test_an_in_place_activation_after_the_first_layer_takes_the_full_path():
    """conv -> ReLU(inplace=True), common in hand-written CNNs: the shortcut's points at the
    convolution's output are leaves that require grad, which the in-place ReLU may not touch (it
    raised 'a leaf Variable that requires grad is being used in an in-place operation')."""
    torch.manual_seed(0)
    conv, linear = torch.nn.Conv2d(1, 3, 3), torch.nn.Linear(3 * 22 * 22, 2)
    in_place = torch.nn.Sequential(conv, torch.nn.ReLU(inplace=True), torch.nn.Flatten(), linear).double().eval()
    plain = torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.Flatten(), linear).double().eval()
    x = make_input(2)
    with torch.no_grad():
        assert find_entry(in_place, x, in_place(x[:1])) is None and find_entry(plain, x, plain(x[:1])) is not None
    got = medlens.explain(in_place, x, target=1, method="integrated_gradients", n_steps=8).values
    want = medlens.explain(plain, x, target=1, method="integrated_gradients", n_steps=8).values
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-13)
