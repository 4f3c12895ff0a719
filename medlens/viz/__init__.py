"""Pictures of explanations: overlays, slice grids, signal strips. numpy/matplotlib live here only."""

from medlens.viz.figures import (
    attribution_figure,
    comparison_figure,
    figure_png,
    heat_map,
    image_png,
    overlay_image,
    overlay_png,
)
from medlens.viz.signals import signal_attribution_figure

__all__ = [
    "attribution_figure", "comparison_figure", "figure_png", "heat_map", "image_png", "overlay_image", "overlay_png",
    "signal_attribution_figure",
]
