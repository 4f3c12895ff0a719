"""Every method on real third-party architectures: MONAI's networks in 2D and 3D (random weights).

MONAI's DenseNet121 (dense connections, in-place ReLUs), ResNet-18 (residual additions),
SEResNet50 (squeeze-and-excitation gating) and UNet (a segmentation model, explained through
the sum of one class's scores inside a mask). Nothing is downloaded.
"""

from __future__ import annotations

import warnings

import pytest
import torch

monai_nets = pytest.importorskip("monai.networks.nets")

from medlens.attribution.explain import explain, methods  # noqa: E402
from medlens.core.hooks import count_hooks, resolve_layer  # noqa: E402
from medlens.core.targets import ReducedOutput  # noqa: E402
from medlens.errors import MedlensError  # noqa: E402

# small settings: these tests prove that every method runs and is sound on the architecture
FAST = {
    "integrated_gradients": {"n_steps": 4},
    "smoothgrad": {"n_samples": 3},
    "rise": {"n_masks": 16},
}


def _build(name: str, dims: int) -> torch.nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "densenet121":
            model = monai_nets.DenseNet121(spatial_dims=dims, in_channels=1, out_channels=3)
        elif name == "resnet18":
            model = monai_nets.resnet18(spatial_dims=dims, n_input_channels=1, num_classes=3)
        elif name == "seresnet50":
            model = monai_nets.SEResNet50(spatial_dims=dims, in_channels=1, num_classes=3)
        else:
            model = monai_nets.UNet(spatial_dims=dims, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2))
    return model.eval()


NETS = [
    ("densenet121", 2, 32), ("resnet18", 2, 32), ("seresnet50", 2, 32), ("unet", 2, 32),
    pytest.param("densenet121", 3, 32, marks=pytest.mark.slow), ("resnet18", 3, 16),
    pytest.param("seresnet50", 3, 24, marks=pytest.mark.slow), ("unet", 3, 16),
]


@pytest.mark.parametrize("name, dims, size", NETS)
def test_every_method_runs_finite_and_leaves_no_hook(name, dims, size):
    model = _build(name, dims)
    x = torch.randn(1, 1, *([size] * dims), generator=torch.Generator().manual_seed(1))
    if name == "unet":
        mask = torch.zeros([size] * dims)
        mask[(slice(size // 4, size // 2),) * dims] = 1
        model = ReducedOutput(model, channel=1, mask=mask)
    for method in methods():
        options = dict(FAST.get(method, {}))
        if method == "occlusion":
            options.update(window=size // 2, stride=size // 2)
        a = explain(model, x, 0, method, **options)
        assert a.values.shape[2:] == x.shape[2:], method
        assert torch.isfinite(a.values).all(), method
        assert count_hooks(model) == 0, method
        if method in ("gradcam", "gradcam_pp"):
            layer = resolve_layer(model, a.params["layer"])  # the dotted name is recorded
            assert isinstance(a.params["layer"], str) and layer is not model


def test_cam_default_layer_on_densenet121_is_the_rectified_last_map_and_equals_captum():
    captum = pytest.importorskip("captum.attr")
    model = _build("densenet121", 2)
    x = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    a = explain(model, x, 1, "gradcam", upsample=False)
    # the last layer that keeps the spatial rank: the in-place ReLU after norm5 (torchcam's rule)
    assert a.params["layer"] == "class_layers.relu"
    ref = captum.LayerGradCam(model, resolve_layer(model, "class_layers.relu")).attribute(
        x, target=1, relu_attributions=True)
    assert a.values.shape == ref.shape == (2, 1, 2, 2)
    assert torch.allclose(a.values, ref.detach(), rtol=1e-4, atol=1e-6 * float(ref.abs().max()))


def test_cam_default_layer_skips_global_pooling_and_matches_the_reference_cnn():
    from medlens.attribution.cam import probe_cam_layer
    from medlens.models import CNN

    model = CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 16, 16)).eval()
    name, module = probe_cam_layer(model, torch.zeros(1, 1, 16, 16))
    assert name == "features.block2.act" and module is model.features.block2.act


def test_torchscript_models_run_gradient_methods_and_refuse_cams_in_one_line():
    module = _build("resnet18", 2).eval()
    model = torch.jit.trace(module, torch.zeros(1, 1, 32, 32))
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    # default chunking: the engine sizes TorchScript chunks from operator outputs (no module hooks)
    for method, options in (("gradient", {}), ("integrated_gradients", FAST["integrated_gradients"]),
                            ("smoothgrad", FAST["smoothgrad"]), ("rise", FAST["rise"]),
                            ("occlusion", {"window": 16, "stride": 16})):
        a = explain(model, x, 0, method, **options)
        # the same arithmetic on the Python module (whose first convolution IG could otherwise shortcut)
        exact = {"linear_entry": False} if method == "integrated_gradients" else {}
        expected = explain(module, x, 0, method, **options, **exact)
        assert torch.allclose(a.values, expected.values, rtol=1e-4, atol=1e-6), method
    for method, options in (("gradcam", {}), ("gradcam", {"layer": "layer4"}), ("gradcam_pp", {}), ("fastcam", {}),
                            ("smoothgrad", {"base": "gradcam"})):
        with pytest.raises(MedlensError, match="TorchScript") as err:
            explain(model, x, 0, method, **options)
        assert "\n" not in str(err.value) and count_hooks(module) == 0


def test_a_wrapped_torchscript_segmenter_runs_black_box_methods_and_refuses_cams_in_one_line():
    # a TorchScript UNet explained through a region target (ReducedOutput around the ScriptModule):
    # RISE crashed with "register_forward_hook is not supported on ScriptModules" (the engine's
    # chunk-size probe hooked the scripted leaves, since the wrapper itself is not TorchScript)
    unet = _build("unet", 2).eval()
    scripted = torch.jit.trace(unet, torch.zeros(1, 1, 32, 32))
    mask = torch.zeros(32, 32)
    mask[8:20, 10:24] = 1
    x = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    wrapped, plain = ReducedOutput(scripted, channel=1, mask=mask), ReducedOutput(unet, channel=1, mask=mask)
    for method, options in (("rise", FAST["rise"]), ("occlusion", {"window": 8, "stride": 8}), ("gradient", {})):
        a = explain(wrapped, x, 0, method, **options)
        assert torch.allclose(a.values, explain(plain, x, 0, method, **options).values, rtol=1e-4, atol=1e-6), method
    with pytest.raises(MedlensError, match="TorchScript") as err:
        explain(wrapped, x, 0, "gradcam")
    assert "\n" not in str(err.value)


def test_torchscript_chunks_are_sized_from_operator_outputs():
    from medlens.core.engine import ActivationSizes
    from medlens.core.hooks import on_activations, on_leaf_calls

    module = _build("resnet18", 2).eval()
    model = torch.jit.trace(module, torch.zeros(1, 1, 32, 32))
    x = torch.zeros(1, 1, 32, 32)
    by_layer, by_operator = ActivationSizes(), ActivationSizes()
    with on_leaf_calls(module, by_layer), torch.no_grad():
        module(x)
    with on_activations(model, by_operator), torch.no_grad():
        model(x)
    # every leaf layer is one or a few operators: the operator view sees at least as much, not wildly more
    assert max(by_operator.sizes) == max(by_layer.sizes)
    assert sum(by_layer.sizes) <= sum(by_operator.sizes) <= 3 * sum(by_layer.sizes)
