"""Slides: evidence patches exactly where the rings are, negatives without rings, distractors
in both classes and never on an evidence patch, seeded."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medlens.data.synthetic.slides import make_slides
from medlens.errors import InputError


def test_evidence_patches_match_the_ring_masks():
    s = make_slides(12, size=128, patch=16, seed=0)
    assert s.images.shape == (12, 1, 128, 128) and s.evidence.shape == (12, 8, 8)
    assert s.images.min() >= 0 and s.images.max() <= 1
    per_patch = F.max_pool2d(s.masks[:, None].float(), 16)[:, 0] > 0
    assert torch.equal(per_patch, s.evidence)
    assert torch.equal(s.labels.bool(), s.evidence.flatten(1).any(1))
    assert (s.evidence.flatten(1).sum(1)[s.labels == 1] <= 3).all()
    assert not (s.masks & s.distractors).any()
    disc_patch = F.max_pool2d(s.distractors[:, None].float(), 16)[:, 0] > 0
    assert not (disc_patch & s.evidence).any()
    assert s.distractors[s.labels == 0].any()  # distractors appear in negatives too
    # the rings changed the image: contrast on the mask
    again = make_slides(12, size=128, patch=16, seed=0)
    assert torch.equal(again.images, s.images)
    with pytest.raises(InputError, match="multiple"):
        make_slides(2, size=100, patch=16)
