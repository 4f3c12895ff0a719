"""The removal test with real models and a real audit: a marker that drives the prediction is
flagged; maps that sit on a marker the model ignores are not; a chance-level model is undecided.

The models are written by hand so that what drives them is known exactly: a "lesion" detector
(the brightest 5x5 mean in the interior), and a corner term that either moves the decision (the
marker's mean intensity) or only wiggles the gradient (a sine of tiny amplitude, active only
on a marked corner, so the maps sit on the marker while the prediction cannot depend on it).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from medlens.audit.cases import AuditSettings
from medlens.audit.intervention import (
    cell_mask,
    cluster_region,
    null_cells,
    remove_region,
)
from medlens.audit.run import analyse, run_audit
from medlens.audit.strategies import FlagRule
from medlens.audit.sources import SourceSpec
from medlens.audit.store import DB_FILE, AuditStore
from medlens.core.random import generator

SIZE = 32
CORNER = (slice(1, 5), slice(1, 5))
SETTINGS = AuditSettings(methods=("gradient",), cluster_method="gradient", metrics=(), cases_per_batch=40)


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Textured images, a bright disc ("lesion", with its mask) in half, a marker in half."""
    gen = generator(seed, "intervention-test")
    images = 0.3 + 0.05 * torch.randn(n, SIZE, SIZE, generator=gen)
    labels = (torch.arange(n) % 2).numpy()
    masks = np.zeros((n, SIZE, SIZE), dtype=bool)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    marked = (torch.rand(n, generator=gen) < 0.5).numpy()
    for i in range(n):
        if labels[i]:
            cy, cx = (int(v) for v in torch.randint(11, 21, (2,), generator=gen))
            masks[i] = (yy - cy) ** 2 + (xx - cx) ** 2 <= 9
            images[i][torch.from_numpy(masks[i])] += 0.5
        if marked[i]:
            images[i][CORNER] = 1.0
    return images.numpy().astype(np.float32), labels, masks, marked


@pytest.fixture(scope="module")
def marker_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("intervention") / "markers.npz"
    arrays = {}
    for split, n, seed in (("train", 4, 1), ("val", 4, 2), ("test", 120, 3)):
        images, labels, masks, marked = _images(n, seed)
        arrays.update({f"{split}_images": images, f"{split}_labels": labels, f"{split}_masks": masks,
                       f"{split}_marker_masks": marked[:, None, None] & np.zeros((n, SIZE, SIZE), dtype=bool)})
    arrays["class_names"] = np.array(["no lesion", "lesion"])
    np.savez_compressed(path, **arrays)
    return path, _images(120, 3)[3]


class HandModel(nn.Module):
    """``z = lesion_gain * lesion + corner term``; logits ``(-z/2, z/2)``."""

    def __init__(self, lesion_gain: float, corner: str) -> None:
        super().__init__()
        self.lesion_gain, self.corner = lesion_gain, corner
        self.anchor = nn.Parameter(torch.zeros(()))  # a parameter, so the model has a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        interior = x[:, :, 6:26, 6:26]
        lesion = F.avg_pool2d(interior, 5, 1).amax(dim=(1, 2, 3)) - 0.55
        corner = x[:, :, CORNER[0], CORNER[1]].sum(dim=(1, 2, 3))  # 16 pixels: ~4.8 plain, 16 marked
        if self.corner == "drives":  # a marked corner adds 9 to z, enough to overturn "no lesion"
            term = 1.5 * F.relu(corner - 10.0)
        else:  # "wiggles": a large gradient on a marked corner, a change of at most 0.01 in z
            term = 0.01 * torch.sin(200.0 * F.relu(corner - 8.0))
        z = self.lesion_gain * lesion + term + self.anchor
        return torch.stack([-z / 2, z / 2], dim=1)


def _audit(tmp_path, npz, model):
    spec = SourceSpec(str(npz), "test", (1, SIZE, SIZE))
    run_audit(model.eval(), spec, tmp_path, SETTINGS)
    return analyse(tmp_path, parquet=False), spec


def test_a_marker_that_drives_the_prediction_is_flagged(tmp_path, marker_npz):
    npz, marked = marker_npz
    analysis, _ = _audit(tmp_path, npz, HandModel(20.0, "drives"))
    flagged = {analysis.results[i].index for i in analysis.strategies.flagged_cases()}
    assert flagged, [(c.verdict, c.reason) for cs in analysis.strategies.classes for c in cs.clusters]
    truth = {i for i in range(len(marked)) if marked[i]}
    precision, recall = len(flagged & truth) / len(flagged), len(flagged & truth) / len(truth)
    assert precision >= 0.9 and recall >= 0.8, (precision, recall)
    for c in analysis.strategies.flagged():
        assert set(c.region) & {0, 1, 8, 9} and c.p_value < 0.01 and abs(c.change - c.null_change) >= 0.1


