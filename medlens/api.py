"""The public face: everything a user imports from ``medlens`` itself.

Nothing inside medlens imports this module; it only re-exports functions that live in the
layers below (``explain`` lives in :mod:`medlens.attribution`). The use cases are the ones the
command line runs: each takes its request object (``medlens.app.*.…Request``) or the request's
fields as keywords, the recipe options (``recipe``, ``size``, ``normalize``, ``windows``,
``start``, ``leads``) among them, and returns the same result the command prints from.

=====================  ====================  ==========================================
function               command               request
=====================  ====================  ==========================================
:func:`explain_file`   ``medlens explain``   :class:`~medlens.app.explain_file.ExplainRequest`
:func:`evaluate`       ``medlens evaluate``  :class:`~medlens.app.evaluate.EvaluateRequest`
:func:`audit_cohort`   ``medlens audit``     :class:`~medlens.app.audit.AuditRequest`
:func:`case_report`    ``medlens report``    :class:`~medlens.app.report_case.ReportRequest`
:func:`train`          ``medlens train``     :class:`~medlens.app.train.TrainRequest`
=====================  ====================  ==========================================
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from medlens.app.audit import AuditOutcome, AuditRequest
from medlens.app.evaluate import EvaluateRequest, EvaluateResult
from medlens.app.explain_file import ExplainRequest, ExplainResult
from medlens.app.inputs import RecipeOptions
from medlens.app.report_case import ReportRequest, ReportResult
from medlens.app.train import TrainRequest, TrainResult
from medlens.attribution.explain import explain, methods
from medlens.core.checks import check_input, evaluation_mode
from medlens.data.cases import open_cases
from medlens.data.formats.read import read
from medlens.data.formats.signals import load_signal
from medlens.data.recipe import Recipe, invert, prepare

__all__ = [
    "AuditRequest", "EvaluateRequest", "ExplainRequest", "Recipe", "RecipeOptions", "ReportRequest", "TrainRequest",
    "audit_cohort", "case_report", "check_input", "evaluate", "evaluation_mode", "explain", "explain_file", "invert",
    "load_signal", "methods", "open_cases", "prepare", "read", "train",
]

_RECIPE_FIELDS = {f.name for f in fields(RecipeOptions)}


def _request(cls: type, request: Any, kwargs: dict[str, Any]) -> Any:
    """``request`` as it is, or one built from keywords (recipe options folded into ``recipe``)."""
    if request is not None:
        if kwargs:
            raise TypeError("give a request or keywords, not both")
        return request
    if "recipe" in {f.name for f in fields(cls)}:
        given = {k: kwargs.pop(k) for k in list(kwargs) if k in _RECIPE_FIELDS and k != "recipe"}
        recipe = kwargs.get("recipe")
        if given or recipe is None or isinstance(recipe, str):
            kwargs["recipe"] = RecipeOptions(recipe=kwargs.pop("recipe", None), **given)
    return cls(**kwargs)


def explain_file(request: ExplainRequest | None = None, **kwargs: Any) -> ExplainResult:
    """Explain a file, a folder of scans or a data-set case and write the maps (``medlens explain``)."""
    from medlens.app.explain_file import explain_file as run

    return run(_request(ExplainRequest, request, kwargs))


def evaluate(request: EvaluateRequest | None = None, **kwargs: Any) -> EvaluateResult:
    """Score explanation methods on a data set and write the leaderboard (``medlens evaluate``)."""
    from medlens.app.evaluate import evaluate_methods

    return evaluate_methods(_request(EvaluateRequest, request, kwargs))


def audit_cohort(request: AuditRequest | None = None, **kwargs: Any) -> AuditOutcome:
    """Audit every case of a data set and find the model's strategies (``medlens audit``)."""
    from medlens.app.audit import audit_cohort as run

    return run(_request(AuditRequest, request, kwargs))


def case_report(request: ReportRequest | None = None, **kwargs: Any) -> ReportResult:
    """Write a clinician's case report for one scan (``medlens report``)."""
    from medlens.app.report_case import report_case

    return report_case(_request(ReportRequest, request, kwargs))


def train(request: TrainRequest | None = None, **kwargs: Any) -> TrainResult:
    """Train a reference model and write its file (``medlens train``)."""
    from medlens.app.train import train_model

    return train_model(_request(TrainRequest, request, kwargs))
