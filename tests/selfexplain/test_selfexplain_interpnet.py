"""InterpNet: decoding against naive and exhaustive references, engine batching, file format."""

import itertools

import pytest
import torch

import medlens
from medlens.core.hooks import count_hooks
from medlens.errors import FileFormatError, InputError
from medlens.selfexplain.captions import SPECIALS, LesionAttributes, vocabulary
from medlens.selfexplain.interpnet import (
    InterpNet,
    LesionSplit,
    beam_search,
    encode_reports,
    generate,
    load_lesion_split,
    train_interpnet,
)


def tiny(vocab=None, max_len=8, **kw):
    torch.manual_seed(0)
    return InterpNet(2, 1, 2, widths=(4, 6), input_shape=(1, 16, 16), vocab=vocab, hidden=16, embed_dim=8,
                     max_len=max_len, **kw).double().eval()


def images(n=3, seed=1, size=16):
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def sequence_logprob(model, context, seq):
    """Summed log-probability of a token sequence by teacher forcing (the training path)."""
    tokens_in = torch.tensor([[1] + seq[:-1]])
    logits = model.word_logits(context, tokens_in)[0].masked_fill(model.banned, float("-inf"))
    return float(torch.log_softmax(logits, 1)[torch.arange(len(seq)), seq].sum())


def test_forward_is_the_classifier_and_the_context_reads_every_block():
    model, x = tiny(), images()
    with torch.no_grad():
        logits, context = model.introspect(x)
        torch.testing.assert_close(model(x), model.cnn(x))
        torch.testing.assert_close(logits, model.cnn(x))
    # max-pooled 2x2 grids of both blocks, their CAM-weighted means, then the class probabilities
    assert context.shape == (3, (4 + 6) * 4 + (4 + 6) + 2)
    torch.testing.assert_close(context[:, -2:], torch.softmax(logits, 1))
    with torch.no_grad():
        last = model.cnn.features(x)  # (3, 6, 8, 8)
        torch.testing.assert_close(context[:, 16:40], torch.nn.functional.adaptive_max_pool2d(last, 2).flatten(1))
        cam = torch.einsum("bc,bchw->bhw", model.cnn.classifier.weight[logits.argmax(1)], last)
        weights = torch.softmax(cam.flatten(1), 1).view_as(cam)
        torch.testing.assert_close(context[:, 44:50], (last * weights[:, None]).sum((2, 3)))
        first = model.cnn.features.block1(x)  # pooled to 8x8 too: the same weights apply
        torch.testing.assert_close(context[:, 40:44], (first * weights[:, None]).sum((2, 3)))
    # a deeper net: block outputs at 8x8, 4x4, 4x4; the 4x4 map reaches 8x8 by repetition
    deep = InterpNet(2, 1, 2, widths=(3, 4, 5), input_shape=(1, 16, 16), hidden=8, embed_dim=4).double().eval()
    with torch.no_grad():
        deep_logits, deep_context = deep.introspect(x)
        b1 = deep.cnn.features.block1(x)
        last = deep.cnn.features(x)
        cam = torch.einsum("bc,bchw->bhw", deep.cnn.classifier.weight[deep_logits.argmax(1)], last)
        up = torch.softmax(cam.flatten(1), 1).view_as(cam).repeat_interleave(2, 1).repeat_interleave(2, 2) / 4
        offset = (3 + 4 + 5) * 4
        torch.testing.assert_close(deep_context[:, offset : offset + 3], (b1 * up[:, None]).sum((2, 3)))
    with torch.no_grad():
        assert torch.equal(tiny(blind=True).introspect(x)[1], torch.zeros_like(context))


def test_greedy_decoding_takes_the_most_probable_token_at_every_step():
    model, x = tiny(), images()
    with torch.no_grad():
        tokens = model.generate(x, beam_size=1)
        _, context = model.introspect(x)
        for i in range(len(x)):
            seq = []
            while len(seq) < model.config["max_len"]:
                logits = model.word_logits(context[i : i + 1], torch.tensor([[1] + seq]))[0, -1]
                nxt = int(logits.masked_fill(model.banned, float("-inf")).argmax())
                seq.append(nxt)
                if nxt == 2:
                    break
            assert tokens[i, : len(seq)].tolist() == seq
            assert (tokens[i, len(seq):] == 0).all()


