"""Reference models trained on demand and reused while their settings stay the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import nn

from medlens.errors import FileFormatError
from medlens.models import load_model, save_model

CACHE_KEY = "cache_settings"


def cached_model(
    path: str | Path, settings: dict[str, Any], train: Callable[[], tuple[nn.Module, dict[str, Any]]]
) -> tuple[nn.Module, dict[str, Any], bool]:
    """The model at ``path`` if it was trained with ``settings``, else ``train()`` saved there.

    Parameters
    ----------
    path : path
        Model file (medlens format).
    settings : dict
        Plain data that determines the model (data, epochs, seed, sizes); stored in the file's
        metadata under ``"cache_settings"`` and compared on the next call.
    train : callable
        Returns ``(model, meta)``; called only when the file is missing, unreadable or was
        trained with other settings.

    Returns
    -------
    (model, meta, reused)
    """
    path = Path(path)
    if path.exists():
        try:
            model, meta = load_model(path)
        except FileFormatError:
            pass  # an unreadable or stale file: train again and overwrite it
        else:
            if meta.get(CACHE_KEY) == settings:
                return model, meta, True
    model, meta = train()
    meta = {**meta, CACHE_KEY: settings}
    save_model(model, path, meta)
    return model, meta, False
