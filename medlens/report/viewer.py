"""The shared viewer component: a scan with one or more explanation maps overlaid.

:func:`viewer_html` takes a base array (a 2D image, a 3D volume or a 1D signal), named maps of the
same shape and options, and returns one HTML fragment; :func:`viewer_assets` returns the style and
script every page that holds viewers includes once (:class:`medlens.report.html.Report` does it
for its sections). The case report, the demo report and the audit report all use it.

What the reader gets: the scan at its native resolution with the map overlaid (opacity slider,
a switch between methods), for a volume three orthogonal planes with slice sliders (the slices
through the map's maximum preselected), for a signal a zoomable strip with its annotations.
Every control is a native form control (keyboard-usable), every canvas has ``role="img"`` and
an ``aria-label`` kept up to date, the colour maps are those of every other picture
(:mod:`medlens.viz.colours`: cividis for unsigned importance; purple-orange ``PuOr_r`` for signed
evidence, both safe for colour-blind readers), and the print stylesheet keeps
the pictures and drops the controls.

Storage: base and maps are quantised to bytes (maps: 128 = no evidence for signed maps),
delta-coded along the last axis (as PNG's "Sub" filter) and deflated; the browser inflates them
with ``DecompressionStream``. A 256x256x128 CT with three methods takes a few megabytes
(``tests/report/test_viewer.py`` measures it). Signals are stored as float32.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import zlib
from dataclasses import dataclass
from importlib import resources
from typing import Sequence

import numpy as np

from medlens.core.numbering import slice_words
from medlens.data.formats.orientation import PLANE_NAMES, panels
from medlens.errors import InputError
from medlens.viz.colours import SIGNED_CMAP, UNSIGNED_CMAP, lut, map_limits

__all__ = ["MapLayer", "Annotation", "viewer_assets", "viewer_html", "viewer_script_hash"]


@dataclass(frozen=True)
class MapLayer:
    """One explanation map to overlay.

    Attributes
    ----------
    name : str
        Shown on the method switch (escaped).
    values : np.ndarray
        Same shape as the base: ``(H, W)``, ``(D, H, W)`` or ``(T,)`` for a signal.
    signed : bool or None
        Evidence for (positive) and against (negative) the finding; ``None``: signed when the
        map has negative values (:func:`medlens.viz.colours.map_limits`).
    """

    name: str
    values: np.ndarray
    signed: bool | None = None


@dataclass(frozen=True)
class Annotation:
    """A labelled position on a signal (a beat, an event), in samples."""

    at: float
    label: str


def _asset(name: str) -> str:
    return resources.files("medlens.report").joinpath("static", name).read_text(encoding="utf-8")


def viewer_script_hash() -> str:
    """The CSP source (``'sha256-...'``) that allows the viewer's inline script and nothing else."""
    digest = hashlib.sha256(_asset("viewer.js").encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def viewer_assets() -> str:
    """``<style>`` and ``<script>`` for pages holding viewers; include once per page, in the head
    or before the first viewer (the script starts the viewers when the document is parsed)."""
    return f"<style>{_asset('viewer.css')}</style><script>{_asset('viewer.js')}</script>"


def _pack_u8(a: np.ndarray) -> str:
    """Bytes, delta-coded along the last axis (mod 256), deflated, base64."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    delta = a.copy()
    delta[..., 1:] = np.diff(a, axis=-1)  # uint8 arithmetic wraps: the browser undoes it mod 256
    return base64.b64encode(zlib.compress(delta.tobytes(), 6)).decode("ascii")


def _pack_f32(a: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(a, dtype="<f4").tobytes(), 6)).decode("ascii")


def quantise_base(base: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """Grey levels 0..255: ``window=(low, high)`` clipped, else the 0.5-99.5 percentile range."""
    a = np.asarray(base, dtype=np.float64)
    lo, hi = window if window is not None else (float(np.percentile(a, 0.5)), float(np.percentile(a, 99.5)))
    if not hi > lo:
        lo, hi = float(a.min()), float(a.max())
    scaled = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return np.clip(np.round(scaled * 255), 0, 255).astype(np.uint8)


def quantise_map(values: np.ndarray, signed: bool) -> np.ndarray:
    """Map to bytes: signed maps ``127.5 * (1 + v / max|v|)`` (128 = no evidence), unsigned
    maps min-max to 0..255."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64))
    if signed:
        m = float(np.abs(v).max()) or 1.0
        q = 127.5 * (1 + v / m)
    else:
        lo, hi = float(v.min()), float(v.max())
        q = 255 * (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    return np.clip(np.round(q), 0, 255).astype(np.uint8)


def _peak(values: np.ndarray, signed: bool) -> list[int]:
    score = np.abs(values) if signed else values
    return [int(i) for i in np.unravel_index(int(np.nanargmax(score)), values.shape)]


def _json_for_html(payload: dict) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` survive."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _css_size(rows: int, cols: int, row_mm: float, col_mm: float, target: int) -> tuple[int, int]:
    h, w = rows * row_mm, cols * col_mm
    scale = target / max(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))


def viewer_html(
    base: np.ndarray,
    maps: Sequence[MapLayer] | dict[str, np.ndarray],
    *,
    title: str = "",
    alt: str = "scan",
    kind: str | None = None,
    opacity: float = 0.5,
    initial: int = 0,
    spacing: Sequence[float] | None = None,
    window: tuple[float, float] | None = None,
    annotations: Sequence[Annotation] = (),
    rate: float | None = None,
    start: float = 0.0,
    size: int | None = None,
    note: str = "",
    viewer_id: str | None = None,
    plane_names: Sequence[str] | None = None,
    affine: Sequence[Sequence[float]] | None = None,
) -> str:
    """An HTML fragment: ``base`` with the ``maps`` overlaid, and the controls to explore them.

    Parameters
    ----------
    base : np.ndarray
        ``(H, W)`` image, ``(D, H, W)`` volume, ``(T,)`` or ``(L, T)`` signal, at its native
        resolution.
    maps : sequence of MapLayer or dict of str to np.ndarray
        Named maps of the base's shape (a signal's maps: ``(T,)``); the first is shown first
        unless ``initial`` says otherwise.
    title, alt : str
        Heading of the viewer; what the scan is, for the canvases' alt text (both escaped).
    kind : {"image", "volume", "signal"}, optional
        Default: from ``base.ndim`` (1: signal, 2: image, 3: volume).
    opacity : float
        Initial map opacity in [0, 1].
    spacing : sequence of float, optional
        Pixel / voxel size per axis (mm) so that planes keep their true proportions.
    window : (float, float), optional
        Grey-level window of the base (e.g. a CT window in HU); default 0.5-99.5 percentiles.
    annotations : sequence of Annotation
        Labelled positions on a signal.
    rate : float, optional
        A signal's sampling rate (Hz): the time axis in seconds instead of samples.
    start : float
        With ``rate``: the time (s) of the signal's first sample, so that a window cut from a
        record is drawn at its time in the record.
    size : int, optional
        Longest displayed side in CSS pixels (default 420 for images, 300 per volume plane).
    note : str
        A line under the viewer (escaped).
    viewer_id : str, optional
        Element id (letters, digits, ``-``); default: derived from the content, so two
        different viewers on one page never share their controls.
    plane_names : sequence of str, optional
        A volume's planes, the one a slice through each axis shows
        (:attr:`~medlens.data.formats.common.Volume.plane_names`; default :data:`PLANE_NAMES`,
        a DICOM series' order). A NIfTI image's first axis usually runs left-right: its slices
        are sagittal.
    affine : 4 x 4 sequence of float, optional
        A volume's map from stored indices to RAS millimetres
        (:attr:`~medlens.data.formats.common.Volume.affine`): its planes are then named from it
        and drawn as a radiologist reads them (axial, coronal, sagittal; anterior or superior at
        the top, the patient's left on the right; :mod:`medlens.data.formats.orientation`). The
        slice sliders and labels keep the stored indices.

    Returns
    -------
    str
        The fragment (a ``div.ml-viewer``); the page must include :func:`viewer_assets`.

    Raises
    ------
    InputError
        No maps, a map whose shape differs from the base, a base of unsupported rank, or
        non-finite values.
    """
    base = np.asarray(base)
    layers = [MapLayer(k, v) for k, v in maps.items()] if isinstance(maps, dict) else list(maps)
    if not layers:
        raise InputError("the viewer needs at least one map")
    kind = kind or {1: "signal", 2: "image", 3: "volume"}.get(base.ndim)
    if kind not in ("image", "volume", "signal"):
        raise InputError(f"the viewer shows 1D signals, 2D images and 3D volumes, got an array of shape {base.shape}")
    if kind == "signal" and base.ndim == 1:
        base = base[None]
    expected = base.shape[-1:] if kind == "signal" else base.shape
    if (kind == "image" and base.ndim != 2) or (kind == "volume" and base.ndim != 3) or (kind == "signal" and base.ndim != 2):
        raise InputError(f"a {kind} viewer cannot show an array of shape {base.shape}")
    if not np.isfinite(base).all():
        raise InputError("the base image holds NaN or infinite values")
    if not 0 <= initial < len(layers):
        raise InputError(f"initial map {initial} out of range (0..{len(layers) - 1})")
    map_specs = []
    for layer in layers:
        values = np.asarray(layer.values, dtype=np.float64)
        if values.shape != tuple(expected):
            raise InputError(f"map {layer.name!r} has shape {values.shape}, the {kind} has {tuple(expected)}")
        signed = layer.signed if layer.signed is not None else map_limits(values)[3]
        map_specs.append({
            "name": str(layer.name), "signed": signed, "peak": _peak(values, signed),
            "dtype": "u8", "data": _pack_u8(quantise_map(values, signed)),
        })
    esc = html.escape
    spacing = list(spacing) if spacing is not None else [1.0] * (1 if kind == "signal" else base.ndim)
    layout = panels(affine, plane_names) if kind == "volume" else ()
    names = [str(n) for n in plane_names] if plane_names is not None else list(PLANE_NAMES)
    for panel in layout:
        names[panel.axis] = panel.name
    payload = {
        "kind": kind, "shape": list(base.shape), "alt": str(alt), "opacity": float(opacity), "initial": int(initial),
        "maps": map_specs, "luts": {"signed": lut(SIGNED_CMAP), "unsigned": lut(UNSIGNED_CMAP)},
        "plane_names": names,
    }
    panes = []
    controls = []
    if kind == "signal":
        payload["base"] = {"dtype": "f32", "data": _pack_f32(base)}
        payload["annotations"] = [{"at": float(a.at), "label": str(a.label)} for a in annotations]
        payload["rate"] = float(rate) if rate else 0
        payload["start"] = float(start) if rate else 0.0
        panes.append(
            f'<figure class="ml-signal"><canvas class="ml-pane" data-plane="0" width="1000" height="220" role="img" '
            f'aria-label="{esc(alt)}"></canvas><figcaption><output class="ml-window-value"></output></figcaption></figure>'
        )
        controls.append(
            '<label>Zoom <input type="range" class="ml-zoom" min="0" max="50" value="0" '
            'aria-label="Zoom into the signal"></label>'
            '<label>Position <input type="range" class="ml-position" min="0" max="1000" value="0" '
            'aria-label="Move along the signal"></label>'
        )
    else:
        payload["base"] = {"dtype": "u8", "data": _pack_u8(quantise_base(base, window))}
        first_peak = map_specs[initial]["peak"]
        if kind == "image":
            target = size or 420
            w, h = _css_size(base.shape[0], base.shape[1], spacing[0], spacing[1], target)
            panes.append(
                f'<figure><canvas class="ml-pane" data-plane="0" width="{base.shape[1]}" height="{base.shape[0]}" '
                f'style="width:{w}px;height:{h}px" role="img" aria-label="{esc(alt)}"></canvas>'
                f'<figcaption><output class="ml-slice-value" data-plane="0"></output></figcaption></figure>'
            )
        else:
            target = size or 300
            payload["slices"] = first_peak
            payload["panels"] = [panel.as_dict() for panel in layout]
            for panel in layout:
                plane, rows, cols = panel.axis, base.shape[panel.rows], base.shape[panel.cols]
                w, h = _css_size(rows, cols, spacing[panel.rows], spacing[panel.cols], target)
                panes.append(
                    f'<figure><canvas class="ml-pane" data-plane="{plane}" width="{cols}" height="{rows}" '
                    f'style="width:{w}px;height:{h}px" role="img" aria-label="{esc(alt)}, {esc(names[plane])} plane">'
                    f'</canvas><figcaption><output class="ml-slice-value" data-plane="{plane}">'
                    # the script keeps it current; the same words as a figure's title (1-based: core.numbering)
                    f'{esc(slice_words(first_peak[plane], base.shape[plane], names[plane]))}</output></figcaption></figure>'
                )
                controls.append(
                    f'<label>{esc(names[plane].capitalize())} slice <input type="range" class="ml-slice" '
                    f'data-plane="{plane}" min="0" max="{base.shape[plane] - 1}" value="{first_peak[plane]}" '
                    f'aria-label="{esc(names[plane])} slice"></label>'
                )
    data = _json_for_html(payload)
    vid = viewer_id or "mlv-" + hashlib.sha1(f"{title}\0{data}".encode()).hexdigest()[:12]
    radios = "".join(
        f'<label><input type="radio" class="ml-method" name="{esc(vid)}-method" value="{i}"'
        f'{" checked" if i == initial else ""}> {esc(str(layer.name))}</label> '
        for i, layer in enumerate(layers)
    )
    method_box = f'<fieldset><legend>Explanation shown</legend>{radios}</fieldset>'
    opacity_box = (
        f'<label>Map opacity <input type="range" class="ml-opacity" min="0" max="100" value="{round(opacity * 100)}" '
        f'aria-label="Map opacity"></label> <output class="ml-opacity-value">{round(opacity * 100)}%</output>'
    )
    peak_button = ('<button type="button" class="ml-peak">Go to the map\'s strongest point</button>'
                   if kind != "image" else "")
    legend = (
        '<span class="ml-legend"><span class="ml-legend-low"></span>'
        '<canvas class="ml-legend-bar" width="256" height="1" role="img" aria-label="colour scale of the map"></canvas>'
        '<span class="ml-legend-high"></span></span>'
    )
    return (
        f'<div class="ml-viewer" id="{esc(vid)}" data-kind="{kind}" data-method="{initial}">'
        + (f'<p class="ml-title">{esc(title)}</p>' if title else "")
        + f'<div class="ml-panes">{"".join(panes)}</div>'
        + f'<div class="ml-controls">{method_box}{opacity_box}{"".join(controls)}{peak_button}{legend}</div>'
        + (f'<p class="ml-note">{esc(note)}</p>' if note else "")
        + '<p class="ml-error" role="alert"></p>'
        + f'<script type="application/json" class="ml-data">{data}</script></div>'
    )
