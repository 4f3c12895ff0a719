"""Windows cut from signal records around annotations, at the record's rate or resampled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlens.data.formats.signals import load_signal
from medlens.data.records import (
    beat_window, beat_windows, fixed_windows, parse_annotation_labels, resample_signal, to_record_axis,
    windows_from_folder,
)
from medlens.errors import InputError

BEATS = [(400, "N"), (900, "A"), (1500, "N"), (2100, "V"), (2600, "+"), (3950, "N")]


def ramp_record(folder, fs=200, name="rec", n=4000):
    """Two leads: lead 0 is the time (so a window shows where it was cut: sample / 100 at 200 Hz), lead 1 a sine.

    The beats lie at the same times whatever the rate."""
    import wfdb

    t = np.arange(n) / fs  # seconds
    sig = np.stack([t * 2.0, np.sin(2 * np.pi * 1.5 * t)], 1)
    wfdb.wrsamp(name, fs=fs, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=sig, fmt=["32", "32"],
                adc_gain=[1000.0, 1000.0], baseline=[0, 0], write_dir=str(folder))
    wfdb.wrann(name, "atr", np.array([s * fs // 200 for s, _ in BEATS]), np.array([b for _, b in BEATS]), write_dir=str(folder))
    return folder / name


def test_beat_windows_at_known_annotations(tmp_path):
    signal = load_signal(ramp_record(tmp_path))
    w = beat_windows(signal, "N:normal,A:atrial premature,V:ventricular", before=0.25, after=0.45)
    # 50 samples before and 90 after each beat at 200 Hz; the last N runs off the end
    assert w.inputs.shape == (4, 2, 140) and w.fs == 200
    assert w.samples.tolist() == [400, 900, 1500, 2100] and w.symbols == ("N", "A", "N", "V")
    assert w.labels.tolist() == [0, 1, 0, 2] and w.class_names == ("normal", "atrial premature", "ventricular")
    assert w.skipped == {"unmapped symbol '+'": 1, "runs off the record": 1}
    for k, s in enumerate(w.samples.tolist()):  # lead 0 holds the sample index / 100
        assert torch.allclose(w.inputs[k, 0], torch.arange(s - 50, s + 90).float() / 100, atol=1e-3)
    assert w.recipe().fs == 200 and w.recipe().size == (140,)
    assert torch.equal(w.between(0, 5).samples, torch.tensor([400, 900]))
    one = beat_windows(signal, {"N": "normal"}, leads=["V5"], normalize="zscore")
    assert one.inputs.shape == (2, 1, 140) and one.leads == ("V5",)
    assert torch.allclose(one.inputs.mean(-1), torch.zeros(2, 1), atol=1e-5)
    with pytest.raises(InputError, match="no annotation"):
        beat_windows(signal, "Q:other")
    with pytest.raises(InputError, match="SYMBOL:CLASS"):
        parse_annotation_labels("N=normal")


def test_model_rate_resampling(tmp_path):
    """A 200 Hz record cut at a 100 Hz model rate gives the windows of the same record sampled at 100 Hz."""
    signal = load_signal(ramp_record(tmp_path))
    w = beat_windows(signal, {"N": "normal", "A": "a", "V": "v"}, fs=100.0)
    assert w.inputs.shape == (4, 2, 70) and w.fs == 100.0
    assert w.samples.tolist() == [400, 900, 1500, 2100]  # still on the record's own axis
    # area-averaging pairs of the ramp gives the mean of each pair
    expect = (torch.arange(400 - 50, 400 + 90).float() / 100).reshape(70, 2).mean(1)
    assert torch.allclose(w.inputs[0, 0], expect, atol=1e-3)
    half = resample_signal(signal, 100.0)
    assert half.fs == 100 and half.values.shape == (2, 2000)
    assert [a.sample for a in half.annotations] == [s // 2 for s, _ in BEATS]
    x, span = beat_window(signal, 900, w.recipe(), 0.25)
    assert x.shape == (1, 2, 70) and span == (850, 990)
    back = to_record_axis(torch.ones(2, 70), span, 4000)
    assert back.shape == (2, 4000) and back[:, 850:990].eq(1).all() and back.sum() == 2 * 140


def test_fixed_windows_and_folders(tmp_path):
    ramp_record(tmp_path, name="a")
    ramp_record(tmp_path, name="b", fs=400, n=8000)
    w = windows_from_folder(tmp_path, windows="fixed", record_labels={"a": "af", "b": "sinus"}, length=5.0, fs=200)
    assert w.inputs.shape == (8, 2, 1000) and w.class_names == ("af", "sinus")
    assert w.labels.tolist() == [0] * 4 + [1] * 4 and w.records == ("a",) * 4 + ("b",) * 4
    beats = windows_from_folder(tmp_path, annotation_labels="N:normal,V:ventricular")
    assert beats.fs == 200 and len(beats) == 2 * 3  # the 400 Hz record is resampled to the first one's rate
    # area averaging of sample pairs centres each value between them: half a 400 Hz sample late
    assert torch.allclose(beats.inputs[:3], beats.inputs[3:], atol=2e-2)
    single = fixed_windows(load_signal(tmp_path / "a"), "af", length=4.0, step=2.0)
    assert len(single) == 9 and single.samples[:2].tolist() == [0, 400]


def test_samples_a_record_marks_missing_cost_only_the_windows_that_hold_them(tmp_path):
    """Real records have gaps (wfdb reads the invalid-sample value as NaN; e.g. MIT-LCP's sample
    record 03700181 ends its RESP lead with 4): the record reads, a window holding a gap in a
    lead the model takes is skipped when cutting training windows and refused in one line naming
    the lead and the time when explained, and windows elsewhere, or of other leads, are unchanged."""
    import wfdb

    from medlens.data.recipe import Recipe, prepare

    fs, n = 200, 4000
    t = np.arange(n) / fs
    sig = np.stack([t * 2.0, np.sin(2 * np.pi * 1.5 * t)], 1)
    sig[1450:1460, 1] = np.nan  # a gap in V5 around the third beat (sample 1500 starts its window at 1450)
    wfdb.wrsamp("gap", fs=fs, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=sig, fmt=["32", "32"],
                adc_gain=[1000.0, 1000.0], baseline=[0, 0], write_dir=str(tmp_path))
    wfdb.wrann("gap", "atr", np.array([s for s, _ in BEATS]), np.array([b for _, b in BEATS]), write_dir=str(tmp_path))
    signal = load_signal(tmp_path / "gap")
    assert int(torch.isnan(signal.values).sum()) == 10 and bool(torch.isnan(signal.values[1, 1450:1460]).all())
    w = beat_windows(signal, "N:normal,A:atrial premature,V:ventricular")
    assert w.samples.tolist() == [400, 900, 2100] and w.skipped["missing samples"] == 1
    assert bool(torch.isfinite(w.inputs).all())
    only_mlii = beat_windows(signal, "N:normal,A:atrial premature,V:ventricular", leads=["MLII"])
    assert only_mlii.samples.tolist() == [400, 900, 1500, 2100]  # the gap is in a lead it does not take
    recipe = Recipe(size=(140,), fs=fs, leads=("MLII", "V5"))
    with pytest.raises(InputError, match=r"10 samples of the window 7\.25\.\.7\.95 s are missing .*lead 'V5': 10"):
        prepare(signal, recipe.replace(start=7.25))
    assert bool(torch.isfinite(prepare(signal, recipe.replace(start=2.0)).x).all())
    fixed = fixed_windows(signal, "x", length=1.0)
    assert fixed.skipped == {"missing samples": 1} and len(fixed) == 19  # the window 7..8 s holds the gap


def test_units_convert_within_a_kind_and_refuse_across_kinds():
    from medlens.data.units import dimension, unit_scale

    assert unit_scale("uV", "mV") == pytest.approx(1e-3) and unit_scale("mV", "\u00b5V") == pytest.approx(1e3)
    assert unit_scale("V", "V") == 1.0 and unit_scale("kPa", "mmHg") == pytest.approx(7.500617)
    assert unit_scale("mmHg", "mV") is None and unit_scale("NU", "mV") is None and unit_scale("", "mV") is None
    assert dimension("uV") == "voltage" and dimension("mmHg") == "pressure" and dimension("NU") is None


def test_a_lead_in_another_unit_is_converted_to_the_models_and_one_of_another_kind_refused(tmp_path):
    """The recipe of windows records each lead's unit; a record in uV is seen in mV (its values
    / 1000), a lead in mmHg is refused in one line, a lead of unknown unit is taken as it comes,
    and a folder's later records are cut in its first record's units."""
    import wfdb

    from medlens.data.formats.signals import Signal
    from medlens.data.recipe import Recipe, prepare

    signal = load_signal(ramp_record(tmp_path))
    w = beat_windows(signal, "N:normal,A:atrial premature,V:ventricular")
    assert w.units == ("mV", "mV") and w.recipe().units == ("mV", "mV")
    recipe = w.recipe().replace(start=2.0)
    in_uv = Signal(signal.values * 1000.0, signal.fs, signal.channels, ("uV", "uV"))
    seen, native = prepare(in_uv, recipe), prepare(signal, recipe)
    assert torch.allclose(seen.x, native.x, rtol=1e-5, atol=1e-6)
    assert "lead MLII converted from uV to mV" in seen.notes
    pressure = Signal(signal.values, signal.fs, signal.channels, ("mV", "mmHg"))
    with pytest.raises(InputError, match=r"lead 'V5' of the record is in mmHg \(pressure\); the model's lead 2 was trained in mV"):
        prepare(pressure, recipe)
    unknown = Signal(signal.values, signal.fs, signal.channels, ("NU", ""))
    assert torch.equal(prepare(unknown, recipe).x, native.x)
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    # a folder: the second record is in uV, its windows come out in mV like the first one's
    folder = tmp_path / "folder"
    folder.mkdir()
    ramp_record(folder, name="a")
    t = np.arange(4000) / 200
    wfdb.wrsamp("b", fs=200, units=["uV", "uV"], sig_name=["MLII", "V5"],
                p_signal=np.stack([t * 2000.0, 1000.0 * np.sin(2 * np.pi * 1.5 * t)], 1), fmt=["32", "32"],
                adc_gain=[10.0, 10.0], baseline=[0, 0], write_dir=str(folder))
    wfdb.wrann("b", "atr", np.array([s for s, _ in BEATS]), np.array([b for _, b in BEATS]), write_dir=str(folder))
    both = windows_from_folder(folder, annotation_labels="N:normal,A:atrial premature,V:ventricular")
    assert both.units == ("mV", "mV") and len(both) == 8
    assert torch.allclose(both.inputs[:4], both.inputs[4:], atol=1e-3)
