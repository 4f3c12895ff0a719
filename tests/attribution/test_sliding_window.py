"""Explanations of whole volumes through sliding-window inference (issue 23), against MONAI's
sliding_window_inference and naive references on a 24^3 volume with roi 16^3."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from medlens.attribution import sliding_window as sw


def patch_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 2, 3, padding=1)).eval().double()


@pytest.fixture
def volume():
    return torch.randn(1, 1, 24, 22, 20, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


def monai_inferer(mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from monai.inferers import SlidingWindowInferer

    return SlidingWindowInferer(roi_size=(16, 16, 16), sw_batch_size=3, overlap=0.25, mode=mode)


BOX = [(4, 12), (6, 14), (3, 9)]


@pytest.mark.parametrize("mode", ["constant", "gaussian"])
def test_blending_and_gradient_equal_autograd_through_monai(volume, mode):
    from monai.inferers import sliding_window_inference

    model, inferer = patch_model(), monai_inferer(mode)
    windows = sw.Windows.of(inferer, 3)
    ours = sw.blended_output(model, volume, windows)
    theirs = sliding_window_inference(volume, (16, 16, 16), 3, model, overlap=0.25, mode=mode)
    torch.testing.assert_close(ours, theirs.as_tensor() if hasattr(theirs, "as_tensor") else theirs)
    x = volume.clone().requires_grad_(True)
    out = sliding_window_inference(x, (16, 16, 16), 3, model, overlap=0.25, mode=mode)
    weight = sw.region_weight(volume.shape[2:], 2, channel=1, box=BOX, dtype=volume.dtype)
    (expected,) = torch.autograd.grad((out * weight).sum(), x)
    got = sw.explain_sliding_window(model, volume, inferer, "gradient", target_class=1, box=BOX)
    torch.testing.assert_close(got, expected)
    # a head on the blended output (classification): linearised, exact for the gradient
    head = lambda o: o[:, 1].amax()  # noqa: E731
    (expected,) = torch.autograd.grad(head(sliding_window_inference(x, (16, 16, 16), 3, model, overlap=0.25,
                                                                   mode=mode)), x)
    torch.testing.assert_close(sw.explain_sliding_window(model, volume, inferer, "gradient", head=head), expected)


def naive_occlusion(model, volume, windows, weight, window, stride):
    """Occlusion of a 3D volume by brute force: the whole blended output re-run for every patch."""
    from medlens.attribution.occlusion import coverage, window_starts

    score = lambda v: float((sw.blended_output(model, v, windows) * weight).sum())  # noqa: E731
    full = score(volume)
    expected = torch.zeros(volume.shape[2:], dtype=volume.dtype)
    starts = [window_starts(n, w, s) for n, w, s in zip(volume.shape[2:], window, stride)]
    (wa, wb, wc) = window
    for a in starts[0]:
        for b in starts[1]:
            for c in starts[2]:
                occ = volume.clone()
                occ[0, 0, a : a + wa, b : b + wb, c : c + wc] = 0
                expected[a : a + wa, b : b + wb, c : c + wc] += full - score(occ)
    (na, nb, nc) = volume.shape[2:]
    cover = (coverage(na, wa, stride[0]).view(-1, 1, 1) * coverage(nb, wb, stride[1]).view(1, -1, 1)
             * coverage(nc, wc, stride[2]).view(1, 1, -1))
    return expected / cover


def test_occlusion_equals_a_naive_reference(volume):
    model, windows = patch_model(), sw.Windows((16, 16, 16), 0.25, "gaussian", batch=4)
    weight = sw.region_weight(volume.shape[2:], 2, channel=1, box=BOX, dtype=volume.dtype)
    got, evals = sw.sliding_occlusion(model, volume, sw.SlidingTarget(weight), windows, window=(8, 8, 8),
                                      stride=(8, 8, 8))
    torch.testing.assert_close(got[0, 0], naive_occlusion(model, volume, windows, weight, (8, 8, 8), (8, 8, 8)))
    n_windows = len(windows.starts(volume.shape[2:]))
    n_patches = 3 * 3 * 3
    assert evals < n_windows * (n_patches + 1)  # only the windows a patch touches are re-run


@pytest.mark.parametrize("box", [BOX, [(0, 4), (0, 4), (0, 4)]])  # the corner: only one window is weighed
def test_integrated_gradients_and_gradcam_equal_naive_references(volume, box):
    from monai.inferers import sliding_window_inference

    model, inferer = patch_model(), monai_inferer("constant")
    weight = sw.region_weight(volume.shape[2:], 2, channel=1, box=box, dtype=volume.dtype)
    ig = sw.explain_sliding_window(model, volume, inferer, "integrated_gradients", target_class=1, box=box, n_steps=8)
    from medlens.attribution.integrated_gradients import path_nodes

    alphas, weights = path_nodes("gausslegendre", 8)
    expected = torch.zeros_like(volume)
    for a, w in zip(alphas.tolist(), weights.tolist()):
        x = (a * volume).requires_grad_(True)
        out = sliding_window_inference(x, (16, 16, 16), 3, model, overlap=0.25)
        expected += w * torch.autograd.grad((out * weight).sum(), x)[0]
    torch.testing.assert_close(ig, expected * volume)
    # Grad-CAM: weights = mean of dT/dA over every window's layer output; maps blended like outputs
    layer = model[1]
    cam = sw.explain_sliding_window(model, volume, inferer, "gradcam", target_class=1, box=box, layer=layer)
    windows = sw.Windows.of(inferer, 3)
    st = sw.Stitching(windows, volume.shape[2:], volume.dtype, "cpu")
    acts, grads = [], []
    for s in st.starts:
        patch = volume[(slice(None), slice(None), *sw._slices(s, windows.roi))]
        a = model[:2](patch).detach().requires_grad_(True)
        y = model[2:](a)
        cot = weight[(slice(None), *sw._slices(s, windows.roi))] * st.weights(s)
        acts.append(a.detach())
        grads.append(torch.autograd.grad(y, a, cot[None])[0])
    w = torch.stack([g[0].mean(dim=(1, 2, 3)) for g in grads]).mean(0).view(1, -1, 1, 1, 1)
    expected = torch.zeros(volume.shape[2:], dtype=volume.dtype)
    for s, a in zip(st.starts, acts):
        expected[sw._slices(s, windows.roi)] += torch.relu((w * a).sum(1))[0] * st.importance
    torch.testing.assert_close(cam[0, 0], expected / st.norm)


def test_a_volume_smaller_than_the_roi_is_padded_like_monai():
    from monai.inferers import sliding_window_inference

    model = patch_model()
    volume = torch.randn(1, 1, 24, 12, 20, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    box = [(2, 10), (3, 9), (4, 12)]
    x = volume.clone().requires_grad_(True)
    out = sliding_window_inference(x, (16, 16, 16), 2, model, overlap=0.25)
    weight = sw.region_weight(volume.shape[2:], 2, channel=1, box=box, dtype=volume.dtype)
    (expected,) = torch.autograd.grad((out * weight).sum(), x)
    got = sw.explain_sliding_window(model, volume, {"roi_size": 16, "overlap": 0.25, "sw_batch_size": 2}, "gradient",
                                    target_class=1, box=box)
    torch.testing.assert_close(got, expected)


class Counting(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.rows = net, 0

    def forward(self, x):
        self.rows += len(x)
        return self.net(x)


def test_windows_the_target_does_not_weigh_are_never_run(volume):
    from monai.inferers import sliding_window_inference

    model = Counting(patch_model())
    corner = [(0, 4), (0, 4), (0, 4)]  # inside the first window only
    windows = sw.Windows((16, 16, 16), 0.25, "constant", batch=1)
    x = volume.clone().requires_grad_(True)
    weight = sw.region_weight(volume.shape[2:], 2, channel=1, box=corner, dtype=volume.dtype)
    out = sliding_window_inference(x, (16, 16, 16), 1, model.net, overlap=0.25)
    (expected,) = torch.autograd.grad((out * weight).sum(), x)
    model.rows = 0
    got = sw.explain_sliding_window(model, volume, windows, "gradient", target_class=1, box=corner)
    torch.testing.assert_close(got, expected)
    assert model.rows == 1 + 1  # the shape check, then the one window that sees the corner
    model.rows = 0
    occ, evals = sw.sliding_occlusion(model, volume, sw.SlidingTarget(weight), windows, window=(8, 8, 8))
    assert evals == model.rows
    assert float(occ[0, 0, 12:, 12:, 12:].abs().max()) == 0.0  # patches away from the corner change nothing


def test_gradcam_defaults_to_the_last_spatial_layer_of_the_patch_model(volume):
    model, windows = patch_model(), sw.Windows((16, 16, 16), 0.25, "constant", batch=2)
    default = sw.explain_sliding_window(model, volume, windows, "gradcam", target_class=1, box=BOX)
    explicit = sw.explain_sliding_window(model, volume, windows, "gradcam", target_class=1, box=BOX, layer="2")
    torch.testing.assert_close(default, explicit)


@pytest.mark.parametrize("inferer, method, options, message", [
    ({"roi_size": 16, "overlap": 1.0}, "gradient", {}, "overlap must be in [0, 1)"),
    ({"roi_size": 16, "mode": "cosine"}, "gradient", {}, "unknown blending mode"),
    ({"roi_size": 16}, "rise", {}, "unknown method 'rise'"),
    ({"roi_size": 16}, "gradient", {"n_steps": 4}, "has no option 'n_steps'"),
    ({"roi_size": 16}, "occlusion", {"window": 8, "stride": 9}, "exceeds the window"),
    ({"roi_size": (16, 16)}, "gradient", {}, "does not have the volume's 3 spatial dimensions"),
])
def test_bad_requests_fail_in_one_line(volume, inferer, method, options, message):
    from medlens.errors import MedlensError

    with pytest.raises(MedlensError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        sw.explain_sliding_window(patch_model(), volume, inferer, method, target_class=1, **options)


def test_a_classifier_is_refused_in_one_line(volume):
    from medlens.errors import InputError

    classifier = nn.Sequential(nn.Conv3d(1, 2, 3), nn.AdaptiveAvgPool3d(1), nn.Flatten()).double()
    with pytest.raises(InputError, match="output of shape"):
        sw.explain_sliding_window(classifier, volume, {"roi_size": 16}, "gradient", target_class=1)
