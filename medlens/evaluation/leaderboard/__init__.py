"""The leaderboard: every attribution method scored on every sample by every metric.

One module per job:

* :mod:`.store` - the results file (``results.jsonl``): layout, lock, append, read, repair,
  and the summary files (``summary.json``, ``summary.csv``);
* :mod:`.runner` - :func:`evaluate`, the resumable runner, with its :class:`LeaderboardSettings`;
* :mod:`.summary` - :func:`summarise`, statistics with bootstrap intervals from the file alone;
* :mod:`.verdict` - :func:`trust_verdict`, which method to trust and why (the decisions);
* :mod:`.wording` - the verdict's plain-words sentences.

The model fingerprint recorded in the results file lives in :mod:`medlens.models.fingerprint`.
"""

from medlens.evaluation.leaderboard.runner import LeaderboardSettings, evaluate
from medlens.evaluation.leaderboard.store import (
    BASELINE_PREFIX,
    RESULTS_FILE,
    read_results,
    write_summary,
)
from medlens.evaluation.leaderboard.summary import (
    bootstrap_ci,
    summarise,
    summary_table,
)
from medlens.evaluation.leaderboard.verdict import RELIANCE_THRESHOLD, trust_verdict
from medlens.evaluation.leaderboard.wording import BASELINE_WORDS
from medlens.models.fingerprint import (
    model_fingerprint,
)

__all__ = [
    "BASELINE_PREFIX",
    "BASELINE_WORDS",
    "RELIANCE_THRESHOLD",
    "RESULTS_FILE",
    "LeaderboardSettings",
    "bootstrap_ci",
    "evaluate",
    "model_fingerprint",
    "read_results",
    "summarise",
    "summary_table",
    "trust_verdict",
    "write_summary",
]
