"""The computing side of the case report: run the model, the methods, the trust checks, the
prediction basis and the generated sentence on one case, and hand the results to
:func:`medlens.report.case.render_case_report`.

:func:`case_report` is the entry point (``medlens report`` calls it). How far the maps can be
trusted comes either from a leaderboard run of the same model (:func:`trust_from_evaluation`;
a run of another model is refused, naming both) or, without one, from checks on this case alone
(:func:`case_checks`): deletion against random maps and against the model-free edge and centre
maps (Petsiuk et al. 2018; region perturbation of Samek et al. 2017), and the randomisation test
of Adebayo et al. (NeurIPS 2018).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from medlens.app.familiarity import familiarity
from medlens.core.engine import Budget
from medlens.core.targets import Target, probabilities
from medlens.errors import FileFormatError, InputError, MedlensError, UnknownNameError
from medlens.report.case import BasisCase, CaseReport, MethodTrust, TrustAssessment
from medlens.report.viewer import Annotation, MapLayer

__all__ = [
    "DEFAULT_METHODS",
    "CaseInput",
    "CaseCheck",
    "calibration_data",
    "calibration_sentence",
    "case_checks",
    "case_report",
    "trust_from_checks",
    "withheld_names",
    "trust_from_evaluation",
]

#: Methods shown when none are named: a gradient, a path method and a class activation map.
DEFAULT_METHODS = ("gradient", "integrated_gradients", "gradcam")
#: Random maps the per-case deletion check compares against.
N_RANDOM = 8
#: The deletion check is inconclusive when blurring the whole input lowers the class
#: probability by less than this: no ranking of regions can then lower it faster.
MIN_DROP = 0.1


@dataclass(frozen=True)
class CaseInput:
    """One case as read from a file, before the model sees it.

    Attributes
    ----------
    native : np.ndarray or None
        The scan at its native resolution (``(H, W)``, ``(D, H, W)`` or ``(L, T)``); ``None``:
        show the model's input itself.
    description : str
        What the scan is, identifying no one (``"DICOM CT, 512 x 512"``).
    label : int or None
        Known label (cases from a data set).
    spacing : sequence of float or None
        Pixel / voxel size of ``native`` (mm).
    metadata : dict of str to str
        Non-identifying acquisition details.
    identifiers : dict of str to str
        Identifying values found in the file (DICOM PS3.15 basic profile; a UID file name).
    notes : list of str
        How the input was read (resized, middle slice, ...).
    annotations : list of Annotation
        Labelled positions of a signal.
    rate : float or None
        Sampling rate of a signal (Hz).
    window : (float, float) or None
        Grey-level window (low, high) to show the scan with, e.g. the DICOM's own.
    geometry : medlens.data.recipe.Geometry or None
        How the recipe made the model input from ``native`` (:func:`medlens.data.recipe.prepare`);
        the maps come back onto ``native`` through its exact inverse
        (:func:`medlens.data.recipe.invert`), as ``medlens explain`` writes ``attribution.npy``.
        ``None``: ``native`` is resized to (a data-set case, or a scan shown as the model saw it).
    """

    native: np.ndarray | None = None
    description: str = "scan"
    label: int | None = None
    spacing: Sequence[float] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    identifiers: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    rate: float | None = None
    window: tuple[float, float] | None = None
    geometry: Any = None


@dataclass(frozen=True)
class CaseCheck:
    """Per-case trust checks of one method's map.

    Attributes
    ----------
    method : str
    deletion_auc : float
        Area under the class probability as the map's most important regions are blurred
        away (lower: the map found what the model uses).
    random_auc : np.ndarray
        ``(N_RANDOM,)`` the same for random maps.
    edge_auc, centre_auc : float
        The same for the model-free edge and centre maps.
    randomisation_rho : float
        Spearman correlation between the map and the map of a randomised copy of the model
        (near 1: the map ignores the model).
    deletion_drop : float
        How far the class probability falls when the whole input is blurred (the end of every
        deletion curve). Below :data:`MIN_DROP` the deletion check cannot tell maps apart.
    """

    method: str
    deletion_auc: float
    random_auc: np.ndarray
    edge_auc: float
    centre_auc: float
    randomisation_rho: float
    deletion_drop: float = 1.0


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def calibration_data(probs: torch.Tensor, labels: torch.Tensor, *, bins: int = 10, split: str = "validation") -> dict:
    """Reliability table of a classifier, to store in a model file's metadata.

    Parameters
    ----------
    probs : torch.Tensor
        ``(N, K)`` predicted probabilities on held-out cases.
    labels : torch.Tensor
        ``(N,)`` their labels.
    bins : int
        Equal-width bins of the confidence (the predicted class's probability).

    Returns
    -------
    dict
        ``{"split", "edges", "counts", "accuracy", "ece"}``: per bin the number of cases whose
        confidence falls in it and the share of them predicted correctly; the expected
        calibration error (Guo et al., ICML 2017).
    """
    conf, pred = probs.double().max(1)
    correct = (pred == labels.long()).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    which = torch.clamp(torch.bucketize(conf, edges[1:-1], right=True), 0, bins - 1)
    counts, accuracy, ece = [], [], 0.0
    for b in range(bins):
        sel = which == b
        n = int(sel.sum())
        counts.append(n)
        accuracy.append(float(correct[sel].mean()) if n else None)
        if n:
            ece += n / len(conf) * abs(float(correct[sel].mean()) - float(conf[sel].mean()))
    return {"split": split, "edges": edges.tolist(), "counts": counts, "accuracy": accuracy, "ece": ece}


def calibration_sentence(calibration: dict | None, confidence: float) -> tuple[str | None, list[tuple[str, str]]]:
    """What a confidence means, from :func:`calibration_data`: sentence and table rows."""
    if not calibration:
        return None, []
    edges, counts, accuracy = calibration["edges"], calibration["counts"], calibration["accuracy"]
    rows = [
        (f"{edges[b]:.0%} to {edges[b + 1]:.0%}", f"right in {accuracy[b]:.0%} of {counts[b]} cases")
        for b in range(len(counts)) if counts[b]
    ]
    b = min(max(int(np.searchsorted(edges, confidence, side="right")) - 1, 0), len(counts) - 1)
    split = calibration.get("split", "held-out")
    if not counts[b]:
        return (f"No {split} case received a probability between {edges[b]:.0%} and {edges[b + 1]:.0%}, so the "
                "model's record at this probability is unknown."), rows
    return (f"Of the {counts[b]} {split} cases where the model was between {edges[b]:.0%} and {edges[b + 1]:.0%} "
            f"sure, it was right in {accuracy[b]:.0%}."), rows


# --------------------------------------------------------------------------------------------
# Trust
# --------------------------------------------------------------------------------------------


def case_checks(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    attributions: dict[str, torch.Tensor],
    *,
    method_options: dict[str, dict] | None = None,
    seed: int = 0,
    budget: Budget = Budget(),
    steps: int = 20,
) -> list[CaseCheck]:
    """Deletion and randomisation checks of each method's map on one case.

    Parameters
    ----------
    model : nn.Module
    x : torch.Tensor
        ``(1, C, *spatial)`` the case.
    target : int
        The explained class.
    attributions : dict of str to torch.Tensor
        ``{method: (1, C', *s')}`` the maps to check.
    method_options : dict, optional
        ``{method: options}`` to re-explain the randomised model with.
    seed : int
        Seeds the random maps and the randomised model.
    steps : int
        Deletion steps.

    Returns
    -------
    list of CaseCheck
        The metrics are those of the leaderboard (``deletion_auc``, ``randomisation_spearman``),
        so a case's numbers read like the leaderboard's.
    """
    from medlens.evaluation.baselines import baseline_attribution
    from medlens.evaluation.explainers import explainer_for
    from medlens.evaluation.registry import EvalBatch, get_metric
    from medlens.evaluation.sanity import randomised_copy

    if x.ndim < 3 or len(x) != 1:
        raise InputError(f"case checks take one case (1, C, *spatial), got shape {tuple(x.shape)}")
    deletion = get_metric("deletion_auc").fn
    spatial = x.shape[2:]
    side = max(1, round(max(spatial) / 16))  # the metric's "auto" patch
    steps = min(steps, math.prod(math.ceil(s / side) for s in spatial))
    rho_metric = get_metric("randomisation_spearman").fn
    ids = torch.arange(N_RANDOM)
    xr = x.expand(N_RANDOM, *x.shape[1:])
    t = Target(torch.full((N_RANDOM,), int(target), dtype=torch.long))

    def noop(_m, _x, _t):  # baselines are never re-explained
        raise AssertionError("not re-explained")

    def auc(xs: torch.Tensor, maps: torch.Tensor, tgt: Target) -> tuple[np.ndarray, np.ndarray]:
        batch = EvalBatch(model=model, x=xs, target=tgt, attribution=maps, explainer=noop,
                          sample_ids=torch.arange(len(xs)), seed=seed, budget=budget)
        values, extras = deletion(batch, steps=steps)
        return values.numpy(), extras["curve"].numpy()

    random_auc, curves = auc(xr, baseline_attribution("random", xr, seed=seed, sample_ids=ids), t)
    drop = float(curves[:, 0].mean() - curves[:, -1].mean())
    x2, t2 = x.expand(2, *x.shape[1:]), Target(torch.full((2,), int(target), dtype=torch.long))
    free = torch.cat([baseline_attribution("edge", x), baseline_attribution("centre", x)])
    (edge_auc, centre_auc), _ = auc(x2, free, t2)
    randomised = randomised_copy(model, seed=seed)
    t1 = Target(torch.tensor([int(target)]))
    checks = []
    for method, attribution in attributions.items():
        explainer = explainer_for(method, budget=budget, **(method_options or {}).get(method, {}))
        rand_attr = explainer(randomised, x, t1)
        batch = EvalBatch(model=model, x=x, target=t1, attribution=attribution, explainer=explainer,
                          sample_ids=torch.tensor([0]), randomised_attribution=rand_attr, seed=seed, budget=budget)
        checks.append(CaseCheck(
            method=method,
            deletion_auc=float(deletion(batch, steps=steps)[0][0]),
            random_auc=random_auc,
            edge_auc=float(edge_auc),
            centre_auc=float(centre_auc),
            randomisation_rho=float(rho_metric(batch)[0]),
            deletion_drop=drop,
        ))
    return checks


def _check_trust(c: CaseCheck, threshold: float) -> MethodTrust:
    rmean, rmin = float(c.random_auc.mean()), float(c.random_auc.min())
    beats_all, beats_mean = c.deletion_auc < rmin, c.deletion_auc < rmean
    model_dependent = c.randomisation_rho < threshold
    free_best = min(c.edge_auc, c.centre_auc)
    free_name = "an edge detector" if c.edge_auc <= c.centre_auc else "a map that favours the centre"
    parts = []
    inconclusive = c.deletion_drop < MIN_DROP
    if inconclusive:
        change = (f"lowers the model's confidence by only {c.deletion_drop:.2f}" if c.deletion_drop > 0
                  else f"does not lower the model's confidence (it changes by {-c.deletion_drop:+.2f})")
        parts.append(f"Blurring even the whole scan {change}, so whether the highlighted areas drive the decision "
                     "cannot be tested on this case.")
    elif beats_all:
        parts.append(f"Blurring the areas it highlights lowers the model's confidence faster than blurring random areas "
                     f"(score {c.deletion_auc:.2f}, random maps {rmin:.2f} to {float(c.random_auc.max()):.2f}; lower is better).")
    elif beats_mean:
        parts.append(f"Blurring the areas it highlights lowers the model's confidence only a little faster than blurring "
                     f"random areas (score {c.deletion_auc:.2f} against {rmean:.2f} on average; lower is better).")
    else:
        parts.append(f"Blurring the areas it highlights lowers the model's confidence no faster than blurring random "
                     f"areas (score {c.deletion_auc:.2f} against {rmean:.2f} on average): the highlight may not be what "
                     "the model uses.")
    if not inconclusive and not c.deletion_auc < free_best:
        parts.append(f"It does no better than {free_name}, which never looks at the model (score {free_best:.2f}).")
    if model_dependent:
        parts.append(f"The map changes when the model's learned weights are scrambled (similarity {c.randomisation_rho:.2f}), "
                     "so it reflects the model.")
    else:
        parts.append(f"The map barely changes when the model's learned weights are scrambled (similarity "
                     f"{c.randomisation_rho:.2f}; {threshold:.2f} or more fails): it shows the image more than the model.")
    if beats_all and model_dependent and c.deletion_auc < free_best and not inconclusive:
        level = "supported"
    elif (beats_mean or inconclusive) and model_dependent:
        level = "caution"
    else:
        level = "unsupported"
    numbers = [
        ("deletion AUC of this map (lower is better)", f"{c.deletion_auc:.3f}"),
        (f"deletion AUC of {len(c.random_auc)} random maps (mean, min, max)",
         f"{rmean:.3f}, {rmin:.3f}, {float(c.random_auc.max()):.3f}"),
        ("deletion AUC of the edge map / centre map (no model)", f"{c.edge_auc:.3f} / {c.centre_auc:.3f}"),
        ("rank correlation with the randomised model's map (Adebayo et al. 2018)", f"{c.randomisation_rho:.3f}"),
        ("threshold of the randomisation check", f"{threshold:.2f}"),
        ("fall of the class probability when the whole input is blurred", f"{c.deletion_drop:.3f}"),
    ]
    return MethodTrust(c.method, level, " ".join(parts), numbers)


def trust_from_checks(checks: Sequence[CaseCheck]) -> TrustAssessment:
    """Plain-words trust statement from :func:`case_checks`."""
    from medlens.evaluation.sanity import SANITY_THRESHOLD

    methods = [_check_trust(c, SANITY_THRESHOLD) for c in checks]
    order = {"supported": 0, "caution": 1, "unsupported": 2}
    best = min(zip(methods, checks), key=lambda mc: (order[mc[0].level], mc[1].deletion_auc))[0]
    if best.level == "supported":
        headline = (f"On this case the {best.method} map passes both checks: it points at what the model uses, more than "
                    "random or model-free maps do. The checks use this case only.")
    elif best.level == "caution" and all(c.deletion_drop < MIN_DROP for c in checks):
        headline = (f"Treat the highlighted areas with caution: the {best.method} map reflects the model, but this case "
                    "cannot show whether the highlighted areas drive the decision (blurring the whole scan hardly "
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
                 "and the model-free edge and centre maps, and the randomisation test. An evaluation over many cases "
                 "(medlens evaluate, then medlens report --evaluation) says more."),
    )


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
    from medlens.evaluation.leaderboard import BASELINE_WORDS, model_fingerprint

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
            parts.append(f"It finds the marked finding no better than {BASELINE_WORDS.get(b, b)} "
                         f"({loc['value']:.0%} against {loc['baselines'][b]:.0%}): do not read it as the finding's location.")
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


def _native_map(values: torch.Tensor, x: torch.Tensor, native_shape: tuple[int, ...] | None, kind: str,
                geometry: Any = None) -> np.ndarray:
    """``(1, C', *s')`` attribution -> one map on the native grid (channels summed).

    With the recipe's ``geometry`` the map on the model's grid goes through its exact inverse
    (:func:`medlens.data.recipe.invert`: crops and pads undone, other slices zero), the map
    ``medlens explain`` writes; without it the map is resized onto ``native_shape``.
    """
    from medlens.core.resize import upsample_to
    from medlens.data.recipe import invert

    on_grid = upsample_to(values.detach().double(), x.shape[2:])  # (1, C', *spatial)
    if geometry is not None and kind != "signal":
        return invert(geometry, on_grid[0]).double().cpu().numpy()
    v = on_grid.sum(1, keepdim=True)  # (1, 1, *spatial)
    if kind != "signal" and native_shape is not None and tuple(native_shape) != tuple(v.shape[2:]):
        v = upsample_to(v, native_shape)
    if kind == "signal" and native_shape is not None and native_shape[-1] != v.shape[-1]:
        v = upsample_to(v, native_shape[-1:])
    return v[0, 0].cpu().numpy()


def _kind(x: torch.Tensor) -> str:
    return {3: "signal", 4: "image", 5: "volume"}[x.ndim]


def case_report(
    model: nn.Module,
    x: torch.Tensor,
    target: int | None = None,
    *,
    case: CaseInput = CaseInput(),
    meta: dict[str, Any] | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    method_options: dict[str, dict] | None = None,
    evaluation: str | Path | None = None,
    basis_inputs: torch.Tensor | None = None,
    basis_labels: torch.Tensor | None = None,
    k: int = 5,
    show_identifiers: bool = False,
    seed: int = 0,
    batch_size: int | None = None,
    memory_mb: float | None = None,
    model_name: str = "the model",
) -> tuple[CaseReport, dict]:
    """Compute everything the case report shows for one case.

    Parameters
    ----------
    model : nn.Module
        Classifier ``(B, K)``.
    x : torch.Tensor
        ``(1, C, *spatial)`` the case as the model takes it (1D, 2D or 3D).
    target : int, optional
        Class to explain (default: the predicted class).
    case : CaseInput
        The native scan and what is known about it.
    meta : dict
        The model file's metadata (class names, data set, test scores, calibration).
    methods : sequence of str
        Attribution methods to show; one that does not apply to this model is left out with a note.
    method_options : dict
        ``{method: {option: value}}``.
    evaluation : path, optional
        A ``medlens evaluate`` output folder of this model: its verdict says how far to trust
        the maps. Without it the per-case checks run.
    basis_inputs, basis_labels : torch.Tensor, optional
        ``(N, C, *spatial)`` and ``(N,)`` training cases for the prediction basis.
    k : int
        Similar training cases shown.
    show_identifiers : bool
        Put the identifying values into the report (escaped). Default: only their names.
    seed : int
        Seeds random methods, random maps and the randomised model.
    batch_size, memory_mb : optional
        Engine budget.

    Returns
    -------
    (CaseReport, dict)
        The report's content, and a JSON-ready summary (prediction, methods, trust levels).

    Raises
    ------
    InputError
        ``x`` is not one case, the target is out of range, basis data do not fit the model,
        or no method applies.
    """
    from medlens.attribution.explain import explain
    from medlens.attribution.registry import get_method
    from medlens.core.checks import evaluation_mode, model_outputs

    meta = dict(meta or {})
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4, 5) or len(x) != 1:
        raise InputError(f"a case report takes one case (1, C, *spatial), got shape {tuple(getattr(x, 'shape', ()))}")
    if not methods:
        raise InputError("name at least one method")
    for m in methods:
        get_method(m)
    options = {m: dict((method_options or {}).get(m, {})) for m in methods}
    for m, opts in options.items():
        known = get_method(m).options()
        extra = sorted(set(opts) - set(known))
        if extra:
            raise UnknownNameError(f"method {m!r} has no option {extra[0]!r}; its options: {', '.join(known) or 'none'}")
    for m in options:
        if get_method(m).random and "seed" in get_method(m).options():
            options[m].setdefault("seed", seed)
    unknown = set(method_options or {}) - set(methods)
    if unknown:
        raise InputError(f"options given for {sorted(unknown)[0]!r}, which is not among the methods shown")
    budget = Budget(batch_size=batch_size, memory_mb=memory_mb)
    dtype = next(iter(model.parameters())).dtype if any(True for _ in model.parameters()) else x.dtype
    if x.is_floating_point():
        x = x.to(dtype)
    with evaluation_mode(model), torch.inference_mode():
        probs = probabilities(model_outputs(model, x, budget))[0].double()
    predicted = int(probs.argmax())
    n_classes = len(probs)
    explained = predicted if target is None else int(target)
    if not 0 <= explained < n_classes:
        raise InputError(f"target {explained} is out of range: the model has {n_classes} classes (0..{n_classes - 1})")
    class_names = [str(c) for c in (meta.get("class_names") or [])][:n_classes]
    class_names += [f"class {k_}" for k_ in range(len(class_names), n_classes)]
    kind = _kind(x)
    native = case.native
    if native is None:
        native = x[0].mean(0).cpu().numpy() if kind != "signal" else x[0].cpu().numpy()
    native = np.asarray(native, dtype=np.float64)
    if kind == "signal" and native.ndim == 1:
        native = native[None]
    if native.ndim != (2 if kind == "signal" else x.ndim - 2):
        raise InputError(f"the native scan has shape {native.shape}, which does not match a {kind} "
                         f"input of shape {tuple(x.shape[1:])}")
    geometry = case.geometry if case.native is not None else None
    if geometry is not None and tuple(geometry.original_shape) != native.shape:
        raise InputError(f"the recipe's geometry maps back onto shape {tuple(geometry.original_shape)}, "
                         f"not onto the native scan's {native.shape}")
    attributions, maps, notes = {}, [], list(case.notes)
    for m in methods:
        try:
            attr = explain(model, x, explained, m, batch_size=batch_size, memory_mb=memory_mb, **options[m])
        except MedlensError as err:  # options were checked above: the method does not fit this model
            notes.append(f"{m} does not apply to this model and is not shown ({' '.join(str(err).split())}).")
            continue
        attributions[m] = attr.values
        maps.append(MapLayer(m, _native_map(attr.values, x, native.shape, kind, geometry)))
    if not maps:
        raise InputError(f"none of the methods {', '.join(methods)} applies to this model")
    if evaluation is not None:
        trust = trust_from_evaluation(model, evaluation, list(attributions), model_name=model_name)
    else:
        trust = trust_from_checks(case_checks(model, x, explained, attributions, method_options=options,
                                              seed=seed, budget=budget))
    basis = None
    basis_summary = ""
    if basis_inputs is not None:
        basis, basis_summary = _basis(model, x, basis_inputs, basis_labels, k, maps[0].name, options[maps[0].name],
                                      class_names, predicted, budget)
    sentence = _sentence(model, x, budget)
    calibration, calibration_rows = calibration_sentence(meta.get("calibration"), float(probs[predicted]))
    familiar = familiarity(model, x, meta.get("familiarity"))
    identifiers = dict(case.identifiers)
    report = CaseReport(
        scan=case.description, kind=kind, base=native, maps=maps, class_names=class_names,
        probabilities=[float(p) for p in probs], predicted=predicted, explained=explained, trust=trust,
        label=None if case.label is None else class_names[case.label] if 0 <= case.label < len(class_names) else str(case.label),
        calibration=calibration, calibration_rows=calibration_rows, basis=basis, basis_summary=basis_summary,
        sentence=sentence, metadata=dict(case.metadata), withheld=withheld_names(identifiers),
        identifiers=identifiers if show_identifiers else None, model=_model_words(meta),
        spacing=case.spacing, annotations=list(case.annotations), rate=case.rate, window=case.window, notes=notes,
        familiarity=familiar.sentence, familiarity_unlike=familiar.unlike, familiarity_rows=familiar.rows,
    )
    summary = {
        "prediction": predicted,
        "predicted_class": class_names[predicted],
        "probabilities": {class_names[i]: float(p) for i, p in enumerate(probs)},
        "explained": explained,
        "methods": [m.name for m in maps],
        "trust": {"source": trust.source, "level": trust.level, "headline": trust.headline,
                  "methods": {t.method: t.level for t in trust.methods}},
        "basis": None if basis is None else [{"train_index": b.index, "label": b.label, "similarity": b.similarity}
                                             for b in basis],
        "sentence": sentence,
        "familiarity": {"unlike_training_data": familiar.unlike, "distances": familiar.distances,
                        "sentence": familiar.sentence},
        "identifiers_withheld": [] if show_identifiers else withheld_names(identifiers),
    }
    return report, summary


def withheld_names(identifiers: dict[str, str]) -> list[str]:
    """Readable names of withheld identifiers: top-level attributes (an identifier nested in a
    sequence is named by its sequence), private elements counted, not listed."""
    names, private = set(), 0
    for key in identifiers:
        top = key.split("[", 1)[0]
        if top.startswith("private ("):
            private += 1
        else:
            names.add(top)
    out = sorted(names)
    if private:
        out.append(f"{private} private element{'s' if private != 1 else ''}")
    return out


def _model_words(meta: dict) -> str:
    parts = []
    if meta.get("data"):
        parts.append(f"trained on {meta['data']}")
    test = meta.get("test") or {}
    if isinstance(test.get("accuracy"), (int, float)) and math.isfinite(test["accuracy"]):
        parts.append(f"test accuracy {test['accuracy']:.2f}")
    return ", ".join(parts) or "a classifier"


def _basis(model, x, inputs, labels, k, method, options, class_names, predicted, budget):
    from medlens.selfexplain.basis import prediction_basis

    if labels is None or len(labels) != len(inputs):
        raise InputError("basis data need one label per case")
    if tuple(inputs.shape[1:]) != tuple(x.shape[1:]):
        raise InputError(
            f"basis data have cases of shape {tuple(inputs.shape[1:])}, the model takes {tuple(x.shape[1:])}"
        )
    if not 1 <= k <= len(inputs):
        raise InputError(f"k must lie in 1..{len(inputs)} (the basis data's size), got {k}")
    pb = prediction_basis(model, x, inputs.to(x.dtype), labels, k=k, method=method, **budget.kwargs(), **options)
    from medlens.core.resize import upsample_to

    sal = upsample_to(pb.saliency[0].double(), x.shape[2:]) if pb.saliency is not None else None
    cases = [
        BasisCase(
            index=int(pb.indices[0, j]), image=inputs[int(pb.indices[0, j])].double().cpu().numpy(),
            saliency=None if sal is None else sal[j].cpu().numpy(),
            label=class_names[int(pb.labels[0, j])] if int(pb.labels[0, j]) < len(class_names) else str(int(pb.labels[0, j])),
            predicted=class_names[int(pb.predictions[0, j])], similarity=float(pb.similarity[0, j]),
        )
        for j in range(pb.indices.shape[1])
    ]
    same = int((pb.labels[0] == predicted).sum())
    text = (f"The {len(cases)} training cases the model sees as most alike this one: {same} of them carry the label "
            f"{class_names[predicted]}, the model's finding here. Each is shown with its own {method} map.")
    return cases, text


def _sentence(model: nn.Module, x: torch.Tensor, budget: Budget) -> str | None:
    """The sentence an InterpNET-style model writes about the case (Kim et al. 2018), else ``None``."""
    from medlens.selfexplain.interpnet import InterpNet, generate

    if not isinstance(model, InterpNet):
        return None
    return generate(model, x, **budget.kwargs()).sentences[0]
