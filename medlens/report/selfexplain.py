"""Report sections of models that explain themselves: generated explanations (InterpNET),
concepts (explanation space) and the prediction basis.

Each function takes finished results (scores, fitted concepts with their saliency maps, a
prediction basis) and writes them into a :class:`~medlens.report.html.Section`; nothing here runs
a model. Everything shown is escaped by the report.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from medlens.report.html import Section

__all__ = ["basis_cases", "concepts_body", "interpnet_body", "overlay_png"]


def _name(class_names: Sequence[str], k: int) -> str:
    """Class ``k``'s name; ``"unknown"`` for a negative label (a case without one)."""
    return "unknown" if k < 0 else class_names[k] if k < len(class_names) else str(k)


def overlay_png(image: torch.Tensor, values: torch.Tensor, title: str) -> bytes:
    """``values`` over ``image`` as a PNG (a coarser map is upsampled to the image first)."""
    from medlens.core.resize import upsample_to
    from medlens.viz import attribution_figure, figure_png

    if values.shape[1:] != image.shape[1:]:
        values = upsample_to(values[None], image.shape[1:])[0]
    return figure_png(attribution_figure(image, values, title))


# --- generated explanations -------------------------------------------------------------------


def interpnet_body(
    sec: Section,
    *,
    settings: Mapping[str, Any],
    reused: bool,
    scores: Sequence[tuple[str, Any]],
    n_test: int,
    classifier_accuracy: float,
    quick: bool,
    cases: Sequence[Mapping[str, Any]],
) -> None:
    """The InterpNET section: what it is, its BLEU-4 and attribute accuracy, and the shown cases.

    ``scores``: ``(decoding name, ExplanationScores)`` pairs; ``cases``: per shown case its
    ``index``, ``image``, ``values`` (saliency map), ``method``, ``present``, ``predicted``,
    ``said`` (greedy sentence), ``beam`` (beam-search sentence), ``reference`` and ``wrong``
    (the attributes the sentence gets wrong).
    """
    s = settings
    sec.add_text(
        "A CNN classifies whether a lesion is present and an LSTM, conditioned on the CNN's pooled activations "
        "and its predicted class, writes a sentence saying why (Barratt 2017, InterpNET; Hendricks et al. 2016). "
        f"It was {'reused' if reused else 'trained'} on the lesion benchmark: lesions inserted into real chest "
        f"X-rays ({s['size']}x{s['size']}, {s['n_train']} training images), each with a reference report written "
        "from its ground truth in several phrasings. The generated sentences are scored by BLEU-4 against four "
        "reference phrasings per case and by attribute accuracy: each sentence is parsed back into attributes "
        "and compared with the ground truth."
    )
    rows = []
    for name, result in scores:
        a = result.attributes
        rows.append([name, result.bleu4, a["mean"], a["present"], a["vertical"], a["horizontal"], a["size"],
                     a["brightness"], a["shape"], a["exact"], result.says_its_class])
    sec.add_heading(f"Scores on {n_test} held-out cases (classifier accuracy {classifier_accuracy:.3f})")
    sec.add_table(["decoding", "BLEU-4", "attribute accuracy", "present", "upper/lower", "left/right", "size",
                   "brightness", "shape", "all correct", "says its predicted class"], rows)
    if quick:
        sec.add_text("Quick run: a toy model trained for seconds; its sentences are not meaningful.", kind="note")
    images = []
    for case in cases:
        wrong = case["wrong"]
        caption = (
            f"test case #{case['index']}: {'lesion' if case['present'] else 'no lesion'}, predicted "
            f"{'lesion' if case['predicted'] == 1 else 'no lesion'}. Generated: \"{case['said']}\" Beam search: "
            f"\"{case['beam']}\" Reference: \"{case['reference']}\" "
            + (f"Wrong attributes: {', '.join(wrong)}." if wrong else "All attributes correct.")
        )
        images.append((overlay_png(case["image"], case["values"], f"{case['method']} for the predicted class"), caption))
    sec.add_images(images)


# --- concepts -----------------------------------------------------------------------------------