def test_maps_on_a_marker_the_model_ignores_are_tested_and_not_flagged(tmp_path, marker_npz):
    npz, _ = marker_npz
    analysis, _ = _audit(tmp_path, npz, HandModel(20.0, "wiggles"))
    labelled = analysis.results
    assert sum(r.label == r.predicted for r in labelled) / len(labelled) > 0.9  # the lesion detector works
    clusters = [c for cs in analysis.strategies.classes for c in cs.clusters]
    on_corner = [c for c in clusters if set(c.region) & {0, 1, 8, 9}]
    assert on_corner, "the maps of the marked cases should sit on the marker"
    # the marker wiggles the predictions: measurably (p small) but far less than a flag needs
    assert all(c.verdict == "not flagged" and ("do not depend on it" in c.reason) == (c.p_value >= FlagRule().alpha)
               and ("less than a flag needs" in c.reason) == (c.p_value < FlagRule().alpha) for c in on_corner)
    assert analysis.strategies.flagged() == []


def test_a_chance_level_model_is_undecided(tmp_path, marker_npz):
    npz, _ = marker_npz
    analysis, _ = _audit(tmp_path, npz, HandModel(0.0, "wiggles"))
    clusters = [c for cs in analysis.strategies.classes for c in cs.clusters]
    on_corner = [c for c in clusters if set(c.region) & {0, 1, 8, 9}]
    assert on_corner and all(c.verdict == "undecided" for c in on_corner)
    assert any("no better than chance" in c.reason for c in on_corner)
    assert analysis.strategies.flagged() == []


def test_stored_changes_are_reused_and_measured_again_with_the_model(tmp_path, marker_npz):
    npz, _ = marker_npz
    model = HandModel(20.0, "drives")
    first, spec = _audit(tmp_path, npz, model)
    with AuditStore(tmp_path / DB_FILE) as store:
        store._db.execute("DELETE FROM removals")
    blind = analyse(tmp_path, parquet=False)  # no stored changes and no model: cannot judge
    assert blind.strategies.flagged() == []
    assert any("model was not available" in c.reason for cs in blind.strategies.classes for c in cs.clusters)
    again = analyse(tmp_path, parquet=False, model=model, spec=spec)
    assert again.strategies.flagged_cases() == first.strategies.flagged_cases()


def test_cell_mask_covers_the_adaptive_pooling_windows():
    from medlens.audit.summary import summarise_maps

    for spatial, grid in (((30, 45), (8, 8)), ((64,), (64,)), ((12, 10, 9), (4, 4, 4))):
        cells = (0, 5, int(math.prod(grid)) - 1)
        mask = cell_mask(cells, grid, spatial)
        pooled = summarise_maps(mask[None].double(), grid)[0] ** 2  # the cells holding mask positions
        assert set(torch.nonzero(pooled > 0).reshape(-1).tolist()) >= set(cells)
        assert mask.sum() >= len(cells)


def test_remove_region_blurs_inside_and_keeps_the_rest():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    x[:, :, 1:4, 1:4] = 5.0  # a bright marker
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[:4, :4] = True
    out = remove_region(x, mask)
    assert torch.equal(out[:, :, ~mask], x[:, :, ~mask])
    assert out[:, :, 1:4, 1:4].max() < 2.5  # the marker is smeared away
    per_case = torch.stack([mask, torch.zeros_like(mask)])
    out2 = remove_region(x, per_case)
    assert torch.equal(out2[0], out[0]) and torch.equal(out2[1], x[1])


def test_null_cells_avoid_the_region_its_neighbours_and_the_evidence():
    grid = (8, 8)
    evidence = torch.zeros(64)
    evidence[27] = 1.0
    picks = [null_cells((0, 1), evidence, grid, generator(0, "t", k)) for k in range(50)]
    banned = {0, 1, 2, 8, 9, 10, 27}
    assert all(len(p) == 2 and not set(p) & banned for p in picks)
    assert null_cells((0, 1), evidence, grid, generator(0, "t", 3)) == picks[3]  # seeded
    assert null_cells(tuple(range(40)), evidence, grid, generator(0, "t")) is None  # too few free cells


def test_cluster_region_is_the_concentrated_off_evidence_corner():
    excess = torch.zeros(64)
    excess[0], excess[1], excess[9], excess[36] = 0.3, 0.1, 0.02, 0.5
    off = torch.ones(64)
    off[36] = 0.0  # the interior peak is evidence
    assert cluster_region(excess, off, (8, 8), cover=0.5) == (0, 1, 9)
    assert cluster_region(torch.zeros(64), off, (8, 8), cover=0.5) == ()
