"""The leaderboard verdict in plain words: each sentence a reader without machine learning can
follow, backed by its number. The decisions (which method is eligible, which localises no better
than a model-free map, whether the model relies on the marker) are made in :mod:`.verdict`.
"""

from __future__ import annotations

from medlens.evaluation.leaderboard.store import BASELINE_PREFIX
from medlens.evaluation.leaderboard.summary import stat
from medlens.evaluation.registry import get_metric

__all__ = [
    "BASELINE_WORDS",
    "best_on_sentence",
    "deletion_problem",
    "localisation_sentence",
    "no_method_sentence",
    "recommendation",
    "runner_up_sentence",
    "sanity_problem",
    "shortcut_text",
]

#: How the report names each model-free baseline for a reader who knows no machine learning.
BASELINE_WORDS = {
    "edge": "an edge detector that never looks at the model",
    "centre": "a map that simply favours the centre of the image",
    "random": "a random map",
}


def sanity_problem(rho: dict, threshold: float) -> str:
    """Why a method fails the randomisation check (``rho``: its summary row)."""
    return (
        f"its maps barely change when the model's weights are randomised (rank correlation "
        f"{rho['mean']:.2f} with the randomised model's map; threshold {threshold:.2f}), "
        "so they show the input more than the model"
    )


def deletion_problem(dele: dict, rdele: dict, paired: dict) -> str:
    """Why a method fails the deletion test against a random map."""
    return (
        f"removing its most important regions first does not lower the class probability significantly faster "
        f"than removing random ones (deletion AUC {dele['mean']:.3f} against {rdele['mean']:.3f} for a random map; "
        f"paired difference {paired['mean']:+.3f}, 95% CI [{paired['ci_low']:+.3f}, {paired['ci_high']:+.3f}] "
        f"over {paired['n']} cases)"
    )


def no_method_sentence(n_methods: int, n_cases: int) -> str:
    """No method passes both checks."""
    return (
        f"No method can be recommended for this model: none of the {n_methods} methods scored passes both "
        "the randomisation check and the deletion test against a random map"
        + (f" (with {n_cases} cases the confidence intervals are wide: score more cases)." if 0 < n_cases < 100 else ".")
    )


def best_on_sentence(best: str, ranked_metrics: list[str]) -> str:
    """The best method when neither faithfulness nor sanity was checked: a ranking, not trust."""
    return (
        f"Best on {', '.join(get_metric(k).label for k in ranked_metrics) or 'the metrics computed'}: {best}. "
        "Run the deletion and randomisation checks before trusting any method."
    )


def runner_up_sentence(runner: str, runner_rank: float, best_rank: float) -> str:
    """The second eligible method and its mean rank against the best's."""
    return f"Runner-up: {runner} (mean rank {runner_rank:.1f} against {best_rank:.1f})."


def _localisation_words(metric: str, value: float) -> str:
    if metric == "pointing_game":
        return f"its strongest point falls inside the lesion in {value:.0%} of cases"
    if metric == "mass_in_mask":
        return f"{value:.0%} of its highlighted area lies in the lesion"
    return f"its top region overlaps the lesion by {value:.0%} (IoU)"


def localisation_sentence(method: str, loc: dict) -> str:
    """One plain sentence: ``method`` finds the lesion no better than a map that ignores the model."""
    versus = "; ".join(
        f"{BASELINE_WORDS.get(b, b + ' map')} scores {loc['baselines'][b]:.0%}" for b in loc["no_better_than"]
    )
    return (
        f"Do not use {method} to locate the finding: {_localisation_words(loc['metric'], loc['value'])}, "
        f"no better than maps made without the model ({versus})."
    )


