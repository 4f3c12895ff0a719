"""The public face: everything a user imports from ``medlens`` itself.

Nothing inside medlens imports this module; it only re-exports functions that live in the
layers below (``explain`` lives in :mod:`medlens.attribution`).
"""

from medlens.attribution.explain import explain, methods
from medlens.core.checks import check_input, evaluation_mode

__all__ = ["check_input", "evaluation_mode", "explain", "methods"]
