"""Class names as a reader sees them: a class without a name is "class 0", never a bare "0"."""

from __future__ import annotations

from typing import Sequence

__all__ = ["class_label", "class_labels", "named_classes"]


def named_classes(names: Sequence[str] | None) -> list[str]:
    """``names`` when they name the classes; ``[]`` when there are none or they are only the class
    indices written as text (an npz without ``class_names`` gives ``"0", "1", ...``)."""
    names = [str(n) for n in (names or [])]
    if all(n.strip() == str(k) for k, n in enumerate(names)):
        return []
    return names


def class_label(names: Sequence[str] | None, k: int) -> str:
    """The words for class ``k``: its name, else ``"class k"``."""
    named = named_classes(names)
    return named[k] if 0 <= k < len(named) and named[k].strip() else f"class {k}"


def class_labels(names: Sequence[str] | None, n: int) -> list[str]:
    """The words for classes ``0 .. n-1``."""
    return [class_label(names, k) for k in range(n)]
