"""Jain-Wallace analysis and sequence attributions: known answers, naive references, scipy and Captum oracles."""

from __future__ import annotations

import math

import pytest
import scipy.stats
import torch
from torch import nn

from medlens.attribution.sequence import sequence_attributions
from medlens.core.hooks import count_hooks
from medlens.errors import InputError, UnknownNameError
from medlens.evaluation.attention import (
    attention_faithfulness,
    attention_weights,
    kendall_tau,
    leave_one_out,
    permutation_test,
    to_steps,
    total_variation,
    verdict,
)
from medlens.models.attention_rnn import lengths_mask, masked_softmax
from tests.models.test_attention_model import (
    LENGTHS,
    signal_model,
    signals,
    token_model,
    tokens_with_padding,
)


class CopyModel(nn.Module):
    """Attends (almost) only to the marked position and outputs the value found there.

    Input ``(B, 2, L)``: channel 0 marks one position (1 there, 0 elsewhere), channel 1 holds
    +1 at the marked position and -1 elsewhere. The states are the inputs, the attention is a
    sharp softmax of the marker, and the logits are ``(-5 v, 5 v)`` for the attended value
    ``v``: class 1 as it stands, class 0 once the weights are moved anywhere else.
    """

    stride = 1

    def valid_mask(self, x, lengths=None):
        if lengths is None:
            return torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool)
        return lengths_mask(torch.as_tensor(lengths), x.shape[-1])

    def features(self, x):
        return x

    def encode_features(self, features, mask):
        return features.transpose(1, 2), mask

    def attend(self, states, step_mask):
        return masked_softmax(50.0 * states[..., 0], step_mask)

    def classify(self, states, attention):
        value = torch.einsum("bt,bt->b", attention, states[..., 1])
        return torch.stack([-5 * value, 5 * value], 1)

    def forward(self, x, lengths=None):
        mask = self.valid_mask(x, lengths)
        states, step_mask = self.encode_features(self.features(x), mask)
        return self.classify(states, self.attend(states, step_mask))


def copy_inputs(batch: int = 6, length: int = 12) -> torch.Tensor:
    x = torch.zeros(batch, 2, length, dtype=torch.float64)
    x[:, 1] = -1
    for i in range(batch):
        p = (3 * i + 1) % length
        x[i, 0, p] = 1
        x[i, 1, p] = 1
    return x


# ------------------------------------------------------------------------------------------------
# the small statistics
# ------------------------------------------------------------------------------------------------


def test_kendall_tau_matches_scipy_with_ties_and_masks():
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (6, 15), generator=gen).double()  # many ties
    b = a + torch.randn(6, 15, generator=gen, dtype=torch.float64) * 2
    b[:, ::4] = 0.0
    lengths = torch.tensor([15, 14, 9, 7, 3, 15])
    mask = lengths_mask(lengths, 15)
    tau = kendall_tau(a, b, mask)
    for i, n in enumerate(lengths.tolist()):
        expected = scipy.stats.kendalltau(a[i, :n].numpy(), b[i, :n].numpy()).statistic
        assert math.isclose(float(tau[i]), expected, rel_tol=1e-12, abs_tol=1e-12)


def test_kendall_tau_known_answers():
    x = torch.arange(6.0)[None]
    assert float(kendall_tau(x, x)) == 1.0
    assert float(kendall_tau(x, -x)) == -1.0
    assert math.isnan(float(kendall_tau(x, torch.ones(1, 6))))


def test_total_variation_closed_form():
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.2, 0.8]])
    q = torch.tensor([[0.5, 0.5], [0.0, 1.0], [0.6, 0.4]])
    torch.testing.assert_close(total_variation(p, q), torch.tensor([0.0, 1.0, 0.4]))


def test_to_steps_sums_each_window():
    v = torch.arange(1.0, 8.0)[None]  # 7 samples, stride 3 -> 3 steps
    torch.testing.assert_close(to_steps(v, 3), torch.tensor([[6.0, 15.0, 7.0]]))


# ------------------------------------------------------------------------------------------------
# the permutation test
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [signal_model, token_model])
def test_permutation_changes_nothing_for_uniform_attention(make):
    model = make(attention="uniform")
    x = signals() if not model.tokens else tokens_with_padding()
    lengths = LENGTHS if not model.tokens else None
    tvd, flipped = permutation_test(model, x, lengths, n_permutations=15, seed=1)
    assert tvd.shape == (4, 15)
    assert float(tvd.abs().max()) < 1e-12 and not flipped.any()


def test_permutation_changes_a_lot_for_a_model_that_copies_the_attended_position():
    model, x = CopyModel(), copy_inputs()
    tvd, flipped = permutation_test(model, x, n_permutations=50, seed=0)
    # the marked position keeps its weight in 1 of 12 permutations; every other one flips the output
    assert float(tvd.median(1).values.min()) > 0.95
    assert 0.8 < float(flipped.double().mean()) < 0.98


