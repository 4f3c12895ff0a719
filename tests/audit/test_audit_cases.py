"""The per-case code path equals the library's own functions called one by one, in 1D, 2D and 3D."""

from __future__ import annotations

import math

import pytest
import torch

from medlens.attribution.explain import explain
from medlens.audit.cases import AuditSettings, audit_batch
from medlens.audit.summary import misplaced_relevance, summarise_maps, summary_grid
from medlens.core.targets import probabilities, to_target
from medlens.evaluation.faithfulness import deletion
from medlens.evaluation.localisation import pointing_game
from medlens.evaluation.maps import saliency_map
from tests.conftest import make_input, make_model


def test_audit_batch_matches_direct_calls(spatial_dims):
    model = make_model(spatial_dims, num_classes=3)
    x = make_input(spatial_dims, batch=3)
    spatial = x.shape[2:]
    masks = torch.zeros(3, *spatial, dtype=torch.bool)
    masks[0][tuple(slice(0, 4) for _ in spatial)] = True  # case 0 has a mask, the others none
    settings = AuditSettings(methods=("gradcam", "gradient"), cluster_method="gradient",
                             metric_options={"deletion_auc": {"steps": 4}, "insertion_auc": {"steps": 4}})
    with torch.no_grad():
        probs = probabilities(model(x)).double()
    predicted = probs.argmax(1)
    labels = [int(predicted[0]), None, 0]
    results = audit_batch(model, x, None, labels=labels, masks=masks, indices=[5, 6, 7], cases=["a", "b", "c"],
                          settings=settings)
    assert [r.index for r in results] == [5, 6, 7] and [r.case for r in results] == ["a", "b", "c"]
    assert [r.predicted for r in results] == predicted.tolist()
    assert torch.allclose(torch.tensor([r.probabilities for r in results], dtype=torch.float64), probs)
    grid = summary_grid(spatial)
    for m, method in enumerate(("gradcam", "gradient")):
        att = explain(model, x, predicted, method)
        # deletion as the leaderboard scores it: blurred substrate, patches, magnitudes
        patch = max(1, round(max(spatial) / (256 if len(spatial) == 1 else 16)))  # a signal: 1/256 of its length
        dele = deletion(model, x, att, to_target(predicted, model(x)), steps=4, baseline="blur", patch=patch, abs=True)
        assert torch.allclose(torch.tensor([r.metrics[f"{method}.deletion_auc"] for r in results], dtype=torch.float64),
                              dele.auc.double(), atol=1e-9)
        pg = pointing_game(att, masks)
        assert results[0].metrics[f"{method}.pointing_game"] == pytest.approx(float(pg[0]))
        assert math.isnan(results[1].metrics[f"{method}.pointing_game"])
        sal = saliency_map(att, spatial, abs=True)
        expected = summarise_maps(sal, grid)
        assert torch.allclose(torch.stack([r.summaries[m] for r in results]), expected, atol=1e-6)
        mis = misplaced_relevance(sal, masks)
        assert results[0].metrics[f"{method}.misplaced"] == pytest.approx(float(mis[0]))
    assert all(r.summaries.shape == (2, math.prod(grid)) for r in results)
    assert all(r.evidence.shape == (math.prod(grid),) for r in results)


def test_a_mask_counts_only_when_the_model_predicts_its_label():
    model = make_model(2, num_classes=3)
    x = make_input(2, batch=2)
    with torch.no_grad():
        predicted = model(x).argmax(1)
    masks = torch.zeros(2, 24, 24, dtype=torch.bool)
    masks[:, 10:14, 10:14] = True
    wrong = [(int(p) + 1) % 3 for p in predicted]
    settings = AuditSettings(methods=("gradient",), cluster_method="gradient", metrics=())
    right = audit_batch(model, x, None, labels=predicted.tolist(), masks=masks, indices=[0, 1], cases=["0", "1"], settings=settings)
    other = audit_batch(model, x, None, labels=wrong, masks=masks, indices=[0, 1], cases=["0", "1"], settings=settings)
    sal = saliency_map(explain(model, x, predicted, "gradient"), (24, 24), abs=True)
    assert right[0].metrics["gradient.misplaced"] == pytest.approx(float(misplaced_relevance(sal, masks)[0]))
    assert other[0].metrics["gradient.misplaced"] == pytest.approx(float(misplaced_relevance(sal, None)[0]))


def test_settings_reject_unknown_names():
    from medlens.errors import MedlensError

    with pytest.raises(MedlensError):
        AuditSettings(methods=("nope",))
    with pytest.raises(MedlensError):
        AuditSettings(method_options={"rise": {"n_masks": 3}})
    with pytest.raises(MedlensError):
        AuditSettings(cases_per_batch=0)
    with pytest.raises(MedlensError, match="no option"):
        AuditSettings(metric_options={"deletion_auc": {"stepz": 3}})
    with pytest.raises(MedlensError, match="does not score"):
        AuditSettings(metrics=("deletion_auc",), metric_options={"insertion_auc": {"steps": 3}})
    s = AuditSettings(methods=("gradcam",), cluster_method="smoothgrad")
    assert s.all_methods == ("gradcam", "smoothgrad")
    assert AuditSettings.from_json(s.to_json()) == s