def concepts_body(
    sec: Section,
    concepts: Any,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    *,
    top: torch.Tensor,
    saliency: Sequence[torch.Tensor],
    method: str,
    held_out: Any = None,
    names: Sequence[str] | None = None,
) -> None:
    """Fitted concepts (Figure 10 style): fidelity, class importance, and for each concept its
    top-activating images (``top``: ``(k, n_top)`` rows of ``inputs``, named by ``names``, case
    ids, when given) with the concept's saliency map (``saliency[j]``: the maps of concept ``j``
    on its top images)."""
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
    sec.add_heading(f"Top-activating images of each concept, with the concept's {method} map")
    for j in range(k):
        rows_j = top[j]
        x = inputs[rows_j]
        favoured = int(imp[:, j].argmax())
        sec.add_text(
            f"Concept {j}: most evidence for {_name(class_names, favoured)} "
            f"({float(imp[favoured, j]):.3g}); active on {float(active[j]):.0%} of the images."
        )
        sec.add_images([
            (overlay_png(x[i], saliency[j][i], f"concept {j}"),
             f"{_row_name(names, 'image', int(r))}: label {_name(class_names, int(labels[r]))}, activation "
             f"{float(concepts.activations[r, j]):.3g}")
            for i, r in enumerate(rows_j.tolist())
        ])


# --- prediction basis ---------------------------------------------------------------------------


def basis_cases(sec: Section, basis: Any, queries: torch.Tensor, query_labels, train_inputs: torch.Tensor,
                class_names: Sequence[str], *, query_names: Sequence[str] | None = None,
                train_names: Sequence[str] | None = None) -> None:
    """Render a :class:`PredictionBasis`: each query beside its retrieved training cases (named by
    ``train_names``, case ids, when given; a negative label is shown as unknown)."""
    names = list(query_names or [f"case #{q}" for q in range(len(queries))])
    for q in range(len(queries)):
        pred = int(basis.query_predictions[q])
        label = "" if query_labels is None else f"label {_name(class_names, int(query_labels[q]))}, "
        images = [(
            overlay_png(queries[q], basis.query_saliency[q], "query") if basis.query_saliency is not None
            else overlay_png(queries[q], torch.zeros_like(queries[q]), "query"),
            f"{names[q]}: {label}predicted {_name(class_names, pred)} "
            f"(p={float(basis.query_probabilities[q, pred]):.2f})",
        )]
        for j in range(basis.indices.shape[1]):
            r = int(basis.indices[q, j])
            values = basis.saliency[q, j] if basis.saliency is not None else torch.zeros_like(train_inputs[r])
            images.append((
                overlay_png(train_inputs[r], values, f"neighbour {j + 1}"),
                f"{_row_name(train_names, 'training image', r)}: label {_name(class_names, int(basis.labels[q, j]))}, predicted "
                f"{_name(class_names, int(basis.predictions[q, j]))}, similarity {float(basis.similarity[q, j]):.3f}"
                + _distance_words(basis, q, j)
                + _leak_words(basis, q, j),
            ))
        if bool((basis.labels[q] < 0).all()):
            sec.add_heading(f"{names[q]}: the labels of its nearest training cases are unknown (no labels file)")
        else:
            agree = float(basis.label_agreement()[q])
            sec.add_heading(f"{names[q]}: {agree:.0%} of its nearest training cases carry the predicted label")
        sec.add_images(images)


def _leak_words(basis, q: int, j: int) -> str:
    """:func:`leak_words` of query ``q``'s ``j``-th retrieved case of ``basis``."""
    def flagged(name: str) -> bool:
        found = getattr(basis, name, None)
        return found is not None and bool(found[q, j])

    return leak_words(flagged("same_image"), flagged("same_patient"))


def leak_words(same_image: bool, same_patient: bool | None) -> str:
    """" - the same image as the query ..." or " - the same patient as the query ..." for a
    retrieved case that is the query, or of its patient; "" otherwise (or where unknown: ``None``)."""
    if same_image:
        return " - the same image as the query: it is in the training data"
    if same_patient:
        return " - the same patient as the query (another image): the patient is in the training data"
    return ""


def _row_name(names: Sequence[str] | None, noun: str, row: int) -> str:
    """A reference case in words: ``"case case-0003"`` by its id, else ``"{noun} #3"`` by its (0-based) row."""
    return f"{noun} #{row}" if names is None else f"case {names[row]}"


def _distance_words(basis, q: int, j: int) -> str:
    """", distance 1.4x a typical neighbour's" when the basis holds relative distances."""
    rel = getattr(basis, "relative_distance", None)
    return "" if rel is None else f", distance {float(rel[q, j]):.1f}x a typical training neighbour's"
