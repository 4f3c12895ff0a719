"""How far can an explanation be trusted: metrics, sanity checks and a leaderboard.

Stateless metric functions (torch in, torch out), each batched through the engine:

* faithfulness: :func:`deletion`, :func:`insertion` (Petsiuk et al. 2018);
* localisation against ground-truth masks: :func:`pointing_game`, :func:`mass_in_mask`,
  :func:`iou_at`;
* sanity: :func:`cascading_randomisation` (Adebayo et al. 2018), with :func:`spearman` and
  :func:`ssim`;
* robustness: :func:`max_sensitivity` (Yeh et al. 2019);
* baselines every metric is also scored for: :data:`BASELINES` (random, centre, edge);
* the shortcut audit :func:`marker_intervention`;
* the leaderboard :func:`evaluate` (resumable JSON-lines results, summary, verdict), with its
  metric registry (:func:`metric_names`, :func:`get_metric`, :func:`register_metric`).

The tests of attention as explanation live in :mod:`medlens.evaluation.attention`; the report
and demo sections in :mod:`medlens.app.evaluation_section` (imported on use: matplotlib).
"""

from medlens.evaluation.baselines import (
    BASELINES,
    baseline_attribution,
    centre_attribution,
    edge_attribution,
    random_attribution,
)
from medlens.evaluation.faithfulness import PerturbationCurve, deletion, insertion
from medlens.evaluation.leaderboard import (
    LeaderboardSettings,
    evaluate,
    read_results,
    summarise,
    trust_verdict,
)
from medlens.evaluation.localisation import (
    iou_at,
    mass_in_mask,
    otsu_threshold,
    pointing_game,
)
from medlens.evaluation.registry import (
    EvalBatch,
    MetricInfo,
    get_metric,
    metric_names,
    register_metric,
)
from medlens.evaluation.robustness import max_sensitivity
from medlens.evaluation.sanity import (
    SANITY_THRESHOLD,
    SanityResult,
    cascading_randomisation,
    randomisable_layers,
    randomised_copy,
)
from medlens.evaluation.shortcut import MarkerIntervention, marker_intervention
from medlens.evaluation.similarity import rankdata, spearman, ssim

__all__ = [
    "BASELINES",
    "SANITY_THRESHOLD",
    "EvalBatch",
    "LeaderboardSettings",
    "MarkerIntervention",
    "MetricInfo",
    "PerturbationCurve",
    "SanityResult",
    "baseline_attribution",
    "cascading_randomisation",
    "centre_attribution",
    "deletion",
    "edge_attribution",
    "evaluate",
    "get_metric",
    "insertion",
    "iou_at",
    "marker_intervention",
    "mass_in_mask",
    "max_sensitivity",
    "metric_names",
    "otsu_threshold",
    "pointing_game",
    "random_attribution",
    "randomisable_layers",
    "randomised_copy",
    "rankdata",
    "read_results",
    "register_metric",
    "spearman",
    "ssim",
    "summarise",
    "trust_verdict",
]
