"""Synthetic EEG and report generators: known structure, exact masks, npz round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlens.data.synthetic.eeg import CLASS_NAMES as EEG_CLASSES
from medlens.data.synthetic.eeg import make_eeg, pink_noise, spike_and_wave, write_eeg_npz
from medlens.data.datasets import load_dataset
from medlens.data.synthetic.reports_text import (
    RATIONALE_WORDS,
    VOCAB,
    decode,
    load_vocab,
    make_reports,
    write_reports_npz,
)
from medlens.core.random import derive_seed
from medlens.errors import InputError

FS = 128.0


@pytest.fixture(scope="module")
def eeg():
    return make_eeg(60, seed=6)


def band_power(x: torch.Tensor, lo: float, hi: float, fs: float = FS) -> torch.Tensor:
    spectrum = torch.fft.rfft(x.double() - x.double().mean(-1, keepdim=True)).abs() ** 2
    f = torch.fft.rfftfreq(x.shape[-1], 1 / fs)
    return spectrum[..., (f >= lo) & (f < hi)].mean(-1)


def test_eeg_shapes_labels_and_determinism(eeg):
    assert eeg.inputs.shape == (60, 4, 512) and eeg.inputs.dtype == torch.float32
    assert eeg.masks.shape == (60, 1, 512) and eeg.class_names == EEG_CLASSES
    assert int(eeg.labels.sum()) == 30
    again, other = make_eeg(60, seed=6), make_eeg(60, seed=4)
    assert torch.equal(again.inputs, eeg.inputs) and torch.equal(again.masks, eeg.masks)
    assert not torch.equal(other.inputs, eeg.inputs)


def test_eeg_masks_mark_one_burst_in_positives_only(eeg):
    for i in range(len(eeg)):
        mask = eeg.masks[i, 0]
        if eeg.labels[i] == 0:
            assert mask.sum() == 0
            continue
        on = torch.nonzero(mask).flatten()
        assert on.numel() == int(on[-1] - on[0]) + 1  # one contiguous run
        assert 0.75 * FS - 1 <= on.numel() <= 1.5 * FS + 1


def test_eeg_burst_is_3hz_spike_and_wave_inside_the_mask(eeg):
    """Inside the mask, 2.5-4 Hz power towers over the same band outside it."""
    ratios = []
    for i in torch.nonzero(eeg.labels).flatten().tolist():
        m = eeg.masks[i, 0] > 0
        inside, outside = eeg.inputs[i][:, m], eeg.inputs[i][:, ~m]
        n = min(inside.shape[1], outside.shape[1])
        ratios.append(float(band_power(inside[:, :n], 2.5, 4.0).mean() / band_power(outside[:, :n], 2.5, 4.0).mean()))
    assert np.median(ratios) > 3


def test_spike_and_wave_repeats_at_its_rate():
    wave = spike_and_wave(512, FS, 3.0, 0.2)
    f = torch.fft.rfftfreq(512, 1 / FS)
    power = torch.fft.rfft(wave - wave.mean()).abs() ** 2
    # the harmonics of 3 Hz carry the power: the strongest bin lies on a multiple of 3 Hz
    strongest = float(f[power.argmax()])
    assert abs(strongest / 3.0 - round(strongest / 3.0)) < 0.1
    # autocorrelation peaks one period (fs / 3 samples) later
    centred = wave - wave.mean()
    lags = range(20, 70)
    ac = [float((centred[:-lag] * centred[lag:]).sum()) for lag in lags]
    assert abs(list(lags)[int(np.argmax(ac))] - FS / 3.0) <= 1.5


def test_background_is_one_over_f_with_an_alpha_peak(eeg):
    negatives = eeg.inputs[eeg.labels == 0]
    # 1/f: power falls from low to middle frequencies
    assert band_power(negatives, 1, 3).mean() > 3 * band_power(negatives, 20, 30).mean()
    # alpha: 8-12 Hz stands above its neighbours, more on posterior (last) channels
    alpha = band_power(negatives, 8, 12).mean(0)
    flank = band_power(negatives, 14, 18).mean(0)
    assert torch.all(alpha > 2 * flank)
    assert alpha[-1] > alpha[0]


def test_pink_noise_has_the_requested_slope():
    gen = torch.Generator().manual_seed(0)
    noise = pink_noise(40, 1, 4096, torch.full((40,), 1.5, dtype=torch.float64), gen)
    f = torch.fft.rfftfreq(4096)[1:]
    power = (torch.fft.rfft(noise).abs() ** 2).mean((0, 1))[1:]
    keep = (f > 0.005) & (f < 0.4)
    slope = np.polyfit(np.log(f[keep].numpy()), np.log(power[keep].numpy()), 1)[0]
    assert abs(slope + 1.5) < 0.1
    torch.testing.assert_close(noise.std(-1), torch.ones(40, 1, dtype=torch.float64))


def test_eeg_rejects_impossible_settings():
    with pytest.raises(InputError, match="do not fit"):
        make_eeg(4, seconds=1.0)
    with pytest.raises(InputError, match="at least one"):
        make_eeg(0)


def test_eeg_npz_loads_in_the_medmnist_layout(tmp_path):
    path = write_eeg_npz(tmp_path / "eeg.npz", n_train=6, n_val=4, n_test=4, seed=1, n_channels=3, seconds=2.0)
    test = load_dataset(path, "test")
    assert test.inputs.shape == (4, 3, 256) and test.masks.shape == (4, 1, 256)
    assert test.class_names == EEG_CLASSES
    assert torch.equal(test.inputs, make_eeg(4, seed=derive_seed(1, "test"), n_channels=3, seconds=2.0).inputs)
    with np.load(path) as data:
        assert float(data["fs"]) == 128.0


@pytest.fixture(scope="module")
def reports():
    return make_reports(200, seed=5)


def words_and_masks(reports, i):
    words = decode(reports.inputs[i])
    return words, reports.masks[i, 0, : len(words)].bool().tolist()


def sentences(words, marks):
    out, cur = [], []
    for w, m in zip(words, marks):
        if w == ".":
            out.append(cur)
            cur = []
        else:
            cur.append((w, m))
    return out


def test_reports_label_rests_on_affirmed_rationale_words(reports):
    assert reports.inputs.dtype == torch.int64 and int(reports.labels.sum()) == 100
    negated_mentions = 0
    for i in range(len(reports)):
        words, marks = words_and_masks(reports, i)
        assert words[-1] == "."
        affirmed = [s for s in sentences(words, marks) if s[0][0] != "no" and any(w in RATIONALE_WORDS for w, _ in s)]
        if reports.labels[i] == 1:
            assert len(affirmed) == 1
            # the mask is the whole finding sentence, nothing else
            assert all(m for _, m in affirmed[0]) and sum(marks) == len(affirmed[0])
        else:
            assert not affirmed and not any(marks)
            negated_mentions += any(w in RATIONALE_WORDS for w in words)
    assert 30 < negated_mentions < 70  # about half of the negatives mention a finding negated


def test_word_level_rationale_marks_only_finding_words():
    data = make_reports(100, seed=2, rationale="words")
    for i in torch.nonzero(data.labels).flatten().tolist():
        words, marks = words_and_masks(data, i)
        marked = [w for w, m in zip(words, marks) if m]
        assert marked and set(marked) <= RATIONALE_WORDS
    with pytest.raises(InputError, match="rationale"):
        make_reports(3, rationale="phrases")


def test_reports_are_deterministic_and_padded(reports):
    again = make_reports(200, seed=5)
    assert torch.equal(again.inputs, reports.inputs) and torch.equal(again.masks, reports.masks)
    lengths = (reports.inputs != 0).sum(1)
    assert int(lengths.max()) == reports.inputs.shape[1]
    for i, n in enumerate(lengths.tolist()):
        assert torch.all(reports.inputs[i, n:] == 0) and torch.all(reports.masks[i, 0, n:] == 0)


def test_vocabulary_is_fixed_and_decodes():
    assert VOCAB[0] == "<pad>" and VOCAB[1] == "<unk>" and len(set(VOCAB)) == len(VOCAB)
    assert RATIONALE_WORDS <= set(VOCAB)
    ids = torch.tensor([VOCAB.index("no"), VOCAB.index("pneumonia"), 500, 0, 0])
    assert decode(ids) == ["no", "pneumonia", "<unk>"]


def test_reports_npz_round_trip_with_vocabulary(tmp_path):
    path = write_reports_npz(tmp_path / "r.npz", n_train=8, n_val=4, n_test=5, seed=0)
    test = load_dataset(path, "test")
    assert test.inputs.dtype == torch.int64 and test.masks.shape == (5, 1, test.inputs.shape[1])
    assert load_vocab(path) == VOCAB
    np.savez(tmp_path / "plain.npz", test_tokens=np.zeros((2, 3), np.int64), test_labels=np.zeros(2, np.int64))
    assert load_vocab(tmp_path / "plain.npz") is None
    positives = test.labels == 1
    assert torch.all(test.masks[positives].sum((1, 2)) > 0) and torch.all(test.masks[~positives] == 0)