def test_a_wide_beam_finds_the_most_probable_sentence_of_all():
    vocab = list(SPECIALS) + ["a", "b"]
    model, x = tiny(vocab, max_len=3), images(2)
    with torch.no_grad():
        _, context = model.introspect(x)
        tokens, scores = beam_search(model, context, beam_size=27, max_len=3)
        for i in range(2):
            ctx = context[i : i + 1]
            # every sentence: 0..2 words then <eos>, or 3 words cut at max_len
            candidates = [list(w) + [2] for n in range(3) for w in itertools.product([4, 5], repeat=n)]
            candidates += [list(w) for w in itertools.product([4, 5], repeat=3)]
            best = max(candidates, key=lambda s: sequence_logprob(model, ctx, s))
            assert tokens[i, : len(best)].tolist() == best
            assert float(scores[i]) == pytest.approx(sequence_logprob(model, ctx, best), abs=1e-9)
        # a wider beam never scores below greedy
        _, greedy = beam_search(model, context, beam_size=1, max_len=3)
        assert (scores >= greedy - 1e-12).all()


def test_generate_batches_through_the_engine_without_changing_the_answer():
    model, x = tiny(vocabulary()), images(5)
    a = generate(model, x, beam_size=3)
    b = generate(model, x, beam_size=3, batch_size=2)
    assert torch.equal(a.tokens, b.tokens) and a.sentences == b.sentences
    with torch.no_grad():
        assert torch.equal(a.tokens, model.generate(x, beam_size=3))
        assert torch.equal(a.predictions, model(x).argmax(1))
    assert all(isinstance(s, str) for s in a.sentences)
    assert model.training is False and count_hooks(model) == 0


def test_the_classifier_is_explained_like_any_other():
    model, x = tiny(), images(2)
    attr = medlens.explain(model, x, method="gradient")
    xg = x.clone().requires_grad_(True)
    out = model(xg)
    (grad,) = torch.autograd.grad(out.gather(1, out.argmax(1, keepdim=True)).sum(), xg)
    torch.testing.assert_close(attr.values, grad)


def test_save_and_load_round_trip(tmp_path):
    from medlens.models import load_model, save_model

    model, x = tiny(), images()
    loaded, meta = load_model(save_model(model, tmp_path / "interpnet.pt", {"note": "x"}))
    assert isinstance(loaded, InterpNet) and meta == {"note": "x"} and loaded.config == model.config
    assert generate(loaded, x).sentences == generate(model, x).sentences


def test_encode_reports_appends_eos_and_pads():
    vocab = vocabulary()
    ids = encode_reports(["a small spot.", "zzz"], vocab, max_len=6)
    assert ids.shape == (2, 7)
    assert [vocab[i] for i in ids[0, :5]] == ["a", "small", "spot", ".", "<eos>"]
    assert ids[0, 5:].tolist() == [0, 0] and ids[1, :2].tolist() == [3, 2]  # <unk>, <eos>


def lesion_data(tmp_path, n_train=48, size=24):
    from medlens.data.synthetic.lesions import write_lesion_benchmark

    path = write_lesion_benchmark(tmp_path / "les.npz", size=size, n_train=n_train, n_val=16, n_test=16, seed=0)
    return path, [load_lesion_split(path, s) for s in ("train", "val", "test")]


def test_a_blind_generator_says_the_same_thing_about_every_image(tmp_path):
    _, (train, val, test) = lesion_data(tmp_path)
    model, history = train_interpnet(train, val, epochs=1, decoder_epochs=2, widths=(4, 8), hidden=32, blind=True,
                                     progress=False)
    out = generate(model, test.inputs)
    assert len(set(out.sentences)) == 1  # the ablation cannot see the image
    assert [h["phase"] for h in history] == [1, 2, 2]
    assert not model.training and all(p.requires_grad for p in model.parameters())


