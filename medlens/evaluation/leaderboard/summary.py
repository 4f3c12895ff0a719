"""The leaderboard's summary, computed from the results file alone.

Mean and 95 % bootstrap confidence interval per method and metric (paired with the random and
the model-free baselines on the same cases), mean deletion / insertion curves, the shortcut
audit, and the verdict (:mod:`.verdict`). :func:`summary_table` lays the statistics out for a
report.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch

from medlens.evaluation.leaderboard.store import BASELINE_PREFIX, clean, read_results
from medlens.evaluation.registry import get_metric

__all__ = ["bootstrap_ci", "leader_comparisons", "stat", "summarise", "summary_table"]


def bootstrap_ci(values: torch.Tensor, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values`` ``(n,)``."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    if n == 1:
        return float(values[0]), float(values[0])
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(n, (n_boot, n), generator=gen)
    means = values.to(torch.float64)[idx].mean(1)
    alpha = (1 - level) / 2
    lo, hi = torch.quantile(means, torch.tensor([alpha, 1 - alpha], dtype=torch.float64))
    return float(lo), float(hi)


def _chance(records: list[dict]) -> dict | None:
    """:func:`medlens.evaluation.chance.chance_record` of the scored cases (each case once), or
    ``None`` without labels."""
    from medlens.evaluation.chance import chance_record

    cases = {r["sample"]: (r.get("label"), r["predicted"]) for r in records if "predicted" in r}
    return chance_record(cases.values())


def summarise(path: str | os.PathLike, *, n_boot: int = 2000) -> dict:
    """Summary of a results file: statistics, mean curves, shortcut audit, verdict.

    Returns
    -------
    dict
        ``config``; ``rows``: one per (method, metric) with ``n``, ``mean``, ``ci_low``,
        ``ci_high`` (95 % percentile bootstrap, seeded with the run's seed); ``curves``:
        ``{metric: {"fractions": [...], "methods": {method: mean curve}}}``; ``shortcut``
        (or ``None``); ``verdict`` (see :func:`.verdict.trust_verdict`); ``complete``: whether every
        (sample, method) pair is present; ``chance``: whether the model's predictions beat always
        answering the most frequent label on the scored cases (:func:`medlens.evaluation.chance.chance_record`;
        ``None`` without labels).
    """
    config, records = read_results(path)
    entries, kinds, metrics = config["entries"], config["kinds"], list(config["metrics"])
    by_entry: dict[str, list[dict]] = {e: [] for e in entries}
    model_records = []
    for r in records:
        if r["kind"] == "model":
            model_records.append(r)
        elif r["method"] in by_entry:
            by_entry[r["method"]].append(r)
    rows = []
    curves: dict[str, dict] = {}
    random = BASELINE_PREFIX + "random"
    random_values = {
        metric: {r["sample"]: r["metrics"][metric] for r in by_entry.get(random, []) if r["metrics"].get(metric) is not None}
        for metric in metrics
    }
    baseline_values = {
        entry: {
            metric: {r["sample"]: r["metrics"][metric] for r in by_entry[entry] if r["metrics"].get(metric) is not None}
            for metric in metrics
        }
        for entry in entries if kinds[entry] == "baseline"
    }
    for entry in entries:
        recs = sorted(by_entry[entry], key=lambda r: r["sample"])
        for metric in metrics:
            vals = torch.tensor(
                [r["metrics"][metric] for r in recs if r["metrics"].get(metric) is not None], dtype=torch.float64
            )
            lo, hi = bootstrap_ci(vals, n_boot=n_boot, seed=config["seed"])
            row = {
                "method": entry, "kind": kinds[entry], "metric": metric, "n": len(vals),
                "mean": float(vals.mean()) if len(vals) else math.nan, "ci_low": lo, "ci_high": hi,
            }
            # Paired with the random baseline on the same cases: far tighter than comparing two
            # marginal intervals, because case difficulty cancels.
            if entry != random and random_values[metric]:
                diffs = torch.tensor(
                    [r["metrics"][metric] - random_values[metric][r["sample"]] for r in recs
                     if r["metrics"].get(metric) is not None and r["sample"] in random_values[metric]],
                    dtype=torch.float64,
                )
                d_lo, d_hi = bootstrap_ci(diffs, n_boot=n_boot, seed=config["seed"])
                row["vs_random"] = {"n": len(diffs), "mean": float(diffs.mean()) if len(diffs) else math.nan,
                                    "ci_low": d_lo, "ci_high": d_hi}
            # Paired with every model-free baseline too (edge, centre): a method that localises no
            # better than a map that never looks at the model has not shown it finds the lesion.
            if kinds[entry] == "method":
                versus = {}
                for other in entries:
                    if kinds[other] != "baseline" or other == random or not baseline_values[other][metric]:
                        continue
                    ref = baseline_values[other][metric]
                    diffs = torch.tensor(
                        [r["metrics"][metric] - ref[r["sample"]] for r in recs
                         if r["metrics"].get(metric) is not None and r["sample"] in ref],
                        dtype=torch.float64,
                    )
                    if len(diffs):
                        d_lo, d_hi = bootstrap_ci(diffs, n_boot=n_boot, seed=config["seed"])
                        versus[other] = {"n": len(diffs), "mean": float(diffs.mean()), "ci_low": d_lo, "ci_high": d_hi}
                if versus:
                    row["vs_baselines"] = versus
            rows.append(row)
            series = [r["curves"][metric] for r in recs if metric in r.get("curves", {})]
            if series:
                mean_curve = torch.tensor(series, dtype=torch.float64).mean(0)
                steps = len(mean_curve) - 1
                block = curves.setdefault(metric, {"fractions": [k / steps for k in range(steps + 1)], "methods": {}})
                block["methods"][entry] = mean_curve.tolist()
    errors = {}
    for entry in entries:
        for r in by_entry[entry]:
            if "error" in r:
                errors.setdefault(entry, r["error"])
    n_expected = config["n_samples"] * (len(entries) + (1 if config.get("marker_audit") else 0))
    summary = {
        "config": config,
        "rows": clean(rows),
        "curves": clean(curves),
        "shortcut": _shortcut_summary(model_records, config) if model_records else None,
        "complete": len({(r["sample"], r["method"]) for r in records}) == n_expected,
        "errors": errors,
        "chance": _chance(records),
    }
    summary["leaders"] = clean(leader_comparisons(summary, by_entry, n_boot=n_boot))
    from medlens.evaluation.leaderboard.verdict import (
        trust_verdict,  # the verdict reads summaries: imported here
    )

    summary["verdict"] = trust_verdict(summary)
    return summary


def leader_comparisons(summary: dict, by_entry: dict[str, list[dict]], *, n_boot: int = 2000) -> dict:
    """Per ranked metric, the method with the best mean and its paired difference with every other method.

    Only a method whose paired 95 % interval against every other method excludes 0 (on the good
    side) may be called the best on that metric; otherwise the report says "indistinguishable".

    Returns
    -------
    dict
        ``{metric: {"method": leader, "versus": {other: {"n", "mean", "ci_low", "ci_high"}}}}``,
        differences ``leader - other`` on the cases both were scored on, percentile bootstrap
        seeded with the run's seed; metrics without a direction (diagnostics) are left out.
    """
    config = summary["config"]
    methods = [e for e in config["entries"] if config["kinds"][e] == "method" and e not in summary.get("errors", {})]
    out: dict[str, dict] = {}
    for metric in config["metrics"]:
        higher = get_metric(metric).higher_is_better
        if higher is None:
            continue
        means = {m: s["mean"] for m in methods if (s := stat(summary, m, metric)) is not None}
        if not means:
            continue
        leader = max(means, key=lambda m: means[m] if higher else -means[m])  # ties: the first entry
        own = {r["sample"]: r["metrics"][metric] for r in by_entry[leader] if r["metrics"].get(metric) is not None}
        versus = {}
        for other in means:
            if other == leader:
                continue
            diffs = torch.tensor([own[r["sample"]] - r["metrics"][metric] for r in by_entry[other]
                                  if r["metrics"].get(metric) is not None and r["sample"] in own], dtype=torch.float64)
            if len(diffs):
                lo, hi = bootstrap_ci(diffs, n_boot=n_boot, seed=config["seed"])
                versus[other] = {"n": len(diffs), "mean": float(diffs.mean()), "ci_low": lo, "ci_high": hi}
        out[metric] = {"method": leader, "versus": versus}
    return out


def _shortcut_summary(records: list[dict], config: dict) -> dict:
    k = config["marker_class"]
    present = torch.tensor([r["metrics"]["marker_present"] for r in records], dtype=torch.bool)
    p0 = torch.tensor([r["metrics"]["p_original"] for r in records], dtype=torch.float64)
    p1 = torch.tensor([r["metrics"]["p_intervened"] for r in records], dtype=torch.float64)
    label = torch.tensor([-1 if r["label"] is None else r["label"] for r in records])
    predicted = torch.tensor([r["predicted"] for r in records])
    frac = torch.tensor([r["metrics"]["marker_fraction"] for r in records], dtype=torch.float64)
    has_label = label >= 0
    agree = has_label & (present == (label == k))
    conflict = has_label & ~(present == (label == k))

    def mean(t: torch.Tensor) -> float:
        return float(t.to(torch.float64).mean()) if t.numel() else math.nan

    absent = ~present
    flips = absent & (predicted != k) & (p1 > 0.5)
    return clean({
        "marker_class": k,
        "n_with_marker": int(present.sum()),
        "n_without_marker": int(absent.sum()),
        "marker_area_fraction": mean(frac[present]),
        "delta_p_pasted": mean((p1 - p0)[absent]),
        "delta_p_erased": mean((p1 - p0)[present]),
        "flipped_by_pasting": mean(flips[absent & (predicted != k)]) if bool((absent & (predicted != k)).any()) else math.nan,
        "accuracy_marker_agrees": mean((predicted == label)[agree]),
        "accuracy_marker_conflicts": mean((predicted == label)[conflict]),
        "n_agree": int(agree.sum()),
        "n_conflict": int(conflict.sum()),
    })


def stat(summary: dict, method: str, metric: str) -> dict | None:
    for row in summary["rows"]:
        if row["method"] == method and row["metric"] == metric and row["n"]:
            return row
    return None



def summary_table(summary: dict) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows: one row per method (baselines last), ``mean [low, high]`` per metric."""
    config = summary["config"]
    metrics = list(config["metrics"])
    headers = ["method"] + [
        get_metric(m).label + {True: " (higher better)", False: " (lower better)", None: ""}[get_metric(m).higher_is_better]
        for m in metrics
    ] + ["n"]
    table = []
    for entry in config["entries"]:
        row: list[Any] = [entry.replace(BASELINE_PREFIX, "") + (" (baseline)" if config["kinds"][entry] == "baseline" else "")]
        n = 0
        for m in metrics:
            s = stat(summary, entry, m)
            row.append("n/a" if s is None else f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]")
            n = max(n, s["n"] if s else 0)
        row.append(n)
        table.append(row)
    return headers, table


