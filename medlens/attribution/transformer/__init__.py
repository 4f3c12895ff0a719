"""Explanations of vision transformers: attention rollout, gradient-weighted attention (Chefer
et al. 2021), and the token-grid helpers that let the CAM family read token layers.

``tokens``: class tokens and the patch grid of a ``(B, N, D)`` token layer; ``attention_maps``:
reading attention probabilities and their gradients (MONAI's SABlock, nn.MultiheadAttention,
medlens's vit); ``rollout`` and ``chefer``: the registered methods.
"""

from medlens.attribution.transformer import rollout  # noqa: F401  (attention_rollout)
from medlens.attribution.transformer import chefer  # noqa: F401  (transformer_attribution)
