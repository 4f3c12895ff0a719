"""Reference models, the training loop and the model file format."""

from medlens.models.attention_rnn import AttentionRNN  # registers "attention-rnn"
from medlens.models.cnn import CNN
from medlens.models.io import architectures, build_model, load_model, register_architecture, save_model

register_architecture("cnn")(CNN)


# Self-explaining models live in medlens.selfexplain, which imports this package: build them
# through factories that import lazily, so neither package needs the other at import time.
def _interpnet(**config):
    from medlens.selfexplain.interpnet import InterpNet

    return InterpNet(**config)


def _concept_autoencoder(**config):
    from medlens.selfexplain.concepts import ConceptAutoencoder

    return ConceptAutoencoder(**config)


register_architecture("interpnet")(_interpnet)
register_architecture("concept-autoencoder")(_concept_autoencoder)

__all__ = ["AttentionRNN", "CNN", "architectures", "build_model", "load_model", "register_architecture", "save_model"]
