"""Token attributions of any model that takes token ids ``(B, T)`` (and optionally an attention mask).

Ids are not differentiable, so the gradient methods work on the output of the embedding layer
the ids enter, as Captum's ``LayerIntegratedGradients`` does: the layer is named (a module or
its dotted name) or found (the ``nn.Embedding`` that receives the ids tensor itself), and its
output is replaced by the vectors the method needs; each token's value is the sum over the
embedding axis. The gradient methods and LRP are medlens's own (:func:`medlens.explain` on the
model seen as a function of one row's embeddings: the batched engine, its rules). Occlusion
replaces one token at a time by a pad id; rollout and Chefer et al.'s relevance read the
self-attention layers. Padding (attention mask 0, or the pad id when no mask is given) gets 0;
occlusion and integrated gradients leave it as it is.

Methods (:data:`IDS_METHODS`):

``grad_x_input``
    ``sum_d e_td * dS/de_td`` (Li et al. 2016; the gradient on the one-hot input of the word present).
``integrated_gradients``
    Sundararajan et al. (2017) on the embeddings, from the embedding of ``baseline_id`` (a pad or
    [MASK] id) at every real token, or from the zero vector when ``baseline_id`` is None;
    Gauss-Legendre quadrature with ``n_steps`` points (Captum's default rule). Per row the values
    add up to ``S(x) - S(baseline)`` up to the quadrature error (``extras["convergence_delta"]``).
``smoothgrad``
    Smilkov et al. (2017): the gradient averaged over ``n_samples`` copies of the embeddings with
    Gaussian noise (standard deviation ``noise`` times the batch's embedding value range), times
    the embedding, summed.
``occlusion``
    ``S(x) - S(x with token t replaced by the occlusion id)`` (the pad id by default).
``lrp``
    medlens' registered LRP (:mod:`medlens.attribution.lrp`) on the model seen as a function of
    its embeddings, summed over the embedding axis.
``attention_rollout``, ``transformer_attribution``
    Abnar and Zuidema (2020) / Chefer, Gur and Wolf (2021) relevance ``R`` ``(B, T, T)``, read
    at the ``query`` row: an index (0 for a [CLS] token), a ``(B, T)`` weighting of the rows (a
    pooling attention), or None for the mean of the real tokens' rows.

The score ``S`` is the target class's logit (``model(...)`` may return a tensor, a tuple whose
first item is the logits, or an object with ``.logits`` such as Hugging Face outputs).
"""

from __future__ import annotations

import functools
import time
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from medlens.core.checks import evaluation_mode
from medlens.errors import InputError, TargetError, UnknownNameError
from medlens.types import Attribution

IDS_METHODS = ("grad_x_input", "integrated_gradients", "smoothgrad", "occlusion", "lrp", "attention_rollout", "transformer_attribution")


def logits_of(output: Any) -> torch.Tensor:
    """The logits ``(B, K)`` of a model's output (tensor, tuple, or object with ``.logits``)."""
    if hasattr(output, "logits"):
        output = output.logits
    elif isinstance(output, (tuple, list)):
        output = output[0]
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        raise InputError("the model must return logits (batch, classes), a tuple starting with them, or .logits")
    return output


def _call(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return logits_of(model(ids) if mask is None else model(ids, attention_mask=mask))


def find_embedding(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor | None = None,
                   name: str | nn.Module | None = None) -> nn.Module:
    """The embedding layer: ``name`` (a module or its dotted name), else the ``nn.Embedding`` fed the ids."""
    if isinstance(name, nn.Module):
        return name
    if name is not None:
        modules = dict(model.named_modules())
        if name not in modules:
            raise InputError(f"the model has no layer {name!r}; embeddings: "
                             f"{', '.join(n for n, m in modules.items() if isinstance(m, nn.Embedding)) or 'none'}")
        return modules[name]
    fed: list[nn.Module] = []  # the ids themselves, or (a model that remaps ids first) a tensor of their shape
    shaped: list[nn.Module] = []

    def seen(module, inputs, _output):
        if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].shape == ids.shape:
            (fed if torch.equal(inputs[0], ids) else shaped).append(module)

    handles = [m.register_forward_hook(seen) for m in model.modules() if isinstance(m, nn.Embedding)]
    try:
        with torch.no_grad():
            _call(model, ids, mask)
    finally:
        for h in handles:
            h.remove()
    if fed:
        return fed[0]
    if len(shaped) == 1:
        return shaped[0]
    raise InputError("no single nn.Embedding receives the token ids; name the embedding layer (embedding='...')")