def test_permutation_respects_padding_and_does_not_depend_on_chunking():
    model, x = CopyModel(), copy_inputs()
    lengths = torch.tensor([12, 5, 9, 12, 11, 6])  # marks at 1, 4, 7, 10, 1, 4: all inside
    full, _ = permutation_test(model, x, lengths, n_permutations=30, seed=3)
    chunked, _ = permutation_test(model, x, lengths, n_permutations=30, seed=3, **_budget(7).kwargs())
    torch.testing.assert_close(full, chunked)
    # padding keeps zero weight: a length-5 row has 5 valid orders of the marker, so it stays put in ~1/5
    stays = (full[1] < 0.5).double().mean()
    assert 0.05 < float(stays) < 0.45
    other_seed, _ = permutation_test(model, x, lengths, n_permutations=30, seed=4)
    assert not torch.equal(other_seed, full)


def _budget(batch_size):
    from medlens.core.engine import Budget

    return Budget(batch_size=batch_size)


# ------------------------------------------------------------------------------------------------
# leave-one-out
# ------------------------------------------------------------------------------------------------


def test_leave_one_out_matches_deleting_each_token():
    model = token_model()
    x = tokens_with_padding()
    loo = leave_one_out(model, x, **_budget(5).kwargs())
    with torch.no_grad():
        probs = model(x).softmax(1)
        for i in range(len(x)):
            n = int((x[i] != 0).sum())
            for t in range(x.shape[1]):
                if t >= n or n < 2:
                    assert loo[i, t] == 0
                    continue
                shorter = torch.cat([x[i, :t], x[i, t + 1 : n]])[None]
                expected = 0.5 * (model(shorter).softmax(1)[0] - probs[i]).abs().sum()
                assert math.isclose(float(loo[i, t]), float(expected), abs_tol=1e-10)


