"""How outputs number slices and cases for people: one convention for every figure, report and message.

* A position counted for people is 1-based and says of how many: ``axial slice 13 of 28``, as the
  report's slice viewer shows it (:mod:`medlens.report.viewer`). Figure titles, report text and
  notes use :func:`slice_words`.
* A stored index, the number an option takes or a file holds (``--slice``, ``--index``, the rows of
  a data set, ``train_index`` in basis.json, the arrays of an ``.npy`` output), stays 0-based and
  is written with ``#`` (``case #3``, ``training image #3``, ``sequence #3``) or next to its
  option (``--slice 12``), so that it is never read as a count.
"""

from __future__ import annotations

__all__ = ["slice_words"]


def slice_words(index: int, count: int, plane: str | None = None) -> str:
    """Slice ``index`` (0-based, stored) of ``count`` for people: ``"axial slice 13 of 28"``."""
    return f"{plane + ' ' if plane else ''}slice {int(index) + 1} of {int(count)}"

