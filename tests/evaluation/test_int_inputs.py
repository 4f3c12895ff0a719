"""Evaluation metrics take raw integer inputs as explain does (engine.model_input): an int16 CT in
Hounsfield units or uint8 pixels reach a float32 model as the same values in float32, so the metric
equals the one computed on the float copy (they refused with a mislabelled 'does not fit the model')."""

import torch

import medlens
from medlens.evaluation.faithfulness import deletion
from medlens.evaluation.robustness import max_sensitivity
from medlens.evaluation.sanity import cascading_randomisation


def _model_and_inputs():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(16, 3)).eval()
    hu = torch.randint(-1000, 1500, (2, 1, 12, 12), generator=torch.Generator().manual_seed(1)).to(torch.int16)
    return model, hu, hu.float()


def test_deletion_of_an_int16_scan_equals_its_float_copy():
    model, raw, as_float = _model_and_inputs()
    attribution = medlens.explain(model, as_float, 0, "gradient").values
    got = deletion(model, raw, attribution, 0, steps=6)
    want = deletion(model, as_float, attribution, 0, steps=6)
    torch.testing.assert_close(got.curve, want.curve)
    torch.testing.assert_close(got.auc, want.auc)


def test_max_sensitivity_and_randomisation_of_a_uint8_image_equal_its_float_copy():
    model, raw, _ = _model_and_inputs()
    pixels = (raw.abs() % 256).to(torch.uint8)
    torch.testing.assert_close(max_sensitivity(model, pixels, 0, "gradient", n_samples=2),
                               max_sensitivity(model, pixels.float(), 0, "gradient", n_samples=2))
    got = cascading_randomisation(model, pixels, 0, "gradient")
    want = cascading_randomisation(model, pixels.float(), 0, "gradient")
    torch.testing.assert_close(got.spearman, want.spearman)
