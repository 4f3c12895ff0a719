"""Is attention an explanation? The tests of Jain and Wallace, for the model at hand.

Jain and Wallace, "Attention is not Explanation" (NAACL 2019), ask two questions of an
attention model, and medlens asks a third where ground truth exists:

1. Does attention agree with other measures of importance? Kendall's tau (tau-b) per sequence
   between the attention weights and (a) gradient importance, (b) leave-one-out importance, the
   total variation distance (TVD) between the output distributions with and without each
   position, and (c) integrated-gradients magnitude.
2. Does the output depend on *where* attention points? The attention weights of each sequence
   are randomly permuted over its valid positions at inference (the recurrent states are kept)
   and the TVD of the output distribution is recorded; J&W report its median per sequence. A
   model whose output barely moves when its attention is shuffled is not using attention as a
   pointer, however peaked the weights look.
3. Does attention fall on the evidence? The share of attention mass inside the ground-truth mask
   (ECG/EEG event times, rationale words), next to the share the mask covers (what uniform
   attention would score) and the same score for gradient and IG magnitudes.

Everything is compared at the attention's own resolution (the recurrent steps): when a
convolutional front end downsamples a signal, input-level importances are summed over the
samples of each step, and "leaving a position out" removes that step's samples.

All model evaluations run through :mod:`medlens.core.engine`: leave-one-out copies and
permutations are built lazily chunk by chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medlens.core.checks import evaluation_mode
from medlens.attribution.sequence import PackedSequenceModel, pack, require_attention_model, sequence_attributions
from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.targets import FINDING_THRESHOLD, model_probabilities, multilabel_of
from medlens.errors import InputError
from medlens.models.attention_rnn import spread_to_input
from medlens.core.random import generator

__all__ = [
    "AttentionFaithfulness",
    "attention_faithfulness",
    "attention_weights",
    "kendall_tau",
    "leave_one_out",
    "permutation_test",
    "to_steps",
    "total_variation",
    "verdict",
]

# Kendall tau bands used in the verdict (Jain and Wallace report means mostly below 0.5 for
# BiLSTM encoders and call that weak agreement).
TAU_STRONG, TAU_MODERATE, TAU_WEAK = 0.5, 0.3, 0.1
# Permutation TVD bands: below 0.05 the output barely moves (J&W's "little change").
TVD_SMALL, TVD_LARGE = 0.05, 0.2
# Share of permutations that change the decision above which "the decision hardly depends on where
# attention points" would contradict the flip rate printed beside it.
FLIPS_FEW = 0.05


def total_variation(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Total variation distance ``0.5 * sum_k |p_k - q_k|`` of distributions ``(..., K)``."""
    return 0.5 * (p - q).abs().sum(-1)


