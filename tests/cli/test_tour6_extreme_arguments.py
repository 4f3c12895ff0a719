"""Extreme numbers on the command line are refused in one line, never an internal error.

Seen on real files (CT_small.dcm, MIT-BIH 100, pyedflib's test_utf8.edf):
--memory-mb 1e308 -> "CT_small.dcm is a corrupt DICOM file (OverflowError ...)";
--memory-mb 0.0001 -> "declares 0.0 MB ... above the decoding limit of 0.0 MB";
--fs 1e308 -> internal error (RuntimeError: input (W: 0)); train --before 1e308 or --length 1e308
-> internal error (OverflowError); --length 1e-308 -> "recipe size must be positive whole numbers";
--size 100000,100000 or --option n_steps=1e11 -> "internal error (a bug in medlens)" for running
out of memory.
"""

from __future__ import annotations

import pytest
import torch

from medlens.cli import main, out_of_memory
from medlens.data.formats.limits import check_decoded_size, decode_limit_bytes
from medlens.data.formats.signals import Signal
from medlens.data.recipe import Recipe, prepare
from medlens.data.records import beat_windows, fixed_windows
from medlens.errors import FileFormatError, InputError


def test_a_memory_budget_beyond_any_memory_is_the_largest_limit_and_a_tiny_one_is_printed_readably():
    assert decode_limit_bytes(1e308) == 2**62
    with pytest.raises(FileFormatError) as err:
        check_decoded_size("scan.dcm", (128, 128), 2, memory_mb=0.0001)
    assert "declares 0.0312 MB" in str(err.value) and "limit of 0.0 MB" not in str(err.value)


def _record():
    from medlens.data.formats.signals import Annotation

    return Signal(torch.zeros(1, 2000), 100.0, ("II",), ("mV",), (Annotation(1000, "N"),))


@pytest.mark.parametrize("seconds, words", [(1e308, "is longer than any record"), (1e-308, "fewer than two samples")])
def test_window_lengths_without_a_whole_number_of_samples_are_refused(seconds, words):
    with pytest.raises(InputError, match=words):
        fixed_windows(_record(), "a", length=seconds)
    with pytest.raises(InputError, match=words):
        beat_windows(_record(), {"N": "normal"}, before=0.0, after=seconds)


def test_a_model_rate_so_high_its_window_is_under_one_record_sample_is_refused():
    with pytest.raises(InputError, match="shorter than one sample of the record at 100 Hz"):
        prepare(_record(), Recipe(normalize="none", channels=1, size=(252,), fs=1e308, start=1.0))


def test_running_out_of_memory_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys):
    import medlens.cli.explain as explain

    def greedy(_args):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 40000000000 bytes")

    monkeypatch.setattr(explain, "run", greedy)
    assert main(["explain", "--model", "m.pt", "--input", "x.png", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("medlens: error: not enough memory for what was asked")
    assert out_of_memory(MemoryError()) and not out_of_memory(RuntimeError("shape mismatch"))
