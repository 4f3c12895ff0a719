"""The leaderboard's picture: mean deletion and insertion curves of every method.

Takes a leaderboard summary (plain data, :func:`medlens.evaluation.leaderboard.summarise`);
computes nothing.
"""

from __future__ import annotations

from medlens.viz.figures import figure_png

__all__ = ["curves_png"]

_CURVE_TITLES = {
    "deletion_auc": ("Deletion: most important regions removed first (lower is better)", "fraction of regions removed"),
    "insertion_auc": ("Insertion: most important regions restored first (higher is better)", "fraction of regions restored"),
}


def _display(entry: str, kinds: dict[str, str]) -> str:
    """A baseline entry (``baseline:edge``) shown by its name and "(baseline)"; a method as is."""
    return entry.partition(":")[2] + " (baseline)" if kinds.get(entry) == "baseline" else entry


def curves_png(summary: dict) -> bytes | None:
    """Mean deletion and insertion curves of every method (baselines dashed), side by side."""
    metrics = [m for m in ("deletion_auc", "insertion_auc") if summary["curves"].get(m)]
    if not metrics:
        return None
    import matplotlib.pyplot as plt


    kinds = summary["config"]["kinds"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.4 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        block = summary["curves"][metric]
        title, xlabel = _CURVE_TITLES.get(metric, (metric, "fraction of positions"))
        aucs = {r["method"]: r["mean"] for r in summary["rows"] if r["metric"] == metric}
        for entry, curve in block["methods"].items():
            baseline = kinds.get(entry) == "baseline"
            auc = aucs.get(entry)
            label = f"{_display(entry, kinds)} ({auc:.3f})" if auc is not None else _display(entry, kinds)
            ax.plot(block["fractions"], curve, ls="--" if baseline else "-", lw=1.1 if baseline else 1.6,
                    color="0.5" if baseline and entry.partition(":")[2] == "random" else None, label=label)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("probability of the explained class", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, title="method (AUC)", title_fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5),
                  frameon=False)
    fig.tight_layout()
    return figure_png(fig, dpi=80)
