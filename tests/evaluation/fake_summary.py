"""A leaderboard summary with chosen means, for tests of the verdict that need no model run."""

from __future__ import annotations


def fake_summary(rows, *, metrics, entries, kinds=None, n=10, paired=None, shortcut=None):
    """``rows`` ``{(entry, metric): mean}`` as :func:`medlens.evaluation.leaderboard.summarise`
    writes them: CIs of +-0.01, paired differences with the random baseline (+-0.02) where it was
    scored, and ``paired[(entry, metric)]`` as the entry's ``vs_baselines``. ``kinds`` defaults to
    "baseline" for ``baseline:`` entries and "method" for the others."""
    kinds = kinds or {e: ("baseline" if e.startswith("baseline:") else "method") for e in entries}
    config = {"entries": entries, "kinds": kinds, "metrics": {m: {} for m in metrics}, "sanity_threshold": 0.5,
              "class_names": ["no lesion", "lesion"]}
    full = []
    for (m, k), v in rows.items():
        row = {"method": m, "metric": k, "n": n, "mean": v, "ci_low": v - 0.01, "ci_high": v + 0.01}
        if m != "baseline:random" and ("baseline:random", k) in rows:
            d = v - rows[("baseline:random", k)]
            row["vs_random"] = {"n": n, "mean": d, "ci_low": d - 0.02, "ci_high": d + 0.02}
        if paired and (m, k) in paired:
            row["vs_baselines"] = paired[(m, k)]
        full.append(row)
    return {"config": config, "rows": full, "shortcut": shortcut}
