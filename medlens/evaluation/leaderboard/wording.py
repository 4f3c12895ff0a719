"""The leaderboard verdict in plain words: each sentence a reader without machine learning can
follow, backed by its number. The decisions (which method is eligible, which localises no better
than a model-free map, whether the model relies on the marker) are made in :mod:`.verdict`.

Every comparative phrase is generated from the summary's own numbers and carries its *claim*:
a sentence is a list of segments ``{"text": str}`` or ``{"text": str, "claim": {...}}``, and a
claim names what it compares so that a report can anchor it (``data-*`` attributes) and a test
can check it against the table it describes:

* ``{"kind": "best", "metric", "method", "relation", "versus", ...}``: ``method`` has the best
  mean on ``metric`` among the methods; ``relation`` is ``"better"`` only when the paired 95 %
  bootstrap interval of its difference with every other method excludes 0, else
  ``"indistinguishable"`` (``versus``: the closest method not told apart);
* ``{"kind": "versus", "metric", "method", "versus", "relation", "diff", "ci_low", "ci_high", "n"}``:
  ``relation`` is ``"better"`` / ``"worse"`` when the interval of ``method - versus`` excludes 0
  on that side (in the metric's direction), else ``"indistinguishable"``;
* ``{"kind": "rank", "method", "relation": "best_eligible" | "second_eligible", "mean_rank"}``;
* ``{"kind": "threshold", "metric", "method", "relation": "passes" | "fails", "value", "threshold"}``;
* ``{"kind": "extremes", "metric", "method" (highest mean), "low_method" (lowest mean)}``.
"""

from __future__ import annotations

from typing import Any

from medlens.evaluation.chance import chance_words
from medlens.evaluation.leaderboard.store import BASELINE_PREFIX
from medlens.evaluation.leaderboard.summary import stat
from medlens.evaluation.registry import get_metric

__all__ = [
    "BASELINE_WORDS",
    "best_on_sentence",
    "chance_problem",
    "chance_sentence",
    "deletion_problem",
    "flat_deletion_problem",
    "localisation_sentence",
    "no_method_sentence",
    "recommendation",
    "relation",
    "runner_up_sentence",
    "sanity_problem",
    "sentence_text",
    "shortcut_sentence",
    "shortcut_text",
]

Segment = dict[str, Any]

#: How the report names each model-free baseline for a reader who knows no machine learning.
BASELINE_WORDS = {
    "edge": "an edge detector that never looks at the model",
    "centre": "a map that simply favours the centre of the image",
    "random": "a random map",
}


def _plain(text: str) -> Segment:
    return {"text": text}


def _claim(text: str, **claim: Any) -> Segment:
    return {"text": text, "claim": claim}


def sentence_text(segments: list[Segment]) -> str:
    """The plain text of a sentence made of segments."""
    return "".join(s["text"] for s in segments)


def relation(diff: dict | None, higher_is_better: bool) -> str:
    """``"better"``, ``"worse"`` or ``"indistinguishable"`` from the paired interval of ``a - b``
    (``diff``: ``{"ci_low", "ci_high"}``); ``"unknown"`` without one."""
    if diff is None or diff.get("ci_low") is None or diff.get("ci_high") is None:
        return "unknown"
    above, below = diff["ci_low"] > 0, diff["ci_high"] < 0
    if higher_is_better:
        return "better" if above else "worse" if below else "indistinguishable"
    return "better" if below else "worse" if above else "indistinguishable"


def _interval(diff: dict, pct: bool = False) -> str:
    """``difference D, 95% CI [L, H] over N cases``, in percentage points with ``pct``. Digits are
    added (up to three more) while a bound that is not 0 would print as 0: an interval that lies
    above 0 must not read "[+0, +3]" beside a "more than" (seen on the marker's attribution)."""
    scale, digits = (100.0, 0) if pct else (1.0, 3)
    bounds = [float(diff[k]) * scale for k in ("ci_low", "ci_high")]
    for _ in range(3):
        if not any(v != 0 and round(v, digits) == 0 for v in bounds):
            break
        digits += 1
    unit = " points" if pct else ""
    return (f"difference {float(diff['mean']) * scale:+.{digits}f}{unit}, 95% CI [{bounds[0]:+.{digits}f}, "
            f"{bounds[1]:+.{digits}f}] over {diff['n']} cases")


