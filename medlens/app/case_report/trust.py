"""How far to trust the maps, in plain words: from the per-case checks (:mod:`.checks`) or from
a ``medlens evaluate`` run of the same model (a run of another model is refused, naming both)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from torch import nn

from medlens.app.case_report.checks import ALPHA, MIN_DROP, N_RANDOM, CaseCheck
from medlens.errors import FileFormatError, InputError
from medlens.report.case import MethodTrust, TrustAssessment


def _seg(text: str, **claim) -> dict:
    return {"text": text, "claim": claim} if claim else {"text": text}


def _check_trust(c: CaseCheck, threshold: float) -> MethodTrust:
    """One method's per-case verdict. "supported" needs a check that could have failed: the
    one-sided rank test against :data:`N_RANDOM` random maps at p <= :data:`ALPHA` (which needs
    at least ``1 / ALPHA - 1`` random maps), a deletion curve that can move at all (the whole
    scan blurred lowers the probability by :data:`MIN_DROP` or more), a lower deletion AUC than
    both model-free maps and a map that changes with the model's weights."""
    rmean, rmin, rmax = float(c.random_auc.mean()), float(c.random_auc.min()), float(c.random_auc.max())
    n, p = len(c.random_auc), c.deletion_p
    powered = 1 / (n + 1) <= ALPHA
    beats = p <= ALPHA
    model_dependent = c.randomisation_rho < threshold
    free = {"edge": c.edge_auc, "centre": c.centre_auc}
    free_words = {"edge": "an edge detector", "centre": "a map that favours the centre"}
    segs: list[dict] = []
    inconclusive = c.deletion_drop < MIN_DROP
    test = f"one-sided rank test against {n} random maps, p = {p:.2f}"
    if inconclusive:
        change = (f"lowers the model's confidence by only {c.deletion_drop:.2f}" if c.deletion_drop > 0
                  else f"does not lower the model's confidence (it changes by {-c.deletion_drop:+.2f})")
        segs.append(_seg(f"Blurring even the whole input {change}, so whether the highlighted areas drive the decision "
                         "cannot be tested on this case. "))
    elif beats:
        segs.append(_seg(f"Blurring the areas it highlights lowers the model's confidence faster than blurring random "
                         f"areas (score {c.deletion_auc:.2f}, random maps {rmin:.2f} to {rmax:.2f}; lower is better; "
                         f"{test}).", kind="case_random", method=c.method, relation="better", p=p, alpha=ALPHA,
                         value=c.deletion_auc))
    elif not powered:
        segs.append(_seg(f"Blurring the areas it highlights lowers the model's confidence by a score of "
                         f"{c.deletion_auc:.2f} against {rmin:.2f} to {rmax:.2f} for random areas, but with {n} random maps "
                         f"the test cannot reach p <= {ALPHA:.2f} ({test}), so it is not evidence either way.",
                         kind="case_random", method=c.method, relation="underpowered", p=p, alpha=ALPHA,
                         value=c.deletion_auc))
    elif c.deletion_auc < rmean:
        segs.append(_seg(f"Blurring the areas it highlights lowers the model's confidence only a little faster than "
                         f"blurring random areas on average (score {c.deletion_auc:.2f} against {rmean:.2f}; lower is "
                         f"better), not enough to tell it from chance ({test}).", kind="case_random", method=c.method,
                         relation="indistinguishable", p=p, alpha=ALPHA, value=c.deletion_auc))
    else:
        segs.append(_seg(f"Blurring the areas it highlights lowers the model's confidence no faster than blurring "
                         f"random areas (score {c.deletion_auc:.2f} against {rmean:.2f} on average; {test}): the "
                         "highlight may not be what the model uses.", kind="case_random", method=c.method,
                         relation="indistinguishable", p=p, alpha=ALPHA, value=c.deletion_auc))
    if not inconclusive:
        for name, value in free.items():
            rel = "better" if c.deletion_auc < value else "indistinguishable" if c.deletion_auc == value else "worse"
            words = {"better": "better than", "worse": "worse than", "indistinguishable": "no better than"}[rel]
            segs.append(_seg(f" It does {words} {free_words[name]}, which never looks at the model (score {value:.2f}).",
                             kind="case_free", method=c.method, versus=name, relation=rel, value=c.deletion_auc,
                             reference=value))
    beats_free = all(c.deletion_auc < v for v in free.values())
    if model_dependent:
        segs.append(_seg(f" The map changes when the model's learned weights are scrambled (similarity "
                         f"{c.randomisation_rho:.2f}, below {threshold:.2f}), so it reflects the model.",
                         kind="case_threshold", method=c.method, relation="passes", value=c.randomisation_rho,
                         threshold=threshold))
    else:
        segs.append(_seg(f" The map barely changes when the model's learned weights are scrambled (similarity "
                         f"{c.randomisation_rho:.2f}; {threshold:.2f} or more fails): it shows the image more than the "
                         "model.", kind="case_threshold", method=c.method, relation="fails", value=c.randomisation_rho,
                         threshold=threshold))
    if beats and model_dependent and beats_free and not inconclusive:
        level = "supported"
    elif (c.deletion_auc < rmean or inconclusive or not powered) and model_dependent:
        level = "caution"
    else:
        level = "unsupported"
    numbers = [
        ("deletion AUC of this map (lower is better)", f"{c.deletion_auc:.4f}"),
        (f"deletion AUC of {n} random maps (mean, min, max)", f"{rmean:.3f}, {rmin:.3f}, {rmax:.3f}"),
        ("deletion AUC of each random map", ", ".join(f"{v:.4f}" for v in c.random_auc)),
        (f"one-sided Monte-Carlo rank test against the random maps: p = (1 + maps at or below) / {n + 1}",
         f"{p:.3f} (smallest possible {1 / (n + 1):.3f}; evidence at p <= {ALPHA:.2f})"),
        ("deletion AUC of the edge map / centre map (no model)", f"{c.edge_auc:.4f} / {c.centre_auc:.4f}"),
        ("rank correlation with the randomised model's map (Adebayo et al. 2018)", f"{c.randomisation_rho:.4f}"),
        ("threshold of the randomisation check", f"{threshold:.2f}"),
        (f"fall of the class probability when the whole input is blurred (below {MIN_DROP:.2f}: the test cannot fail)",
         f"{c.deletion_drop:.3f}"),
    ]
    text = "".join(seg["text"] for seg in segs).strip()
    segs[0] = dict(segs[0], text=segs[0]["text"].lstrip())
    return MethodTrust(c.method, level, text, numbers, segments=segs)


