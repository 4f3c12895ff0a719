"""The seed systems, one module each, with one runner shape and one registry.

* representation systems (``medlens systems``): :mod:`.deeptune`, :mod:`.scinet`, :mod:`.groupinn`;
* imaging systems (``medlens imaging-report``, ``medlens demo --systems``): :mod:`.haemorrhage`,
  :mod:`.attention_gates`, :mod:`.patch_attention`.

Each module composes medlens's compute packages (which do not import each other), measures the
system against known answers, and exposes ``INFO``: ``INFO.run(SystemConfig(...), progress)``
returns a result with ``as_dict()`` and ``images`` (:mod:`.base`). :mod:`.registry` lists them;
:mod:`.reports` runs them for the commands; :mod:`.training` trains SciNet and GroupINN for
``medlens train``. Their report sections live in :mod:`medlens.report.systems` and
:mod:`medlens.report.imaging_systems`.
"""

from medlens.app.systems.attention_gates import (
    AttentionGatesResult,
    run_attention_gates,
)
from medlens.app.systems.base import SystemConfig, SystemInfo
from medlens.app.systems.deeptune import DeepTuneResult, run_deeptune, train_ensemble
from medlens.app.systems.groupinn import (
    GroupINNResult,
    run_groupinn,
    train_groupinn_on_fmri,
)
from medlens.app.systems.haemorrhage import HaemorrhageResult, run_haemorrhage
from medlens.app.systems.patch_attention import (
    PatchAttentionResult,
    run_patch_attention,
)
from medlens.app.systems.registry import (
    IMAGING_SYSTEMS,
    REGISTRY,
    SYSTEMS,
    get_system,
    system_names,
)
from medlens.app.systems.reports import (
    run_systems,
    systems_report,
    write_imaging_report,
)
from medlens.app.systems.scinet import (
    SciNetResult,
    run_scinet,
    train_scinet_on_oscillators,
)
from medlens.app.systems.training import SYSTEM_DATA, train_system

__all__ = [
    "IMAGING_SYSTEMS",
    "REGISTRY",
    "SYSTEMS",
    "SYSTEM_DATA",
    "AttentionGatesResult",
    "DeepTuneResult",
    "GroupINNResult",
    "HaemorrhageResult",
    "PatchAttentionResult",
    "SciNetResult",
    "SystemConfig",
    "SystemInfo",
    "get_system",
    "run_attention_gates",
    "run_deeptune",
    "run_groupinn",
    "run_haemorrhage",
    "run_patch_attention",
    "run_scinet",
    "run_systems",
    "system_names",
    "systems_report",
    "train_ensemble",
    "train_groupinn_on_fmri",
    "train_scinet_on_oscillators",
    "train_system",
    "write_imaging_report",
]
