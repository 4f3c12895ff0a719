"""Reference architectures, the training loop and the model file format."""

from medlens.models.attention_rnn import AttentionRNN  # registers "attention-rnn"
from medlens.models.attention_gated import AttentionGatedCNN  # registers "attention-gated"
from medlens.models.cnn import CNN
from medlens.models.mil import PatchAttentionMIL  # registers "patch-attention-mil"
from medlens.models.vit import ViT  # registers "vit"
from medlens.models.text_transformer import TextTransformer  # registers "transformer"
from medlens.models.io import architectures, build_model, load_model, model_recipe, register_architecture, save_model

register_architecture("cnn")(CNN)

__all__ = ["AttentionGatedCNN", "AttentionRNN", "CNN", "PatchAttentionMIL", "TextTransformer", "ViT", "architectures", "build_model", "load_model", "model_recipe", "register_architecture", "save_model"]