def trust_from_checks(checks: Sequence[CaseCheck]) -> TrustAssessment:
    """Plain-words trust statement from :func:`case_checks`."""
    from medlens.evaluation.sanity import SANITY_THRESHOLD

    methods = [_check_trust(c, SANITY_THRESHOLD) for c in checks]
    order = {"supported": 0, "caution": 1, "unsupported": 2}
    best = min(zip(methods, checks), key=lambda mc: (order[mc[0].level], mc[1].deletion_auc))[0]
    if best.level == "supported":
        p = next(c.deletion_p for c in checks if c.method == best.method)
        headline = (f"On this case the {best.method} map passes both checks: it points at what the model uses, more than "
                    f"random (rank test p = {p:.2f}) or model-free maps do. The checks use this case only.")
    elif best.level == "caution" and all(c.deletion_drop < MIN_DROP for c in checks):
        headline = (f"Treat the highlighted areas with caution: the {best.method} map reflects the model, but this case "
                    "cannot show whether the highlighted areas drive the decision (blurring the whole input hardly "
                    "changes it).")
    elif best.level == "caution":
        headline = (f"Treat the highlighted areas with caution: the best map on this case ({best.method}) passes the "
                    "checks only weakly.")
    else:
        headline = ("Do not rely on the highlighted areas: on this case no map shows what the model uses better than "
                    "random areas or a map made without the model.")
    return TrustAssessment(
        "case", headline, best.level, methods, best=best.method if best.level != "unsupported" else None,
        details=(f"Checks run on this case only (no evaluation run was given): deletion against {N_RANDOM} random maps "
                 f"(a one-sided rank test; 'supported' needs p <= {ALPHA:.2f}) and the model-free edge and centre maps, "
                 "and the randomisation test. An evaluation over many cases "
                 "(medlens evaluate, then medlens report --evaluation) says more."),
    )


#: the warnings (codes of :func:`medlens.app.model_quality.model_warnings` and
#: :func:`medlens.evaluation.familiarity.familiarity`) under which no map is "supported", each with
#: the reason the headline gives: a map can show what the model uses (a model that memorised shuffled
#: labels, or one answering on a scan it never saw the like of, passes the deletion and randomisation
#: checks on a case), but what it uses is then no evidence of the finding.
CAPPING_WARNINGS = {
    "chance": "the model itself is no better than always answering the most frequent class on its validation "
              "split, so what it uses may have nothing to do with the finding",
    "unlike_training": "this input is unlike the cases the model was trained on, so neither its finding nor what it "
                       "uses can be taken as evidence here",
}