def _versus_claim(text: str, metric: str, method: str, versus: str, diff: dict | None, rel: str,
                  higher: bool | None = None) -> Segment:
    """``higher``: the direction the comparison is made in, for a metric that has none of its own
    (the mass on the marker); ``None`` keeps the metric's."""
    numbers = {k: diff[k] for k in ("mean", "ci_low", "ci_high", "n")} if diff else {}
    return _claim(text, kind="versus", metric=metric, method=method, versus=versus, relation=rel,
                  **({} if higher is None else {"higher": higher}),
                  **{("diff" if k == "mean" else k): v for k, v in numbers.items()})


def sanity_problem(rho: dict, threshold: float) -> list[Segment]:
    """Why a method fails the randomisation check (``rho``: its summary row)."""
    return [
        _claim(f"its maps barely change when the model's weights are randomised (rank correlation {rho['mean']:.2f} "
               f"with the randomised model's map; threshold {threshold:.2f})", kind="threshold",
               metric="randomisation_spearman", method=rho["method"], relation="fails", value=rho["mean"],
               threshold=threshold),
        _plain(", so they show the input more than the model"),
    ]


def deletion_problem(dele: dict, rdele: dict, paired: dict) -> list[Segment]:
    """Why a method fails the deletion test against a random map (``paired``: its ``vs_random``)."""
    rel = relation(paired, False)
    how = ("lowers the class probability more slowly than removing random ones" if rel == "worse" else
           "does not lower the class probability significantly faster than removing random ones")
    return [_versus_claim(
        f"removing its most important regions first {how} (deletion AUC {dele['mean']:.3f} against {rdele['mean']:.3f} "
        f"for a random map; paired difference {paired['mean']:+.3f}, 95% CI [{paired['ci_low']:+.3f}, "
        f"{paired['ci_high']:+.3f}] over {paired['n']} cases)",
        "deletion_auc", dele["method"], BASELINE_PREFIX + "random", paired, rel,
    )]


def chance_problem(chance: dict) -> list[Segment]:
    """Why no method is eligible on a model at chance (``chance``: the summary's ``chance``)."""
    return [_plain(chance_words(chance))]


def chance_sentence(chance: dict) -> list[Segment]:
    """The verdict's first sentence on a model at chance."""
    if chance["majority_share"] >= 1.0:
        return [_plain(f"No method can be recommended on these cases: {chance_words(chance)}; score it on cases of "
                       "more than one label.")]
    return [_plain(f"No method can be recommended for this model: {chance_words(chance)}, so a map that shows what "
                   "it uses shows nothing about the finding; score it on cases where it works, or train it first.")]


def flat_deletion_problem(dele: dict, rdele: dict, paired: dict | None, drop: float, least: float) -> list[Segment]:
    """Why the deletion test says nothing on these cases: blurring the whole input hardly moves the
    class probability (``drop``, below ``least``), so no map can lower it faster than a random one,
    whatever the paired interval (``paired``: the method's ``vs_random``) says."""
    change = (f"lowers the probability of the explained class by only {drop:.3f} on average" if drop > 0 else
              f"does not lower the probability of the explained class (on average it {'rises' if drop < 0 else 'changes'} "
              f"by {abs(drop):.3f})")
    segments = [_plain(f"the deletion test cannot judge its maps on these {dele['n']} cases: blurring even the whole "
                       f"input {change}, and it must fall by at least {least:.2f} before a map can be told from a "
                       "random one")]
    if paired:
        segments.append(_versus_claim(
            f" (deletion AUC {dele['mean']:.3f} against {rdele['mean']:.3f} for a random map; paired difference "
            f"{paired['mean']:+.4f}, 95% CI [{paired['ci_low']:+.4f}, {paired['ci_high']:+.4f}] over {paired['n']} cases)",
            "deletion_auc", dele["method"], BASELINE_PREFIX + "random", paired, relation(paired, False)))
    return segments


