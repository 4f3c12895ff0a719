"""Is this input like the data the model was trained on? A cheap, deterministic check.

At training time :func:`familiarity_reference` stores in the model file (``meta["familiarity"]``)
two descriptions of the training inputs, after the recipe:

* ``input``: per case and channel, the mean, standard deviation and the 10th, 50th and 90th
  percentiles of the values and a coarse layout (:func:`input_summary`: what a chest X-ray looks
  like next to a CT slice or an ultrasound, whatever the model makes of it);
* ``features``: the input of the model's last linear layer (its penultimate features), where the
  model has one.

For each, the mean over the training cases and a whitening matrix: the inverse square root of
their covariance (after standardising each dimension), shrunk towards the identity by the
Ledoit-Wolf rule (Ledoit and Wolf, "A well-conditioned estimator for large-dimensional covariance
matrices", J. Multivariate Analysis 2004), so the distance is a Mahalanobis distance (Lee et al.,
"A simple unified framework for detecting out-of-distribution samples", NeurIPS 2018, use it on
penultimate features) that sees joint patterns (a rotated radiograph keeps each cell's grey level
in range but not their arrangement). The threshold of each distance is the 99th percentile over
the *validation* cases, never the cases it is then judged on. :func:`familiarity` scores a new
input the same way and adds what the scan's native facts say (:mod:`medlens.evaluation.scan_facts`).
Three inputs no distance sees, near the mean training image, are unlike the training data by rule:
a blank one, a nearly blank one and noise (``least_std``, ``least_neighbour_correlation``).
A channel constant (a record's lead come off) while every training case varied in it is named
(``least_std``, per channel), and so is a record's lead nearly flat (a tiny amplitude, or mostly
one value): its median absolute deviation under :data:`NEARLY_FLAT_SHARE` of the least of any
training case (``least_mad``, per channel; files written before it name only constant leads).
:func:`familiarity_of_cases` gives the same answers for many cases at once, one pass of the model
per input shape (the cohort check of predict, audit and evaluate).
Files written with version 1 (diagonal form, 4 x 4 layout) are still read.

A trust check on a case that needs only the engine and the model, so it lives below the
application (the training recipes store the reference, the case report asks the question).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from medlens.core.hooks import is_torchscript

__all__ = ["Familiarity", "familiarity", "familiarity_of_cases", "familiarity_reference"]

VERSION = 2
_READS = (1, 2)
_QUANTILES = (0.1, 0.5, 0.9)
_WORDS = {"input": "its grey levels and layout", "features": "what the model extracts from it",
          "joint": "its grey levels, layout and what the model extracts from it, taken together"}
#: The same for a signal (its values and their course over time).
_SIGNAL_WORDS = {"input": "its values and their course", "features": "what the model extracts from it",
                 "joint": "its values, their course and what the model extracts from it, taken together"}

_POOL_FNS = {1: torch.nn.functional.adaptive_avg_pool1d, 2: torch.nn.functional.adaptive_avg_pool2d,
             3: torch.nn.functional.adaptive_avg_pool3d}
#: Layout cells per spatial rank, by reference version.
_CELLS = {1: {1: (16,), 2: (4, 4), 3: (3, 3, 3)}, 2: {1: (28,), 2: (7, 7), 3: (4, 4, 4)}}
#: Cells of the layout of the signed differences along each axis (version 2).
_EDGE_CELLS = {1: (14,), 2: (4, 4), 3: (3, 3, 3)}
#: One case's distances, their table rows, the kinds beyond their threshold and its score (:func:`_distances`).
_Measured = tuple[dict[str, float], list[tuple[str, str]], list[str], "float | None"]


def input_summary(x: torch.Tensor, version: int = VERSION) -> torch.Tensor:
    """``(N, C, *spatial)`` -> ``(N, D)``: per channel the mean, standard deviation, 10/50/90th
    percentiles, a layout (the average over each cell of a 7 x 7 grid; 4 x 4 x 4 for volumes,
    28 segments for signals) and, per axis, the layout of the signed differences along it (4 x 4,
    3 x 3 x 3, 14 segments). Version 1 references: a coarser layout and no differences."""
    x = x.detach().double()
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    q = torch.quantile(flat, torch.tensor(_QUANTILES, dtype=torch.float64), dim=-1).permute(1, 2, 0)  # (N, C, 3)
    rank = x.ndim - 2
    pool = _POOL_FNS[rank]
    parts = [flat.mean(-1, keepdim=True), flat.std(-1, keepdim=True), q,
             pool(x, _CELLS[version][rank]).reshape(x.shape[0], x.shape[1], -1)]
    if version >= 2:  # where values rise and fall, per axis: a beat played backwards, a scan upside down
        cells = _EDGE_CELLS[rank]
        for axis in range(2, x.ndim):
            if x.shape[axis] > 1:
                parts.append(pool(torch.diff(x, dim=axis), cells).reshape(x.shape[0], x.shape[1], -1))
    return torch.cat(parts, dim=-1).reshape(x.shape[0], -1)


def _last_linear(model: nn.Module) -> nn.Module | None:
    if is_torchscript(model):
        return None  # no hooks on TorchScript
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


@contextmanager
def _penultimate(layer: nn.Module, out: list[torch.Tensor]) -> Iterator[None]:
    """Collect the input of ``layer`` (the penultimate features) while the block runs."""
    handle = layer.register_forward_pre_hook(lambda _m, args: out.append(args[0].detach().double().flatten(1)))
    try:
        yield
    finally:
        handle.remove()


def _features(model: nn.Module, x: torch.Tensor, budget: Any = None) -> torch.Tensor | None:
    """The penultimate features of ``x`` (the input of the last linear layer), through the engine
    in chunks of ``budget`` (a :class:`medlens.core.engine.Budget`; default: 256 inputs a chunk);
    ``None`` for a model without a linear layer (or TorchScript)."""
    from medlens.core import engine
    from medlens.core.checks import evaluation_mode

    layer = _last_linear(model)
    if layer is None:
        return None
    got: list[torch.Tensor] = []
    dtype = next(iter(model.parameters())).dtype
    with evaluation_mode(model), _penultimate(layer, got):
        engine.run(model, len(x), x.to(dtype), budget=budget or engine.Budget(batch_size=256),
                   consume=lambda *_: None, finite_outputs=False)
    return torch.cat(got) if got else None


def _distance(f: torch.Tensor, ref: dict[str, Any]) -> torch.Tensor:
    """Root mean square of the whitened differences of ``f`` ``(..., D)`` from the reference."""
    mean = torch.as_tensor(ref["mean"], dtype=torch.float64)
    z = (f - mean) / torch.as_tensor(ref["std"], dtype=torch.float64)
    if "whiten" in ref:
        z = z @ torch.as_tensor(ref["whiten"], dtype=torch.float64).T
    return (z**2).mean(-1).sqrt()


def _shrunk_covariance(z: torch.Tensor) -> torch.Tensor:
    """Ledoit-Wolf covariance of the rows of ``z`` ``(N, D)`` (centred): the sample covariance
    shrunk towards a scaled identity by the data-driven weight of Ledoit and Wolf (2004)."""
    n, p = z.shape
    sample = z.T @ z / n
    mu = torch.trace(sample) / p
    target = mu * torch.eye(p, dtype=z.dtype)
    d2 = ((sample - target) ** 2).sum() / p
    # (1/n^2) sum_k ||z_k z_k^T - S||_F^2 = (sum_k ||z_k||^4 - n ||S||_F^2) / n^2
    b2 = ((z**2).sum(1) ** 2).sum() - n * (sample**2).sum()
    b2 = torch.clamp(b2 / (n * n) / p, min=0.0)
    weight = float(torch.clamp(b2 / d2, max=1.0)) if float(d2) > 0 else 1.0
    return weight * target + (1.0 - weight) * sample


#: A scan whose every channel varies (standard deviation after the recipe) less than this share of
#: the least varying training case's is unlike the training data: a nearly blank scan (a flat grey
#: with faint noise, an exposure with almost no contrast) sits near the mean training image, where
#: no distance sees it. Chosen on PneumoniaMNIST (design grid, ``benchmarks/familiarity_contrast.py``):
#: 1 and 0.75 called 5.7% and 1.6% of the validation cases unlike when the reference held only 20
#: training cases (the least of a few cases is not far below the rest); 0.5 called 0.4% there, none of
#: the full validation and test splits, and flagged every grey image with noise of sd <= 0.01 and every
#: radiograph at a tenth of its contrast. Checked once on BreastMNIST and the synthetic EEG (held out).
LEAST_CONTRAST_SHARE = 0.5

#: A channel (a record's lead) whose median absolute deviation, after the recipe, is under this share
#: of the least of any training case in that channel is nearly flat: a lead come off that keeps the
#: amplifier's faint noise, a lead at a tiny fraction of its amplitude, a lead that holds one value
#: most of the time. The median absolute deviation, not the standard deviation: a lead constant but
#: for a short burst has a typical standard deviation. Designed on MIT-BIH 100 (beat windows, the
#: first half of the beats the reference, the second half judged; ``benchmarks/familiarity_flat_lead.py``):
#: no held-out window fell below 1.33 times the least, and at 0.5 a lead at a tenth of its amplitude was
#: named in 99% of the windows, one constant for 80% of the window (or but for one spike) in 100%,
#: one at 1/5 in 5% (0.25: 5% at a tenth). Accepted once on records it was not designed on: PTB s0010
#: (15 leads, 2 s windows), the 64-channel EEG of MNE's ``test_edf_overlapping_annotations.edf`` and the
#: 19-channel BDF ``multiple_annotation_chans.bdf``: no false alarm in 37, 62 and 123 held-out windows
#: (least ratio 0.83, 0.67, 0.75), a tenth of the amplitude named in 100%, 99%, 97%, mostly constant in 100%.
NEARLY_FLAT_SHARE = 0.5

#: A scan whose neighbouring values agree this many times less than in the roughest training case, in
#: every channel, is unlike the training data: noise (or a texture) has no anatomy, yet once the recipe
#: has shrunk it to the model's grid it sits near the mean training image. Roughness is one minus the
#: correlation of neighbouring values (averaged over the axes; :func:`_neighbour_correlation`).
#: Designed on PneumoniaMNIST alone (a CNN's reference from its training split): the validation and test
#: cases were at most 0.71 times as rough as the roughest training case, Gaussian and uniform noise PNGs
#: of 28 to 55 pixels after the recipe at least 2.3 times (the distances called Gaussian noise at 55 x 55
#: like the training data in 20 of 20 PNGs, median score 0.89); 1.5 sits between the two. Checked once
#: on BreastMNIST, the lesion benchmark and ECG5000 (held out; the report of the branch ``tour10``).
ROUGHNESS_FACTOR = 1.5

#: A dimension varies at least this fraction of the median dimension's spread: one that the
#: recipe holds fixed (the mean and spread of z-scored signals) must not turn a file's rounding
#: into a distance.
_STD_FLOOR = 0.01


def _reference(train: torch.Tensor, val: torch.Tensor) -> dict[str, Any]:
    mean, std = train.mean(0), train.std(0)
    floor = _STD_FLOOR * float(std.median()) if float(std.median()) > 0 else 1e-12
    std = std.clamp(min=max(floor, 1e-12))
    z = (train - mean) / std
    values, vectors = torch.linalg.eigh(_shrunk_covariance(z))
    whiten = vectors @ torch.diag(values.clamp(min=1e-9).rsqrt()) @ vectors.T  # covariance^(-1/2)
    ref = {"mean": mean.tolist(), "std": std.tolist(), "whiten": whiten.tolist()}
    d = _distance(val, ref)
    q = torch.quantile(d, torch.tensor([0.95, 0.99], dtype=torch.float64))
    return {**ref, "q95": float(q[0]), "q99": float(q[1]), "max": float(d.max())}


def familiarity_reference(model: nn.Module, train_inputs: torch.Tensor, val_inputs: torch.Tensor) -> dict | None:
    """What :func:`familiarity` compares a new input with, as plain data for the model file.

    ``train_inputs`` and ``val_inputs`` are ``(N, C, *spatial)`` after the recipe; ``None`` for
    token ids (text models) or fewer than two cases in either split.
    """
    if not train_inputs.is_floating_point() or len(train_inputs) < 2 or len(val_inputs) < 2:
        return None
    x = train_inputs.double()
    ref: dict[str, Any] = {
        "version": VERSION, "split": "validation", "n_train": len(train_inputs), "n_val": len(val_inputs),
        "channel_mean": x.transpose(0, 1).reshape(x.shape[1], -1).mean(1).tolist(),
        "channel_std": x.transpose(0, 1).reshape(x.shape[1], -1).std(1).tolist(),
        "least_std": _case_std(x).amin(0).tolist(),
        "least_mad": _case_mad(x).amin(0).tolist(),
        "least_neighbour_correlation": _least(_neighbour_correlation(x)),
        "scores": {"input": _reference(input_summary(train_inputs), input_summary(val_inputs))},
    }
    train_f, val_f = _features(model, train_inputs), _features(model, val_inputs)
    if train_f is not None and val_f is not None:
        ref["scores"]["features"] = _reference(train_f, val_f)
        # the decision: one distance over both, one threshold (two thresholds would each add false alarms)
        ref["scores"]["joint"] = _reference(torch.cat([input_summary(train_inputs), train_f], 1),
                                            torch.cat([input_summary(val_inputs), val_f], 1))
    return ref


@dataclass(frozen=True)
class Familiarity:
    """How far one input lies from the training data, in words and numbers.

    ``unlike`` is ``None`` when nothing could be compared (no reference, no native facts).
    ``reasons`` says why a scan is unlike the training data (native facts and distances, one
    phrase each); ``warnings`` are ``{code, message}`` entries for the summary (codes
    ``downsampled``, ``modality``, ``unlike_training``); ``score`` the largest distance as a
    multiple of its threshold (above 1: beyond the held-out cases' 99th percentile), ``None``
    without a reference.
    """

    sentence: str
    unlike: bool | None
    rows: list[tuple[str, str]] = field(default_factory=list)
    distances: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The ``familiarity`` entry of ``case.json``."""
        return {"unlike_training_data": self.unlike, "reasons": list(self.reasons), "distances": dict(self.distances),
                "score": self.score, "sentence": self.sentence}


def familiarity(model: nn.Module, x: torch.Tensor, reference: dict | None, *, reading: dict | None = None,
                facts: Any = None, channels: Sequence[str] | None = None) -> Familiarity:
    """Score ``x`` ``(1, C, *spatial)`` (after the recipe) against :func:`familiarity_reference`,
    and the scan as it came (``reading``, :attr:`medlens.data.cases.Case.reading`) against the
    training data's native facts (``facts``, :class:`medlens.data.kinds.InputFacts`).

    A scan is unlike the training data when a native fact differs (size, modality,
    colour: :func:`medlens.evaluation.scan_facts.native_check`) or a distance exceeds the 99th
    percentile of the held-out (validation) cases' distances, the threshold stored at training.
    ``channels`` names the channels (a record's leads) in the reason a flat one gives.
    """
    from medlens.evaluation.note_familiarity import is_note_reference, note_familiarity

    if is_note_reference(reference):  # a text model: the share of the note's words it does not know
        return note_familiarity(x, reference)
    return _judged(x, reference, reading, facts, channels, _distances(model, x, reference)[0])


def familiarity_of_cases(model: nn.Module, xs: Sequence[torch.Tensor], reference: dict | None, *,
                         readings: Sequence[dict | None], facts: Any = None,
                         channels: Sequence[str] | None = None, budget: Any = None) -> list[Familiarity]:
    """:func:`familiarity` of each case of ``xs`` (each ``(1, C, *spatial)``, with its ``reading``),
    the same answers (float rounding aside) for less work: the cases of one shape are stacked and
    their features come from one pass of the model, in chunks of ``budget``
    (:class:`medlens.core.engine.Budget`; default: the engine's memory budget)."""
    from medlens.core.engine import Budget
    from medlens.evaluation.note_familiarity import is_note_reference, note_familiarity

    if len(xs) != len(readings):
        from medlens.errors import InputError

        raise InputError(f"familiarity_of_cases got {len(xs)} case(s) but {len(readings)} reading(s)")
    if is_note_reference(reference):
        return [note_familiarity(x, reference) for x in xs]
    groups: dict[tuple, list[int]] = {}
    for i, x in enumerate(xs):
        if x.ndim < 2 or len(x) != 1:
            from medlens.errors import InputError

            raise InputError(f"familiarity_of_cases takes cases of shape (1, C, ...); case {i} has {tuple(x.shape)}")
        groups.setdefault((tuple(x.shape), x.dtype), []).append(i)
    measured: list[Any] = [None] * len(xs)
    for members in groups.values():
        stacked = torch.cat([xs[i] for i in members])
        for i, m in zip(members, _distances(model, stacked, reference, budget or Budget())):
            measured[i] = m
    return [_judged(x, reference, r, facts, channels, m) for x, r, m in zip(xs, readings, measured)]


def _judged(x: torch.Tensor, reference: dict | None, reading: dict | None, facts: Any,
            channels: Sequence[str] | None, measured: _Measured) -> Familiarity:
    """The answer for one case ``(1, C, *spatial)`` from its distances (:func:`_distances`), its
    native facts and the rules no distance sees (blank, nearly blank, noise, a flat channel)."""
    from medlens.evaluation.scan_facts import native_check

    native = native_check(reading, facts)
    reasons = list(native.reasons)
    warnings = list(native.warnings)
    distances, rows, beyond, score = measured
    signal = x.ndim == 3 or (reading or {}).get("kind") == "signal"
    noun, words = ("record", _SIGNAL_WORDS) if signal else ("scan", _WORDS)
    blank = (_blank(x, reference, signal) or _low_contrast(x, reference, signal) or _rough(x, reference, signal)
             or _flat_channels(x, reference, signal, channels))
    reasons += [blank] if blank else []
    reasons += [f"{words[k]} lie further from the training data than 99% of the held-out cases" for k in beyond]
    compared = bool(distances) or facts is not None and bool(reading) or bool(blank)
    unlike = bool(reasons) if compared else None
    split = (reference or {}).get("split", "validation")
    if unlike:
        sentence = (f"This {noun} is unlike the cases the model was trained on ({'; '.join(reasons)}). The model may "
                    f"never have seen a {noun} like this one: its finding and the highlighted areas may mean nothing here.")
        warnings.append({"code": "unlike_training", "message": sentence})
    elif unlike is None:
        sentence = (f"Whether this {noun} resembles the model's training data: not available (the model file holds no "
                    "statistics or facts of its training data).")
    elif distances:
        sentence = (f"This {noun} resembles the model's training data (it lies no further from it than 99% of the "
                    f"{split} cases" + (", and its native size, modality and colour match" if reading and facts else "")
                    + ").")
    else:
        sentence = f"This {noun}'s native size, modality and colour match the training data's (no distances stored)."
    return Familiarity(sentence, unlike, rows, distances, reasons, warnings, score)


def _case_std(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, *spatial)`` -> ``(N, C)``: each case's standard deviation per channel."""
    return x.detach().double().reshape(x.shape[0], x.shape[1], -1).std(-1)


def _case_mad(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, *spatial)`` -> ``(N, C)``: each case's median absolute deviation per channel."""
    flat = x.detach().double().reshape(x.shape[0], x.shape[1], -1)
    return (flat - flat.median(-1, keepdim=True).values).abs().median(-1).values


def _neighbour_correlation(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, *spatial)`` -> ``(N, C)``: per case and channel, the correlation of each value with its
    neighbour along an axis, averaged over the axes of at least 3 values; NaN where a channel does not
    vary (or no axis is long enough)."""
    x = x.detach().double()
    found = []
    for axis in range(2, x.ndim):
        if x.shape[axis] < 3:
            continue
        a = x.narrow(axis, 0, x.shape[axis] - 1).reshape(x.shape[0], x.shape[1], -1)
        b = x.narrow(axis, 1, x.shape[axis] - 1).reshape(x.shape[0], x.shape[1], -1)
        a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
        norm = (a * a).sum(-1).sqrt() * (b * b).sum(-1).sqrt()
        found.append(torch.where(norm > 0, (a * b).sum(-1) / norm.clamp(min=1e-300), torch.nan))
    if not found:
        return torch.full(x.shape[:2], torch.nan, dtype=torch.float64)
    return torch.stack(found).mean(0)


def _least(values: torch.Tensor) -> list[float | None]:
    """``(N, C)`` -> per channel the least value over the cases, ``None`` where every case is NaN."""
    out = []
    for column in values.T:
        kept = column[~torch.isnan(column)]
        out.append(float(kept.min()) if len(kept) else None)
    return out


def _rough(x: torch.Tensor, reference: dict | None, signal: bool) -> str | None:
    """The reason an input whose neighbouring values agree :data:`ROUGHNESS_FACTOR` times less than
    in the roughest training case, in every channel that varies, is unlike the training data (noise);
    ``None`` otherwise or when the reference records no ``least_neighbour_correlation`` (files
    written before it)."""
    least = (reference or {}).get("least_neighbour_correlation")
    if not least or len(least) != x.shape[1]:
        return None
    own = _neighbour_correlation(x)[0]
    pairs = [(float(o), float(t)) for o, t in zip(own, least) if t is not None and not torch.isnan(o)]
    if not pairs or not all(1.0 - o > ROUGHNESS_FACTOR * (1.0 - t) for o, t in pairs):
        return None
    o, t = max(pairs)
    what = "record" if signal else "scan"
    return (f"it is rough like noise: neighbouring values correlate {o:.2f}, where in every training {what} they "
            f"correlate at least {t:.2f} (after the model's preprocessing)")


def _low_contrast(x: torch.Tensor, reference: dict | None, signal: bool) -> str | None:
    """The reason an input that varies less than :data:`LEAST_CONTRAST_SHARE` of the least varying
    training case, in every channel, is unlike the training data; ``None`` otherwise or when the
    reference records no ``least_std`` (files written before it)."""
    least = (reference or {}).get("least_std")
    if not least or len(least) != x.shape[1] or x[0, 0].numel() < 2:
        return None
    own = _case_std(x)[0]
    least_t = torch.as_tensor(least, dtype=torch.float64)
    if not bool((least_t > 0).all()) or not bool((own < LEAST_CONTRAST_SHARE * least_t).all()):
        return None
    what = "record" if signal else "scan"
    return (f"it is nearly {'flat' if signal else 'blank'}: its values vary {float((own / least_t).max()):.2f} times as much "
            f"as those of the least varying training {what} (standard deviation {float(own.max()):.3g} against "
            f"{float(least_t[int((own / least_t).argmax())]):.3g} after the model's preprocessing)")


def _flat_channels(x: torch.Tensor, reference: dict | None, signal: bool,
                   names: Sequence[str] | None = None) -> str | None:
    """The reason an input with channels (a record's leads) constant, after the recipe, while other
    channels vary, is unlike training data in which every case varied in that channel (its
    ``least_std`` above zero): a lead come off, a dead channel; or, a record's lead, nearly flat: its
    median absolute deviation under :data:`NEARLY_FLAT_SHARE` of ``least_mad``'s. ``None`` otherwise, for one channel
    (a blank input is :func:`_blank`'s) or when the reference records no ``least_std`` (files
    written before it). ``names`` name the channels in the reason ("lead 2 (V5)")."""
    least = (reference or {}).get("least_std")
    if not least or len(least) != x.shape[1] or x.shape[1] < 2 or x[0, 0].numel() < 2:
        return None
    flat = x.detach().reshape(x.shape[1], -1)
    constant = flat.amax(-1) == flat.amin(-1)
    if bool(constant.all()):
        return None
    least_mad = (reference or {}).get("least_mad")
    mad = _case_mad(x)[0]
    word = "lead" if signal else "channel"

    def name(c: int) -> str:
        return f"{word} {c + 1}" + (f" ({names[c]})" if names is not None and c < len(names) and names[c] else "")

    def nearly(c: int) -> bool:
        return (least_mad is not None and len(least_mad) == x.shape[1] and float(least_mad[c]) > 0
                and float(mad[c]) < NEARLY_FLAT_SHARE * float(least_mad[c]))

    which = [c for c in range(x.shape[1]) if bool(constant[c]) and float(least[c]) > 0]
    # nearly flat: a record's leads only (the rule was designed and accepted on records, not on scans' channels)
    almost = [c for c in range(x.shape[1]) if signal and not bool(constant[c]) and nearly(c)]
    what = "record" if signal else "scan"
    parts = []
    if which:
        parts.append(f"{', '.join(name(c) for c in which)} {'is' if len(which) == 1 else 'are'} flat (every value "
                     f"equal after the model's preprocessing), where every training {what} varies in it")
    if almost:
        c = min(almost, key=lambda k: float(mad[k]) / float(least_mad[k]))
        flattest = "" if len(almost) == 1 else f"the flattest, {name(c)}: "
        parts.append(f"{', '.join(name(k) for k in almost)} {'is' if len(almost) == 1 else 'are'} nearly flat "
                     f"({flattest}median absolute deviation {float(mad[c]):.3g} against {float(least_mad[c]):.3g}, the "
                     f"least of any training {what}, after the model's preprocessing; under {NEARLY_FLAT_SHARE:g} of it "
                     "is named)")
    return "; ".join(parts) or None


def _blank(x: torch.Tensor, reference: dict | None, signal: bool) -> str | None:
    """The reason a blank input (one value everywhere, in every channel, after the recipe) is
    unlike training data that vary, or ``None``. No distance can say it: a flat grey image sits
    near the *mean* training image and its summary (mean grey level, cell averages) is typical, so
    its Mahalanobis distance was below that of real held-out radiographs (0.43 to 0.69 times the
    threshold for a CNN on PneumoniaMNIST, at grey levels 0.5 and 0.8)."""
    flat = x.detach().reshape(x.shape[0], x.shape[1], -1)
    if flat.shape[-1] < 2 or not bool((flat.amax(-1) == flat.amin(-1)).all()):
        return None
    varied = (reference or {}).get("channel_std")
    if varied is not None and not any(float(v) > 0 for v in varied):
        return None  # the training inputs were blank too
    value = float(flat.reshape(-1)[0])
    what = "a flat line" if signal else "blank"
    return (f"it is {what}, every value equal to {value:.3g} after the model's preprocessing, "
            f"where the training {'records' if signal else 'scans'} vary")


def _distances(model: nn.Module, x: torch.Tensor, reference: dict | None, budget: Any = None) -> list[_Measured]:
    """Per case of ``x`` ``(N, C, *spatial)``: its distances from the reference, their table rows,
    the kinds beyond their threshold and the largest distance as a multiple of its threshold.
    The features come from one run of the model over all ``N`` (chunks of ``budget``, as :func:`_features`)."""
    n = len(x)
    if not reference or reference.get("version") not in _READS:
        return [({}, [], [], None) for _ in range(n)]
    scores = reference["scores"]
    found: dict[str, torch.Tensor | None] = {"input": input_summary(x, reference["version"])}
    if "features" in scores:
        found["features"] = _features(model, x, budget)
        if "joint" in scores and found["features"] is not None:
            found["joint"] = torch.cat([found["input"], found["features"]], 1)
    deciding = ["joint"] if "joint" in found else list(found)  # version 1: each distance on its own
    measured: list[_Measured] = [({}, [], [], None) for _ in range(n)]
    ratios: list[list[float]] = [[] for _ in range(n)]
    for kind, f in found.items():
        ref = scores[kind]
        if f is None or f.shape[-1] != len(ref["mean"]):
            continue
        d_all = _distance(f, ref).tolist()
        for i, d in enumerate(d_all):
            distances, rows, beyond, _ = measured[i]
            distances[kind] = d
            rows.append((f"distance from the training data: {_WORDS[kind]}",
                         f"{d:.2f} (held-out cases: 99% below {ref['q99']:.2f}, largest {ref['max']:.2f})"))
            if kind in deciding:
                ratios[i].append(d / max(ref["q99"], 1e-12))
                if d > ref["q99"]:
                    beyond.append(kind)
    return [(m[0], m[1], m[2], max(r) if r else None) for m, r in zip(measured, ratios)]
