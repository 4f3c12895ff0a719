"""Whether a scan's values look like CT Hounsfield units, for files that name no modality.

A DICOM file says its modality; a NIfTI or ``.npy`` volume does not, so a CT saved as NIfTI
reached a model trained on MRI with nothing said. CT values have a physical floor: air is about
-1000 HU, and a CT has air around the body or in the lungs, while no value lies far below air
(the padding outside the field of view, one value below air such as -1500, -2048 or
-3024, is set apart). MRI magnitudes are never
negative, and a phase image spreads evenly over negative and positive values. So a scan looks
like CT when a share of its values sits at air and almost none lie between the padding and air.
"""

from __future__ import annotations

import torch

__all__ = ["SOFT_TISSUE", "display_range", "looks_like_ct"]

AIR = (-1100.0, -900.0)  # air in HU, with the spread of reconstruction noise
AIR_SHARE = 0.01  # at least this share of the values at air (outside the body, the lungs)
BELOW_AIR_SHARE = 0.001  # at most this share below air, the padding aside
SOFT_TISSUE = (40.0, 400.0)  # the window (centre, width in HU) a CT is read in when nothing else is said
SAMPLE = 1 << 20  # values looked at (evenly strided), so a whole-body CT is judged in milliseconds


def looks_like_ct(array: torch.Tensor) -> bool:
    """Whether ``array`` (a scan in its file's own units) looks like CT in Hounsfield units."""
    values = torch.as_tensor(array).detach().reshape(-1)
    if values.numel() == 0:
        return False
    values = values[:: max(1, values.numel() // SAMPLE)].float()
    padding = values.min()  # the scanner's padding outside its field of view: its lowest value, when below air
    values = values[values != padding] if padding < AIR[0] else values
    if values.numel() == 0:
        return False
    at_air = ((values >= AIR[0]) & (values <= AIR[1])).float().mean()
    below_air = (values < AIR[0]).float().mean()
    return bool(at_air >= AIR_SHARE and below_air <= BELOW_AIR_SHARE)


def display_range(array: torch.Tensor, windows=()) -> tuple[tuple[float, float], str] | None:
    """The grey range a scan is drawn in and its words: the recipe's first CT window ``(centre,
    width)``, else the soft-tissue window for values that look like CT; ``None`` for anything
    else (drawn from its least to its greatest value). A CT drawn from -1024 to 3071 HU shows
    every soft tissue as one grey."""
    if windows:
        centre, width = (float(v) for v in windows[0])
    elif looks_like_ct(array):
        centre, width = SOFT_TISSUE
    else:
        return None
    return (centre - width / 2, centre + width / 2), f"CT window {centre:g}/{width:g} HU"
