"""An EDF whose header cannot scale a signal (a physical range of 0; a digital minimum not below the
maximum) was refused with edflib's words, "the file is not EDF(+) or BDF(+) compliant (Physical
Maximum)", naming neither the signal nor what is wrong with it. The line now names both. A physical
minimum above the maximum is legal (inverted polarity) and reads with its samples negated."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.data.formats.signals import load_signal
from medlens.errors import FileFormatError

pyedflib = pytest.importorskip("pyedflib")

LABELS = ["Fp1", "C3", "O1"]
FIELDS = [("label", 16), ("transducer type", 80), ("physical dimension", 8), ("physical minimum", 8),
          ("physical maximum", 8), ("digital minimum", 8), ("digital maximum", 8), ("prefiltering", 80),
          ("samples per data record", 8), ("reserved", 32)]


def _edf(path, **changes):
    """Three signals (and EDF+'s annotation signal); ``changes`` rewrite a field of signal 2."""
    writer = pyedflib.EdfWriter(str(path), len(LABELS), file_type=pyedflib.FILETYPE_EDFPLUS)
    writer.setSignalHeaders([{"label": label, "dimension": "uV", "sample_frequency": 100, "physical_max": 500.0,
                              "physical_min": -500.0, "digital_max": 32767, "digital_min": -32768} for label in LABELS])
    t = np.arange(300) / 100
    writer.writeSamples([100 * np.sin(2 * np.pi * (2 + k) * t) for k in range(len(LABELS))])
    writer.close()
    with open(path, "r+b") as fh:
        ns = int(fh.read(256)[252:256])
        at = 256
        for name, width in FIELDS:
            if name in changes:
                fh.seek(at + width * 1)
                fh.write(changes[name].ljust(width).encode("ascii"))
            at += width * ns
    return path


@pytest.mark.parametrize("changes, said", [
    ({"physical maximum": "-500"}, "signal 2 (C3) has a physical range of 0 (minimum and maximum both -500)"),
    ({"digital minimum": "32767", "digital maximum": "-32768"},
     "signal 2 (C3) has a digital minimum 32767 not below its digital maximum -32768"),
    ({"digital minimum": "32767"}, "signal 2 (C3) has a digital minimum 32767 not below its digital maximum 32767"),
], ids=["physical range 0", "digital range inverted", "digital range empty"])
def test_a_range_that_cannot_scale_is_named_in_one_line(tmp_path, changes, said):
    with pytest.raises(FileFormatError) as err:
        load_signal(_edf(tmp_path / "odd.edf", **changes))
    assert said in str(err.value) and "\n" not in str(err.value)


def test_an_inverted_physical_range_reads_negated(tmp_path):
    plain = load_signal(_edf(tmp_path / "plain.edf")).values
    flipped = load_signal(_edf(tmp_path / "flipped.edf", **{"physical minimum": "500", "physical maximum": "-500"})).values
    assert np.allclose(flipped[1].numpy(), -plain[1].numpy(), atol=0.05) and np.allclose(flipped[0], plain[0])
