"""README tables of the model-family, imaging-system and seed-system benchmarks (``transformers``,
``transformers_shortcut``, ``haemorrhage``, ``scinet``, ``deeptune``, ``groupinn``, ``fourier_frequencies``)."""

from __future__ import annotations

from _tables import num, pct, shape, table

_METRICS = ("pointing_game", "mass_in_mask", "deletion_auc", "randomisation_spearman")


def transformers_table(payload: dict) -> list[str]:
    """Test scores of the ViT and the CNN, both leaderboards and the ViT attention's Jain-Wallace verdict."""
    n = payload["numbers"]
    d = n["data"]
    lines = [(f"Lesion benchmark {d['size']}x{d['size']}, {d['n_train']} training images; leaderboard on {d['n_eval']} "
             f"test images ({d['n_eval_positive']} with a lesion)."), "",
             *table(("model", "epochs", "test accuracy", "test AUROC"), (
                 (name + (f" ({m['config']['stem']} stem)" if "stem" in m["config"] else ""), m["epochs"],
                  num(m["test"]["accuracy"]), num(m["test"]["auroc"])) for name, m in n["models"].items())), ""]
    rows = []
    for name, board in n["leaderboard"].items():
        for method, metrics in board.items():
            rows.append((name, method, *(num((metrics.get(k) or {}).get("mean")) for k in _METRICS)))
    lines += table(("model", "method", "pointing game", "mass in lesion", "deletion AUC (lower better)",
                    "randomisation Spearman (lower better)"), rows)
    return lines + ["", f"Attention of the ViT (Jain-Wallace): {n['jain_wallace']['verdict']}. "
                        + n["jain_wallace"]["sentences"][-1]]


def _signed(v) -> str:
    return "n/a" if v is None else f"{v:+.2f}"


def transformers_shortcut_table(payload: dict) -> list[str]:
    """The ViT and the CNN on the shortcut variant: does each rely on the marker (paste / erase), and
    how much of each method's positive attribution falls on the marker against its share of the image."""
    n = payload["numbers"]
    d = n["data"]
    audits = n["shortcut"]
    area = next(iter(audits.values()))["marker_area_fraction"]
    lines = [(f"Lesion benchmark {d['size']}x{d['size']}, shortcut variant: {d['n_train']} training images, the marker "
              f"agrees with the label in {pct(d['train_marker_agrees_with_label'])} of them; leaderboard (target = "
              f"label) on {d['n_eval']} test images, where the marker is independent of the label ({d['n_eval_marker']} "
              f"carry it, {d['n_eval_positive']} have a lesion). The marker covers {pct(area, 1)} of the image."), ""]
    lines += table(("model", "epochs", "test accuracy", "test AUROC", "relies on the marker", "pasting it: change of p(lesion)",
                    "erasing it: change of p(lesion)", "accuracy, marker agrees / contradicts"), (
        (name + (f" ({m['config']['stem']} stem)" if "stem" in m["config"] else ""), m["epochs"], num(m["test"]["accuracy"]),
         num(m["test"]["auroc"]), "yes" if audits[name]["relies_on_marker"] else "no",
         _signed(audits[name]["delta_p_pasted"]), _signed(audits[name]["delta_p_erased"]),
         f"{num(audits[name]['accuracy_marker_agrees'], 2)} / {num(audits[name]['accuracy_marker_conflicts'], 2)}")
        for name, m in n["models"].items()))
    rows = []
    split = n.get("marker_mass_by_target", {})
    for name, board in n["leaderboard"].items():
        for method, metrics in board.items():
            mm, lesion = metrics.get("marker_mass") or {}, metrics.get("mass_in_mask") or {}
            ci = f" [{num(mm['ci_low'])}, {num(mm['ci_high'])}]" if mm.get("ci_low") is not None else ""
            ratio = f"{mm['mean'] / area:.1f}" if mm.get("mean") is not None and area else "n/a"
            by = split.get(name, {}).get(method, {})
            rows.append((name, method, num(mm.get("mean")) + ci, ratio,
                         *(num((by.get(t) or {}).get("mean")) + f" ({(by.get(t) or {}).get('n', 0)})" for t in ("1", "0")),
                         num(lesion.get("mean"))))
    lines += ["", *table(("model", "method", "mass on marker [95% CI]", "x marker's share of the image",
                          "mass on marker, explaining 'lesion' (n)", "mass on marker, explaining 'no lesion' (n)",
                          "mass in lesion"), rows)]
    said = []
    for name, board in n["leaderboard"].items():
        edge = (board.get("baseline:edge", {}).get("marker_mass") or {}).get("mean") or 0.0
        over = sorted(((metrics["marker_mass"]["mean"] / area, method) for method, metrics in board.items()
                       if not method.startswith("baseline:") and (metrics.get("marker_mass") or {}).get("ci_low") is not None
                       and metrics["marker_mass"]["ci_low"] > max(2 * area, edge)), reverse=True)
        said.append(f"{name} ({'relies' if audits[name]['relies_on_marker'] else 'does not measurably rely'} on the "
                    f"marker): " + (", ".join(f"{method} ({r:.0f}x)" for r, method in over) if over else "none"))
    return lines + ["", ("Methods whose 95% interval of the mass on the marker lies above both twice the marker's share "
                         "of the image and the model-free edge map's mass: " + "; ".join(said) + ".")]