def recommendation(summary: dict, best: str, n_methods: int, ranked: list[str]) -> str:
    """The sentences recommending ``best``, each backed by its number."""
    random = BASELINE_PREFIX + "random"
    parts = [f"Trust {best} for this model. Of the {n_methods} methods scored, it ranks best on average over "
             f"{', '.join(get_metric(k).label for k in ranked)}"]
    rho = stat(summary, best, "randomisation_spearman")
    if rho is not None:
        parts.append(
            f"; its maps depend on the model (rank correlation {rho['mean']:.2f} with the map of a randomised model; "
            "a map that ignores the model scores near 1)"
        )
    sentences = ["".join(parts) + "."]
    for metric, what in (("deletion_auc", "Deletion AUC {v} against {r} for a random map (lower is better)."),
                         ("insertion_auc", "Insertion AUC {v} against {r} (higher is better).")):
        s, r = stat(summary, best, metric), stat(summary, random, metric)
        if s is not None and r is not None:
            sentences.append(what.format(v=f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]", r=f"{r['mean']:.3f}"))
    pg, rpg = stat(summary, best, "pointing_game"), stat(summary, random, "pointing_game")
    mass = stat(summary, best, "mass_in_mask")
    if pg is not None:
        against = f" (random map: {rpg['mean']:.0%})" if rpg is not None else ""
        tail = f", and {mass['mean']:.0%} of its positive attribution lies in the lesion" if mass is not None else ""
        sentences.append(f"Its maximum falls inside the lesion in {pg['mean']:.0%} of {pg['n']} cases{against}{tail}.")
    elif mass is not None:
        sentences.append(f"{mass['mean']:.0%} of its positive attribution lies in the lesion.")
    sens = stat(summary, best, "max_sensitivity")
    if sens is not None:
        sentences.append(f"Input noise of a few percent of the intensity range changes its map by up to {sens['mean']:.0%} of its norm.")
    return " ".join(sentences)


def shortcut_text(summary: dict, methods: list[str], relies: bool) -> str:
    """What the shortcut audit found, in plain words with its numbers (``relies``: the verdict's call)."""
    sc = summary["shortcut"]
    delta, erased = sc["delta_p_pasted"], sc["delta_p_erased"]
    acc_a, acc_c = sc["accuracy_marker_agrees"], sc["accuracy_marker_conflicts"]
    gap = (acc_a - acc_c) if acc_a is not None and acc_c is not None else None
    cls = f"class {sc['marker_class']}"
    class_names = summary["config"].get("class_names")
    if class_names and sc["marker_class"] < len(class_names):
        cls = repr(class_names[sc["marker_class"]])
    numbers = []
    if delta is not None:
        numbers.append(
            f"pasting the marker onto the {sc['n_without_marker']} test images without it changes the probability of "
            f"{cls} by {delta:+.2f} on average"
            + (f" and turns {sc['flipped_by_pasting']:.0%} of those not predicted {cls} into {cls}" if sc["flipped_by_pasting"] is not None else "")
        )
    if erased is not None:
        numbers.append(f"erasing it from the {sc['n_with_marker']} images that carry it changes that probability by {erased:+.2f}")
    if gap is not None:
        numbers.append(
            f"accuracy is {acc_a:.2f} on the {sc['n_agree']} images where the marker agrees with the label and "
            f"{acc_c:.2f} on the {sc['n_conflict']} where it contradicts it"
        )
    head = "The model relies on the shortcut marker" if relies else "The model does not measurably rely on the shortcut marker"
    text = head + (": " + "; ".join(numbers) if numbers else "") + "."
    masses = [(m, stat(summary, m, "marker_mass")) for m in methods]
    masses = [(m, s["mean"]) for m, s in masses if s is not None]
    if masses:
        area = sc["marker_area_fraction"]
        top_m, top_v = max(masses, key=lambda t: t[1])
        low_m, low_v = min(masses, key=lambda t: t[1])
        over = area and top_v / area >= 2
        text += (
            f" The marker covers {area:.1%} of the image but receives {low_v:.0%} ({low_m}) to {top_v:.0%} ({top_m}) of the "
            "methods' positive attribution on the images that carry it"
            + (f", up to {top_v / area:.0f} times its share of the image" if over else "")
        )
        if relies and over:
            text += ": the maps do point at the shortcut, so look for the marker in them."
        elif relies:
            text += ": the maps hardly show it, so an explanation alone would not reveal this shortcut."
        else:
            text += "."
    return text
