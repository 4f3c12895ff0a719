"""Report sections for models that explain themselves.

* :func:`interpnet_section`: an InterpNet trained on a small lesion benchmark, with its
  generated explanation under each case and the BLEU-4 / attribute accuracy that back them;
* :func:`concepts_section`: concepts of the demo model (Figure 10 of the reference document);
* :func:`basis_section`: the prediction basis of the demo cases.

The ``add_*`` functions render results into a :class:`medlens.report.html.Section`; the CLI
commands use them too. Everything shown is escaped by the report.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch
from torch import nn

# Demo settings of the generated-explanations section: (normal, quick).
LESION_DEMO = {
    False: {"size": 32, "n_train": 600, "n_val": 100, "n_test": 100, "epochs": 5, "decoder_epochs": 15},
    True: {"size": 24, "n_train": 64, "n_val": 16, "n_test": 16, "epochs": 1, "decoder_epochs": 1},
}
SHOWN_CASES = 6


def _name(class_names: Sequence[str], k: int) -> str:
    return class_names[k] if 0 <= k < len(class_names) else str(k)


def _overlay(image: torch.Tensor, values: torch.Tensor, title: str) -> bytes:
    from medlens.core.resize import upsample_to
    from medlens.viz import attribution_figure, figure_png

    if values.shape[1:] != image.shape[1:]:
        values = upsample_to(values[None], image.shape[1:])[0]
    return figure_png(attribution_figure(image, values, title))


def saliency_method() -> str:
    """Grad-CAM when registered (smooth regions, as in the paper's figures), else the gradient."""
    from medlens.attribution.explain import explain, methods as registered_methods

    return "gradcam" if "gradcam" in registered_methods() else "gradient"


# --- generated explanations -------------------------------------------------------------------


def demo_interpnet(out, *, quick: bool, seed: int, progress: bool = False):
    """The section's InterpNet, reused from ``out/models`` when trained with the same settings.

    Returns ``(model, meta, test split, reused)``.
    """
    from medlens.app.cache import cached_model
    from medlens.data.synthetic.lesions import make_lesion_benchmark
    from medlens.selfexplain.interpnet import lesion_split, train_interpnet

    settings = dict(LESION_DEMO[quick], seed=seed)
    arrays = make_lesion_benchmark(
        size=settings["size"], n_train=settings["n_train"], n_val=settings["n_val"], n_test=settings["n_test"],
        seed=seed,
    )
    train, val, test = (lesion_split(arrays, s) for s in ("train", "val", "test"))

    def train_model():
        model, history = train_interpnet(
            train, val, epochs=settings["epochs"], decoder_epochs=settings["decoder_epochs"], seed=seed,
            progress=progress,
        )
        return model, {"settings": settings, "history": history, "class_names": ["no lesion", "lesion"]}

    model, meta, reused = cached_model(
        out / "models" / f"lesions-interpnet{'-quick' if quick else ''}.pt", settings, train_model
    )
    return model, meta, test, reused


def interpnet_section(ctx, report) -> None:
    """Generated explanations of lesion-benchmark cases, scored against the ground truth."""
    from medlens.attribution.explain import explain, methods as registered_methods
    from medlens.selfexplain.captions import parse_report
    from medlens.selfexplain.interpnet import evaluate_explanations

    sec = report.section("Generated explanations (InterpNET)")
    t0 = time.perf_counter()
    model, meta, test, reused = demo_interpnet(ctx.out, quick=ctx.quick, seed=ctx.seed)
    s = meta["settings"]
    sec.add_text(
        "A CNN classifies whether a lesion is present and an LSTM, conditioned on the CNN's pooled activations "
        "and its predicted class, writes a sentence saying why (Barratt 2017, InterpNET; Hendricks et al. 2016). "
        f"It was {'reused' if reused else 'trained'} on the lesion benchmark: lesions inserted into real chest "
        f"X-rays ({s['size']}x{s['size']}, {s['n_train']} training images), each with a reference report written "
        "from its ground truth in several phrasings. The generated sentences are scored by BLEU-4 against four "
        "reference phrasings per case and by attribute accuracy: each sentence is parsed back into attributes "
        "and compared with the ground truth."
    )
    greedy = evaluate_explanations(model, test, beam_size=1, seed=ctx.seed)
    beam = evaluate_explanations(model, test, beam_size=4, seed=ctx.seed)
    rows = []
    for name, scores in (("greedy", greedy), ("beam search (4)", beam)):
        a = scores.attributes
        rows.append([name, scores.bleu4, a["mean"], a["present"], a["vertical"], a["horizontal"], a["size"],
                     a["brightness"], a["shape"], a["exact"]])
    sec.add_heading(
        f"Scores on {len(test.labels)} held-out cases (classifier accuracy {greedy.classifier_accuracy:.3f})"
    )
    sec.add_table(["decoding", "BLEU-4", "attribute accuracy", "present", "upper/lower", "left/right", "size",
                   "brightness", "shape", "all correct"], rows)
    if ctx.quick:
        sec.add_text("Quick run: a toy model trained for seconds; its sentences are not meaningful.", kind="note")
    n = min(SHOWN_CASES if not ctx.quick else 2, len(test.labels))
    cases = list(range(n))
    x = test.inputs[cases]
    attr = explain(model, x, method=saliency_method())
    images = []
    for i in cases:
        said = greedy.explanations.sentences[i]
        truth = test.attributes[i]
        parsed = parse_report(said)
        stated = parsed.as_dict()
        wrong = [k for k, v in truth.as_dict().items() if (k == "present" or truth.present) and stated[k] != v]
        pred = int(greedy.explanations.predictions[i])
        caption = (
            f"test case {i}: {'lesion' if truth.present else 'no lesion'}, predicted "
            f"{'lesion' if pred == 1 else 'no lesion'}. Generated: \"{said}\" Beam search: "
            f"\"{beam.explanations.sentences[i]}\" Reference: \"{greedy.references[i][0]}\" "
            + (f"Wrong attributes: {', '.join(wrong)}." if wrong else "All attributes correct.")
        )
        images.append((_overlay(x[i], attr.values[i], f"{attr.method} for the predicted class"), caption))
    sec.add_images(images)
    ctx.timings["interpnet"] = time.perf_counter() - t0


# --- concepts -----------------------------------------------------------------------------------


def add_concepts(
    sec,
    model: nn.Module,
    concepts,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    *,
    held_out=None,
    n_top: int = 4,
    method: str | None = None,
    method_options: dict | None = None,
) -> dict[str, Any]:
    """Render fitted concepts (Figure 10 style): fidelity, class importance, and for each concept
    its top-activating images with the concept's saliency map.

    Returns a plain summary (fidelity, importance, top images) for JSON output.
    """
    from medlens.selfexplain.concepts import concept_saliency

    method = method or saliency_method()
    k = concepts.activations.shape[1]
    fid = concepts.fidelity
    rows = [["fitting images", fid.agreement, fid.kl, fid.reconstruction, fid.sparsity]]
    if held_out is not None:
        rows.append(["held-out images", held_out.agreement, held_out.kl, held_out.reconstruction, held_out.sparsity])
    sec.add_heading("Fidelity: does the prediction made from the concepts alone match the model's?")
    sec.add_table(["inputs", "agreement", "KL (nats)", "feature variance explained", "share of zero concepts"], rows)
    imp = concepts.importance  # (K, k)
    active = (concepts.activations > 0).double().mean(0)
    sec.add_heading("Concepts and their importance for each class (mean evidence added to the class logit)")
    sec.add_table(
        ["concept", "active on", *[f"importance for {_name(class_names, c)}" for c in range(imp.shape[0])]],
        [[f"concept {j}", f"{float(active[j]):.0%}", *[float(imp[c, j]) + 0.0 for c in range(imp.shape[0])]]
         for j in range(k)],
    )
    top = concepts.top_activating(n_top)  # (k, n_top)
    summary: dict[str, Any] = {"fidelity": fid.as_dict(), "importance": imp.tolist(), "top_images": top.tolist()}
    if held_out is not None:
        summary["held_out_fidelity"] = held_out.as_dict()
    sec.add_heading(f"Top-activating images of each concept, with the concept's {method} map")
    for j in range(k):
        rows_j = top[j]
        x = inputs[rows_j]
        attr = concept_saliency(model, concepts.autoencoder, x, j, method=method, layer=concepts.layer,
                                **(method_options or {}))
        favoured = int(imp[:, j].argmax())
        sec.add_text(
            f"Concept {j}: most evidence for {_name(class_names, favoured)} "
            f"({float(imp[favoured, j]):.3g}); active on {float(active[j]):.0%} of the images."
        )
        sec.add_images([
            (_overlay(x[i], attr.values[i], f"concept {j}"),
             f"image {int(r)}: label {_name(class_names, int(labels[r]))}, activation "
             f"{float(concepts.activations[r, j]):.3g}")
            for i, r in enumerate(rows_j.tolist())
        ])
    return summary


def concepts_section(ctx, report) -> None:
    """Concepts of the demo model, fitted on its training images."""
    from medlens.data import load_dataset
    from medlens.selfexplain.concepts import evaluate_concepts, learn_concepts

    t0 = time.perf_counter()
    sec = report.section("Concepts (explanation space)")
    train = load_dataset(ctx.meta.get("data", "pneumoniamnist"), "train")
    n = 400 if ctx.quick else len(train.inputs)
    inputs, labels = train.inputs[:n].to(ctx.test_inputs.dtype), train.labels[:n]
    concepts = learn_concepts(ctx.model, inputs, k=5, epochs=15 if ctx.quick else 100, seed=ctx.seed)
    held_out = evaluate_concepts(ctx.model, concepts, ctx.test_inputs)
    sec.add_text(
        "An autoencoder maps the model's penultimate features into 5 non-negative, sparse concepts, trained so "
        "that the concepts rebuild the features and the model's own classifier, applied to the rebuilt "
        "features, predicts what the model predicts (Qi and Li 2017). Each concept is shown by the training "
        f"images that activate it most ({n} images searched) and the regions that raise it."
    )
    add_concepts(sec, ctx.model, concepts, inputs, labels, ctx.class_names, held_out=held_out,
                 n_top=2 if ctx.quick else 4)
    ctx.timings["concepts"] = time.perf_counter() - t0


# --- prediction basis ---------------------------------------------------------------------------


def add_basis(sec, basis, queries: torch.Tensor, query_labels, train_inputs: torch.Tensor,
              class_names: Sequence[str], *, query_names: Sequence[str] | None = None) -> None:
    """Render a :class:`PredictionBasis`: each query beside its retrieved training cases."""
    names = list(query_names or [f"case {q}" for q in range(len(queries))])
    for q in range(len(queries)):
        pred = int(basis.query_predictions[q])
        label = "" if query_labels is None else f"label {_name(class_names, int(query_labels[q]))}, "
        images = [(
            _overlay(queries[q], basis.query_saliency[q], "query") if basis.query_saliency is not None
            else _overlay(queries[q], torch.zeros_like(queries[q]), "query"),
            f"{names[q]}: {label}predicted {_name(class_names, pred)} "
            f"(p={float(basis.query_probabilities[q, pred]):.2f})",
        )]
        for j in range(basis.indices.shape[1]):
            r = int(basis.indices[q, j])
            values = basis.saliency[q, j] if basis.saliency is not None else torch.zeros_like(train_inputs[r])
            images.append((
                _overlay(train_inputs[r], values, f"neighbour {j + 1}"),
                f"training image {r}: label {_name(class_names, int(basis.labels[q, j]))}, predicted "
                f"{_name(class_names, int(basis.predictions[q, j]))}, similarity {float(basis.similarity[q, j]):.3f}",
            ))
        agree = float(basis.label_agreement()[q])
        sec.add_heading(f"{names[q]}: {agree:.0%} of its nearest training cases carry the predicted label")
        sec.add_images(images)


def basis_section(ctx, report) -> None:
    """The demo cases beside the training cases the model saw as most alike."""
    from medlens.data import load_dataset
    from medlens.selfexplain.basis import prediction_basis

    t0 = time.perf_counter()
    sec = report.section("Prediction basis: similar training cases")
    train = load_dataset(ctx.meta.get("data", "pneumoniamnist"), "train")
    n = 400 if ctx.quick else len(train.inputs)
    inputs = train.inputs[:n].to(ctx.test_inputs.dtype)
    k = 2 if ctx.quick else 3
    queries = ctx.test_inputs[ctx.cases]
    basis = prediction_basis(ctx.model, queries, inputs, train.labels[:n], k=k, method=saliency_method())
    sec.add_text(
        f"For each case, the {k} training images closest to it in the model's embedding space (cosine "
        "similarity of the penultimate features), with their labels and saliency maps: the model saw these "
        "cases as alike (Lee et al. 2019). Neighbours with another label, or whose maps highlight other "
        "structures, are a reason to doubt the prediction."
    )
    add_basis(sec, basis, queries, ctx.test_labels[ctx.cases], inputs, ctx.class_names,
              query_names=[f"test case {c}" for c in ctx.cases])
    ctx.timings["prediction_basis"] = time.perf_counter() - t0