def no_method_sentence(n_methods: int, n_cases: int) -> list[Segment]:
    """No method passes both checks."""
    return [_plain(
        f"No method can be recommended for this model: none of the {n_methods} methods scored passes both "
        "the randomisation check and the deletion test against a random map"
        + (f" (with {n_cases} cases the confidence intervals are wide: score more cases)." if 0 < n_cases < 100 else ".")
    )]


def _best_on(summary: dict, metric: str) -> list[Segment]:
    """``Best mean on METRIC: M (v)``, and whether the paired intervals tell it apart from the others."""
    info = get_metric(metric)
    leader = (summary.get("leaders") or {}).get(metric)
    head = "best mean on {label} ({direction} is better): {m} ({value:.3f})"
    fmt = dict(label=info.label, direction="higher" if info.higher_is_better else "lower")
    if leader is None:  # a summary without paired intervals between methods: a mean, no comparison
        config = summary["config"]
        means = {m: s["mean"] for m in config["entries"] if config["kinds"][m] == "method"
                 and (s := stat(summary, m, metric)) is not None}
        if not means or info.higher_is_better is None:
            return []
        m = max(means, key=lambda k: means[k] if info.higher_is_better else -means[k])
        return [_claim(head.format(m=m, value=means[m], **fmt) + " (no paired intervals between methods were computed)",
                       kind="best", metric=metric, method=m, relation="unknown")]
    m = leader["method"]
    head = head.format(m=m, value=stat(summary, m, metric)["mean"], **fmt)
    versus = leader["versus"]
    if not versus:
        return [_claim(head + ", the only method scored on it", kind="best", metric=metric, method=m, relation="only")]
    rels = {o: relation(d, info.higher_is_better) for o, d in versus.items()}
    tied = [o for o, r in rels.items() if r != "better"]
    if not tied:
        closest = min(versus, key=lambda o: abs(versus[o]["mean"]))
        d = versus[closest]
        return [_claim(f"{head}, better than every other method (closest: {closest}, {_interval(d)})", kind="best",
                       metric=metric, method=m, relation="better", versus=closest, diff=d["mean"],
                       ci_low=d["ci_low"], ci_high=d["ci_high"], n=d["n"])]
    closest = min(tied, key=lambda o: abs(versus[o]["mean"]))
    d = versus[closest]
    other = stat(summary, closest, metric)["mean"]
    more = f" and {len(tied) - 1} other method{'s' if len(tied) > 2 else ''}" if len(tied) > 1 else ""
    return [_claim(f"{head}, but these cases do not tell it apart from {closest} ({other:.3f}; {_interval(d)}){more}",
                   kind="best", metric=metric, method=m, relation="indistinguishable", versus=closest,
                   diff=d["mean"], ci_low=d["ci_low"], ci_high=d["ci_high"], n=d["n"])]


def best_on_sentence(summary: dict, ranked_metrics: list[str]) -> list[Segment]:
    """Per ranked metric, the method with the best mean and whether it is told apart from the
    rest; said when neither faithfulness nor sanity was checked: a ranking, not trust."""
    out: list[Segment] = []
    for metric in ranked_metrics:
        parts = _best_on(summary, metric)
        if parts:
            out += ([_plain("; ")] if out else []) + parts
    if out:
        out[0] = dict(out[0], text=out[0]["text"][0].upper() + out[0]["text"][1:])
        out.append(_plain(". "))
    out.append(_plain("This says where the maps point, not whether they can be trusted: run the deletion and "
                      "randomisation checks before trusting any method."))
    return out


def runner_up_sentence(runner: str, runner_rank: float, best_rank: float) -> list[Segment]:
    """The second eligible method and its mean rank against the best's."""
    return [_claim(f"Runner-up among the methods that pass the checks: {runner} (mean rank {runner_rank:.1f} against "
                   f"{best_rank:.1f}).", kind="rank", method=runner, relation="second_eligible", mean_rank=runner_rank)]


