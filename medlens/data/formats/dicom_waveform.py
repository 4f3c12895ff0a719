"""DICOM waveforms (12-lead ECG, haemodynamic, EEG objects) read as a :class:`Signal`.

A DICOM waveform object holds no pixel data: its ``WaveformSequence`` holds multiplex groups,
each of channels sampled together (a 12-lead ECG: the 10 s rhythm, and often a median beat).
:func:`load_dicom_waveform` reads the first group, the recording, through pydicom
(``Dataset.waveform_array``: ``ChannelSensitivity`` x correction factor, plus ``ChannelBaseline``),
in the units of ``ChannelSensitivityUnitsSequence`` ("uV", "mV", "mm[Hg]"), each channel named by
its source (``ChannelSourceSequence``: "Lead I (Einthoven)"). Patient and study attributes go to
``identifiers`` as for images.
"""

from __future__ import annotations

import pathlib
import warnings
from typing import Any

import numpy as np
import torch

from medlens.data.formats.common import PathLike, one_line_errors
from medlens.data.formats.limits import check_decoded_size
from medlens.data.formats.signals import Signal
from medlens.errors import FileFormatError

__all__ = ["is_waveform", "load_dicom_waveform"]

#: UCUM unit codes as the signal readers name them (mm[Hg] -> mmHg); others are kept as they are.
_UNITS = {"mm[Hg]": "mmHg", "Cel": "degC"}


def is_waveform(path: PathLike) -> bool:
    """``path`` is a DICOM object with a waveform and no pixel data (its header alone read)."""
    from medlens.data.formats.dicom_limits import read_header

    try:
        ds = read_header(pathlib.Path(path))
    except Exception:  # noqa: BLE001 - not a readable DICOM header: the image reader names the problem
        return False
    return "WaveformSequence" in ds and not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


@one_line_errors("DICOM waveform")
def load_dicom_waveform(path: PathLike, *, memory_mb: float | None = None) -> Signal:
    """The first multiplex group of a DICOM waveform object as a :class:`Signal` ``(C, L)``.

    Raises
    ------
    FileFormatError
        No waveform, channels of different units kinds the header does not give, a group too
        large for the decoding limit, or data pydicom cannot decode.
    """
    from medlens.data.formats.dicom import DICOM_IDENTIFIER_TAGS, _collect_tags, _read_dicom

    p = pathlib.Path(path)
    ds = _read_dicom(p, memory_mb)  # a deflated file checked against the limit before it is inflated
    groups = ds.get("WaveformSequence") or []
    if not groups:
        raise FileFormatError(f"{p} holds no waveform")
    group = groups[0]
    n_channels, n_samples = int(group.NumberOfWaveformChannels), int(group.NumberOfWaveformSamples)
    check_decoded_size(p, (n_samples, n_channels), 8, memory_mb=memory_mb, what="samples",
                       detail=f"{n_samples} samples x {n_channels} channels of float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = np.asarray(ds.waveform_array(0), dtype=np.float64)  # (samples, channels), physical units
    if values.shape != (n_samples, n_channels):
        raise FileFormatError(f"{p}: its waveform holds {values.shape} samples x channels, its header says "
                              f"{(n_samples, n_channels)}")
    channels = group.get("ChannelDefinitionSequence") or []
    names = tuple(_channel_name(c, k) for k, c in enumerate(channels)) or tuple(f"channel {k}" for k in range(n_channels))
    units = tuple(_channel_unit(c) for c in channels) or ("",) * n_channels
    fs = float(group.SamplingFrequency)
    metadata = {"Format": "DICOM waveform", "Modality": str(ds.get("Modality", "")),
                "SOPClassUID": str(ds.get("SOPClassUID", "")), "Samples": str(n_samples),
                "DurationSeconds": f"{n_samples / fs:g}", "MultiplexGroup": str(group.get("MultiplexGroupLabel", "")),
                "MultiplexGroups": str(len(groups))}
    return Signal(torch.from_numpy(np.ascontiguousarray(values.T, dtype=np.float32)), fs, names, units, (),
                  metadata, _collect_tags(ds, DICOM_IDENTIFIER_TAGS), "DICOM", str(p))


def _channel_name(channel: Any, k: int) -> str:
    source = (channel.get("ChannelSourceSequence") or [None])[0]
    name = str(getattr(source, "CodeMeaning", "") or channel.get("ChannelLabel", "") or "").strip()
    return name or f"channel {k}"


def _channel_unit(channel: Any) -> str:
    unit = (channel.get("ChannelSensitivityUnitsSequence") or [None])[0]
    code = str(getattr(unit, "CodeValue", "") or "").strip()
    return _UNITS.get(code, code)