def test_leave_one_out_deletes_the_samples_of_a_step_for_signals():
    model = signal_model(1)  # stride 2
    x = signals(batch=2, length=11)
    lengths = torch.tensor([11, 8])
    loo = leave_one_out(model, x, lengths)
    assert loo.shape == (2, 6)
    with torch.no_grad():
        for i, n in enumerate(lengths.tolist()):
            probs = model(x[i : i + 1, :, :n]).softmax(1)
            for t in range(-(-n // 2)):
                kept = torch.cat([x[i, :, : 2 * t], x[i, :, 2 * t + 2 : n]], 1)[None]
                expected = 0.5 * (model(kept).softmax(1) - probs).abs().sum()
                assert math.isclose(float(loo[i, t]), float(expected), abs_tol=1e-10)
        assert loo[1, 4:].eq(0).all()


# ------------------------------------------------------------------------------------------------
# sequence attributions
# ------------------------------------------------------------------------------------------------


def _embedding_forward(model, tokens):
    """Logits as a function of the embedding vectors ``(B, L, E)``, written from the model's pieces."""
    mask = model.valid_mask(tokens)

    def f(emb):
        # Captum stacks the path points of the whole batch one after the other
        states, step_mask = model.encode_features(emb.transpose(1, 2), mask.repeat(len(emb) // len(mask), 1))
        return model.classify(states, model.attend(states, step_mask))

    return f, mask


def test_token_gradient_x_input_is_the_gradient_wrt_the_one_hot_word():
    model = token_model()
    x = tokens_with_padding()
    attr = sequence_attributions(model, x, target=1, method="grad_x_input")
    f, mask = _embedding_forward(model, x)
    emb = model.embedding(x).detach().requires_grad_(True)
    f(emb)[:, 1].sum().backward()
    expected = (emb.grad * emb).sum(-1) * mask
    torch.testing.assert_close(attr.values, expected.detach())
    # and the plain gradient is the norm of the same gradient vector
    norm = sequence_attributions(model, x, target=1, method="gradient")
    torch.testing.assert_close(norm.values, emb.grad.norm(dim=-1) * mask)


def test_token_integrated_gradients_match_captum_on_embeddings():
    from captum.attr import IntegratedGradients

    model = token_model(seed=3)
    x = tokens_with_padding()
    # the registered integrated-gradients method with Captum's rule (its default is Gauss-Legendre)
    attr = sequence_attributions(model, x, target=0, method="integrated_gradients", n_steps=20, batch_size=16,
                                 rule="riemann_middle")
    f, mask = _embedding_forward(model, x)
    emb = model.embedding(x).detach()
    ig = IntegratedGradients(f).attribute(emb, baselines=torch.zeros_like(emb), target=0, n_steps=20,
                                          method="riemann_middle")
    # Captum builds its path points in float32, hence the 1e-6 relative tolerance
    torch.testing.assert_close(attr.values, (ig.sum(-1) * mask).detach(), rtol=1e-5, atol=1e-8)
    assert count_hooks(model) == 0


def test_integrated_gradients_are_complete():
    model = signal_model(2)
    x = signals()
    attr = sequence_attributions(model, x, target=2, method="integrated_gradients", lengths=LENGTHS, n_steps=256)
    with torch.no_grad():
        gap = model(x, LENGTHS)[:, 2] - model(torch.zeros_like(x), LENGTHS)[:, 2]
    torch.testing.assert_close(attr.values.sum(1), gap, rtol=0, atol=2e-4)
    torch.testing.assert_close(attr.extras["convergence_delta"], attr.values.sum(1) - gap, rtol=0, atol=1e-10)
    for i, n in enumerate(LENGTHS.tolist()):
        assert attr.values[i, n:].eq(0).all()


def test_signal_gradient_is_the_channel_norm_of_the_input_gradient():
    model = signal_model(1)
    x = signals()
    attr = sequence_attributions(model, x, target=0)
    xr = x.clone().requires_grad_(True)
    model(xr)[:, 0].sum().backward()
    torch.testing.assert_close(attr.values, xr.grad.norm(dim=1))
    assert attr.target.tolist() == [0, 0, 0, 0]


def test_sequence_attributions_reject_bad_requests():
    with pytest.raises(InputError, match="attention model"):
        sequence_attributions(nn.Linear(3, 2), torch.zeros(2, 3))
    with pytest.raises(UnknownNameError, match="available"):
        sequence_attributions(token_model(), tokens_with_padding(), method="lime")
    with pytest.raises(InputError, match="n_steps"):
        sequence_attributions(token_model(), tokens_with_padding(), method="integrated_gradients", n_steps=0)


# ------------------------------------------------------------------------------------------------
# the whole analysis and its verdict
# ------------------------------------------------------------------------------------------------


def test_attention_weights_match_the_model():
    model = signal_model(2)
    x = signals()
    attention, steps = attention_weights(model, x, LENGTHS)
    with torch.no_grad():
        _, expected = model.forward_with_attention(x, LENGTHS)
    torch.testing.assert_close(attention, expected)
    assert steps.shape == (4, 10)


def test_faithfulness_of_uniform_attention_on_masks_equals_mask_share():
    model = signal_model(0, attention="uniform")
    x = signals()
    masks = torch.zeros(4, 1, 37)
    masks[0, 0, 5:15] = 1
    masks[1, 0, 0:7] = 1
    masks[3, 0, 20:35] = 1  # beyond the row's length 30: only 20..29 count; row 2 has no mask
    result = attention_faithfulness(model, x, lengths=LENGTHS, masks=masks, labels=torch.tensor([0, 1, 2, 0]),
                                    n_permutations=5, ig_steps=4)
    share = torch.tensor([10 / 37, 7 / 21, math.nan, 10 / 30], dtype=torch.float64)
    torch.testing.assert_close(result.mass_attention, share, equal_nan=True)
    torch.testing.assert_close(result.mask_share, share, equal_nan=True)
    assert torch.isnan(result.tau_gradient).all()  # constant attention ranks nothing
    summary = result.summary()
    assert summary["tau_gradient_mean"] is None and summary["permutation_tvd_median"] == 0.0
    assert summary["n_with_mask"] == 3 and math.isclose(summary["attention_spread_mean"], 1.0)
    level, sentences = verdict(summary)
    assert level == "unreliable" and "ranks nothing" in sentences[0]


def test_faithfulness_of_the_copy_model_is_usable():
    model, x = CopyModel(), copy_inputs()
    masks = x[:, :1].clone()  # the marked position is the evidence
    result = attention_faithfulness(model, x, masks=masks, n_permutations=40, ig_steps=16)
    summary = result.summary()
    assert summary["mass_attention_mean"] > 0.99 and math.isclose(summary["mask_share_mean"], 1 / 12)
    assert summary["permutation_tvd_median"] > 0.95
    assert summary["tau_leave_one_out_mean"] > 0.3
    level, _ = verdict(summary)
    assert level in ("usable", "caution")


@pytest.mark.parametrize(
    "overrides, level",
    [
        ({}, "usable"),
        ({"permutation_tvd_median": 0.01}, "caution"),
        ({"permutation_tvd_median": 0.01, "tau_gradient_mean": 0.05, "mass_attention_mean": 0.3}, "unreliable"),
    ],
)
def test_verdict_levels(overrides, level):
    summary = {
        "tau_gradient_mean": 0.6, "tau_leave_one_out_mean": 0.55, "tau_integrated_gradients_mean": 0.4,
        "permutation_tvd_median": 0.4, "permutation_flip_rate": 0.3, "mass_attention_mean": 0.9,
        "mass_gradient_mean": 0.7, "mass_integrated_gradients_mean": 0.6, "mask_share_mean": 0.25,
    }
    got, sentences = verdict({**summary, **overrides})
    assert got == level and sentences[-1].startswith("Verdict")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_analysis_runs_on_cuda_and_matches_cpu():
    model = signal_model(2)
    x = signals()
    masks = torch.zeros(4, 1, 37)
    masks[:, 0, 3:12] = 1
    cpu = attention_faithfulness(model, x, lengths=LENGTHS, masks=masks, n_permutations=6, ig_steps=4)
    gpu = attention_faithfulness(model.cuda(), x.cuda(), lengths=LENGTHS.cuda(), masks=masks.cuda(), n_permutations=6,
                                 ig_steps=4)
    for name in ("attention", "leave_one_out", "permutation_tvd", "mass_attention", "tau_gradient"):
        torch.testing.assert_close(getattr(gpu, name).cpu(), getattr(cpu, name), rtol=1e-6, atol=1e-8, equal_nan=True)