def _localisation_words(metric: str, value: float) -> str:
    if metric == "pointing_game":
        return f"its strongest point falls inside the lesion in {value:.0%} of cases"
    if metric == "mass_in_mask":
        return f"{value:.0%} of its highlighted area lies in the lesion"
    return f"its top region overlaps the lesion by {value:.0%} (IoU)"


def localisation_sentence(method: str, loc: dict) -> list[Segment]:
    """``method`` is not shown to find the lesion better than a map that ignores the model: one
    clause per such map, its words from the sign and the paired interval of the difference."""
    out = [_plain(f"Do not use {method} to locate the finding: {_localisation_words(loc['metric'], loc['value'])}")]
    paired = loc.get("paired") or {}
    for i, b in enumerate(loc["no_better_than"]):
        ref, d = loc["baselines"][b], paired.get(b)
        rel = relation(d, True) if d else ("worse" if loc["value"] < ref else "indistinguishable")
        if rel == "worse":
            verdict = "it does worse"
        elif loc["value"] > ref:
            verdict = "higher, but too close to call better on these cases"
        else:
            verdict = "no higher"
        numbers = f"; {_interval(d, pct=True)}" if d else ""
        out.append(_plain("; " if i else ", against "))
        out.append(_versus_claim(f"{ref:.0%} for {BASELINE_WORDS.get(b, b + ' map')} ({verdict}{numbers})",
                                 loc["metric"], method, BASELINE_PREFIX + b, d, rel))
    out.append(_plain("."))
    return out


def recommendation(summary: dict, best: str, n_methods: int, ranked: list[str], *, n_eligible: int = 1,
                   mean_rank: float | None = None, locates: bool = True) -> list[Segment]:
    """The sentences recommending ``best``, each backed by its number. ``locates=False`` (its maps
    find the lesion no better than a map that ignores the model) narrows the recommendation to what
    the checks show, so that it cannot read as the opposite of the localisation sentence below it."""
    random = BASELINE_PREFIX + "random"
    rank = f" ({mean_rank:.1f})" if mean_rank is not None else ""
    head = (f"Trust {best} for this model. " if locates else
            f"Trust {best} to show what drives this model, not to locate the finding (see below). ")
    out = [_plain(head),
           _claim(f"Of the {n_methods} methods scored, {n_eligible} pass the randomisation check and the deletion test "
                  f"against a random map, and of those it has the best mean rank{rank} over "
                  f"{', '.join(get_metric(k).label for k in ranked)}", kind="rank", method=best,
                  relation="best_eligible", mean_rank=mean_rank)]
    rho = stat(summary, best, "randomisation_spearman")
    if rho is not None:
        threshold = summary["config"].get("sanity_threshold")
        out += [_plain("; "), _claim(
            f"its maps depend on the model (rank correlation {rho['mean']:.2f} with the map of a randomised model"
            + (f", below the threshold {threshold:.2f}" if threshold is not None else "") + "; a map that ignores the model "
            "scores near 1)", kind="threshold", metric="randomisation_spearman", method=best, relation="passes",
            value=rho["mean"], threshold=threshold)]
    out.append(_plain("."))
    for metric, name, direction in (("deletion_auc", "Deletion AUC", "lower is better"),
                                    ("insertion_auc", "Insertion AUC", "higher is better")):
        s, r = stat(summary, best, metric), stat(summary, random, metric)
        if s is None or r is None:
            continue
        d = s.get("vs_random")
        rel = relation(d, get_metric(metric).higher_is_better)
        words = {"better": "better than", "worse": "worse than", "indistinguishable": "not told apart from",
                 "unknown": "against"}[rel]
        out += [_plain(" "), _versus_claim(
            f"{name} {s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}], {words} {r['mean']:.3f} for a random map "
            f"({direction}" + (f"; paired {_interval(d)}" if d else "") + ").", metric, best, random, d, rel)]
    pg, rpg = stat(summary, best, "pointing_game"), stat(summary, random, "pointing_game")
    mass = stat(summary, best, "mass_in_mask")
    if pg is not None:
        against = f" (random map: {rpg['mean']:.0%})" if rpg is not None else ""
        tail = f", and {mass['mean']:.0%} of its positive attribution lies in the lesion" if mass is not None else ""
        out.append(_plain(f" Its maximum falls inside the lesion in {pg['mean']:.0%} of {pg['n']} cases{against}{tail}."))
    elif mass is not None:
        out.append(_plain(f" {mass['mean']:.0%} of its positive attribution lies in the lesion."))
    sens = stat(summary, best, "max_sensitivity")
    if sens is not None:
        out.append(_plain(f" Input noise of a few percent of the intensity range changes its map by up to "
                          f"{sens['mean']:.0%} of its norm."))
    return out


