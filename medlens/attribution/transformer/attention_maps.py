"""Read the attention probabilities (and their gradients) of a transformer during a pass.

Four kinds of attention are recognised:

- MONAI's ``SABlock`` (``monai.networks.blocks.selfattention``, inside its ``ViT``, ``UNETR``,
  ``ViTAutoEnc``): it computes ``att_mat = softmax(q k^T * scale)`` and passes it through its
  ``drop_weights`` dropout before multiplying the values, so a forward hook on ``drop_weights``
  sees the probabilities that are used, in the graph (``save_attn`` is not needed). A block set
  to ``use_flash_attention`` computes no matrix: inside the context it is switched to its
  explicit path, which computes the same function, and switched back afterwards.
- ``torch.nn.MultiheadAttention`` (and the ``nn.TransformerEncoderLayer`` around it): its
  weights come back averaged over heads and detached from the values' path, so inside the
  context its ``forward`` is replaced by an explicit one (same projections, masks, dropout and
  output) that exposes the per-head probabilities in the graph; PyTorch's fused encoder fast
  path, which skips the module, is turned off for the while.
- medlens's own :class:`medlens.models.vit.Attention`: a forward hook on its softmax module.
- ``F.scaled_dot_product_attention`` called in a module's own ``forward`` (timm-style
  attention, hand-written blocks): it exposes no matrix, so inside the context a torch function
  mode computes it explicitly (:func:`explicit_sdpa`, the same function) in the calling thread.

Everything is undone in a ``finally`` block: no hook, no replaced ``forward`` and no switched
flag outlives the context, also when the model raises.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from medlens.core.hooks import is_torchscript, require_hooks
from medlens.errors import InputError
from medlens.models.vit import Attention as MedlensAttention

NO_ATTENTION = (
    "the model has no attention layers medlens can read (MONAI's SABlock as in its ViT and UNETR, "
    "torch.nn.MultiheadAttention, medlens's vit, or F.scaled_dot_product_attention called in a module's forward)"
)


def _is_sablock(module: nn.Module) -> bool:
    return type(module).__name__ == "SABlock" and isinstance(getattr(module, "drop_weights", None), nn.Module)


def attention_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The attention modules of ``model`` that can be read, as ``(dotted name, module)`` in
    definition order."""
    return [
        (name, m) for name, m in model.named_modules()
        if isinstance(m, (MedlensAttention, nn.MultiheadAttention)) or _is_sablock(m)
    ]


def attention_internals(model: nn.Module) -> set[nn.Module]:
    """Every module inside a readable attention layer (its q, k, v rearranges, its attention
    weights): their outputs are the layer's internals, never a feature map of the input, however
    their rank falls (SABlock's ``(B, heads, N, N)`` weights have a 2D image's rank)."""
    return {inner for _, m in attention_layers(model) for inner in m.modules() if inner is not m}


def probability_modules(model: nn.Module) -> list[nn.Module]:
    """The submodules whose output is a layer's attention probabilities (medlens's softmax
    module, SABlock's ``drop_weights``); ``nn.MultiheadAttention`` computes them inside its
    functional forward and has none."""
    found = []
    for _, m in attention_layers(model):
        if isinstance(m, MedlensAttention):
            found.append(m.softmax)
        elif not isinstance(m, nn.MultiheadAttention):
            found.append(m.drop_weights)
    return found


def calls_sdpa(model: nn.Module) -> bool:
    """Whether a module's own ``forward`` names ``scaled_dot_product_attention`` (read from its
    code: no pass is run)."""
    for m in model.modules():
        code = getattr(type(m).forward, "__code__", None)
        if code is not None and "scaled_dot_product_attention" in code.co_names:
            return True
    return False