class OutputReading:
    """How the tests read and compare ``model``'s outputs. A single-label model's output is one
    distribution (a softmax over classes): a change is its total variation distance, the decision
    its top class. A multi-label model (:class:`medlens.MultiLabel`) has one sigmoid per finding:
    a change is the mean over findings of each finding's own TVD ``|p_k - q_k|``, the decision the
    set of findings at :data:`~medlens.core.targets.FINDING_THRESHOLD` or above (a softmax across
    findings would make independent findings compete)."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.multilabel = model, multilabel_of(model) is not None

    def probabilities(self, output: torch.Tensor) -> torch.Tensor:
        return model_probabilities(output, self.model)

    def change(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return (p - q).abs().mean(-1) if self.multilabel else total_variation(p, q)

    def flipped(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        if self.multilabel:
            return ((p >= FINDING_THRESHOLD) != (q >= FINDING_THRESHOLD)).any(-1)
        return p.argmax(-1) != q.argmax(-1)


def kendall_tau(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Kendall's tau-b between each pair of rows, over the positions where ``mask`` is True.

    ``tau_b = sum_{i<j} s^a_ij s^b_ij / sqrt(sum s^a_ij^2 * sum s^b_ij^2)`` with
    ``s^a_ij = sign(a_i - a_j)``: concordant minus discordant pairs, normalised for ties
    (Kendall 1945), the convention of :func:`scipy.stats.kendalltau`.

    Parameters
    ----------
    a, b : torch.Tensor
        ``(B, T)``.
    mask : torch.Tensor, optional
        ``(B, T)`` bool; default all True.

    Returns
    -------
    torch.Tensor
        ``(B,)`` float64; NaN where either row is constant over its valid positions (or has
        fewer than two).
    """
    if a.shape != b.shape or a.ndim != 2:
        raise InputError(
            f"kendall_tau needs two (B, T) tensors of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    a, b = a.detach().double(), b.detach().double()
    mask = torch.ones_like(a, dtype=torch.bool) if mask is None else mask.bool().to(a.device)
    t = a.shape[1]
    out = torch.empty(a.shape[0], dtype=torch.float64, device=a.device)
    # chunk the rows so the (rows, T, T) sign tensors stay within ~32 MB
    rows = max(1, (2**22) // max(t * t, 1))
    for s in range(0, a.shape[0], rows):
        sa = torch.sign(a[s : s + rows, :, None] - a[s : s + rows, None, :])
        sb = torch.sign(b[s : s + rows, :, None] - b[s : s + rows, None, :])
        pair = (mask[s : s + rows, :, None] & mask[s : s + rows, None, :]).double()
        num = (sa * sb * pair).sum((1, 2))
        den = torch.sqrt((sa.abs() * pair).sum((1, 2)) * (sb.abs() * pair).sum((1, 2)))
        out[s : s + rows] = torch.where(den > 0, num / den.clamp(min=1e-300), torch.full_like(num, math.nan))
    return out


def to_steps(values: torch.Tensor, stride: int) -> torch.Tensor:
    """Sum input-level values ``(B, L)`` over each step of ``stride`` samples: ``(B, ceil(L / stride))``."""
    if stride == 1:
        return values
    b, size = values.shape
    t = -(-size // stride)
    return F.pad(values, (0, t * stride - size)).view(b, t, stride).sum(-1)


class _Encoder(nn.Module):
    """Packed features -> ``(B, T, D + 2)``: states, attention, step validity."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        states, step_mask = self.model.encode_features(packed[:, :-1], packed[:, -1] > 0.5)
        attention = self.model.attend(states, step_mask)
        return torch.cat([states, attention[..., None], step_mask[..., None].to(states.dtype)], -1)


class _Head(nn.Module):
    """``(B, T, D + 1)`` states and (perhaps permuted) attention -> logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.classify(h[..., :-1], h[..., -1])


def _encode(model: nn.Module, packed: torch.Tensor, budget: Budget) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    enc = engine.forward(_Encoder(model), packed, budget)
    return enc[..., :-2], enc[..., -2], enc[..., -1] > 0.5


def attention_weights(
    model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None, *,
    batch_size: int | None = None, memory_mb: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention at input positions ``(B, L)`` and at the model's steps ``(B, T)``.

    ``x``: ``(B, L)`` token ids or ``(B, C, L)`` signals; rows sum to one, padding gets zero.
    """
    budget = Budget(batch_size, memory_mb)
    require_attention_model(model)
    with evaluation_mode(model):
        x = x.to(engine.model_device(model))
        packed = pack(model, x, lengths)
        _, steps, _ = _encode(model, packed, budget)
        return spread_to_input(steps, packed[:, -1] > 0.5, model.stride), steps


def permutation_test(
    model: nn.Module,
    x: torch.Tensor,
    lengths: torch.Tensor | None = None,
    *,
    n_permutations: int = 100,
    seed: int = 0,
    batch_size: int | None = None, memory_mb: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Output change when each sequence's attention weights are randomly permuted (J&W, section 4.2).

    The recurrent states are computed once; each permutation shuffles the weights over the
    sequence's valid steps (padding keeps its zero weight) and re-applies the classifier.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, L)`` token ids or ``(B, C, L)`` signals.
    n_permutations : int
    seed : int
        Sequence ``i`` of the batch draws its permutations from a generator seeded with
        ``(seed, i)``, so results do not depend on chunking.

    Returns
    -------
    tvd : torch.Tensor
        ``(B, n_permutations)`` total variation distance between the original and the permuted
        output distributions.
    flipped : torch.Tensor
        ``(B, n_permutations)`` bool: the permutation changed the predicted class.
    """
    budget = Budget(batch_size, memory_mb)
    require_attention_model(model)
    if not isinstance(n_permutations, int) or n_permutations < 1:
        raise InputError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    with evaluation_mode(model):
        x = x.to(engine.model_device(model))
        states, attention, step_mask = _encode(model, pack(model, x, lengths), budget)
        head, reading = _Head(model), OutputReading(model)
        base = reading.probabilities(engine.forward(head, torch.cat([states, attention[..., None]], -1), budget))
        b, t = attention.shape
        n = n_permutations
        tvd = torch.empty(b, n, dtype=torch.float64)
        flipped = torch.empty(b, n, dtype=torch.bool)

        def permutations(i: int) -> torch.Tensor:
            gen = generator(int(seed), "attention-permutations", i)
            keys = torch.rand(n, t, generator=gen, dtype=torch.float64)
            # padding is trailing: keys above 1 keep it in place, after the shuffled valid steps
            keys[:, ~step_mask[i].cpu()] = 2.0 + torch.arange(t, dtype=torch.float64)[~step_mask[i].cpu()]
            return keys.argsort(1).to(attention.device)  # (n, T)

        def build(start: int, stop: int) -> torch.Tensor:
            rows = torch.arange(start, stop)
            i = rows // n
            perms = {j: permutations(j) for j in i.unique().tolist()}
            order = torch.stack([perms[int(j)][int(k)] for j, k in zip(i, rows % n)])
            shuffled = attention[i].gather(1, order)
            return torch.cat([states[i], shuffled[..., None]], -1)

        def consume(start: int, stop: int, out: torch.Tensor, _g, _aux) -> None:
            rows = torch.arange(start, stop)
            i, k = rows // n, rows % n
            p = reading.probabilities(out)
            tvd[i, k] = reading.change(p, base[i]).double().cpu()
            flipped[i, k] = reading.flipped(p, base[i]).cpu()

        engine.run(head, b * n, build, consume=consume, budget=budget)
    return tvd, flipped


def leave_one_out(
    model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None, *,
    batch_size: int | None = None, memory_mb: float | None = None,
) -> torch.Tensor:
    """Output change (TVD) when each step is removed from the sequence (J&W, section 4.1).

    For tokens a step is one token; for signals it is the ``stride`` samples one attention
    step covers. The position is deleted (later positions move up, the sequence gets shorter),
    not replaced by a value the model never saw.

    Returns
    -------
    torch.Tensor
        ``(B, T)`` float64; 0 on padding steps and for one-step sequences.
    """
    budget = Budget(batch_size, memory_mb)
    require_attention_model(model)
    with evaluation_mode(model):
        x = x.to(engine.model_device(model))
        packed = pack(model, x, lengths)
        wrapped, reading = PackedSequenceModel(model), OutputReading(model)
        base = reading.probabilities(engine.forward(wrapped, packed, budget))
        _, _, step_mask = _encode(model, packed, budget)
        b, t = step_mask.shape
        size = packed.shape[-1]
        s = model.stride
        n_steps = step_mask.sum(1)
        positions = torch.arange(size, device=packed.device)
        loo = torch.zeros(b, t, dtype=torch.float64)

        def build(start: int, stop: int) -> torch.Tensor:
            rows = torch.arange(start, stop, device=packed.device)
            i, step = rows // t, rows % t
            # nothing to delete on padding, and deleting the only step would leave nothing
            keep_all = (step >= n_steps[i]) | (n_steps[i] < 2)
            first = torch.where(keep_all, torch.full_like(step, size), step * s)[:, None]
            source = positions[None, :] + s * (positions[None, :] >= first)  # (n, L)
            moved = packed[i].gather(2, source.clamp(max=size - 1)[:, None, :].expand(-1, packed.shape[1], -1))
            return moved * (source < size)[:, None, :].to(packed.dtype)

        def consume(start: int, stop: int, out: torch.Tensor, _g, _aux) -> None:
            rows = torch.arange(start, stop)
            i, step = rows // t, rows % t
            loo[i, step] = reading.change(reading.probabilities(out), base[i.to(base.device)]).double().cpu()

        engine.run(wrapped, b * t, build, consume=consume, budget=budget)
    return loo * step_mask.cpu()


@dataclass(frozen=True)
class AttentionFaithfulness:
    """Per-sequence results of :func:`attention_faithfulness` (``B`` sequences, ``T`` steps).

    Attributes
    ----------
    attention : (B, L) attention at input positions; ``step_attention`` (B, T) at steps.
    step_mask : (B, T) bool valid steps.
    gradient, integrated_gradients : (B, L) input-level attributions as
        :func:`~medlens.attribution.sequence.sequence_attributions` returns them (``gradient``
        is ``gradient_method``'s output; IG is signed, None when skipped). Their magnitudes
        enter the rank correlations and masses.
    leave_one_out : (B, T) output change (:class:`OutputReading`: TVD, or a multi-label model's mean
        change of each finding's sigmoid) when each step is removed.
    tau_gradient, tau_leave_one_out, tau_integrated_gradients : (B,) Kendall tau-b with attention.
    permutation_tvd : (B, n_permutations); ``permutation_flipped`` the same, bool.
    mass_attention, mass_gradient, mass_integrated_gradients, mask_share : (B,) share of each
        map's mass inside the ground-truth mask, and the share of valid positions the mask
        covers; NaN where the sequence has no mask.
    probabilities : (B, K); labels : (B,) or None (a multi-label model's: (B,) one finding each, or (B, K) 0/1).
    gradient_method : the sequence attribution method behind ``gradient``.
    rollout : (B, L) attention rollout through the self-attention layers and the pooling
        attention (a transformer; None for a model without self-attention);
        ``tau_rollout_gradient``, ``tau_rollout_leave_one_out`` its Kendall tau-b with them.
    """

    attention: torch.Tensor
    step_attention: torch.Tensor
    step_mask: torch.Tensor
    gradient: torch.Tensor
    integrated_gradients: torch.Tensor | None
    leave_one_out: torch.Tensor
    tau_gradient: torch.Tensor
    tau_leave_one_out: torch.Tensor
    tau_integrated_gradients: torch.Tensor | None
    permutation_tvd: torch.Tensor
    permutation_flipped: torch.Tensor
    mass_attention: torch.Tensor
    mass_gradient: torch.Tensor
    mass_integrated_gradients: torch.Tensor | None
    mask_share: torch.Tensor
    probabilities: torch.Tensor
    labels: torch.Tensor | None = None
    gradient_method: str = "gradient"
    params: dict[str, Any] = field(default_factory=dict)
    multilabel: bool = False  # one sigmoid per finding: changes and decisions as OutputReading reads them
    rollout: torch.Tensor | None = None
    tau_rollout_gradient: torch.Tensor | None = None
    tau_rollout_leave_one_out: torch.Tensor | None = None

    def _accuracy(self) -> dict[str, Any]:
        """``accuracy``: the share of sequences decided right. A single-label model's decision is its
        top class; a multi-label model's the set of findings at :data:`FINDING_THRESHOLD` or above,
        right only when it equals the labelled set (exact match, ``accuracy_kind``), with the share of
        (sequence, finding) pairs decided right beside it (``finding_accuracy``)."""
        if self.labels is None:
            return {"accuracy": None}
        p, labels = self.probabilities.cpu(), self.labels.cpu()
        if not self.multilabel:
            return {"accuracy": float((p.argmax(1) == labels).double().mean())}
        truth = labels.bool() if labels.ndim == 2 else F.one_hot(labels.long(), p.shape[1]).bool()
        right = (p >= FINDING_THRESHOLD) == truth
        return {"accuracy": float(right.all(1).double().mean()),
                "accuracy_kind": f"exact match of the findings at {FINDING_THRESHOLD:g} or above",
                "finding_accuracy": float(right.double().mean())}

    def summary(self) -> dict[str, float | int | None]:
        """Aggregate numbers (NaN-aware means and medians over sequences), plain floats."""

        def mean(v: torch.Tensor | None) -> float | None:
            if v is None:
                return None
            v = v[~torch.isnan(v)]
            return float(v.mean()) if v.numel() else None

        def median(v: torch.Tensor | None) -> float | None:
            if v is None:
                return None
            v = v[~torch.isnan(v)]
            return float(v.median()) if v.numel() else None

        per_seq_tvd = self.permutation_tvd.median(1).values
        n_valid = self.step_mask.sum(1).double()
        entropy = -(self.step_attention.double().clamp(min=1e-300).log() * self.step_attention.double()).sum(1)
        out: dict[str, float | int | None] = {
            "n_sequences": int(len(self.probabilities)),
            "multilabel": self.multilabel,
            **self._accuracy(),
            "tau_gradient_mean": mean(self.tau_gradient),
            "tau_gradient_median": median(self.tau_gradient),
            "tau_leave_one_out_mean": mean(self.tau_leave_one_out),
            "tau_leave_one_out_median": median(self.tau_leave_one_out),
            "tau_integrated_gradients_mean": mean(self.tau_integrated_gradients),
            "permutation_tvd_median": median(per_seq_tvd),
            "permutation_tvd_mean": mean(self.permutation_tvd.mean(1)),
            "permutation_small_change_share": float((per_seq_tvd < TVD_SMALL).double().mean()),
            "permutation_flip_rate": float(self.permutation_flipped.double().mean()),
            "max_attention_mean": float(self.step_attention.max(1).values.double().mean()),
            # exp(entropy) / n: 1 for uniform attention, 1/n when all weight sits on one step
            "attention_spread_mean": float((entropy.exp() / n_valid).mean()),
            "mass_attention_mean": mean(self.mass_attention),
            "mass_gradient_mean": mean(self.mass_gradient),
            "mass_integrated_gradients_mean": mean(self.mass_integrated_gradients),
            "mask_share_mean": mean(self.mask_share),
            "n_with_mask": int((~torch.isnan(self.mask_share)).sum()),
        }
        if self.rollout is not None:
            out["tau_rollout_gradient_mean"] = mean(self.tau_rollout_gradient)
            out["tau_rollout_leave_one_out_mean"] = mean(self.tau_rollout_leave_one_out)
        return out


def _mass(values: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    from medlens.evaluation.localisation import mass_in_mask

    return mass_in_mask(values[:, None], masks, abs=True).double()


def attention_faithfulness(
    model: nn.Module,
    x: torch.Tensor,
    *,
    labels: torch.Tensor | None = None,
    masks: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
    n_permutations: int = 100,
    ig_steps: int = 32,
    seed: int = 0,
    batch_size: int | None = None, memory_mb: float | None = None,
) -> AttentionFaithfulness:
    """Run the three tests on a batch of sequences, explaining each one's predicted class.

    Parameters
    ----------
    model : nn.Module
        An attention model (:class:`medlens.models.AttentionRNN` or one with its pieces).
    x : torch.Tensor
        ``(B, L)`` token ids or ``(B, C, L)`` signals.
    labels : torch.Tensor, optional
        ``(B,)`` to report accuracy beside the numbers.
    masks : torch.Tensor, optional
        ``(B, 1, L)`` or ``(B, L)`` ground-truth evidence (1 inside); empty rows are skipped.
    lengths : torch.Tensor, optional
        ``(B,)`` real lengths (token rows default to their last non-pad token).
    n_permutations : int
        Permutations per sequence (J&W use 100).
    ig_steps : int
        Path points of integrated gradients; 0 skips IG.
    seed : int
        Seeds the permutations.

    Returns
    -------
    AttentionFaithfulness
        Call ``.summary()`` for the numbers and :func:`verdict` for the sentences.
    """
    budget = Budget(batch_size, memory_mb)
    require_attention_model(model)
    tokens = not x.is_floating_point()
    gradient_method = "grad_x_input" if tokens else "gradient"
    with evaluation_mode(model):
        x = x.to(engine.model_device(model))
        attention, steps = attention_weights(model, x, lengths, **budget.kwargs())
        valid = model.valid_mask(x, lengths)
        step_mask = to_steps(valid.double(), model.stride) > 0
        grad = sequence_attributions(
            model, x, method=gradient_method, lengths=lengths, batch_size=budget.batch_size, memory_mb=budget.memory_mb
        )
        probs = OutputReading(model).probabilities(engine.forward(PackedSequenceModel(model), pack(model, x, lengths), budget)).cpu()
        grad_values = grad.values.abs()
        ig_signed = ig_values = None
        if ig_steps:
            ig_signed = sequence_attributions(
                model, x, method="integrated_gradients", lengths=lengths, n_steps=ig_steps,
                batch_size=budget.batch_size, memory_mb=budget.memory_mb,
            ).values
            ig_values = ig_signed.abs()
        loo = leave_one_out(model, x, lengths, **budget.kwargs())
        tvd, flipped = permutation_test(model, x, lengths, n_permutations=n_permutations, seed=seed, **budget.kwargs())
        flow = self_attention_rollout(model, x, steps) if not x.is_floating_point() else None
    s = model.stride
    tau_grad = kendall_tau(steps, to_steps(grad_values, s), step_mask)
    tau_loo = kendall_tau(steps, loo.to(steps.device), step_mask)
    tau_ig = None if ig_values is None else kendall_tau(steps, to_steps(ig_values, s), step_mask)
    tau_flow = {} if flow is None else {
        "rollout": flow.cpu(),
        "tau_rollout_gradient": kendall_tau(flow, grad_values, valid).cpu(),
        "tau_rollout_leave_one_out": kendall_tau(flow, loo.to(flow.device), valid).cpu(),
    }
    b = len(x)
    nan = torch.full((b,), math.nan, dtype=torch.float64)
    mass_att, mass_grad, mass_ig, share = nan, nan, (None if ig_values is None else nan), nan
    if masks is not None:
        m = masks[:, 0] if masks.ndim == 3 else masks
        if tuple(m.shape) != tuple(valid.shape):
            raise InputError(f"masks of shape {tuple(masks.shape)} do not match inputs with {valid.shape[1]} positions")
        m = (m.to(valid.device) > 0.5) & valid
        mass_att = _mass(attention, m)
        mass_grad = _mass(grad_values, m)
        mass_ig = None if ig_values is None else _mass(ig_values, m)
        covered = m.sum(1).double().cpu()
        share = torch.where(covered > 0, covered / valid.sum(1).double().cpu(), nan)
    return AttentionFaithfulness(
        attention=attention.cpu(),
        step_attention=steps.cpu(),
        step_mask=step_mask.cpu(),
        gradient=grad.values.cpu(),
        integrated_gradients=None if ig_signed is None else ig_signed.cpu(),
        leave_one_out=loo,
        tau_gradient=tau_grad.cpu(),
        tau_leave_one_out=tau_loo.cpu(),
        tau_integrated_gradients=None if tau_ig is None else tau_ig.cpu(),
        permutation_tvd=tvd,
        permutation_flipped=flipped,
        mass_attention=mass_att.cpu(),
        mass_gradient=mass_grad.cpu(),
        mass_integrated_gradients=None if mass_ig is None else mass_ig.cpu(),
        mask_share=share,
        probabilities=probs,
        labels=None if labels is None else labels.cpu(),
        gradient_method=gradient_method,
        params={"n_permutations": n_permutations, "ig_steps": ig_steps, "seed": seed},
        multilabel=OutputReading(model).multilabel,
        **tau_flow,
    )


def self_attention_rollout(model: nn.Module, x: torch.Tensor, pooling: torch.Tensor) -> torch.Tensor | None:
    """Attention rollout ``(B, L)`` of a token model with self-attention layers, read through its
    pooling attention ``pooling`` ``(B, L)`` (the weights of the states the classifier reads);
    None for a model without self-attention (the BiGRU)."""
    from medlens.attribution.token_ids import token_attributions
    from medlens.attribution.transformer.attention_maps import has_attention_layers

    if not has_attention_layers(model):
        return None
    return token_attributions(model, x, None, "attention_rollout", pad_id=model.config["pad_id"], query=pooling,
                              embedding=getattr(model, "embedding", None)).values


def _band(tau: float) -> str:
    if tau >= TAU_STRONG:
        return "closely"
    if tau >= TAU_MODERATE:
        return "moderately"
    if tau >= TAU_WEAK:
        return "weakly"
    return "hardly at all"


def verdict(summary: dict[str, Any]) -> tuple[str, list[str]]:
    """Plain-language reading of :meth:`AttentionFaithfulness.summary`.

    Returns
    -------
    (level, sentences)
        ``level`` is ``"usable"`` (every check passed), ``"caution"`` (at least half) or
        ``"unreliable"``; ``sentences`` explain each number.

    The checks: mean Kendall tau with gradient and with leave-one-out importance at least
    0.3 (moderate agreement); median permutation TVD at least 0.05 (the output depends on
    where attention points); with masks, at least twice the mass a uniform attention would
    put inside them.
    """
    sentences: list[str] = []
    checks: list[bool] = []
    names: list[str] = []  # each check in words, for the verdict to say which failed
    tg, tl = summary.get("tau_gradient_mean"), summary.get("tau_leave_one_out_mean")
    if tg is None and tl is None:
        sentences.append("Attention is the same on every position, so it ranks nothing and cannot point at evidence.")
        checks += [False, False]
        names += [f"tau with gradients >= {TAU_MODERATE}", f"tau with leave-one-out >= {TAU_MODERATE}"]
    else:
        parts = []
        for name, tau, short in (("gradient importance", tg, "gradients"), ("leave-one-out importance", tl, "leave-one-out")):
            names.append(f"tau with {short} >= {TAU_MODERATE}")
            if tau is None:
                parts.append(f"cannot be compared with {name}")
                checks.append(False)
            else:
                parts.append(f"follows {name} {_band(tau)} (mean Kendall tau {tau:.2f})")
                checks.append(tau >= TAU_MODERATE)
        ti = summary.get("tau_integrated_gradients_mean")
        extra = f"; with integrated-gradients magnitude, tau is {ti:.2f}" if ti is not None else ""
        sentences.append(f"The ranking of positions by attention {parts[0]} and {parts[1]}{extra}.")
    rg, rl = summary.get("tau_rollout_gradient_mean"), summary.get("tau_rollout_leave_one_out_mean")
    if rg is not None and rl is not None:
        sentences.append(
            f"This is a transformer: its attention flow through every layer (rollout, Abnar and Zuidema 2020) follows "
            f"gradient importance {_band(rg)} (mean Kendall tau {rg:.2f}) and leave-one-out importance {_band(rl)} "
            f"({rl:.2f}); the verdict below judges the pooling attention the classifier reads, and the same caution "
            "holds for the self-attention maps: a weight is not an influence until these agree.")
    med, flips = summary.get("permutation_tvd_median"), summary.get("permutation_flip_rate")
    if med is not None:
        if med < TVD_SMALL and (flips is None or flips < FLIPS_FEW):
            reading = (
                "so the decision hardly depends on where attention points: a high weight need not mean high influence"
            )
        elif med < TVD_SMALL:  # most outputs barely move, yet many decisions change: both are true
            reading = ("so the output of most sequences hardly depends on where attention points (a high weight need "
                       "not mean high influence), yet the decision of the sequences near the class boundary does")
        elif med < TVD_LARGE:
            reading = "a moderate dependence on where attention points"
        else:
            reading = "so the decision depends strongly on where attention points"
        moved, decision = (("each finding's own probability by a median mean change", "the predicted findings")
                           if summary.get("multilabel") else
                           ("the output distribution by a median total variation distance", "the decision"))
        sentences.append(
            f"Randomly permuting the attention weights moves {moved} of {med:.3f} and changes {decision} in "
            f"{flips:.0%} of permutations, {reading}."
        )
        checks.append(med >= TVD_SMALL)
        names.append(f"median permutation TVD >= {TVD_SMALL}")
    mass, share = summary.get("mass_attention_mean"), summary.get("mask_share_mean")
    if mass is not None and share is not None:
        others = []
        if summary.get("mass_gradient_mean") is not None:
            others.append(f"gradient importance puts {summary['mass_gradient_mean']:.0%}")
        if summary.get("mass_integrated_gradients_mean") is not None:
            others.append(f"integrated gradients {summary['mass_integrated_gradients_mean']:.0%}")
        sentences.append(
            f"Attention puts {mass:.0%} of its weight on the ground-truth evidence, which covers {share:.0%} of "
            f"the positions (uniform attention would put {share:.0%} there)"
            + (f"; {', '.join(others)}." if others else ".")
        )
        checks.append(mass >= 2 * share)
        names.append("twice the uniform mass on the evidence")
    passed = sum(checks)
    failed = f" (fails: {'; '.join(n for n, ok in zip(names, checks) if not ok)})"
    if checks and passed == len(checks):
        level = "usable"
        sentences.append(
            "Verdict: for this model, attention passes every check and can serve as a rough pointer to what the "
            "network used; still confirm important cases with gradient-based attributions."
        )
    elif passed * 2 >= len(checks) and checks:
        level = "caution"
        sentences.append(
            f"Verdict: attention passes {passed} of {len(checks)} checks{failed}; read it as a hint about where the model "
            "looked, not as the reason for its decision, and prefer gradient-based attributions."
        )
    else:
        level = "unreliable"
        sentences.append(
            f"Verdict: attention passes {passed} of {len(checks)} checks{failed}; do not read it as an explanation of this "
            "model's decisions (Jain and Wallace 2019); use gradient-based attributions instead."
        )
    return level, sentences