def shortcut_sentence(summary: dict, methods: list[str], relies: bool) -> list[Segment]:
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
    out = [_plain(head + (": " + "; ".join(numbers) if numbers else "") + ".")]
    masses = [(m, stat(summary, m, "marker_mass")) for m in methods]
    masses = [(m, s["mean"]) for m, s in masses if s is not None]
    if masses:
        area = sc["marker_area_fraction"]
        top_m, top_v = max(masses, key=lambda t: t[1])
        low_m, low_v = min(masses, key=lambda t: t[1])
        over = area and top_v / area >= 2
        out.append(_plain(f" The marker covers {area:.1%} of the image but receives "))
        out.append(_claim(f"{low_v:.0%} ({low_m}) to {top_v:.0%} ({top_m})", kind="extremes", metric="marker_mass",
                          method=top_m, low_method=low_m))
        out.append(_plain(" of the methods' positive attribution on the images that carry it"
                          + (f", up to {top_v / area:.0f} times its share of the image" if over else "")))
        if relies and over:
            out += _marker_versus_edge(summary, [m for m, v in masses if v / area >= 2], top_m)
        elif relies:
            out.append(_plain(": the maps hardly show it, so an explanation alone would not reveal this shortcut."))
        else:
            out.append(_plain("."))
    return out


def _marker_versus_edge(summary: dict, candidates: list[str], top: str) -> list[Segment]:
    """Whether the maps single the marker out, judged against a map that never looks at the model.

    A bright marker draws an edge detector's mass as well (on the lesion benchmark's shortcut
    variant the edge map puts about five times the marker's share of the image on it), so a share
    above the marker's area alone does not show that the model's maps point at it: a method does
    only when its paired 95 % interval against the edge map lies above zero.
    """
    edge = BASELINE_PREFIX + "edge"
    ref = stat(summary, edge, "marker_mass")
    diffs = {m: ((stat(summary, m, "marker_mass") or {}).get("vs_baselines") or {}).get(edge) for m in candidates}
    if ref is None or any(d is None for d in diffs.values()):  # no edge map scored: the area is all there is
        return [_plain(": the maps do point at the shortcut, so look for the marker in them.")]
    shown = [m for m in candidates if relation(diffs[m], True) == "better"]
    words = BASELINE_WORDS["edge"]
    if shown:
        m = max(shown, key=lambda k: diffs[k]["mean"])
        d = diffs[m]
        return [_plain(f", more than the {ref['mean']:.0%} that {words} puts there ("),
                _versus_claim(f"{m}: {_interval(d, pct=True)}", "marker_mass", m, edge, d, "better", higher=True),
                _plain(f"): {', '.join(shown)} {'points' if len(shown) == 1 else 'point'} at the shortcut, so look for "
                       f"the marker in {'its' if len(shown) == 1 else 'their'} maps.")]
    d = diffs[top]
    return [_plain(f"; but {words} puts {ref['mean']:.0%} there ("),
            _versus_claim(f"{top}: {_interval(d, pct=True)}", "marker_mass", top, edge, d, relation(d, True),
                          higher=True),
            _plain("): the maps do not single the marker out, so an explanation alone would not reveal this shortcut.")]


def shortcut_text(summary: dict, methods: list[str], relies: bool) -> str:
    """:func:`shortcut_sentence` as plain text."""
    return sentence_text(shortcut_sentence(summary, methods, relies))
