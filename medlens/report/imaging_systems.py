"""Report sections of the imaging systems: haemorrhage detection, attention gates, patch attention.

Each builder takes the plain-data results of :mod:`medlens.app.systems` (the
``as_dict()`` of a result, or the JSON a benchmark wrote) and adds a section with tables and the
wording of what the numbers mean, to a :class:`~medlens.report.html.Report`. Nothing here runs
a model; every piece of text goes through the report's escaping.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from medlens.report.html import Report, Section


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _images(sec: Section, images: Sequence[tuple[bytes, str]] | None) -> None:
    if images:
        sec.add_images(list(images))


def _ratio_words(value: float, chance: float) -> str:
    if not (value == value and chance == chance) or chance <= 0:
        return "cannot be compared with chance"
    r = value / chance
    if r >= 1.1:
        return f"{r:.1f} times what a uniform map would give"
    if r > 0.9:
        return f"about what a uniform map would give ({r:.2f}x)"
    return f"below what a uniform map would give ({r:.2f}x)"


def haemorrhage_section(report: Report, r: Mapping[str, Any], images: Sequence[tuple[bytes, str]] | None = None) -> Section:
    """Lee et al. (2019) on head-CT phantoms: detection, subtypes, maps, windows, prediction basis."""
    sec = report.section("Haemorrhage detection on head CT (Lee et al. 2019)")
    sizes = r.get("sizes", {})
    sec.add_text(
        "Head-CT phantoms in Hounsfield units with acute haemorrhages of five subtypes whose voxels are known "
        f"exactly ({sizes.get('cases', {}).get('train', '?')} training and {sizes.get('cases', {}).get('test', '?')} "
        f"held-out cases of {sizes.get('shape', '?')} voxels). Brain, subdural and bone windows enter as channels "
        f"through the model's recipe; the slice model reads each slice with {sizes.get('context', 1)} neighbour(s) "
        "on each side (2.5D), the volume model the whole windowed volume (3D)."
    )
    rows = []
    for name, key in (("2.5D slices", "slice_model"), ("3D volumes", "volume_model")):
        m = r.get(key, {})
        acc = m.get("subtype_accuracy", {})
        rows.append([name, _f(m.get("detection_auroc")), _f(m.get("case_detection_auroc")), _f(acc.get("mean")),
                     _f(m.get("pointing", {}).get("all")), _f(m.get("mass_in_mask", {}).get("all")),
                     _f(m.get("mask_share", {}).get("all"))])
    sec.add_table(["model", "slice detection AUROC", "case detection AUROC", "subtype accuracy (mean)",
                   "Grad-CAM pointing game", "mass in mask", "mask share (uniform map)"], rows)
    subtypes = list(r.get("slice_model", {}).get("subtype_accuracy", {}))
    subtypes = [s for s in subtypes if s != "mean"]
    if subtypes:
        sm, vm = r.get("slice_model", {}), r.get("volume_model", {})
        sec.add_heading("Per subtype")
        sec.add_table(
            ["subtype", "2.5D accuracy", "2.5D case accuracy", "2.5D pointing", "2.5D mass in mask", "mask share",
             "3D accuracy", "3D pointing", "3D mass in mask"],
            [[s, _f(sm.get("subtype_accuracy", {}).get(s)), _f(sm.get("case_subtype_accuracy", {}).get(s)),
              _f(sm.get("pointing", {}).get(s)), _f(sm.get("mass_in_mask", {}).get(s)), _f(sm.get("mask_share", {}).get(s)),
              _f(vm.get("subtype_accuracy", {}).get(s)), _f(vm.get("pointing", {}).get(s)),
              _f(vm.get("mass_in_mask", {}).get(s))] for s in subtypes],
        )
        best = max(subtypes, key=lambda s: _f(sm.get("pointing", {}).get(s)))
        worst = min(subtypes, key=lambda s: _f(sm.get("pointing", {}).get(s)))
        mass = _ratio_words(_f(sm.get("mass_in_mask", {}).get("all")), _f(sm.get("mask_share", {}).get("all")))
        where = (f"points into the blood most often for {best} and least often for {worst} haemorrhages"
                 if best != worst else f"was measured on {best} haemorrhages only")
        sec.add_text(f"The slice model's Grad-CAM {where}; its mass in the mask is {mass}.")
        confusion = sm.get("confusion")
        if confusion and len(confusion) == len(subtypes):
            n_min = r.get("sizes", {}).get("subtype_min_voxels")
            on = f"slices with at least {n_min} voxels of blood" if n_min else "slices with blood"
            sec.add_heading(f"Subtype confusion of the slice model ({on}; rows: truth, columns: prediction)")
            sec.add_table(["truth \\ predicted"] + subtypes, [[s] + list(row) for s, row in zip(subtypes, confusion)])
            all_acc = sm.get("subtype_accuracy_all", {})
            if all_acc:
                sec.add_text(f"Mean subtype accuracy {_f(sm.get('subtype_accuracy', {}).get('mean')):.3f} on {on}, "
                             f"{_f(all_acc.get('mean')):.3f} on every slice with blood (at least 3 voxels, tips of "
                             "lesions included).")
    vmaps = r.get("volume_maps", {})
    if vmaps and "pointing" in vmaps:  # results of a single map method
        vmaps = {"gradcam": vmaps}
    map_rows = [[model, m, _f(v.get("pointing", {}).get("all")), _f(v.get("mass_in_mask", {}).get("all")),
                 _f(v.get("mask_share", {}).get("all"))]
                for model, key in (("2.5D, per slice", "slice_model"), ("3D, per volume", "volume_model"))
                for m, v in r.get(key, {}).get("maps", {}).items()]
    if map_rows:
        sec.add_heading("Each map method")
        sec.add_table(["model", "map", "pointing", "mass in mask", "mask share"], map_rows)
    if vmaps:
        sec.add_heading("Per volume: the slice maps stacked")
        methods = list(vmaps)
        first = vmaps[methods[0]]
        keys = [k for k in first.get("pointing", {}) if k != "all"] + ["all"]
        headers = ["subtype"] + [f"{m}: {q}" for m in methods for q in ("pointing (3D)", "mass in mask (3D)")]
        headers += ["mask share", "case p(haemorrhage)", "case subtype right"]
        sec.add_table(headers, [[k] + [_f(vmaps[m].get(q, {}).get(k)) for m in methods
                                       for q in ("pointing", "mass_in_mask")]
                                + [_f(first.get("mask_share", {}).get(k)), _f(first.get("case_detection", {}).get(k)),
                                   _f(first.get("case_subtype_correct", {}).get(k))] for k in keys])
        words = []
        for m in methods:
            mass = _ratio_words(_f(vmaps[m].get("mass_in_mask", {}).get("all")), _f(vmaps[m].get("mask_share", {}).get("all")))
            words.append(f"{m}: its maximum lies in the blood in {_f(vmaps[m].get('pointing', {}).get('all')):.2f} of "
                         f"the cases and its mass in the mask is {mass}")
        sec.add_text("Each positive held-out case's slice maps (for the case's pooled subtype) stacked into one volume "
                     "and scored against the 3D mask; " + "; ".join(words) + ".")
    windows = r.get("windows", {})
    if windows:
        names = [w for w in next(iter(windows.values())) if isinstance(next(iter(windows.values()))[w], dict)]
        has_twin = any(_f(v[w].get("twin_drop")) == _f(v[w].get("twin_drop")) for v in windows.values() for w in names)
        sec.add_heading("Which window carries the decision")
        headers = ["class"] + [f"{w}: IG share" for w in names]
        has_gain = any(_f(v[w].get("twin_gain")) == _f(v[w].get("twin_gain")) for v in windows.values() for w in names)
        if has_twin:
            headers += [f"{w}: blood removed" for w in names]
        if has_gain:
            headers += [f"{w}: its blood alone" for w in names]
        headers += [f"{w}: flat (secondary)" for w in names]
        sec.add_table(headers, [[c] + [_f(v[w]["ig_share"]) for w in names]
                                + ([_f(v[w].get("twin_drop")) for w in names] if has_twin else [])
                                + ([_f(v[w].get("twin_gain")) for w in names] if has_gain else [])
                                + [_f(v[w]["ablation_drop"]) for w in names] for c, v in windows.items()])
        key = "twin_drop" if has_twin else "ablation_drop"
        lines, ties = [], []
        for c, v in windows.items():
            drops = sorted((_f(v[w].get(key)) for w in names), reverse=True)
            if any(d != d for d in drops):
                continue  # not measured for this class (no blood to remove)
            if len(drops) > 1 and drops[0] - drops[1] < 0.01:
                ties.append(c)
                continue
            top = max(names, key=lambda w: _f(v[w].get(key)))
            lines.append(f"{c}: {top}")
        ig_top = {c: max(names, key=lambda w: _f(v[w]["ig_share"])) for c, v in windows.items()}
        text = ("Integrated gradients' share of magnitude per window for the predicted class. The largest share, per "
                "class: " + "; ".join(f"{c}: {w}" for c, w in ig_top.items()) + ".")
        if has_twin:
            text += (" In distribution: the fall of the predicted subtype's probability when one window is taken from "
                     "the same scan without its blood (the phantom's blood-free twin).")
        else:
            text += " The fall of the class probability when a window is replaced by its training mean."
        if lines:
            text += " The window whose removal costs most: " + "; ".join(lines) + "."
        if ties:
            reason = ("removing the blood from either window costs the same" if has_twin else
                      "a flat channel is an input the model never saw, so ablation cannot tell these windows apart")
            text += " For " + ", ".join(ties) + f" {reason}."
        if has_gain:
            alone = {c: max(names, key=lambda w: _f(v[w].get("twin_gain"))) for c, v in windows.items()
                     if any(_f(v[w].get("twin_gain")) == _f(v[w].get("twin_gain")) for w in names)}
            text += (" Conversely, the rise of that probability when only one window's blood is put back into the "
                     "twin (is that window enough on its own?); largest, per class: "
                     + "; ".join(f"{c}: {w}" for c, w in alone.items()) + ".")
        if has_twin:
            text += (" The flat-channel columns (a window set to its training mean) are out of distribution and shown "
                     "only as a secondary number.")
        sec.add_text(text)
    basis = r.get("basis", {})
    if basis:
        sec.add_heading("Prediction basis")
        sec.add_text(
            f"For {basis.get('queries', '?')} positive held-out slices, {_f(basis.get('same_subtype')):.2f} of the "
            f"{basis.get('k', '?')} most similar training slices share the query's subtype (chance "
            f"{_f(basis.get('chance')):.2f}) and {_f(basis.get('same_detection')):.2f} its haemorrhage/no-haemorrhage label."
        )
    ex = r.get("example", {})
    if ex:
        probs = ex.get("probabilities", {})
        sec.add_heading("A case report")
        sec.add_table(["class", "probability"], [[k, _f(v)] for k, v in probs.items()])
        sec.add_text(
            f"Held-out case #{ex.get('case')} (truth: {ex.get('subtype')}); slice #{ex.get('slice')} retrieves training "
            f"slices of subtypes {', '.join(ex.get('basis_subtypes', []))}."
        )
    _images(sec, images)
    return sec


def attention_gates_section(report: Report, r: Mapping[str, Any], images: Sequence[tuple[bytes, str]] | None = None) -> Section:
    """Schlemper et al. (2019): gate maps against Grad-CAM, and the Jain-Wallace tests."""
    sec = report.section("Attention-gated networks (Schlemper et al. 2019)")
    acc = r.get("accuracy", {})
    sec.add_table(["model", "test accuracy", "test AUROC"],
                  [[k, _f(v.get("accuracy")), _f(v.get("auroc"))] for k, v in acc.items()])
    loc = r.get("localisation", {})
    labels = {"gates": "gate maps (mean of gates)", "gate_0": "finer gate", "gate_1": "coarser gate",
              "gradcam_gated": "Grad-CAM, gated model", "gradcam_cnn": "Grad-CAM, plain CNN"}
    sec.add_table(["map", "pointing game", "mass in mask", "mask share (uniform map)"],
                  [[labels.get(k, k), _f(v.get("pointing")), _f(v.get("mass_in_mask")), _f(v.get("mask_share"))]
                   for k, v in loc.items()])
    dele = r.get("deletion", {})
    if dele:
        sec.add_heading("Deletion (lower area = the map finds what the decision needs)")
        sec.add_table(["map", "deletion AUC"], [[k, _f(v)] for k, v in dele.items()])
        g, rnd = _f(dele.get("gates")), _f(dele.get("random_gated"))
        better = rnd - g > 0.02  # AUCs of probabilities: a margin below that is noise on ~60 images
        verdict = ("removing the gated regions first lowers the lesion probability faster than removing random ones"
                   if better else "the gate map does no better than a random map at finding what the decision needs")
        sec.add_text(f"Gate map {g:.3f} vs random map {rnd:.3f}: {verdict}.",
                     kind="verdict-good" if better else "verdict-bad")
    rep = r.get("gates_replaced", {})
    if rep:
        sec.add_heading("Gates permuted or made uniform (Jain and Wallace 2019)")
        rows = [[k, _f(v.get("accuracy")), _f(v.get("flipped")), _f(v.get("total_variation")), _f(v.get("positive_p_change"))]
                for k, v in rep.items() if isinstance(v, Mapping)]
        sec.add_table(["gates", "accuracy", "decisions flipped", "output change (TV)", "mean change of p(lesion), positives"], rows)
        flipped = max((_f(v.get("flipped")) for v in rep.values() if isinstance(v, Mapping)), default=math.nan)
        sec.add_text(
            f"Original accuracy {_f(rep.get('original_accuracy')):.3f}. "
            + ("Changing the gates changes decisions: the network uses where its gates point."
               if flipped > 0.05 else
               "Changing the gates barely changes decisions: the gate coefficients are not what the decision rests on, "
               "so reading them as the explanation would overstate their role.")
        )
    _images(sec, images)
    return sec


def patch_attention_section(report: Report, r: Mapping[str, Any], images: Sequence[tuple[bytes, str]] | None = None) -> Section:
    """Ilse et al. (2018) / Tomita et al. (2019): attention over the patches of large slides."""
    sec = report.section("Attention over patches (Ilse et al. 2018; Tomita et al. 2019)")
    s = r.get("sizes", {})
    sec.add_text(
        f"Slides of {s.get('size', '?')} x {s.get('size', '?')} pixels cut into {s.get('patches_per_slide', '?')} patches "
        f"of {s.get('patch', '?')} pixels; a few patches of positive slides hold the evidence (rings), distractor discs "
        "appear in both classes. The model sees only slide labels."
    )
    sec.add_table(
        ["slide AUROC", "slide accuracy", "attention on evidence", "evidence share of patches", "attention on distractors",
         "distractor share of patches", "top patch is evidence"],
        [[_f(r.get("slide_auroc")), _f(r.get("slide_accuracy")), _f(r.get("attention_on_evidence")),
          _f(r.get("evidence_patch_share")), _f(r.get("attention_on_distractors")), _f(r.get("distractor_patch_share")),
          _f(r.get("top_patch_is_evidence"))]],
    )
    ag = r.get("agreement", {})
    sec.add_text(
        f"Attention puts {_f(r.get('attention_on_evidence')):.2f} of its weight on evidence patches, "
        f"{_ratio_words(_f(r.get('attention_on_evidence')), _f(r.get('evidence_patch_share')))}. Against per-patch "
        f"gradient x input magnitude: Kendall tau {_f(ag.get('kendall_tau')):.2f}, same top patch in "
        f"{_f(ag.get('same_top_patch')):.2f} of slides; the gradient puts {_f(ag.get('gradient_on_evidence')):.2f} "
        "on the evidence patches."
    )
    _images(sec, images)
    return sec


def imaging_systems_report(results: Mapping[str, Mapping[str, Any]], images: Mapping[str, Sequence[tuple[bytes, str]]] | None = None) -> Report:
    """A report of whichever of ``haemorrhage``, ``attention_gates``, ``patch_attention`` ``results`` holds."""
    images = images or {}
    rep = Report("medlens: imaging systems", "Section 4 systems rebuilt on ground-truth data and measured")
    builders = {"haemorrhage": haemorrhage_section, "attention_gates": attention_gates_section,
                "patch_attention": patch_attention_section}
    for key, build in builders.items():
        if key in results:
            build(rep, results[key], images.get(key))
    return rep
