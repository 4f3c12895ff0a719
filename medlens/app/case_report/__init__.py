"""The computing side of the case report: run the model, the methods, the trust checks, the
prediction basis and the generated sentence on one case, and hand the results to
:func:`medlens.report.case.render_case_report`.

:func:`case_report` is the entry point (``medlens report`` reaches it through
:func:`medlens.app.report_case.report_case`); it takes the case (:class:`CaseInput`) and a
:class:`CaseReportSettings`. How far the maps can be trusted comes either from a leaderboard run
of the same model (:func:`trust_from_evaluation`) or, without one, from checks on this case alone
(:func:`case_checks`, computed in :mod:`.checks`, put into words in :mod:`.trust`).

=================  ==========================================================
module             job
=================  ==========================================================
``inputs``         the case as read and the report's settings (the request)
``calibration``    the reliability table stored with a model and its sentence
``checks``         the per-case checks, computed
``trust``          the checks and a leaderboard verdict in plain words
``build``          :func:`case_report`: everything the page shows for one case
=================  ==========================================================
"""

from medlens.app.case_report.build import _native_map as _native_map, case_report, withheld_names
from medlens.app.case_report.calibration import calibration_data, calibration_sentence
from medlens.app.case_report.checks import MIN_DROP, N_RANDOM, CaseCheck, case_checks
from medlens.app.case_report.inputs import DEFAULT_METHODS, CaseInput, CaseReportSettings
from medlens.app.case_report.trust import trust_from_checks, trust_from_evaluation

__all__ = [
    "DEFAULT_METHODS",
    "MIN_DROP",
    "N_RANDOM",
    "CaseCheck",
    "CaseInput",
    "CaseReportSettings",
    "calibration_data",
    "calibration_sentence",
    "case_checks",
    "case_report",
    "trust_from_checks",
    "trust_from_evaluation",
    "withheld_names",
]
