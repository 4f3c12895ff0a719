"""A 64-channel EEG (MNE's test_edf_overlapping_annotations.edf, PhysioNet's motor imagery layout)
explained gave a signal.png 13,407 pixels tall (1.9 inches per lead) and attention examples 5,985:
metres of PNG, and past 340 leads beyond what matplotlib can draw. Beyond 12 leads the leads now share
that height down to a floor, their names written across; 12 leads or fewer are drawn as before (the
test draws 24 leads: a 64-lead figure takes matplotlib 17 s on a shared machine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlens.viz.signals import signal_attribution_figure, signal_strips_figure

plt = pytest.importorskip("matplotlib.pyplot")


@pytest.mark.parametrize("leads, most", [(2, 1.9 * 2 + 0.4), (12, 1.9 * 12 + 0.4), (24, 1.9 * 12 + 0.4)])
def test_an_explained_record_of_many_leads_stays_a_few_pages(leads, most):
    rng = np.random.default_rng(0)
    fig = signal_attribution_figure(rng.standard_normal((leads, 256)), rng.standard_normal((leads, 256)), 128.0,
                                    [f"Ch {k}" for k in range(leads)], units=["uV"] * leads)
    try:
        assert fig.get_size_inches()[1] <= most + 1e-6
        if leads > 12:  # one axis, the names across as its tick labels (tour29)
            assert [t.get_text() for t in fig.axes[0].get_yticklabels()][:2] == ["Ch 0 (uV)", "Ch 1 (uV)"]
    finally:
        plt.close(fig)


def test_attention_examples_of_many_leads_stay_a_page():
    x = torch.randn(64, 256)
    fig = signal_strips_figure(x, [("attention", torch.rand(256))], fs=128.0, channel_names=[f"c{k}" for k in range(64)])
    try:
        assert fig.get_size_inches()[1] <= 15.0
    finally:
        plt.close(fig)
