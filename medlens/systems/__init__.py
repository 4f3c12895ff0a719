"""Representation systems: explanations by what a network represents (section 4 of the survey).

* :mod:`~medlens.systems.deeptune`: DeepTune (Abbasi-Asl et al. 2018), regression from the
  features of a CNN ensemble to neuron responses; the preferred stimulus of each fitted model is
  rendered by :mod:`medlens.featurevis` (composed in :mod:`medlens.app.systems`).
* :mod:`~medlens.systems.scinet`: SciNet (Iten et al. 2020), a few latent neurons that hold the
  physical parameters of an observation.
* :mod:`~medlens.systems.groupinn`: GroupINN (Yan et al. 2019), a graph network whose learnt
  grouping of brain regions carries the prediction.

Example::

    from medlens.systems import SciNet, train_scinet, analyse_latents
    from medlens.data.synthetic.oscillators import simulate_oscillators

    data = simulate_oscillators(20000)
    model = SciNet(latent=3)
    train_scinet(model, data.observations, data.questions, data.answers, epochs=120, lr=3e-3)
"""

from medlens.systems.deeptune import (
    Consensus,
    DeepTuneFit,
    Readout,
    RidgeFit,
    best_shift_ncc,
    feature_trunk,
    features_of,
    fit_deeptune,
    fit_ridge,
    pearson,
)
from medlens.systems.groupinn import (
    GroupINN,
    LogisticBaseline,
    adjusted_rand_index,
    cohesion,
    group_relevance,
    logistic_baseline,
    match_groups,
    orthogonality_penalty,
    train_groupinn,
)
from medlens.systems.scinet import LatentAnalysis, SciNet, analyse_latents, kl_per_neuron, latent_traversal, train_scinet

__all__ = [
    "Consensus",
    "DeepTuneFit",
    "GroupINN",
    "LatentAnalysis",
    "LogisticBaseline",
    "Readout",
    "RidgeFit",
    "SciNet",
    "adjusted_rand_index",
    "analyse_latents",
    "best_shift_ncc",
    "cohesion",
    "feature_trunk",
    "features_of",
    "fit_deeptune",
    "fit_ridge",
    "group_relevance",
    "kl_per_neuron",
    "latent_traversal",
    "logistic_baseline",
    "match_groups",
    "orthogonality_penalty",
    "pearson",
    "train_groupinn",
    "train_scinet",
]