def test_load_lesion_split_and_its_errors(tmp_path):
    path, (train, _, _) = lesion_data(tmp_path, n_train=8)
    assert train.inputs.shape == (8, 1, 24, 24) and train.labels.shape == (8,)
    assert [a.present for a in train.attributes] == [bool(v) for v in train.labels]
    assert all(isinstance(a, LesionAttributes) for a in train.attributes)
    with pytest.raises(FileFormatError, match="does not exist"):
        load_lesion_split(tmp_path / "nope.npz", "train")
    import numpy as np

    np.savez(tmp_path / "plain.npz", train_images=np.zeros((2, 8, 8)), train_labels=np.zeros(2))
    with pytest.raises(FileFormatError, match="lesion benchmark"):
        load_lesion_split(tmp_path / "plain.npz", "train")
    with pytest.raises(InputError, match="beam_size"):
        generate(tiny(), images(), beam_size=0)
    with pytest.raises(InputError, match="InterpNet"):
        generate(torch.nn.Linear(2, 2), images())
    with pytest.raises(InputError, match="epochs"):
        train_interpnet(train, train, epochs=0)
    one = LesionSplit(train.inputs[:1], train.labels[:1], train.attributes[:1])
    with pytest.raises(InputError, match="at least two training"):
        train_interpnet(one, train, epochs=1)
    with pytest.raises(InputError, match="vocabulary"):
        InterpNet(vocab=["a", "b"])


@pytest.mark.slow
def test_explanations_of_held_out_lesions_are_accurate_and_need_the_image(tmp_path):
    from medlens.data.synthetic.lesions import write_lesion_benchmark
    from medlens.selfexplain.captions import attribute_accuracy
    from medlens.selfexplain.interpnet import evaluate_explanations

    path = write_lesion_benchmark(tmp_path / "les.npz", size=32, n_train=2000, n_val=100, n_test=200, seed=0)
    train, val, test = (load_lesion_split(path, s) for s in ("train", "val", "test"))
    model, _ = train_interpnet(train, val, epochs=6, decoder_epochs=30, progress=False)
    greedy = evaluate_explanations(model, test, beam_size=1)
    beam = evaluate_explanations(model, test, beam_size=4)
    # The ablation: the same generator trained without seeing the image (its CNN is irrelevant
    # to its sentences, so one epoch of it suffices).
    blind, _ = train_interpnet(train, val, epochs=1, decoder_epochs=10, blind=True, progress=False)
    blind_scores = evaluate_explanations(blind, test)
    # and the best any image-blind sentence can do: one constant sentence with the majority values
    positives = [a for a in train.attributes if a.present]
    majority = {n: max({getattr(a, n) for a in positives}, key=[getattr(a, n) for a in positives].count)
                for n in ("vertical", "horizontal", "size", "brightness", "shape")}
    constant = max(
        attribute_accuracy([LesionAttributes(True, **majority)] * len(test.attributes), test.attributes)["mean"],
        attribute_accuracy([LesionAttributes(False)] * len(test.attributes), test.attributes)["mean"],
    )
    print(f"\ngreedy: BLEU-4 {greedy.bleu4:.3f} attributes {greedy.attributes}\n"
          f"beam 4: BLEU-4 {beam.bleu4:.3f} attributes {beam.attributes}\n"
          f"blind: BLEU-4 {blind_scores.bleu4:.3f} attributes {blind_scores.attributes}; best constant {constant:.3f}")
    assert len(set(blind_scores.explanations.sentences)) == 1
    assert greedy.attributes["mean"] > 0.75
    for name in ("present", "vertical", "horizontal", "brightness"):
        assert greedy.attributes[name] > 0.85, name
    assert greedy.attributes["mean"] > max(constant, blind_scores.attributes["mean"]) + 0.25
    assert greedy.bleu4 > blind_scores.bleu4 + 0.1
