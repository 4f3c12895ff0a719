"""README tables of the model-family and seed-system benchmarks (``transformers``, ``scinet``,
``deeptune``, ``groupinn``, ``fourier_frequencies``)."""

from __future__ import annotations

from _tables import num, table

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
    "scinet": scinet_table,
    "deeptune": deeptune_table,
    "groupinn": groupinn_table,
    "fourier_frequencies": fourier_table,
}
