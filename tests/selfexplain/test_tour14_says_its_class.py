"""InterpNET's scores say how often a generated sentence states the class its own classifier
predicted: a sentence that contradicts the decision (or states none) does not explain it."""

from __future__ import annotations

import torch

from medlens.selfexplain import interpnet_training
from medlens.selfexplain.captions import LesionAttributes
from medlens.selfexplain.interpnet import Explanations
from medlens.selfexplain.interpnet_training import LesionSplit, evaluate_explanations


def test_share_of_sentences_that_state_the_predicted_class(monkeypatch):
    predicted = torch.tensor([1, 0, 1, 0])
    sentences = ["a small bright round lesion in the upper left.",  # says lesion, predicted lesion
                 "no lesion is detected.",                           # says none, predicted none
                 "no lesion is detected.",                           # says none, predicted lesion
                 "the image shows."]                                 # states nothing
    said = Explanations(torch.stack([1 - predicted, predicted], 1).float(), predicted,
                        torch.zeros(4, 3, dtype=torch.long), sentences)
    monkeypatch.setattr(interpnet_training, "generate", lambda model, x, **kw: said)
    lesion = LesionAttributes(True, "upper", "left", "small", "bright", "round")
    data = LesionSplit(torch.zeros(4, 1, 8, 8), predicted.clone(),
                       [lesion if p else LesionAttributes(False) for p in predicted])
    scores = evaluate_explanations(None, data)
    assert scores.says_its_class == 0.5
    assert scores.as_dict()["says_its_class"] == 0.5
    assert scores.classifier_accuracy == 1.0  # the classifier is right; two sentences are not
