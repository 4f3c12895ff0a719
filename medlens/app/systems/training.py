"""``medlens train --arch scinet|groupinn``: a representation system trained on its simulator."""

from __future__ import annotations

from typing import Any

from torch import nn

from medlens.app.systems.groupinn import run_groupinn
from medlens.app.systems.scinet import run_scinet, train_scinet_on_oscillators

__all__ = ["SYSTEM_DATA", "train_system"]

#: Architectures of the representation systems that ``medlens train`` trains on their simulators, and the data
#: name each accepts.
SYSTEM_DATA = {"scinet": "oscillators", "groupinn": "simulated-fmri"}


def train_system(arch: str, data: str, *, epochs: int, seed: int = 0) -> tuple[nn.Module, dict[str, Any], str]:
    """Train a system architecture on its simulator for ``medlens train``.

    Returns
    -------
    (model, meta, summary)
        The model, metadata to store with it, and a one-line summary of its held-out scores.
    """
    from medlens.errors import UnknownNameError

    if arch not in SYSTEM_DATA:
        raise UnknownNameError(f"unknown system architecture {arch!r}; known: {', '.join(sorted(SYSTEM_DATA))}")
    if data != SYSTEM_DATA[arch]:
        raise UnknownNameError(f"--arch {arch} trains on its simulator: use --data {SYSTEM_DATA[arch]}, not {data!r}")
    if arch == "scinet":
        model, history = train_scinet_on_oscillators(epochs=epochs, seed=seed)
        result = run_scinet(model=model, seed=seed)
        a = result.analysis
        scores = {"answer_rmse": a.answer_rmse, "answer_std": a.answer_std,
                  "best_correlation": [float(v) for v in a.best_correlation],
                  "kl": [float(v) for v in a.kl]}
        summary = (f"trained scinet on simulated damped oscillators: held-out answer RMSE {a.answer_rmse:.3f} "
                   f"(answers' SD {a.answer_std:.3f}); " + ", ".join(
                       f"{n}: |r| {float(c):.3f} with neuron {int(i)}"
                       for n, c, i in zip(a.parameter_names, a.best_correlation, a.best_neuron))
                   + "; KL per neuron " + ", ".join(f"{float(k):.3f}" for k in a.kl))
    else:
        result_g = run_groupinn(epochs=epochs, seed=seed, compare_without_cohesion=False)
        model, history = result_g.model, []
        scores = {"accuracy": result_g.accuracy, "baseline_accuracy": result_g.baseline_accuracy, "ari": result_g.ari}
        summary = (f"trained groupinn on simulated fMRI: test accuracy {result_g.accuracy:.3f} (logistic regression "
                   f"{result_g.baseline_accuracy:.3f}); adjusted Rand index of the groups {result_g.ari:.3f}")
    meta = {"data": data, "epochs": epochs, "seed": seed, "history": history, "test": scores}
    return model, meta, summary
