"""Preprocessing recipes that travel with a model, and the inverse geometry that maps a map back.

A :class:`Recipe` declares, as plain data, how a file becomes a model input:

* intensity, in this order: CT windows in Hounsfield units (one channel per window, stacked the
  way Lee et al.'s intracranial haemorrhage system feeds brain, subdural and bone windows: Lee
  et al., "An explainable deep-learning algorithm for the detection of acute intracranial
  haemorrhage from small datasets", Nature Biomedical Engineering 3, 173-182, 2019), percentile
  clipping, then one normalisation (``"minmax"``, ``"zscore"``, ``"unit"`` = divide by the
  file's largest storable value, e.g. 255 for 8-bit pictures, or ``"none"``), then optional
  per-channel ``mean``/``std`` (ImageNet-style models);
* channels: colour to grey (ITU-R BT.601 luma) or grey repeated to the model's channel count;
* geometry: the middle slice of a volume for a 2-D model, resampling to a voxel ``spacing`` (mm),
  then ``size`` reached by resizing or by centred cropping/padding;
* signals: lead selection by name, a ``start`` time in seconds, resampling to the model's rate
  ``fs`` and a window of ``length`` samples.

:func:`prepare` applies a recipe to a :class:`~medlens.data.formats.common.Volume` or
:class:`~medlens.data.formats.signals.Signal` and returns the model input with a :class:`Geometry`;
:func:`invert` maps an attribution on the model's grid back onto the record's own grid (image,
volume or signal), so that ``attribution.npy`` has the original's shape. Pure tensor transforms:
nothing here knows a model. The recipe is stored in the medlens model file's metadata
(``meta["recipe"]``, :meth:`Recipe.to_dict`) and read back with :meth:`Recipe.from_dict`; for a
user's own model it is a small JSON or YAML file (:meth:`Recipe.from_file`).
"""

from medlens.data.recipe.inverse import invert, mask_on_model_grid
from medlens.data.recipe.prepare import Geometry, Prepared, prepare, resample_grid
from medlens.data.recipe.spec import (
    FITS,
    NORMALISATIONS,
    RECIPE_VERSION,
    WINDOW_PRESETS,
    Recipe,
    parse_window,
    recipe_for_shape,
)

__all__ = [
    "FITS",
    "Geometry",
    "NORMALISATIONS",
    "Prepared",
    "RECIPE_VERSION",
    "Recipe",
    "WINDOW_PRESETS",
    "invert",
    "mask_on_model_grid",
    "parse_window",
    "prepare",
    "recipe_for_shape",
    "resample_grid",
]
