"""The leaderboard verdict: which method to trust for this model, decided from the summary's numbers.

The decisions live here (eligibility, ranking, localisation against the model-free maps, reliance
on the shortcut marker); the sentences that say them are in :mod:`.wording`.
"""

from __future__ import annotations

import math

from medlens.evaluation.faithfulness import MIN_DROP
from medlens.evaluation.leaderboard import wording as words
from medlens.evaluation.leaderboard.store import BASELINE_PREFIX
from medlens.evaluation.leaderboard.summary import stat
from medlens.evaluation.registry import get_metric

__all__ = ["RELIANCE_THRESHOLD", "deletion_drop", "relies_on_marker", "trust_verdict"]

_RANKED = ("deletion_auc", "insertion_auc", "pointing_game", "mass_in_mask", "iou")
#: The model is said to rely on the marker when pasting it raises the probability of its class by
#: more than this on average, or erasing it lowers that probability by more than this.
RELIANCE_THRESHOLD = 0.1


def trust_verdict(summary: dict) -> dict:
    """Which method to trust for this model, and why, from the summary's numbers.

    A method is *eligible* when it passes the randomisation check (mean Spearman correlation
    with the randomised model's map below :data:`SANITY_THRESHOLD`) and beats the random
    baseline on deletion AUC significantly (the 95 % bootstrap interval of the paired
    per-case difference lies below 0), both when computed. The deletion test counts only when its
    curve can fall: when blurring the whole input lowers the explained class's probability by less
    than :data:`~medlens.evaluation.faithfulness.MIN_DROP` on average (the random map's mean
    deletion curve, :func:`deletion_drop`), every map ends where it started and a "significant"
    difference of 0.0000x is rounding; no method is then eligible (seen: an untrained CNN whose
    output is 0.50 on every case was recommended with a deletion AUC 0.00001 below random's).
    Nothing is eligible either when the model's predictions on the scored cases are not shown to beat
    always answering the most frequent label (``summary["chance"]``, a one-sided binomial test): a
    map can show what such a model uses, but what it uses is no evidence of the finding. Eligible methods are ranked by their mean
    rank over the faithfulness and localisation metrics computed (deletion, insertion, pointing
    game, mass in mask, IoU); the best is recommended.

    Every method is also weighed against the model-free baselines (edge detector, centre
    prior; :func:`_against_baselines`): one that localises no better than a map made without the
    model is reported as such, in plain words ("Do not use ... to locate the finding"), whether
    or not it is recommended for showing what drives the model. On the lesion benchmark the
    edge map hits the lesion more often than gradient or integrated gradients, so this matters.

    Returns
    -------
    dict
        ``best`` (name or ``None``), ``ranking`` (eligible names, best first), ``methods``
        (per method: ``eligible``, ``problems``, ``mean_rank``, ``localisation``: the
        comparison with the model-free maps or ``None``), ``text`` (sentences for the
        report, each backed by its number), ``sentences`` (the same as segments whose
        comparative phrases carry their claims, see :mod:`.wording`), ``shortcut_text`` and
        ``shortcut_sentence`` (or ``None``).
    """
    config = summary["config"]
    methods = [e for e in config["entries"] if config["kinds"][e] == "method"]
    random = BASELINE_PREFIX + "random"
    info: dict[str, dict] = {}
    errors = summary.get("errors", {})
    drop = deletion_drop(summary)
    chance = summary.get("chance")
    at_chance = bool(chance) and chance["better"] is False
    for m in methods:
        problems = [words.chance_problem(chance)] if at_chance else []
        if m in errors:
            info[m] = {"eligible": False, "problems": [f"not scored: {errors[m]}"]}
            continue
        rho = stat(summary, m, "randomisation_spearman")
        if rho is not None and not rho["mean"] < config["sanity_threshold"]:
            problems.append(words.sanity_problem(rho, config["sanity_threshold"]))
        dele, rdele = stat(summary, m, "deletion_auc"), stat(summary, random, "deletion_auc")
        paired = (dele or {}).get("vs_random")
        if dele is not None and rdele is not None and drop is not None and drop < MIN_DROP:
            problems.append(words.flat_deletion_problem(dele, rdele, paired, drop, MIN_DROP))
        elif dele is not None and rdele is not None and paired and not paired["ci_high"] < 0:
            problems.append(words.deletion_problem(dele, rdele, paired))
        info[m] = {"eligible": not problems, "problems": problems, "localisation": _against_baselines(summary, m)}
    ranked_metrics = [k for k in _RANKED if k in config["metrics"]]
    for metric in ranked_metrics:
        higher = get_metric(metric).higher_is_better
        scored = [(m, stat(summary, m, metric)) for m in methods]
        scored = [(m, s["mean"]) for m, s in scored if s is not None]
        order = sorted(scored, key=lambda t: -t[1] if higher else t[1])
        for rank, (m, _v) in enumerate(order, 1):
            info[m].setdefault("ranks", []).append(rank)
    for m in methods:
        ranks = info[m].pop("ranks", [])
        info[m]["mean_rank"] = sum(ranks) / len(ranks) if ranks else math.nan
    eligible = sorted((m for m in methods if info[m]["eligible"]), key=lambda m: (info[m]["mean_rank"], m))
    best = eligible[0] if eligible else None
    sentences: list[list[dict]] = []
    if best is None and at_chance:
        sentences.append(words.chance_sentence(chance))
    elif best is None:
        n_cases = config.get("n_samples", 0)
        sentences.append(words.no_method_sentence(len(methods), n_cases))
    elif not {"deletion_auc", "randomisation_spearman"} & set(config["metrics"]):
        # Without a faithfulness or sanity check, a ranking says where maps point, not whether
        # they can be trusted.
        sentences.append(words.best_on_sentence(summary, ranked_metrics))
    else:
        rank = info[best]["mean_rank"]
        loc = info[best].get("localisation")
        sentences.append(words.recommendation(summary, best, len(methods), ranked_metrics, n_eligible=len(eligible),
                                              mean_rank=None if math.isnan(rank) else rank,
                                              locates=not (loc and loc["no_better_than"])))
        if len(eligible) > 1:
            runner = eligible[1]
            sentences.append(words.runner_up_sentence(runner, info[runner]["mean_rank"], info[best]["mean_rank"]))
    for m in methods:
        if m in errors:
            sentences.append([{"text": f"{m} was not scored: {errors[m]}."}])
            continue
        for problem in info[m]["problems"][1 if at_chance else 0:]:  # the chance sentence says it once for all
            sentences.append([{"text": f"Do not rely on {m}: "}, *problem, {"text": "."}])
        loc = info[m].get("localisation")
        if loc and loc["no_better_than"]:
            sentences.append(words.localisation_sentence(m, loc))
    for m in methods:
        if "problems" in info[m]:
            info[m]["problems"] = [words.sentence_text(p) if isinstance(p, list) else p for p in info[m]["problems"]]
    shortcut = (words.shortcut_sentence(summary, methods, relies_on_marker(summary["shortcut"]))
                if summary.get("shortcut") else None)
    return {
        "best": best,
        "ranking": eligible,
        "methods": info,
        "text": [words.sentence_text(t) for t in sentences],
        "sentences": sentences,
        "shortcut_text": words.sentence_text(shortcut) if shortcut else None,
        "shortcut_sentence": shortcut,
    }