def haemorrhage_table(payload: dict) -> list[str]:
    """The 2.5D and 3D models' scores, where their maps point, and which CT window decides."""
    n = payload["numbers"]
    sz, sm, vm = n["sizes"], n["slice_model"], n["volume_model"]
    subtypes = [k for k in sm["subtype_accuracy"] if k != "mean"]
    lines = [(f"{sz['cases']['train']} training phantoms ({sz['slices']['train']} slices of {shape(sz['shape'])}), "
              f"{sz['cases']['test']} test phantoms; 3D model: {sz['cases_3d']['train']} training and "
              f"{sz['cases_3d']['test']} test volumes of {shape(sz['shape_3d'])}."), ""]
    lines += table(("model", "detection AUROC", "case AUROC", *subtypes, "mean subtype accuracy"), [
        (f"2.5D, slices with >= {sz['subtype_min_voxels']} voxels of blood", num(sm["detection_auroc"]),
         num(sm["case_detection_auroc"]), *(num(sm["subtype_accuracy"][k], 2) for k in subtypes),
         num(sm["subtype_accuracy"]["mean"])),
        ("2.5D, every slice with blood", "", "", *(num(sm["subtype_accuracy_all"][k], 2) for k in subtypes),
         num(sm["subtype_accuracy_all"]["mean"])),
        ("3D", "", num(vm["case_detection_auroc"]), *(num(vm["subtype_accuracy"][k], 2) for k in subtypes),
         num(vm["subtype_accuracy"]["mean"]))])
    rows = []
    for label, maps in (("2.5D, per slice", sm["maps"]), ("2.5D, slice maps stacked per volume", n["volume_maps"]),
                        ("3D", vm["maps"])):
        for method, m in maps.items():
            rows.append((label, method, num(m["pointing"]["all"], 2), num(m["mass_in_mask"]["all"]),
                         num(m["mask_share"]["all"], 4)))
    lines += ["", *table(("model", "map", "pointing game", "mass in the blood", "blood's share of the input"), rows)]
    windows = [w for w in n["windows"]["none"] if w != "slices"]
    lines += ["", *table(("true class", *(f"{w}: twin drop / IG share" for w in windows)), (
        (cls, *(f"{num(v[w]['twin_drop'], 2)} / {num(v[w]['ig_share'], 2)}" for w in windows))
        for cls, v in n["windows"].items()))]
    b = n["basis"]
    return lines + ["", (f"Twin drop: fall of the predicted subtype's probability when the window is taken from the "
                         f"blood-free twin. Prediction basis ({b['k']} most similar training slices): same subtype "
                         f"{pct(b['same_subtype'])}, chance {pct(b['chance'])}.")]


