"""The public face: everything a user imports from ``medlens`` itself.

Nothing inside medlens imports this module; it only re-exports functions that live in the
layers below (``explain`` lives in :mod:`medlens.attribution`).
"""

from medlens.attribution.explain import explain, methods
from medlens.core.checks import check_input, evaluation_mode
from medlens.data.recipe import Recipe, invert, prepare
from medlens.data.formats.read import read
from medlens.data.formats.signals import load_signal

__all__ = ["Recipe", "check_input", "evaluation_mode", "explain", "invert", "load_signal", "methods", "prepare", "read"]
