"""The one runner shape every seed system has, and what the runners share.

A system module (``deeptune``, ``scinet``, ``groupinn``, ``haemorrhage``, ``attention_gates``,
``patch_attention``) exposes ``INFO``, a :class:`SystemInfo` whose ``run(config, progress)``
takes a :class:`SystemConfig` and a :class:`~medlens.core.progress.Progress` and returns a result
dataclass with ``as_dict()`` (its numbers as plain data) and ``images`` (report pictures). The
registry (:mod:`medlens.app.systems.registry`) lists them for ``medlens systems``,
``medlens imaging-report`` and ``medlens demo --systems``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Mapping

import torch
from torch import nn

from medlens.core.progress import Progress

__all__ = [
    "NumbersAndPictures",
    "SystemConfig",
    "SystemInfo",
    "SystemResult",
    "nanmean",
    "outputs",
    "picture",
]


@dataclass(frozen=True)
class SystemConfig:
    """What a system run is asked for: the seed, full or quick sizes, and size overrides.

    ``options`` override the sizes of the chosen preset (``FULL`` or ``QUICK`` of the system),
    by the keyword names of the system's detailed runner (e.g. ``{"epochs": 3}``).
    """

    seed: int = 0
    quick: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    def sizes(self, info: "SystemInfo") -> dict[str, Any]:
        """The keyword arguments of ``info``'s runner: its preset, then ``options``."""
        return {**(info.quick if self.quick else info.full), **self.options}


class SystemResult:
    """Base of a system's result dataclass: numbers in its fields, report pictures in ``images``.

    Fields named in ``_NOT_NUMBERS`` (the trained model, the simulator's hidden plant) are left
    out of :meth:`as_dict`, as are the pictures.
    """

    _NOT_NUMBERS = ("images", "model", "plant")

    def as_dict(self) -> dict[str, Any]:
        """The numbers as plain data (tensors as lists); the pictures and the model left out."""
        from medlens.core.files import jsonable

        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            if f.name in self._NOT_NUMBERS:
                continue
            value = getattr(self, f.name)
            out[f.name] = value if isinstance(value, (int, float, str, dict, list, type(None))) else jsonable(value)
        return out


class NumbersAndPictures(SystemResult):
    """A result whose fields are plain numbers already (the imaging systems)."""

    def as_dict(self) -> dict[str, Any]:
        """The numbers as plain data (JSON-ready); the pictures left out."""
        return {k: v for k, v in asdict(self).items() if k != "images"}  # type: ignore[call-overload]


@dataclass(frozen=True)
class SystemInfo:
    """A seed system in the registry.

    Attributes
    ----------
    name : str
    family : {"representation", "imaging"}
        ``medlens systems`` runs the representation systems, ``medlens imaging-report`` (and
        ``demo --systems``) the imaging ones.
    title : str
        One line for listings.
    runner : callable
        The detailed runner, taking the sizes as keywords, ``seed`` and ``progress``.
    full, quick : dict
        Sizes of a full run (the acceptance numbers; empty: the runner's defaults) and of a quick
        one (a smoke test).
    """

    name: str
    family: str
    title: str
    runner: Callable[..., Any]
    full: Mapping[str, Any] = field(default_factory=dict)
    quick: Mapping[str, Any] = field(default_factory=dict)

    def run(self, config: SystemConfig = SystemConfig(), progress: Progress | None = None) -> Any:
        """Run the system: the one runner shape, ``run(config, progress) -> result``."""
        from medlens.core.progress import SILENT

        return self.runner(seed=config.seed, progress=progress or SILENT, **config.sizes(self))


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's outputs for ``x`` through the engine, in one chunk (the numbers of a direct call)."""
    from medlens.core import engine

    return engine.forward(model, x, engine.Budget(batch_size=max(1, len(x))))


def picture(image: torch.Tensor, heat: torch.Tensor, scale: int = 3) -> bytes:
    """PNG of ``heat`` ``(H, W)`` over ``image`` ``(H, W)``, each pixel shown ``scale`` x ``scale``."""
    import numpy as np

    from medlens.viz.figures import image_png, overlay_image

    rgb = overlay_image(image, heat)
    return image_png(np.kron(rgb, np.ones((scale, scale, 1), dtype=np.uint8)))


def nanmean(v: torch.Tensor) -> float:
    """Mean of the finite-or-infinite, non-NaN entries; NaN when there are none."""
    v = v.double()
    v = v[~torch.isnan(v)]
    return float(v.mean()) if v.numel() else math.nan
