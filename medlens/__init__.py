"""medlens: explain medical deep-learning models and measure how far each explanation can be trusted."""

from medlens.core.wait_policy import prefer_short_spins

prefer_short_spins()  # before torch loads: see medlens.core.wait_policy

from medlens.api import (
    AuditRequest,
    EvaluateRequest,
    ExplainRequest,
    Recipe,
    RecipeOptions,
    ReportRequest,
    TrainRequest,
    audit_cohort,
    case_report,
    check_input,
    evaluate,
    evaluation_mode,
    explain,
    explain_file,
    invert,
    load_signal,
    methods,
    open_cases,
    prepare,
    read,
    train,
)
from medlens.attribution.token_ids import token_attributions
from medlens.core.engine import Budget
from medlens.core.targets import MultiLabel, Target, to_target
from medlens.errors import (
    FileFormatError,
    InputError,
    MedlensError,
    TargetError,
    UnknownNameError,
)
from medlens.types import Attribution

__version__ = "0.1.0"

__all__ = [
    "AuditRequest",
    "EvaluateRequest",
    "ExplainRequest",
    "RecipeOptions",
    "ReportRequest",
    "TrainRequest",
    "audit_cohort",
    "case_report",
    "evaluate",
    "explain_file",
    "open_cases",
    "train",
    "Attribution",
    "Budget",
    "FileFormatError",
    "InputError",
    "MedlensError",
    "MultiLabel",
    "Recipe",
    "Target",
    "TargetError",
    "UnknownNameError",
    "check_input",
    "evaluation_mode",
    "explain",
    "token_attributions",
    "invert",
    "load_signal",
    "methods",
    "prepare",
    "read",
    "to_target",
    "__version__",
]
