"""The inverse geometry: maps and masks carried between the record's grid and the model's."""


from __future__ import annotations

import torch

from medlens.data.recipe.prepare import Geometry, _apply_pads, resample_grid
from medlens.errors import InputError


def mask_on_model_grid(geometry: Geometry, mask: torch.Tensor) -> torch.Tensor:
    """A mask on the record's own grid (a segmentation of the scan) carried onto the model's grid
    the way :func:`prepare` carried the image: the same slice, the same resampling and the same
    crop or pad; a model-grid element belongs to the mask when at least half of it is covered
    (a finding smaller than that keeps the elements it covers most).

    Raises
    ------
    InputError
        ``mask`` is not on the record's grid, or the geometry is a signal's.
    """
    if geometry.kind != "image":
        raise InputError("masks are carried onto the model grid for images and volumes only")
    m = torch.as_tensor(mask).detach().double().cpu()
    if tuple(m.shape) != tuple(geometry.original_shape):
        raise InputError(f"the mask has shape {tuple(m.shape)} but the scan is {tuple(geometry.original_shape)}")
    m = (m != 0).double()
    if geometry.slice_index is not None:
        m = m.select(geometry.slice_axis, geometry.slice_index)
    m = resample_grid(m[None], geometry.resampled_shape) if tuple(m.shape) != tuple(geometry.resampled_shape) else m[None]
    cover = _apply_pads(m, geometry.pads)[0]
    inside = cover >= 0.5
    if not bool(inside.any()) and float(cover.max()) > 0:  # a finding smaller than half a model element
        inside = cover == cover.max()  # keeps the elements it covers most
    return inside


def invert(geometry: Geometry, values: torch.Tensor) -> torch.Tensor:
    """Map an attribution on the model's grid back onto the record's own grid.

    Parameters
    ----------
    geometry : Geometry
        From :func:`prepare`.
    values : torch.Tensor
        ``(C, *model_spatial)`` (or ``(*model_spatial)``) on the model's input grid.

    Returns
    -------
    torch.Tensor
        Images and volumes: ``(*original_shape)``, channels summed (the relevance of each
        original pixel), zero outside what the model saw (cropped borders, other slices).
        Signals: ``(n_channels, L)`` on the original time axis, each selected lead's map on its
        own channel (a one-channel map, e.g. a CAM, on every selected lead), zero outside the
        window and on leads the model did not see.
    """
    v = values.detach().float().cpu()
    if v.ndim == len(geometry.model_shape):
        v = v[None]
    if tuple(v.shape[1:]) != tuple(geometry.model_shape):
        raise InputError(f"map of shape {tuple(v.shape)} is not on the model grid {geometry.model_shape}")
    if geometry.kind == "signal":
        s0, s1 = geometry.span
        back = resample_grid(v, (s1 - s0,))
        if back.shape[0] == 1 and len(geometry.channel_index) > 1:
            back = back.expand(len(geometry.channel_index), -1)
        out = torch.zeros(geometry.n_channels, geometry.original_shape[0])
        out[list(geometry.channel_index), s0:s1] = back
        return out
    v = v.sum(dim=0, keepdim=True)
    undo = tuple((-a, -b) for a, b in geometry.pads)
    v = _apply_pads(v, undo)
    axis = geometry.slice_axis
    shape = geometry.original_shape
    plane = shape[:axis] + shape[axis + 1:] if geometry.slice_index is not None else shape
    v = resample_grid(v, plane)[0]
    if geometry.slice_index is not None:
        out = torch.zeros(shape)
        out.select(axis, geometry.slice_index).copy_(v)
        return out
    return v
