"""The registry of seed systems: one entry per system, each with the runner shape of
:class:`~medlens.app.systems.base.SystemInfo` (``run(config, progress) -> result``).

``medlens systems`` runs the representation family, ``medlens imaging-report`` and
``medlens demo --systems`` the imaging family. A new system is a module in
:mod:`medlens.app.systems` with an ``INFO`` entry, listed here, and a section in
:mod:`medlens.report.systems` or :mod:`medlens.report.imaging_systems`.
"""

from __future__ import annotations

from medlens.app.systems import (
    attention_gates,
    deeptune,
    groupinn,
    haemorrhage,
    patch_attention,
    scinet,
)
from medlens.app.systems.base import SystemInfo
from medlens.errors import UnknownNameError

__all__ = ["IMAGING_SYSTEMS", "REGISTRY", "SYSTEMS", "get_system", "system_names"]

#: Every seed system by name, in report order.
REGISTRY: dict[str, SystemInfo] = {
    m.INFO.name: m.INFO for m in (deeptune, scinet, groupinn, haemorrhage, attention_gates, patch_attention)
}


def system_names(family: str | None = None) -> tuple[str, ...]:
    """Registered system names, in report order; only those of ``family`` when given."""
    return tuple(n for n, info in REGISTRY.items() if family is None or info.family == family)


def get_system(name: str, family: str | None = None) -> SystemInfo:
    """The registry entry of ``name``; an unknown name (or one of another family) fails listing the known ones."""
    known = system_names(family)
    if name not in known:
        raise UnknownNameError(f"unknown system {name!r}; known: {', '.join(known)}")
    return REGISTRY[name]


#: The representation systems (``medlens systems``) and the imaging systems (``medlens imaging-report``).
SYSTEMS = system_names("representation")
IMAGING_SYSTEMS = system_names("imaging")
