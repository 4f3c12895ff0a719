"""The feature-visualisation report section: the rendered inputs of first- and last-block channels
and of each class, with their yardsticks. Takes the finished pictures
(:func:`medlens.app.featurevis_section.feature_pictures`); computes nothing.
"""

from __future__ import annotations

from typing import Any, Mapping

from medlens.report.html import Section

__all__ = ["featurevis_body"]


def featurevis_body(sec: Section, r: Mapping[str, Any]) -> None:
    """Write the feature-visualisation pictures ``r`` into ``sec`` with what they show and how to read them."""
    from medlens.viz import figure_png
    from medlens.viz.featurevis import feature_grid, reference_rows

    first, last, first_units, last_units = r["first"], r["last"], r["first_units"], r["last_units"]
    names, n_classes, steps, seconds = r["names"], r["n_classes"], r["steps"], r["seconds"]
    images, final, data, probs, grey_probs = r["images"], r["final"], r["data"], r["probs"], r["grey_probs"]
    sec.add_text(
        "Activation maximisation (Erhan et al. 2009; Olah et al., Distill 2017): each picture is the "
        "input the network itself would draw to excite one unit as much as possible, found by gradient "
        "ascent from grey noise with a Fourier (1/f) parameterisation and small random shifts, scalings "
        "and rotations at every step so that only robust patterns survive. They show what a channel "
        "responds to, not where it looked in a given scan; treat them as hypotheses to check against "
        "real cases (the attribution sections), not as anatomy."
    )
    sec.add_text(
        f"{r['n_objectives']} objectives optimised together in one batch of {r['n_objectives']} inputs, "
        f"{steps} steps, {seconds:.1f} s ({steps / seconds:.1f} steps/s)."
    )
    i0, i1, i2 = len(first_units), len(first_units) + len(last_units), len(first_units) + len(last_units) + n_classes

    def caption(j: int, c: int) -> str:
        if float(final[j]) > 1e-6:
            return f"ch {c}"
        return f"ch {c} (dead)" if float(data[j]) <= 1e-6 else f"ch {c} (not reached)"

    alive = [j for j in range(i1) if float(data[j]) > 1e-6]
    beaten = sum(float(final[j]) > float(data[j]) for j in alive)
    sec.add_text(
        f"Yardstick: in {beaten} of the {len(alive)} channels that are active on real scans, the rendered "
        f"input excites the channel more than any of {r['n_reference']} test images does."
    )
    sec.add_heading(f"First block ({first}): channels {first_units[0]}-{first_units[-1]}")
    sec.add_text("Early channels detect intensity levels, edges and fine textures at the scale of a few pixels.")
    labels = [caption(i, c) for i, c in enumerate(first_units)]
    sec.add_image(figure_png(feature_grid(images[:i0], labels, f"{first}: channel objective")),
                  "Dead channels (inactive on every test image too) stay grey.")
    sec.add_heading(f"Last block ({last}): the {len(last_units)} channels that move the decision most")
    labels = [
        caption(i0 + j, c) + (f"\n-> {names[k]}" if k >= 0 else "")
        for j, (c, k) in enumerate(last_units)
    ]
    sec.add_image(
        figure_png(feature_grid(images[i0:i1], labels, f"{last}: channel objective")),
        "Chosen by the spread of their classifier weights across classes; the arrow names the class "
        "whose score each channel raises.",
    )
    refs = r.get("references")
    if refs:
        captions = [[f"image {i}\nR = {v:.3g}" for i, v in zip(idx, rel)]
                    for idx, rel in zip(refs["indices"], refs["relevance"])]
        labels = [f"ch {c}" for c, _ in last_units]
        sec.add_text(
            "Relevance maximisation (concept relevance propagation, Achtibat et al. 2023): beside each rendered "
            "input, the test images whose decision the channel carried the most LRP relevance for "
            "(epsilon-plus rules, each image's predicted class), with where in the image that relevance came "
            "from (red: for the decision, blue: against). The rendered input shows what excites the channel; "
            "these show where it mattered in real cases."
        )
        sec.add_image(figure_png(reference_rows(images[i0:i1], labels, refs["cases"], refs["maps"], captions,
                                                f"{last}: rendered input, then its reference images")),
                      "The channel's relevance R is its share of the explained score.")
    sec.add_table(
        ["channel", "raises", "rendered input", "best of the test images"],
        [[c, names[k] if k >= 0 else "", float(final[i0 + j]), float(data[i0 + j])]
         for j, (c, k) in enumerate(last_units)],
    )
    sec.add_heading("What maximises each class")
    class_labels = [f"p({names[k]})\n= {float(probs[i1 + k, k]):.3f}" for k in range(n_classes)]
    class_labels += [f"logit({names[k]})\n= {float(final[i2 + k]):.1f}" for k in range(n_classes)]
    sec.add_image(
        figure_png(feature_grid(images[i1:], class_labels, "class probability, then class logit")),
        "Probability objectives saturate once the model is certain, so their inputs may stay close to "
        "grey: a model that is certain about a nearly blank image is a warning sign. Logit objectives "
        "keep pushing and show the class evidence the model responds to.",
    )
    sec.add_table(
        ["class", "probability reached (probability objective)", "logit reached (logit objective)", "its probability"],
        [[names[k], float(probs[i1 + k, k]), float(final[i2 + k]), float(probs[i2 + k, k])] for k in range(n_classes)],
    )
    top = int(grey_probs.argmax())
    sec.add_text(
        f"For reference, a uniform mid-grey image, with no anatomy at all, is classified {names[top]} with "
        f"p = {float(grey_probs[top]):.3f}."
        + (" The model is confident on an input that carries no evidence: check what it relies on."
           if float(grey_probs[top]) >= 0.9 else "")
    )