class _ReadSdpa(TorchFunctionMode):
    """Computes every ``F.scaled_dot_product_attention`` call explicitly, handing its
    probabilities to ``seen``."""

    def __init__(self, seen: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.seen = seen

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.scaled_dot_product_attention:
            return explicit_sdpa(self.seen, *args, **(kwargs or {}))
        return func(*args, **(kwargs or {}))


def has_attention_layers(model: nn.Module) -> bool:
    return not is_torchscript(model) and bool(attention_layers(model))


class AttentionRecord:
    """What :func:`capture_attention` read during the last pass, in execution order.

    Attributes
    ----------
    maps : list of torch.Tensor
        ``(B, heads, N, N)`` attention probabilities of each attention call (detached).
    gradients : list of torch.Tensor or None
        The gradient of the backpropagated score with respect to each map (when asked for and
        once the backward pass has run); ``None`` where it did not reach the map.
    """

    def __init__(self) -> None:
        self.maps: list[torch.Tensor] = []
        self.gradients: list[torch.Tensor | None] = []

    def clear(self) -> None:
        self.maps, self.gradients = [], []

    def add(self, probs: torch.Tensor, gradients: bool) -> None:
        index = len(self.maps)
        self.maps.append(probs.detach())
        self.gradients.append(None)
        if gradients and probs.requires_grad:

            def keep(grad: torch.Tensor) -> None:
                self.gradients[index] = grad.detach()

            probs.register_hook(keep)


Linear = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
#: How the probabilities ``(..., L, S)`` weigh the values ``(..., S, d)``: ``torch.matmul``, or
#: LRP's product whose backward is the epsilon rule.
Mix = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _mha_forward(mha: nn.MultiheadAttention, seen: Callable[[torch.Tensor], torch.Tensor],
                 linear: Linear = F.linear, mix: Mix = torch.matmul) -> Callable[..., Any]:
    """An explicit ``forward`` for ``mha`` that hands its ``(B, heads, L, S)`` probabilities to
    ``seen`` and uses what it returns (the arithmetic of ``F.multi_head_attention_forward``),
    with its input and output projections applied by ``linear`` and the values weighed by ``mix``."""

    def forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if mha.bias_k is not None or mha.add_zero_attn:
            raise InputError("MultiheadAttention with add_bias_kv or add_zero_attn is not supported")
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = (t.unsqueeze(1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif mha.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        length, batch, width = query.shape
        source = key.shape[0]
        heads, head_dim = mha.num_heads, mha.head_dim
        if mha._qkv_same_embed_dim:
            wq, wk, wv = mha.in_proj_weight.chunk(3)
        else:
            wq, wk, wv = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
        bq, bk, bv = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None, None, None)

        def split(t: torch.Tensor, n: int) -> torch.Tensor:  # (n, B, E) -> (B, heads, n, head_dim)
            return t.reshape(n, batch, heads, head_dim).permute(1, 2, 0, 3)

        q = split(linear(query, wq, bq), length)
        k = split(linear(key, wk, bk), source)
        v = split(linear(value, wv, bv), source)
        scores = (q @ k.transpose(-2, -1)) * head_dim**-0.5
        if attn_mask is None and is_causal:
            attn_mask = torch.ones(length, source, dtype=torch.bool, device=q.device).triu(1)
        if attn_mask is not None:
            mask = attn_mask.reshape(-1, heads, length, source) if attn_mask.ndim == 3 else attn_mask
            scores = scores.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        if key_padding_mask is not None:
            pad = key_padding_mask[:, None, None, :]
            scores = scores.masked_fill(pad, float("-inf")) if pad.dtype == torch.bool else scores + pad
        probs = seen(scores.softmax(dim=-1))
        out = mix(F.dropout(probs, p=mha.dropout, training=mha.training), v)  # (B, heads, L, head_dim)
        out = linear(out.permute(2, 0, 1, 3).reshape(length, batch, width), mha.out_proj.weight, mha.out_proj.bias)
        if unbatched:
            out = out.squeeze(1)
        elif mha.batch_first:
            out = out.transpose(0, 1)
        weights = None
        if need_weights:
            weights = probs.mean(dim=1) if average_attn_weights else probs
            if unbatched:
                weights = weights.squeeze(0)
        return out, weights

    return forward


def explicit_sdpa(seen: Callable[[torch.Tensor], torch.Tensor], query: torch.Tensor, key: torch.Tensor,
                  value: torch.Tensor, attn_mask: torch.Tensor | None = None, dropout_p: float = 0.0,
                  is_causal: bool = False, scale: float | None = None, enable_gqa: bool = False,
                  *, mix: Mix = torch.matmul) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` computed with its ``(..., L, S)`` probabilities made
    explicit and handed to ``seen`` (which returns the probabilities used), the values weighed
    by ``mix``: the same function.
    A boolean mask marks the positions that take part (SDPA's convention, not
    ``nn.MultiheadAttention``'s)."""
    length, source = query.shape[-2], key.shape[-2]
    if enable_gqa and key.shape[-3] != query.shape[-3]:
        repeat = query.shape[-3] // key.shape[-3]
        key, value = key.repeat_interleave(repeat, dim=-3), value.repeat_interleave(repeat, dim=-3)
    scores = (query @ key.transpose(-2, -1)) * (query.shape[-1] ** -0.5 if scale is None else scale)
    if is_causal:
        scores = scores.masked_fill(torch.ones(length, source, dtype=torch.bool, device=scores.device).triu(1),
                                    float("-inf"))
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
    probs = seen(scores.softmax(dim=-1))
    return mix(F.dropout(probs, p=dropout_p), value)


@contextmanager
def explicit_attention(model: nn.Module, seen: Callable[[torch.Tensor], torch.Tensor],
                       linear: Linear = F.linear, mix: Mix = torch.matmul) -> Iterator[None]:
    """While the block runs, every ``nn.MultiheadAttention`` of ``model`` computes its
    ``(B, heads, L, S)`` probabilities explicitly, hands them to ``seen`` and uses what it
    returns, its projections applied by ``linear`` and its values weighed by ``mix`` (PyTorch's fused encoder fast path, which
    skips the module, is off); undone on exit."""
    replaced = []
    fastpath = torch.backends.mha.get_fastpath_enabled()
    try:
        for m in model.modules():
            if isinstance(m, nn.MultiheadAttention):
                m.forward = _mha_forward(m, seen, linear, mix)
                replaced.append(m)
        torch.backends.mha.set_fastpath_enabled(False)
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for m in replaced:
            del m.forward


@contextmanager
def capture_attention(
    model: nn.Module, *, gradients: bool = False,
    replace: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
) -> Iterator[AttentionRecord]:
    """Record every attention call's probabilities (and, with ``gradients=True``, their
    gradients in the backward pass) while the block runs.

    The record is appended to in execution order; clear it between passes
    (:meth:`AttentionRecord.clear`). ``replace(index, probs)``, if given, returns the
    probabilities the layer uses instead (``index``: the call's place in the pass), for
    interventions such as permuting attention; the record keeps what was used.

    Raises
    ------
    InputError
        The model is TorchScript, or has no attention layer medlens can read.
    """
    require_hooks(model, "reading attention")
    layers = attention_layers(model)
    sdpa = calls_sdpa(model)
    if not layers and not sdpa:
        raise InputError(NO_ATTENTION)
    record = AttentionRecord()

    def seen(probs: torch.Tensor) -> torch.Tensor:
        if probs.ndim != 4:
            raise InputError(f"an attention layer gave probabilities of shape {tuple(probs.shape)}, not (batch, heads, N, N)")
        if replace is not None:
            probs = replace(len(record.maps), probs)
        record.add(probs, gradients)
        return probs

    def hook(_module, _inputs, output):
        return seen(output)

    handles, flash = [], []
    try:
        for _, m in layers:
            if isinstance(m, MedlensAttention):
                handles.append(m.softmax.register_forward_hook(hook))
            elif not isinstance(m, nn.MultiheadAttention):
                handles.append(m.drop_weights.register_forward_hook(hook))
                if getattr(m, "use_flash_attention", False):
                    m.use_flash_attention = False
                    flash.append(m)
        with explicit_attention(model, seen), (_ReadSdpa(seen) if sdpa else nullcontext()):
            yield record
    finally:
        for h in handles:
            h.remove()
        for m in flash:
            m.use_flash_attention = True