def scinet_table(payload: dict) -> list[str]:
    """Each parameter's best latent neuron, the KL per neuron, the answer error."""
    n = payload["numbers"]
    c = payload["provenance"]["config"]
    rows = [(name, p["best_neuron"], num(p["abs_correlation"], 4), "yes" if p["abs_correlation"] >= 0.95 else "no")
            for name, p in n["parameters"].items()]
    return [(f"{c.get('latent')} latent neurons, beta {c.get('beta')}, {c.get('epochs')} epochs, "
            f"{c.get('n_train', 20000)} training oscillators."), "",
            *table(("parameter", "best neuron", "abs. correlation", "captured (>= 0.95)"), rows), "",
            (f"KL per neuron (nats): {', '.join(num(k, 4) for k in n['kl_per_neuron'])}; held-out answer RMSE "
            f"{num(n['answer_rmse'], 4)} (answers' SD {num(n['answer_std'], 4)}).")]


def deeptune_table(payload: dict) -> list[str]:
    """Per simulated neuron: held-out correlation and the DeepTune image's similarity to the truth."""
    n = payload["numbers"]
    rows = [(name, " ".join(num(v, 2) for v in u["r_members"]), num(u["r_consensus"]),
             " ".join(num(v, 2) for v in u["ncc_members"]), num(u["ncc_consensus"]), num(u["ncc_other_neurons"]))
            for name, u in n["neurons"].items()]
    return [*table(("neuron", "r members", "r consensus", "NCC members", "NCC consensus", "NCC, other neurons' images"),
                   rows), "",
            (f"Noise ceiling of the correlation {num(n['noise_ceiling'])}. Means: r members {num(n['mean_r_members'])}, "
            f"consensus {num(n['mean_r_consensus'])}; NCC members {num(n['mean_ncc_members'])}, best member per neuron "
            f"{num(n['mean_ncc_best_member'])}, consensus {num(n['mean_ncc_consensus'])}, other neurons' images "
            f"{num(n['mean_ncc_other_neurons'])}.")]


def groupinn_table(payload: dict) -> list[str]:
    """Per seed: GroupINN against logistic regression, and the recovered groups (ARI)."""
    n = payload["numbers"]
    rows = [(seed, num(s["accuracy"]), num(s["baseline_accuracy"]), num(s["ari"]), num(s["ari_without_cohesion"]),
             num(s["accuracy_without_cohesion"]), num(s["orthogonality"])) for seed, s in n["seeds"].items()]
    m = n["mean"]
    rows.append(("mean", num(m["accuracy"]), num(m["baseline_accuracy"]), num(m["ari"]), num(m["ari_without_cohesion"]),
                 "", ""))
    return table(("seed", "GroupINN accuracy", "logistic regression", "ARI", "ARI, paper's losses only",
                  "accuracy, paper's losses only", "||W^T W - I||"), rows)


def fourier_table(payload: dict) -> list[str]:
    """Best-phase correlation with the planted grating, per period and parameterisation."""
    n = payload["numbers"]
    names = list(n["correlation"])
    rows = [(f"{p:g} px", *(num(n["correlation"][k][i]) for k in names)) for i, p in enumerate(n["periods"])]
    rows.append(("mean", *(num(n["mean_over_periods"][k]) for k in names)))
    return [*table(("grating period", *names), rows), "",
            f"Default / pixel (sums over the periods) = {num(n['default_over_pixel'])}."]


TABLES = {
    "transformers": transformers_table,
    "transformers_patch_stem": transformers_table,
    "transformers_shortcut": transformers_shortcut_table,
    "haemorrhage": haemorrhage_table,
    "scinet": scinet_table,
    "deeptune": deeptune_table,
    "groupinn": groupinn_table,
    "fourier_frequencies": fourier_table,
}