def within_model_record(trust: TrustAssessment, warnings: Sequence[dict]) -> TrustAssessment:
    """``trust`` with no "supported" left when the model's own validation record is no better than
    always answering the most frequent class (a ``chance`` warning of
    :func:`medlens.app.model_quality.model_warnings`) or the input is unlike the model's training
    data (an ``unlike_training`` warning of :func:`medlens.evaluation.familiarity.familiarity`):
    each "supported" becomes "caution" and the headline says why (:data:`CAPPING_WARNINGS`)."""
    from dataclasses import replace

    codes = [w.get("code") for w in warnings]
    reasons = [CAPPING_WARNINGS[c] for c in CAPPING_WARNINGS if c in codes]
    if not reasons:
        return trust
    methods = [replace(m, level="caution") if m.level == "supported" else m for m in trust.methods]
    if trust.level != "supported":
        return replace(trust, methods=methods)
    headline = (f"Treat the highlighted areas with caution: the {trust.best} map passes the checks and shows what the "
                f"model uses, but {'; and '.join(reasons)}.")
    return replace(trust, level="caution", headline=headline, methods=methods)


def _read_summary(folder: Path) -> dict:
    from medlens.evaluation.leaderboard import RESULTS_FILE, summarise

    path = folder / "summary.json"
    if path.is_file():
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise FileFormatError(f"{path} is not a medlens evaluation summary ({err})") from err
        if isinstance(summary, dict) and "config" in summary and "verdict" in summary:
            return summary
        raise FileFormatError(f"{path} is not a medlens evaluation summary")
    if (folder / RESULTS_FILE).is_file():
        return summarise(folder)
    raise FileFormatError(f"{folder} holds no medlens evaluation (no summary.json or {RESULTS_FILE}); run medlens evaluate first")


def trust_from_evaluation(model: nn.Module, folder: str | Path, methods: Sequence[str], *,
                          model_name: str = "the model") -> TrustAssessment:
    """Plain-words trust statement from a leaderboard run of this model (``medlens evaluate``).

    Raises
    ------
    InputError
        The run was computed for another model (both are named by their fingerprints).
    FileFormatError
        The folder holds no evaluation.
    """
    from medlens.evaluation.leaderboard import BASELINE_WORDS
    from medlens.evaluation.leaderboard.wording import relation
    from medlens.models.fingerprint import model_fingerprint

    folder = Path(folder)
    if not folder.is_dir():
        raise FileFormatError(f"evaluation folder {str(folder)!r} does not exist")
    summary = _read_summary(folder)
    config, verdict = summary["config"], summary["verdict"]
    mine = model_fingerprint(model)
    if config.get("model") != mine:
        raise InputError(
            f"the evaluation in {folder} was computed for another model (fingerprint {config.get('model')}, data "
            f"{config.get('data') or '?'}), not for {model_name} (fingerprint {mine})"
        )
    n, data = config.get("n_samples", 0), config.get("data") or "its data set"
    rows = {(r["method"], r["metric"]): r for r in summary["rows"]}
    out = []
    for m in methods:
        info = verdict["methods"].get(m)
        if info is None:
            out.append(MethodTrust(m, "caution", "This method was not part of the evaluation run.", []))
            continue
        loc = info.get("localisation")
        parts = []
        if info["eligible"]:
            parts.append(f"Over {n} evaluated cases its maps reflect what the model uses (they pass the randomisation "
                         "check and remove evidence faster than random maps).")
        else:
            parts.extend(p[0].upper() + p[1:] + "." for p in info["problems"])
        if loc and loc["no_better_than"]:
            b = loc["no_better_than"][0]
            d = (loc.get("paired") or {}).get(b)
            worse = relation(d, True) == "worse" if d else loc["value"] < loc["baselines"][b]
            interval = f"; difference {d['mean']:+.2f}, 95% CI [{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]" if d else ""
            parts.append(f"{'It finds the marked finding less often than' if worse else 'It is not shown to find the marked finding better than'} "
                         f"{BASELINE_WORDS.get(b, b)} ({loc['value']:.0%} against {loc['baselines'][b]:.0%}{interval}): "
                         "do not read it as the finding's location.")
        level = "unsupported" if not info["eligible"] else ("caution" if loc and loc["no_better_than"] else "supported")
        numbers = [
            (f"{r['metric']}", f"{r['mean']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] over {r['n']} cases")
            for (meth, _metric), r in rows.items() if meth == m and r.get("n")
        ]
        out.append(MethodTrust(m, level, " ".join(parts), numbers))
    best = verdict.get("best")
    shown = {t.method: t for t in out}
    if best and best in shown:
        headline = f"Evaluated on {n} cases of {data}: the {best} map is the one to trust for this model. " + shown[best].sentence
        level = shown[best].level
    elif best:
        headline = (f"Evaluated on {n} cases of {data}: the method to trust for this model is {best}, which this report "
                    "does not show; treat the maps shown with caution.")
        level = "caution"
    else:
        headline = (f"Evaluated on {n} cases of {data}: no method's map can be trusted for this model; do not rely on "
                    "the highlighted areas.")
        level = "unsupported"
    return TrustAssessment("evaluation", headline, level, out, best=best if best in shown else None,
                           details=f"From the evaluation run in {folder.name}: " + " ".join(verdict["text"]))


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


