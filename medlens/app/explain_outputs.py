"""The files ``explain`` writes for one case: the map on the input's grid, its pictures, the
NIfTI/DICOM objects of such inputs, and ``summary.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medlens.core.files import atomic_write, write_json
from medlens.data.formats.annotation_text import shown_label
from medlens.errors import MedlensError


def write_case_outputs(out: Path, case: Any, attribution: Any, values: Any, probs: Any, class_names: list[str],
                       method: str, target_note: str, *, dicom_out: bool = False, familiar: Any = None,
                       show_identifiers: bool = False, multilabel: bool = False) -> list[str]:
    """Write a case's files into ``out``; returns their names (``summary.json`` included).

    ``familiar`` (:class:`medlens.evaluation.familiarity.Familiarity`) gives ``summary.json`` its
    ``warnings`` (``{code, message}``: ``downsampled``, ``modality``, ``unlike_training``), listed
    before the prediction, and its ``familiarity`` entry."""
    from medlens.app.findings import findings_fields
    from medlens.data.recipe import invert
    from medlens.viz import attribution_figure, figure_png, signal_attribution_figure

    target = int(attribution.target[0])
    title = f"{method}: {target_note or 'target ' + (class_names[target] if 0 <= target < len(class_names) else f'class {target}')}"
    written: list[str] = []
    output_notes: list[str] = []
    record, prepared = case.record, case.prepared
    if prepared is None:  # a data-set case: already on the model's grid
        back = values.cpu()
        _save_npy(out / "attribution.npy", back.numpy())
        atomic_write(out / "overlay.png", figure_png(attribution_figure(case.x[0], values, title)))
        written += ["attribution.npy", "overlay.png"]
    else:
        back = invert(prepared.geometry, values)
        _save_npy(out / "attribution.npy", back.numpy())
        written.append("attribution.npy")
        if prepared.geometry.kind == "signal":
            fig = signal_attribution_figure(
                record.values, back, record.fs, record.channels,
                [(a.sample, shown_label(a.symbol, show_identifiers)) for a in record.annotations], units=record.units,
                span=prepared.geometry.span, seen=prepared.geometry.channel_index, title=title)
            atomic_write(out / "signal.png", figure_png(fig, dpi=110))
            written.append("signal.png")
        else:
            windows = ((case.recipe_summary or {}).get("recipe") or {}).get("windows") or ()
            files, output_notes = image_outputs(out, record, back, title, dicom_out, windows,
                                                show_identifiers=show_identifiers)
            written += files
    # a segmentation or regression target is one score (a sum of outputs), not a class prediction
    k = None if target_note else int(probs.argmax())
    write_json(out / "summary.json", {
        "warnings": list(familiar.warnings) if familiar is not None else [],
        "input": case.source,
        "input_note": case.note,
        "label": case.label,
        "prediction": k,
        "predicted_class": class_names[k] if k is not None and k < len(class_names) else None,
        **({"outputs": {"score": float(probs.sum())}} if target_note else
           {"probabilities": {class_names[j] if j < len(class_names) else str(j): float(p) for j, p in enumerate(probs)}}),
        **(findings_fields(probs, class_names) if multilabel and not target_note else {}),
        "method": method,
        "target": target,
        "target_note": target_note or None,
        "preprocessing": case.recipe_summary or None,
        "reading": case.reading or None,
        "familiarity": familiar.as_dict() if familiar is not None else None,
        "attribution_shape": list(back.shape),
        "files": sorted(written + ["summary.json"]),
        "output_notes": output_notes,
        "params": brief(attribution.params),
        "seconds": attribution.seconds,
        "extras": brief(attribution.extras),
    })
    return sorted(written + ["summary.json"])


def brief(value: Any) -> Any:
    """``value`` with large tensors and arrays named by their shape (a summary, not a dump)."""
    if isinstance(value, dict):
        return {k: brief(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [brief(v) for v in value]
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "tolist") and int(np.prod(shape)) > 64:
        return f"tensor{tuple(shape)}"
    return value


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write(path, buf.getvalue())


def _strongest_slice(back: Any) -> int:
    """The slice of a volume's map ``(D, H, W)`` holding its strongest value (the one slice a 2-D
    model saw of it, by ``--slice``); the middle one when the map is zero."""
    strength = back.abs().flatten(1).amax(1)
    return int(strength.argmax()) if bool(strength.any()) else back.shape[0] // 2


def image_outputs(out: Path, record: Any, back: Any, title: str, dicom_out: bool, windows: Any = (), *,
                  show_identifiers: bool = False) -> tuple[list[str], list[str]]:
    """Overlay on the full-resolution original (on a blank background when the header says its pixels
    identify the patient, unless ``show_identifiers``: :mod:`medlens.app.pixel_privacy`); NIfTI and
    DICOM objects on the source grid, the DICOM objects (filed in the source's study, with its
    patient's attributes) only with ``dicom_out``. A CT is drawn in the recipe's first window
    (``windows``), else in the soft-tissue window (:func:`~medlens.data.hounsfield.display_range`),
    said in the overlay's title.

    Returns the files written and notes on the DICOM objects that could not be built from this
    source (an odd header loses those objects, never the map and its overlay)."""
    from medlens.app.pixel_privacy import pixel_privacy
    from medlens.data.hounsfield import display_range
    from medlens.viz import attribution_figure, figure_png, overlay_image
    from medlens.viz.figures import overlay_png

    written: list[str] = []
    notes: list[str] = []
    spatial = record.spatial_shape
    # the picture under the map: grey or RGB as read; the first volume of a multi-channel stack
    shown = record.array if record.channels == 1 or (len(spatial) == 2 and record.channels == 3) else record.array[0]
    # the DICOM objects below carry the patient's identity anyway (--dicom-out): they keep the pixels
    drawn = shown.new_zeros(shown.shape) if pixel_privacy(
        record.metadata or {}, show_identifiers=show_identifiers).withhold else shown
    shown_range = display_range(shown, windows) if record.channels == 1 else None
    grey = shown_range[0] if shown_range else None
    if len(spatial) == 2:
        atomic_write(out / "overlay.png", overlay_png(drawn, back, grey=grey))
    else:  # a volume: slices of the original with the map, at the original's resolution
        title = f"{title} [{shown_range[1]}]" if shown_range else title
        figure = attribution_figure(drawn[None], back[None], title, spacing=record.spacing, planes=record.plane_names,
                                   affine=record.affine, grey=grey)
        atomic_write(out / "overlay.png", figure_png(figure, dpi=150))
    written.append("overlay.png")
    if record.format in ("NIfTI", "DICOM") and record.affine is not None:
        from medlens.data.formats.nifti import write_nifti

        write_nifti(back.numpy(), record, out / "attribution.nii.gz")
        written.append("attribution.nii.gz")
    if record.format == "DICOM" and not dicom_out:
        notes.append("no DICOM objects: they carry the patient's identifiers (--dicom-out writes them)")
    if record.format == "DICOM" and dicom_out:
        from medlens.data.formats.dicom_out import write_parametric_map, write_secondary_capture

        if record.affine is not None:
            try:
                write_parametric_map(back.numpy(), record, out / "attribution_pm.dcm")
                written.append("attribution_pm.dcm")
            except MedlensError:
                pass  # projection images and odd series: the Secondary Capture below still shows the map
        k = _strongest_slice(back) if len(spatial) == 3 else None
        picture, heat = (shown, back) if k is None else (shown[k], back[k])
        try:
            write_secondary_capture(overlay_image(picture, heat, grey=grey), record, out / "overlay_sc.dcm")
            written.append("overlay_sc.dcm")
        except MedlensError as err:
            notes.append(f"no DICOM Secondary Capture: {str(err).splitlines()[0]}")
    return written, notes