@contextmanager
def replaced_output(layer: nn.Module, holder: dict[str, torch.Tensor]) -> Iterator[None]:
    """While active, ``layer`` returns ``holder["value"]`` (when set) instead of its output."""

    def hook(_module, _inputs, output):
        value = holder.get("value")
        if value is None:
            return output
        if value.shape != output.shape:
            raise InputError(f"the embedding gives {tuple(output.shape)}, the replacement is {tuple(value.shape)}")
        return value

    handle = layer.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class _ScoreOfEmbeddings:
    """The logits as a function of the embedding layer's output; one pass gives the layer's own
    output (``embeddings``) and the model's ``logits``."""

    def __init__(self, model: nn.Module, layer: nn.Module, ids: torch.Tensor, mask: torch.Tensor | None) -> None:
        self.model, self.layer, self.ids, self.mask = model, layer, ids, mask
        seen: list[torch.Tensor] = []
        handle = layer.register_forward_hook(lambda _m, _i, output: seen.append(output.detach()))
        try:
            with torch.no_grad():
                self.logits = _call(model, ids, mask)
        finally:
            handle.remove()
        self.embeddings = seen[0]  # what the model itself feeds on (ids it remaps included)

    def scores(self, embeddings: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The ``target`` logits with the layer's output replaced by ``embeddings``."""
        with replaced_output(self.layer, {"value": embeddings}):
            logits = _call(self.model, self.ids, self.mask)
        return logits.gather(1, target[:, None]).squeeze(1)


def _rows_of(relevance: torch.Tensor, query: Any, real: torch.Tensor) -> torch.Tensor:
    if isinstance(query, int):
        return relevance[:, query]
    if query is None:
        weights = real.to(relevance.dtype)
    else:
        weights = torch.as_tensor(query, dtype=relevance.dtype, device=relevance.device)
        if weights.shape != real.shape:
            raise InputError(f"query weights of shape {tuple(weights.shape)} for ids of shape {tuple(real.shape)}")
    weights = weights / weights.sum(1, keepdim=True).clamp_min(1e-12)
    return torch.einsum("bi,bij->bj", weights, relevance)


def _attention_relevance(model, ids, mask, target, method: str, query: Any, real: torch.Tensor) -> torch.Tensor:
    from medlens.attribution.transformer.attention_maps import capture_attention
    from medlens.attribution.transformer.chefer import gradient_weighted_relevance
    from medlens.attribution.transformer.rollout import check_maps, rollout

    with capture_attention(model, gradients=method == "transformer_attribution") as record:
        if method == "attention_rollout":
            with torch.no_grad():
                _call(model, ids, mask)
            if check_maps(record.maps) != ids.shape[1]:
                raise InputError("the attention layers do not attend over the input tokens")
            relevance = rollout(record.maps)
        else:
            with torch.enable_grad():
                score = _call(model, ids, mask).gather(1, target[:, None]).sum()
                score.backward()
            if all(g is None for g in record.gradients):
                raise InputError("the target score does not depend on any attention layer")
            relevance = gradient_weighted_relevance(record.maps, record.gradients)
    if relevance.shape[-1] != ids.shape[1]:
        raise InputError(f"attention over {relevance.shape[-1]} tokens for {ids.shape[1]} ids")
    return _rows_of(relevance, query, real)


class _OfEmbeddings(nn.Module):
    """``model`` on one row's ids and mask, as a function of the embedding layer's output: the
    row's ids stay fixed (expanded to however many copies of its embeddings the engine passes)."""

    def __init__(self, model: nn.Module, layer: nn.Module, row_ids: torch.Tensor, row_mask: torch.Tensor | None) -> None:
        super().__init__()
        self.model, self.layer, self.row_ids, self.row_mask = model, layer, row_ids, row_mask

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        n = len(embeddings)
        mask = None if self.row_mask is None else self.row_mask.expand(n, -1)
        with replaced_output(self.layer, {"value": embeddings}):
            return _call(self.model, self.row_ids.expand(n, -1), mask)


def _on_embeddings(model, layer, ids, mask, target, embeddings, method: str, *, times_input: bool = False,
                   options_of=lambda b: {}) -> torch.Tensor:
    """A registered medlens method (:func:`medlens.explain`: its batched engine, its rules) on the
    model as a function of its ``embeddings`` ``(B, T, D)``, one row at a time (a row's ids and
    mask stay fixed while the engine passes its embeddings), summed over the embedding axis;
    ``times_input`` multiplies by the embeddings first; ``options_of(b)`` gives row ``b``'s options."""
    from medlens.attribution.explain import explain

    rows = []
    for b in range(len(ids)):
        row_ids, row_mask = ids[b:b + 1], None if mask is None else mask[b:b + 1]
        e = embeddings[b:b + 1]
        values = explain(_OfEmbeddings(model, layer, row_ids, row_mask), e, target[b:b + 1], method,
                         **options_of(b)).values
        rows.append((values * e if times_input else values).sum(-1))
    return torch.cat(rows)


def token_attributions(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    method: str = "integrated_gradients",
    *,
    target: int | torch.Tensor | None = None,
    embedding: str | nn.Module | None = None,
    pad_id: int | None = None,
    baseline_id: int | None = None,
    n_steps: int = 32,
    n_samples: int = 16,
    noise: float = 0.1,
    query: Any = None,
    seed: int = 0,
) -> Attribution:
    """One value per token of ``input_ids`` ``(B, T)`` for ``method`` (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        Called as ``model(input_ids)``, or ``model(input_ids, attention_mask=mask)`` when a mask is given.
    input_ids : torch.Tensor
        int64 ``(B, T)``.
    attention_mask : torch.Tensor, optional
        ``(B, T)``, 1 on real tokens, 0 on padding.
    target : int or tensor, optional
        The class to explain; None: the predicted class.
    embedding : str or nn.Module, optional
        The embedding layer (default: the ``nn.Embedding`` the ids enter).
    pad_id : int, optional
        Marks padding when no mask is given, and replaces tokens in occlusion (default: the
        embedding's ``padding_idx``, else 0).
    baseline_id : int, optional
        Integrated gradients' baseline token (None: the zero embedding); occlusion's replacement
        when given.

    Returns
    -------
    Attribution
        ``values`` ``(B, T)``, 0 on padding.
    """
    if method not in IDS_METHODS:
        raise UnknownNameError(f"unknown token method {method!r}; available: {', '.join(IDS_METHODS)}")
    if not isinstance(input_ids, torch.Tensor) or input_ids.is_floating_point() or input_ids.ndim != 2 or not input_ids.numel():
        raise InputError("input_ids must be a non-empty int64 tensor (batch, tokens)")
    if attention_mask is not None and (not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_ids.shape):
        raise InputError(f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}")
    if not isinstance(n_steps, int) or n_steps < 1 or not isinstance(n_samples, int) or n_samples < 1:
        raise InputError("n_steps and n_samples must be positive integers")
    start = time.perf_counter()
    with evaluation_mode(model):
        ids = input_ids
        layer = find_embedding(model, ids, attention_mask, embedding)
        if pad_id is None:
            pad_id = getattr(layer, "padding_idx", None)
            pad_id = 0 if pad_id is None else int(pad_id)
        real = attention_mask.bool() if attention_mask is not None else ids != pad_id
        fn = _ScoreOfEmbeddings(model, layer, ids, attention_mask)
        logits = fn.logits
        if target is None:
            target_t = logits.argmax(1)
        else:
            target_t = torch.as_tensor(target, dtype=torch.long, device=ids.device).reshape(-1).expand(len(ids)).clone()
        if ((target_t < 0) | (target_t >= logits.shape[1])).any():
            raise TargetError(f"target {target_t.tolist()[:4]} out of range for {logits.shape[1]} classes")
        score = logits.gather(1, target_t[:, None]).squeeze(1)  # the target's logit at the input itself
        e = fn.embeddings
        keep = real[..., None].to(e.dtype)
        extras: dict[str, Any] = {}
        on_embeddings = functools.partial(_on_embeddings, model, layer, ids, attention_mask, target_t, e)
        if method == "grad_x_input":
            values = on_embeddings("gradient", times_input=True)
        elif method == "integrated_gradients":
            if baseline_id is None:
                base = e * (1 - keep)
            else:
                with torch.no_grad():
                    base = torch.where(real[..., None], layer(torch.full_like(ids, baseline_id)), e)
            values = on_embeddings("integrated_gradients",
                                   options_of=lambda b: {"baseline": base[b:b + 1], "n_steps": n_steps})
            with torch.no_grad():
                extras["convergence_delta"] = (values.sum(1) - (score - fn.scores(base, target_t))).detach()
        elif method == "smoothgrad":
            sigma = noise * float(e.max() - e.min())
            values = on_embeddings("smoothgrad", times_input=True, options_of=lambda b: {
                "base": "gradient", "n_samples": n_samples, "seed": seed,
                # the noise's standard deviation is noise x the whole batch's embedding range, as the row's range is not
                "noise": sigma / max(float(e[b].max() - e[b].min()), 1e-12)})
        elif method == "occlusion":
            fill = pad_id if baseline_id is None else baseline_id
            with torch.no_grad():
                values = torch.zeros(ids.shape, dtype=e.dtype, device=ids.device)
                for t in range(ids.shape[1]):
                    if not real[:, t].any():
                        continue
                    occluded = ids.clone()
                    occluded[:, t] = fill
                    values[:, t] = score - _call(model, occluded, attention_mask).gather(1, target_t[:, None]).squeeze(1)
        elif method == "lrp":
            values = on_embeddings("lrp")
        else:
            values = _attention_relevance(model, ids, attention_mask, target_t, method, query, real)
        values = values.detach() * real.to(values.dtype)
    params = {"n_steps": n_steps, "baseline_id": baseline_id} if method == "integrated_gradients" else {}
    if method == "smoothgrad":
        params = {"n_samples": n_samples, "noise": noise, "seed": seed}
    return Attribution(values=values, method=method, target=target_t.detach().cpu(), params=params,
                       seconds=time.perf_counter() - start, extras=extras)
