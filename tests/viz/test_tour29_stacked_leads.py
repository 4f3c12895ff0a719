"""A 64-channel EEG explained drew one matplotlib axis (and one strip) per lead: its signal.png took
9 to 17 s to draw. Beyond 12 leads all leads now share one axis, offset vertically, the lead names as
its tick labels, the attribution as a band behind each lead, each annotation drawn once."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.viz.signals import signal_attribution_figure

plt = pytest.importorskip("matplotlib.pyplot")


def test_many_leads_share_one_axis_with_their_names_and_the_annotations_once():
    leads, n = 40, 512
    rng = np.random.default_rng(0)
    attribution = np.zeros((leads, n))
    attribution[3, 100:200] = 1.0
    fig = signal_attribution_figure(rng.standard_normal((leads, n)), attribution, 128.0,
                                    [f"EEG {k}" for k in range(leads)], [(64, "T1"), (300, "T2")],
                                    units=["uV"] * leads, span=(50, 450), seen=[0, 3])
    try:
        assert len(fig.axes) == 1
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_yticklabels()] == [f"EEG {k} (uV)" for k in range(leads)]
        assert sorted(t.get_text() for t in ax.texts) == ["T1", "T2"]
        band = ax.images[0].get_array()
        assert band.shape == (leads, n) and band[3, 150] == 1.0 and band[4, 150] == 0.0
        assert len(ax.patches) == 2  # the two leads the model saw, outlined over its span
    finally:
        plt.close(fig)


def test_a_few_leads_keep_an_axis_each():
    fig = signal_attribution_figure(np.zeros((2, 256)), np.zeros((2, 256)), 128.0, ["I", "II"])
    try:
        assert len(fig.axes) == 4
    finally:
        plt.close(fig)
