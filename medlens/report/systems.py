"""Report sections of the representation systems (DeepTune, SciNet, GroupINN).

Each builder takes a finished result (from :mod:`medlens.app.systems`) and a
:class:`~medlens.report.html.Report`, and adds one section: what was measured, the numbers, a
verdict against the acceptance thresholds, and the pictures. Nothing here runs a model.
"""

from __future__ import annotations

from typing import Any

from medlens.report.html import Report

#: SciNet: a parameter counts as captured by one neuron at this absolute correlation.
CAPTURE_THRESHOLD = 0.95


def _mean(values: Any) -> float:
    return float(values.double().mean())


def deeptune_section(report: Report, result: Any) -> None:
    """DeepTune: held-out prediction accuracy and similarity of each image to the truth."""
    from medlens.viz import figure_png
    from medlens.viz.systems import deeptune_figure

    sec = report.section("DeepTune: the stimulus each modelled neuron prefers")
    s = result.settings
    sec.add_text(
        f"{len(result.neuron_names)} simulated neurons with known tuning were recorded on {s.get('stimuli')} "
        f"stimuli (bundled chest X-ray scans and textures) with noise of {s.get('noise')} times each response's "
        f"spread. A ridge regression per neuron maps the features of {s.get('members')} CNNs (trained on "
        f"PneumoniaMNIST, different seeds) to the responses; a fifth of the stimuli are held out. Each fitted "
        f"model's preferred stimulus is found by feature visualisation of its predicted response, and the "
        f"consensus image by that of the members' mean standardised prediction (Abbasi-Asl et al. 2018)."
    )
    members = result.member_similarity  # (M, K)
    rows = []
    for k, name in enumerate(result.neuron_names):
        rows.append([
            name, float(result.member_correlation[:, k].mean()), float(result.consensus_correlation[k]),
            float(members[:, k].mean()), float(members[:, k].max()), float(result.consensus_similarity[k]),
            float(result.chance_similarity[k]),
        ])
    sec.add_table(
        ["neuron", "held-out r (members, mean)", "held-out r (consensus)", "image NCC (members, mean)",
         "image NCC (best member)", "image NCC (consensus)", "NCC of other neurons' images"],
        rows,
    )
    wins = int((result.consensus_similarity > members.mean(0)).sum())
    k = len(result.neuron_names)
    sec.add_text(
        f"Noise ceiling of the correlation: {result.noise_ceiling:.3f}. The consensus image is closer to the true "
        f"preferred stimulus than the members' images on average for {wins} of {k} neurons (mean NCC "
        f"{_mean(result.consensus_similarity):.3f} against {_mean(members):.3f}; images rendered for other neurons "
        f"score {_mean(result.chance_similarity):.3f}).",
        kind="verdict-good" if wins == k else "note",
    )
    fig = deeptune_figure(result.preferred, result.consensus_images, result.member_images, result.neuron_names,
                          result.consensus_similarity, members)
    sec.add_image(figure_png(fig), "DeepTune images next to each neuron's true preferred stimulus")


def scinet_section(report: Report, result: Any) -> None:
    """SciNet: which latent neuron holds which parameter, which are switched off, answer error."""
    from medlens.viz import figure_png
    from medlens.viz.systems import latent_scatter_figure, traversal_figure

    a = result.analysis
    s = result.settings
    sec = report.section("SciNet: latent neurons that hold the physical parameters")
    sec.add_text(
        f"An encoder reads 50 positions of a damped oscillator; {a.kl.numel()} latent neurons with a beta-VAE "
        f"penalty (beta {s.get('beta')}) pass what it found to a decoder that answers the position at a queried "
        f"time in [0, 10] s (Iten et al. 2020). Trained on {s.get('n_train')} simulated oscillators, measured on "
        f"{s.get('n_test')} held-out ones."
    )
    sec.add_table(
        ["parameter", "best neuron", "|correlation|", "captured (>= 0.95)"],
        [[name, int(i), float(c), "yes" if float(c) >= CAPTURE_THRESHOLD else "no"]
         for name, i, c in zip(a.parameter_names, a.best_neuron, a.best_correlation)],
    )
    sec.add_table(
        ["latent neuron", "KL from the prior (nats)", "state"] + [f"|r| with {n}" for n in a.parameter_names],
        [[j, float(a.kl[j]), "active" if bool(a.active[j]) else "switched off"]
         + [float(a.correlation[p, j]) for p in range(a.correlation.shape[0])] for j in range(a.kl.numel())],
    )
    captured = bool((a.best_correlation >= CAPTURE_THRESHOLD).all())
    distinct = len(set(int(i) for i in a.best_neuron)) == len(a.best_neuron)
    n_active = int(a.active.sum())
    sec.add_text(
        f"Held-out answer RMSE {a.answer_rmse:.4f} (the answers' SD is {a.answer_std:.4f}). "
        + ("Each parameter is held by its own neuron" if captured and distinct else "Not every parameter is held by its own neuron")
        + f"; {n_active} of {a.kl.numel()} neurons are active, {a.kl.numel() - n_active} switched off.",
        kind="verdict-good" if captured and distinct and n_active == len(a.best_neuron) else "verdict-bad",
    )
    labels = []
    for j in range(a.kl.numel()):
        held = [f"{n} (|r| {float(a.correlation[p, j]):.2f})" for p, n in enumerate(a.parameter_names)
                if int(a.best_neuron[p]) == j]
        labels.append(", ".join(held) if held else ("switched off" if not bool(a.active[j]) else ""))
    fig = traversal_figure(result.traversal_values, result.traversal, result.question_grid, result.reference, a.kl, labels)
    sec.add_image(figure_png(fig), "Latent traversal: each neuron swept from -2 to +2 SD, the others fixed")
    fig = latent_scatter_figure(result.latent_means, result.parameters, a.parameter_names, a.best_neuron,
                                a.best_correlation)
    sec.add_image(figure_png(fig), "Each parameter against its neuron (held-out oscillators)")


def groupinn_section(report: Report, result: Any) -> None:
    """GroupINN: accuracy against logistic regression, recovered groups, driving connections."""
    from medlens.viz import figure_png
    from medlens.viz.systems import group_connections_figure

    s = result.settings
    sec = report.section("GroupINN: groups of brain regions that carry the prediction")
    sec.add_text(
        f"Simulated fMRI of {len(result.planted_groups)} regions in {s.get('n_groups')} planted groups; the classes "
        f"differ in some within- and between-group couplings. {s.get('n_train')} training subjects, "
        f"{s.get('n_test')} test subjects. GroupINN (Yan et al. 2019) learns a non-negative, near-orthogonal "
        f"assignment of regions to groups end to end, with a cohesion term of weight {s.get('cohesion_weight')}."
    )
    rows = [["GroupINN", result.accuracy, result.ari],
            ["logistic regression on the flattened connectivity", result.baseline_accuracy, float("nan")]]
    if result.ari_without_cohesion is not None:
        rows.insert(1, ["GroupINN, the paper's losses only (no cohesion)", result.accuracy_without_cohesion,
                        result.ari_without_cohesion])
    sec.add_table(["model", "test accuracy", "adjusted Rand index of the groups"], rows)
    sec.add_text(
        f"Constraints of the learnt assignment: ||W^T W - I||_F = {result.orthogonality:.3f}, smallest entry "
        f"{result.min_assignment:.2e} (non-negative by construction)."
    )
    fig = group_connections_figure(result.relevance, result.planted_difference)
    sec.add_image(figure_png(fig), "Group-to-group connections that drive the decision (gradient x input on the "
                                   "grouped graphs, learnt groups matched to planted ones) and the planted difference")
