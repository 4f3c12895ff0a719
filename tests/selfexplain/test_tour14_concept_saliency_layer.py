"""Concepts fitted on an inner layer (``layer=``): Grad-CAM of a concept reads that layer, since the
model's last convolution, after it, carries no gradient of the concept."""

from __future__ import annotations

import torch

from medlens.attribution.explain import explain
from medlens.selfexplain.concepts import ConceptModel, ConceptScore, concept_saliency, learn_concepts
from tests.conftest import make_input, make_model

LAYER = "features.block2.act"


def test_gradcam_of_a_concept_on_an_inner_layer_reads_that_layer():
    model = make_model(2)
    x = make_input(2, batch=6, seed=2)
    concepts = learn_concepts(model, x, k=2, layer=LAYER, head="linear", epochs=3)
    j = int(concepts.activations.sum(0).argmax())  # a concept some input activates
    maps = concept_saliency(model, concepts.autoencoder, x, j, layer=LAYER, method="gradcam").values
    wrapper = ConceptModel(model, concepts.autoencoder, LAYER)  # its .features.model is the model
    expected = explain(wrapper, x, target=ConceptScore(j), method="gradcam", layer=f"features.model.{LAYER}").values
    torch.testing.assert_close(maps, expected)
    assert maps.abs().sum() > 0
