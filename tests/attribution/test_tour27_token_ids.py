"""Token attributions of an ids model (B, T) -> one value per token: closed forms and Captum."""

import pytest
import torch
from torch import nn

from medlens.attribution.token_ids import token_attributions
from medlens.errors import InputError
from medlens.models.text_transformer import TextTransformer


class BagOfEmbeddings(nn.Module):
    """logits = W @ sum_t mask_t * emb(id_t): linear in the embeddings, so every method has a closed form."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(10, 4, padding_idx=0)
        self.head = nn.Linear(4, 3)

    def forward(self, input_ids, attention_mask=None):
        mask = (input_ids != 0) if attention_mask is None else attention_mask.bool()
        return self.head((self.embed(input_ids) * mask[..., None]).sum(1))


IDS = torch.tensor([[3, 5, 7, 0], [2, 9, 0, 0]])
MASK = (IDS != 0).long()


def closed_form(model, target=1):
    w = model.head.weight[target]
    return (model.embed(IDS) @ w).detach() * MASK


@pytest.mark.parametrize("method", ["grad_x_input", "integrated_gradients", "smoothgrad", "occlusion", "lrp"])
def test_linear_model_methods_equal_the_closed_form_and_padding_is_zero(method):
    model = BagOfEmbeddings()
    attr = token_attributions(model, IDS, MASK, method, target=1, n_steps=4)
    assert attr.values.shape == IDS.shape
    assert torch.allclose(attr.values, closed_form(model), atol=1e-5)
    assert (attr.values[MASK == 0] == 0).all()


def test_integrated_gradients_from_a_mask_id_agrees_with_captum_layer_integrated_gradients():
    captum = pytest.importorskip("captum.attr")
    model = TextTransformer(3, vocab_size=20, layers=1, dropout=0.0).eval()
    ids = torch.tensor([[4, 8, 15, 16, 2], [7, 3, 9, 0, 0]])
    mask = (ids != 0).long()
    ours = token_attributions(model, ids, mask, "integrated_gradients", target=2, baseline_id=1, n_steps=20)
    baseline = torch.where(mask.bool(), torch.ones_like(ids), ids)
    lig = captum.LayerIntegratedGradients(lambda i, m: model(i), model.embedding)
    theirs = lig.attribute(ids, baselines=baseline, target=2, additional_forward_args=(mask,), n_steps=20).sum(-1)
    assert torch.allclose(ours.values, theirs.detach() * mask, atol=1e-5)
    assert ours.extras["convergence_delta"].abs().max() < 1e-3


def test_rollout_and_chefer_of_a_one_layer_transformer_equal_their_formulas():
    model = TextTransformer(2, vocab_size=12, heads=2, layers=1, dropout=0.0).eval()
    ids = torch.tensor([[3, 4, 5, 0]])
    mask = (ids != 0).long()
    block = model.blocks[0]
    h = model.embedding(ids) + model.positions.weight[:4]
    a = block.norm1(h)
    _, maps = block.attention(a, a, a, key_padding_mask=~mask.bool(), need_weights=True, average_attn_weights=True)
    fused = maps.detach() + torch.eye(4)
    fused = fused / fused.sum(-1, keepdim=True)
    expected = (fused[0, :3].mean(0) * mask[0]).detach()
    got = token_attributions(model, ids, mask, "attention_rollout").values[0]
    assert torch.allclose(got, expected, atol=1e-5)
    # Chefer: R = I + mean_heads((dS/dA * A)^+), with A recomputed by hand so its gradient is known
    mha, heads, width = block.attention, 2, 32
    q, k, v = torch.nn.functional.linear(a, mha.in_proj_weight, mha.in_proj_bias).chunk(3, -1)
    split = lambda t: t.reshape(1, 4, heads, width // heads).transpose(1, 2)  # noqa: E731
    logits_qk = split(q) @ split(k).transpose(-1, -2) / (width // heads) ** 0.5
    attn = torch.softmax(logits_qk.masked_fill(~mask.bool()[:, None, None], float("-inf")), -1).detach().requires_grad_()
    mixed = mha.out_proj((attn @ split(v)).transpose(1, 2).reshape(1, 4, width))
    states = h + mixed
    states = model.norm(states + block.feed_forward(block.norm2(states)))
    score = model.classify(states, model.attend(states, mask.bool()))[0, 1]
    (grad,) = torch.autograd.grad(score, attn)
    relevance = torch.eye(4) + (grad * attn).clamp(min=0).mean(1)[0].detach()
    expected = relevance[:3].mean(0) * mask[0]
    chefer = token_attributions(model, ids, mask, "transformer_attribution", target=1).values[0]
    assert torch.allclose(chefer, expected, atol=1e-5)


def test_bad_inputs_get_one_line_errors():
    model = BagOfEmbeddings()
    with pytest.raises(InputError, match="int64"):
        token_attributions(model, IDS.float())
    with pytest.raises(InputError, match="no layer 'nope'"):
        token_attributions(model, IDS, embedding="nope")


def test_explain_on_token_ids_points_to_token_attributions_which_the_package_exports():
    import medlens

    with pytest.raises(InputError, match="medlens.token_attributions"):
        medlens.explain(BagOfEmbeddings(), IDS, 1, "integrated_gradients")
    assert torch.allclose(medlens.token_attributions(BagOfEmbeddings(), IDS, MASK, "grad_x_input", target=1).values,
                          closed_form(BagOfEmbeddings()), atol=1e-5)


def test_the_embedding_is_found_when_the_model_reads_unknown_ids_as_its_unk_token():
    model = TextTransformer(2, vocab_size=12, dropout=0.0).eval()
    ids = torch.tensor([[3, 40, 5, 0]])  # 40 lies beyond the vocabulary: the model feeds unk (1) instead
    attr = token_attributions(model, ids, None, "grad_x_input", target=0)
    assert attr.values[0, 1] != 0 and attr.values[0, 3] == 0


class TinyBert(nn.Module):
    """Hugging Face shaped: model(input_ids, attention_mask=...) -> object with .logits; the [CLS] row is read."""

    class Out:
        def __init__(self, logits):
            self.logits = logits

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.bert = nn.Module()
        self.bert.word_embeddings = nn.Embedding(16, 8, padding_idx=0)
        self.bert.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, input_ids, attention_mask):
        h = self.bert.word_embeddings(input_ids)
        a, _ = self.bert.attention(h, h, h, key_padding_mask=attention_mask == 0)
        return self.Out(self.head((h + a)[:, 0]))


def test_a_hugging_face_shaped_model_with_a_mask_and_a_cls_token():
    model = TinyBert().eval()
    ids = torch.tensor([[2, 5, 6, 0, 0], [2, 7, 8, 9, 3]])
    mask = (ids != 0).long()
    rollout = token_attributions(model, ids, mask, "attention_rollout", embedding="bert.word_embeddings", query=0).values
    assert torch.allclose(rollout.sum(1), torch.ones(2), atol=1e-5) and (rollout[0, 3:] == 0).all()
    occlusion = token_attributions(model, ids, mask, "occlusion", target=1).values
    replaced = ids.clone()
    replaced[1, 2] = 0
    logits = model(ids, mask).logits[:, 1] - model(replaced, mask).logits[:, 1]
    assert occlusion[1, 2] == pytest.approx(float(logits[1].detach()), abs=1e-5) and (occlusion[0, 3:] == 0).all()
