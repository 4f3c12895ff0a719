"""Models that explain themselves (sections 3.3, 3.5 and 4 of the reference document).

* Generated explanations (:mod:`.interpnet`): a CNN whose activations condition an LSTM that
  writes why it decided (Barratt 2017, InterpNET), trained on the lesion benchmark with reference
  reports (:mod:`.captions`) and scored by BLEU-4 (:mod:`.bleu`) and attribute accuracy.
* Concepts (:mod:`.concepts`): a sparse non-negative autoencoder of a trained model's features
  whose concepts still predict what the model predicts (Qi and Li 2017), with concept saliency.
* Prediction basis (:mod:`.basis`): the training cases nearest a case in the model's embedding
  space, with their labels and saliency maps (Lee et al. 2019).
"""

from medlens.selfexplain.basis import EmbeddingIndex, PredictionBasis, build_index, prediction_basis
from medlens.selfexplain.bleu import BleuScore, corpus_bleu
from medlens.selfexplain.captions import LesionAttributes, attribute_accuracy, parse_report, write_report
from medlens.selfexplain.concepts import (
    ConceptAutoencoder,
    ConceptModel,
    Concepts,
    Fidelity,
    concept_saliency,
    evaluate_concepts,
    learn_concepts,
)
from medlens.selfexplain.embedding import EmbeddingModel, embed
from medlens.selfexplain.interpnet import Explanations, InterpNet, generate
from medlens.selfexplain.interpnet_training import evaluate_explanations, load_lesion_split, train_interpnet

__all__ = [
    "BleuScore",
    "ConceptAutoencoder",
    "ConceptModel",
    "Concepts",
    "EmbeddingIndex",
    "Explanations",
    "EmbeddingModel",
    "Fidelity",
    "InterpNet",
    "LesionAttributes",
    "PredictionBasis",
    "attribute_accuracy",
    "build_index",
    "concept_saliency",
    "corpus_bleu",
    "embed",
    "evaluate_concepts",
    "evaluate_explanations",
    "generate",
    "learn_concepts",
    "load_lesion_split",
    "parse_report",
    "prediction_basis",
    "train_interpnet",
    "write_report",
]
