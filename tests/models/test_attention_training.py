"""Trained attention RNNs: accuracy, attention inside the ground-truth masks, the ECG5000 acceptance numbers.

Training takes several seconds per data set, so the tests that train are marked slow.
"""

from __future__ import annotations

import pytest
import torch

from medlens.data.synthetic.eeg import make_eeg
from medlens.data.synthetic.reports_text import make_reports
from medlens.evaluation.attention import attention_faithfulness, attention_weights, verdict
from medlens.models.attention_rnn import build_for_inputs
from medlens.models.training import evaluate_classifier, shift_augment, train_classifier

MASS_THRESHOLD = 0.6  # attention mass inside the masks that a model must reach to "find" the evidence


def train(make, n_train, augment):
    train_set, val, test = make(n_train, seed=0), make(100, seed=1), make(100, seed=2)
    torch.manual_seed(0)
    model = build_for_inputs(train_set.inputs, 2)
    train_classifier(model, train_set.inputs, train_set.labels, val.inputs, val.labels, epochs=8, lr=1e-2,
                     seed=0, augment=augment, progress=False)
    return model, test


@pytest.fixture(scope="module")
def eeg_model():
    return train(make_eeg, 300, shift_augment)


@pytest.fixture(scope="module")
def text_model():
    return train(make_reports, 400, None)


def mass_and_share(model, data):
    attention, _ = attention_weights(model, data.inputs)
    positives = data.labels == 1
    masks = data.masks[positives, 0]
    tokens = not data.inputs.is_floating_point()
    valid = data.inputs[positives] != 0 if tokens else torch.ones_like(masks, dtype=torch.bool)
    mass = float((attention[positives] * masks).sum(1).mean())
    share = float((masks.sum(1) / valid.sum(1)).mean())
    return mass, share


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["eeg_model", "text_model"])
def test_trained_model_is_accurate_and_attends_inside_the_masks(fixture, request):
    model, test = request.getfixturevalue(fixture)
    scores = evaluate_classifier(model, test.inputs, test.labels)
    assert scores.accuracy >= 0.9 and scores.auroc >= 0.97
    mass, share = mass_and_share(model, test)
    assert mass >= MASS_THRESHOLD and mass >= 2 * share


@pytest.mark.parametrize("make", [make_eeg, make_reports])
@pytest.mark.parametrize("attention", ["additive", "uniform"])
def test_untrained_or_uniform_models_fail_the_mask_threshold(make, attention):
    data = make(100, seed=2)
    torch.manual_seed(0)
    model = build_for_inputs(data.inputs, 2, attention=attention).eval()
    mass, share = mass_and_share(model, data)
    assert mass < MASS_THRESHOLD and mass < 2 * share
    if attention == "uniform":
        assert abs(mass - share) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["eeg_model", "text_model"])
def test_jain_wallace_analysis_of_trained_models(fixture, request):
    model, test = request.getfixturevalue(fixture)
    result = attention_faithfulness(model, test.inputs[:40], labels=test.labels[:40], masks=test.masks[:40],
                                    n_permutations=20, ig_steps=8)
    summary = result.summary()
    assert summary["accuracy"] >= 0.9
    assert summary["mass_attention_mean"] >= MASS_THRESHOLD
    assert -1 <= summary["tau_gradient_mean"] <= 1 and -1 <= summary["tau_leave_one_out_mean"] <= 1
    assert 0 <= summary["permutation_tvd_median"] <= 1
    level, sentences = verdict(summary)
    assert level in ("usable", "caution", "unreliable") and len(sentences) == 4


@pytest.mark.slow
def test_ecg5000_acceptance():
    from medlens.app.recipes import train_on_dataset

    model, meta = train_on_dataset("ecg5000", arch="attention-rnn", epochs=12, seed=0, progress=False)
    assert meta["test"]["accuracy"] > 0.95 and meta["test"]["auroc"] > 0.95
