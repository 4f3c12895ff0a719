"""The unlike-the-training-notes sentence shows numbers that back it: a share just above the
threshold does not print as the same percentage ("12% ..., more than in 99% of the held-out notes (12%)",
seen on an MTSamples note with 12.1% unknown words against a threshold of 11.6%)."""

from __future__ import annotations

import re

import torch

from medlens.evaluation.familiarity import familiarity
from medlens.evaluation.note_familiarity import note_familiarity_reference


def test_a_share_just_over_the_threshold_prints_above_it():
    val = torch.full((10, 1000), 5, dtype=torch.long)
    val[:, :116] = 1  # every validation note: 11.6% unknown words
    reference = note_familiarity_reference(val, unknown_id=1, padding_id=0)
    note = torch.full((1, 1000), 5, dtype=torch.long)
    note[0, :121] = 1  # 12.1%
    found = familiarity(torch.nn.Identity(), note, reference)
    assert found.unlike is True
    share, threshold = (float(v) for v in re.findall(r"([\d.]+)%", found.reasons[0])[:3:2])
    assert share > threshold, found.reasons[0]