def deletion_drop(summary: dict) -> float | None:
    """How far the explained class's probability falls, on average over the scored cases, when the
    whole input is removed: the start minus the end of the random map's mean deletion curve
    (every deletion curve ends at the fully blurred input). ``None`` when no curve was stored."""
    curve = ((summary.get("curves") or {}).get("deletion_auc") or {}).get("methods", {}).get(BASELINE_PREFIX + "random")
    return float(curve[0] - curve[-1]) if curve and len(curve) > 1 else None


#: Localisation metrics, in the order the verdict prefers for comparing with the model-free maps.
_LOCALISATION = ("pointing_game", "mass_in_mask", "iou")
def _against_baselines(summary: dict, method: str) -> dict | None:
    """How ``method`` localises compared with the model-free baselines (edge, centre).

    The first localisation metric computed (pointing game, else mass in lesion, else IoU) is
    compared with each non-random baseline. The method localises *no better* than a baseline
    when the 95 % bootstrap interval of the paired per-case difference does not lie above 0
    (when only means are known, when its mean is not above the baseline's).

    Returns
    -------
    dict or None
        ``metric``, ``value``, ``baselines`` (``{name: mean}``), ``no_better_than`` (names,
        best baseline first), ``paired`` (``{name: paired difference or None}``); ``None`` without a localisation metric or baseline.
    """
    config = summary["config"]
    others = [e for e in config["entries"] if config["kinds"].get(e) == "baseline" and e != BASELINE_PREFIX + "random"]
    for metric in _LOCALISATION:
        if metric not in config["metrics"]:
            continue
        own = stat(summary, method, metric)
        if own is None:
            continue
        refs = {b: stat(summary, b, metric) for b in others}
        refs = {b: r for b, r in refs.items() if r is not None}
        if not refs:
            return None
        paired = own.get("vs_baselines") or {}
        worse = []
        for b, r in refs.items():
            p = paired.get(b)
            if (p is not None and not p["ci_low"] > 0) or (p is None and not own["mean"] > r["mean"]):
                worse.append(b)
        worse.sort(key=lambda b: -refs[b]["mean"])
        return {
            "metric": metric,
            "value": own["mean"],
            "baselines": {b[len(BASELINE_PREFIX):]: r["mean"] for b, r in refs.items()},
            "no_better_than": [b[len(BASELINE_PREFIX):] for b in worse],
            "paired": {b[len(BASELINE_PREFIX):]: paired.get(b) for b in refs},
        }
    return None


def relies_on_marker(shortcut: dict) -> bool:
    """Whether the shortcut audit says the model relies on the marker.

    Reliance is judged by intervention (the model's output moves when only the marker changes);
    the accuracy gap is reported as supporting evidence, it also moves with chance.
    """
    delta, erased = shortcut["delta_p_pasted"], shortcut["delta_p_erased"]
    return bool((delta is not None and delta > RELIANCE_THRESHOLD) or (erased is not None and erased < -RELIANCE_THRESHOLD))
