"""The attention RNN: masking, padding invariance, the additive attention formula, model files."""

from __future__ import annotations

import pytest
import torch

import medlens
from medlens.core.hooks import count_hooks
from medlens.errors import InputError
from medlens.models import AttentionRNN, architectures, build_model, load_model, save_model
from medlens.models.attention_rnn import build_for_inputs, is_attention_model
from medlens.app.recipes import BUILDERS



def signal_model(downsample: int = 2, cell: str = "gru", attention: str = "additive", seed: int = 0) -> AttentionRNN:
    torch.manual_seed(seed)
    model = AttentionRNN(3, in_channels=2, hidden_size=6, attention_size=5, front_channels=4,
                         downsample_layers=downsample, cell=cell, attention=attention).double()
    with torch.no_grad():  # non-trivial batch-norm statistics, so eval mode is not the identity
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def token_model(cell: str = "gru", attention: str = "additive", seed: int = 0) -> AttentionRNN:
    torch.manual_seed(seed)
    return AttentionRNN(2, vocab_size=12, embed_dim=5, hidden_size=6, attention_size=5, cell=cell,
                        attention=attention).double().eval()


def signals(batch: int = 4, length: int = 37, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 2, length, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def tokens_with_padding() -> torch.Tensor:
    gen = torch.Generator().manual_seed(2)
    x = torch.randint(2, 12, (4, 9), generator=gen)
    x[1, 6:] = 0
    x[2, 1:] = 0
    x[3, 8:] = 0
    return x


LENGTHS = torch.tensor([37, 21, 5, 30])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("downsample", [0, 2])
def test_signal_attention_sums_to_one_and_padding_gets_zero(cell, downsample):
    model = signal_model(downsample, cell)
    logits, attention = model.forward_with_attention(signals(), LENGTHS)
    assert logits.shape == (4, 3) and attention.shape == (4, 37)
    torch.testing.assert_close(attention.sum(1), torch.ones(4, dtype=torch.float64))
    for i, length in enumerate(LENGTHS.tolist()):
        assert torch.all(attention[i, length:] == 0)
        assert torch.all(attention[i, :length] > 0)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_token_attention_sums_to_one_and_padding_gets_zero(cell):
    model = token_model(cell)
    x = tokens_with_padding()
    _, attention = model.forward_with_attention(x)
    torch.testing.assert_close(attention.sum(1), torch.ones(4, dtype=torch.float64))
    assert torch.equal(attention == 0, x == 0)


@pytest.mark.parametrize("downsample", [0, 1, 2])
def test_padded_batch_equals_each_sequence_alone(downsample):
    """Variable-length batches: padding changes neither logits nor attention (lengths not multiples of the stride)."""
    model = signal_model(downsample)
    x = signals()
    logits, attention = model.forward_with_attention(x, LENGTHS)
    for i, length in enumerate(LENGTHS.tolist()):
        alone_logits, alone_attention = model.forward_with_attention(x[i : i + 1, :, :length])
        torch.testing.assert_close(logits[i], alone_logits[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(attention[i, :length], alone_attention[0], rtol=0, atol=1e-12)


def test_padded_token_batch_equals_each_report_alone():
    model = token_model("lstm")
    x = tokens_with_padding()
    logits, attention = model.forward_with_attention(x)
    for i in range(len(x)):
        length = int((x[i] != 0).sum())
        alone_logits, alone_attention = model.forward_with_attention(x[i : i + 1, :length])
        torch.testing.assert_close(logits[i], alone_logits[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(attention[i, :length], alone_attention[0], rtol=0, atol=1e-12)


def test_padding_content_is_ignored():
    model = signal_model(2)
    x = signals()
    noisy = x.clone()
    for i, length in enumerate(LENGTHS.tolist()):
        noisy[i, :, length:] = 1e3
    torch.testing.assert_close(model(x, LENGTHS), model(noisy, LENGTHS), rtol=0, atol=1e-12)


def test_additive_attention_matches_bahdanau_formula():
    """a_t = softmax_t(v^T tanh(W h_t + b)) over valid steps; logits = U (sum_t a_t h_t) + c; written naively."""
    model = token_model()
    x = tokens_with_padding()
    with torch.no_grad():
        mask = model.valid_mask(x)
        states, _ = model.encode_features(model.features(x), mask)
        logits, attention = model.forward_with_attention(x)
    W, b = model.attention_proj.weight.detach(), model.attention_proj.bias.detach()
    v = model.attention_score.weight[0].detach()
    U, c = model.classifier.weight.detach(), model.classifier.bias.detach()
    for i in range(len(x)):
        n = int(mask[i].sum())
        scores = [float(v @ torch.tanh(W @ states[i, t] + b)) for t in range(n)]
        top = max(scores)
        weights = torch.tensor([torch.exp(torch.tensor(s - top)) for s in scores], dtype=torch.float64)
        weights = weights / weights.sum()
        torch.testing.assert_close(attention[i, :n], weights)
        context = sum(weights[t] * states[i, t] for t in range(n))
        torch.testing.assert_close(logits[i], U @ context + c)


def test_uniform_attention_is_one_over_length():
    model = signal_model(0, attention="uniform")
    _, attention = model.forward_with_attention(signals(), LENGTHS)
    for i, length in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(attention[i, :length], torch.full((length,), 1.0 / length, dtype=torch.float64))
    assert not any("attention" in name for name, _ in model.named_parameters())


def test_step_attention_spreads_evenly_over_its_samples():
    model = signal_model(2)  # stride 4
    step = torch.tensor([[0.5, 0.25, 0.25]], dtype=torch.float64)
    mask = torch.tensor([[True] * 10 + [False] * 2])  # the last step covers 2 valid samples
    mapped = model.to_input_resolution(step, mask)
    expected = torch.tensor([[0.125] * 4 + [0.0625] * 4 + [0.125] * 2 + [0.0] * 2], dtype=torch.float64)
    torch.testing.assert_close(mapped, expected)


def test_unknown_token_ids_are_read_as_unknown():
    model = token_model()
    x = torch.tensor([[3, 4, 99, 5]])
    unk = torch.tensor([[3, 4, 1, 5]])
    torch.testing.assert_close(model(x), model(unk))


@pytest.mark.parametrize(
    "make, x, lengths, match",
    [
        (token_model, torch.randn(2, 5), None, "token ids"),
        (token_model, torch.tensor([[-1, 2]]), None, "non-negative"),
        (token_model, torch.zeros(2, 4, dtype=torch.long), None, "every length"),
        (signal_model, torch.randn(2, 3, 8, dtype=torch.float64), None, "signals"),
        (signal_model, torch.zeros(2, 2, 8, dtype=torch.long), None, "signals"),
        (signal_model, torch.randn(2, 2, 8, dtype=torch.float64), torch.tensor([0, 8]), "every length"),
        (signal_model, torch.randn(2, 2, 8, dtype=torch.float64), torch.tensor([3, 9]), "every length"),
        (signal_model, torch.randn(2, 2, 8, dtype=torch.float64), torch.tensor([3]), "lengths for a batch"),
    ],
)
def test_bad_inputs_raise_input_errors(make, x, lengths, match):
    with pytest.raises(InputError, match=match):
        make()(x, lengths)


def test_constructor_rejects_inconsistent_settings():
    with pytest.raises(ValueError, match="exactly one"):
        AttentionRNN(2)
    with pytest.raises(ValueError, match="front end"):
        AttentionRNN(2, vocab_size=10, downsample_layers=1)
    with pytest.raises(ValueError, match="cell"):
        AttentionRNN(2, in_channels=1, cell="rnn")


@pytest.mark.parametrize("make", [signal_model, token_model])
def test_model_file_round_trip(tmp_path, make):
    model = make()
    path = save_model(model, tmp_path / "m.pt", {"class_names": ["a", "b"]})
    loaded, meta = load_model(path)
    assert isinstance(loaded, AttentionRNN) and loaded.config == model.config and is_attention_model(loaded)
    x = signals() if not model.tokens else tokens_with_padding()
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_with_attention(x), model.forward_with_attention(x))
    assert "attention-rnn" in architectures()
    assert isinstance(build_model("attention-rnn", model.config), AttentionRNN)


def test_explain_gradient_works_on_signals_and_leaves_no_hooks():
    model = signal_model(1)
    x = signals(length=24)
    attribution = medlens.explain(model, x, target=1, method="gradient")
    xr = x.clone().requires_grad_(True)
    model(xr)[:, 1].sum().backward()
    torch.testing.assert_close(attribution.values, xr.grad)
    assert count_hooks(model) == 0


def test_recipe_builder_sizes_the_model():
    assert BUILDERS.get("attention-rnn") is build_for_inputs
    assert build_for_inputs(torch.zeros(3, 1, 140), 2).config["downsample_layers"] == 1
    assert build_for_inputs(torch.zeros(3, 4, 512), 2).config["downsample_layers"] == 3
    assert build_for_inputs(torch.zeros(3, 1, 96), 2).config["downsample_layers"] == 0
    tokens = build_for_inputs(torch.tensor([[5, 2, 0], [7, 0, 0]]), 3)
    assert tokens.config["vocab_size"] == 8 and tokens.config["num_classes"] == 3
    with pytest.raises(InputError, match="signals"):
        build_for_inputs(torch.zeros(3, 1, 8, 8), 2)
