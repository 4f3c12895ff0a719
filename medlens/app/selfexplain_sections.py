"""Report sections for models that explain themselves.

* :func:`interpnet_section`: an InterpNet trained on a small lesion benchmark, with its
  generated explanation under each case and the BLEU-4 / attribute accuracy that back them;
* :func:`concepts_section`: concepts of the demo model (Figure 10 of the reference document);
* :func:`basis_section`: the prediction basis of the demo cases.

Each section computes here and is drawn by :mod:`medlens.report.selfexplain`. The ``add_*``
functions (used by the CLI commands too) compute what a section shows and have the report draw it.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch
from torch import nn

# Demo settings of the generated-explanations section: (normal, quick).
LESION_DEMO = {
    False: {"size": 32, "n_train": 600, "n_val": 100, "n_test": 100, "epochs": 5, "decoder_epochs": 15},
    True: {"size": 24, "n_train": 64, "n_val": 16, "n_test": 16, "epochs": 1, "decoder_epochs": 1},
}
SHOWN_CASES = 6


def saliency_method() -> str:
    """Grad-CAM when registered (smooth regions, as in the paper's figures), else the gradient."""
    from medlens.attribution.explain import methods as registered_methods

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
    from medlens.attribution.explain import explain
    from medlens.report.selfexplain import interpnet_body
    from medlens.selfexplain.captions import parse_report
    from medlens.selfexplain.interpnet import evaluate_explanations

    sec = report.section("Generated explanations (InterpNET)")
    t0 = time.perf_counter()
    model, meta, test, reused = demo_interpnet(ctx.out, quick=ctx.quick, seed=ctx.seed)
    greedy = evaluate_explanations(model, test, beam_size=1, seed=ctx.seed)
    beam = evaluate_explanations(model, test, beam_size=4, seed=ctx.seed)
    n = min(SHOWN_CASES if not ctx.quick else 2, len(test.labels))
    x = test.inputs[list(range(n))]
    attr = explain(model, x, method=saliency_method())
    cases = []
    for i in range(n):
        said = greedy.explanations.sentences[i]
        truth = test.attributes[i]
        stated = parse_report(said).as_dict()
        cases.append({
            "index": i, "image": x[i], "values": attr.values[i], "method": attr.method, "present": truth.present,
            "predicted": int(greedy.explanations.predictions[i]), "said": said,
            "beam": beam.explanations.sentences[i], "reference": greedy.references[i][0],
            "wrong": [k for k, v in truth.as_dict().items() if (k == "present" or truth.present) and stated[k] != v],
        })
    interpnet_body(
        sec, settings=meta["settings"], reused=reused, scores=[("greedy", greedy), ("beam search (4)", beam)],
        n_test=len(test.labels), classifier_accuracy=greedy.classifier_accuracy, quick=ctx.quick, cases=cases,
    )
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
    names: Sequence[str] | None = None,
    shown: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Fitted concepts (Figure 10 style) into ``sec``: fidelity, class importance, and for each
    concept its top-activating images with the concept's saliency map
    (:func:`medlens.report.selfexplain.concepts_body`); ``shown(top)``: ``inputs`` as the page
    may draw them, given the top rows (default: as they are).

    Returns a plain summary (fidelity, importance, top images) for JSON output.
    """
    from medlens.report.selfexplain import concepts_body
    from medlens.selfexplain.concepts import concept_saliency

    method = method or saliency_method()
    top = concepts.top_activating(n_top)  # (k, n_top)
    saliency = [
        concept_saliency(model, concepts.autoencoder, inputs[top[j]], j, method=method, layer=concepts.layer,
                         **(method_options or {})).values
        for j in range(concepts.activations.shape[1])
    ]
    concepts_body(sec, concepts, inputs if shown is None else shown(top), labels, class_names, top=top,
                  saliency=saliency, method=method, held_out=held_out, names=names)
    summary: dict[str, Any] = {
        "fidelity": concepts.fidelity.as_dict(), "importance": concepts.importance.tolist(), "top_images": top.tolist(),
        "multilabel": bool(concepts.multilabel),  # fidelity read per finding (its own sigmoid), not one softmax
    }
    if names is not None:  # a folder's cases: their ids, the rows of top_images meaning nothing outside this run
        summary["top_cases"] = [[names[int(r)] for r in row] for row in top.tolist()]
    if held_out is not None:
        summary["held_out_fidelity"] = held_out.as_dict()
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
              class_names: Sequence[str], *, query_names: Sequence[str] | None = None,
              train_names: Sequence[str] | None = None) -> None:
    """Render a :class:`PredictionBasis` into ``sec``: each query beside its retrieved training cases
    (:func:`medlens.report.selfexplain.basis_cases`)."""
    from medlens.report.selfexplain import basis_cases

    basis_cases(sec, basis, queries, query_labels, train_inputs, class_names, query_names=query_names,
                train_names=train_names)


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
        "similarity of the penultimate features centred on the training mean, and distance in units of a typical "
        "training image's distance to its nearest neighbour), with their labels and saliency maps: the model saw these "
        "cases as alike (Lee et al. 2019). Neighbours with another label, or whose maps highlight other "
        "structures, are a reason to doubt the prediction."
    )
    add_basis(sec, basis, queries, ctx.test_labels[ctx.cases], inputs, ctx.class_names,
              query_names=[f"test case #{c}" for c in ctx.cases])
    ctx.timings["prediction_basis"] = time.perf_counter() - t0
