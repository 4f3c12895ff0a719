"""A lead come off that keeps a faint noise, a lead at a tiny fraction of its amplitude or one that
holds one value but for a short burst was not named when a record was judged against the training
data (only an exactly flat lead was): a record of two leads, its V5 at a twentieth of its amplitude,
was "like the training data". Such a lead is now named as nearly flat (median absolute deviation under
half the least of any training window in that lead)."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.data.records import windows_from_folder
from medlens.evaluation.familiarity import familiarity, familiarity_reference
from medlens.models.attention_rnn import AttentionRNN

wfdb = pytest.importorskip("wfdb")

FS, SECONDS = 250, 40.0


def _record(folder, name, v5_scale=1.0, v5_held=False, seed=3):
    """Two leads with a beat every 0.8 s (N beats, annotated), V5 changed as asked."""
    folder.mkdir(exist_ok=True)
    n = int(SECONDS * FS)
    t = np.arange(n) / FS
    rng = np.random.default_rng(seed)
    sig = np.zeros((n, 2))
    beats = np.arange(0.6, SECONDS - 0.6, 0.8)
    for at in beats:
        bump = np.exp(-0.5 * ((t - at) / 0.02) ** 2) + 0.2 * np.exp(-0.5 * ((t - at - 0.25) / 0.06) ** 2)
        sig[:, 0] += bump
        sig[:, 1] += 0.6 * bump
    sig += 0.03 * rng.standard_normal(sig.shape)
    sig[:, 1] *= v5_scale
    if v5_held:  # held at one value but for 0.1 s around each beat
        near = np.min(np.abs(t[:, None] - beats[None]), 1) < 0.05
        sig[~near, 1] = 0.0
    wfdb.wrsamp(name, fs=FS, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=sig, fmt=["16", "16"],
                adc_gain=[1000.0, 1000.0], baseline=[0, 0], write_dir=str(folder))
    marks = np.round(beats * FS).astype(int)
    wfdb.wrann(name, "atr", marks, np.array(["N"] * len(marks)), write_dir=str(folder))
    return windows_from_folder(folder / f"{name}.hea", windows="beats", annotation_labels="N:normal").inputs


@pytest.fixture(scope="module")
def model_and_reference(tmp_path_factory):
    x = _record(tmp_path_factory.mktemp("train"), "train")
    net = AttentionRNN(1, in_channels=2, hidden_size=6, attention_size=5, front_channels=4).eval()
    return net, familiarity_reference(net, x[: len(x) // 2], x[len(x) // 2:])


@pytest.mark.parametrize("change", [{"v5_scale": 0.05}, {"v5_held": True}], ids=["tiny amplitude", "mostly one value"])
def test_a_nearly_flat_lead_is_named(model_and_reference, tmp_path, change):
    net, reference = model_and_reference
    x = _record(tmp_path / "r", "odd", **change)
    found = familiarity(net, x[5:6], reference, channels=["MLII", "V5"])
    assert any("lead 2 (V5) is nearly flat" in r for r in found.reasons), found.reasons
    assert not any("lead 1" in r for r in found.reasons)


def test_a_record_like_the_training_one_names_no_lead(model_and_reference, tmp_path):
    net, reference = model_and_reference
    x = _record(tmp_path / "r", "same", seed=4)  # other noise, same leads
    assert not any("flat" in r for k in range(len(x)) for r in familiarity(net, x[k:k + 1], reference).reasons)
