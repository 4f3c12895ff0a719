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

__all__ = ["looks_like_ct"]

AIR = (-1100.0, -900.0)  # air in HU, with the spread of reconstruction noise
AIR_SHARE = 0.01  # at least this share of the values at air (outside the body, the lungs)
BELOW_AIR_SHARE = 0.001  # at most this share below air, the padding aside
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
