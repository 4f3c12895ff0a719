"""The imaging systems of section 4 of the reference survey, trained and measured on ground truth.

Three systems, each composed here from medlens's compute packages (which do not import each
other) and measured against known answers:

* :func:`run_haemorrhage`: Lee et al. (2019) on head-CT phantoms (:mod:`medlens.data.head_ct`):
  multi-window 2.5D and 3D classifiers (:mod:`medlens.systems.haemorrhage`), detection AUROC,
  per-subtype accuracy, Grad-CAM pointing game and mass in mask per subtype, the windows'
  contribution, the prediction basis (:mod:`medlens.selfexplain.basis`);
* :func:`run_attention_gates`: Schlemper et al. (2019) on the lesion benchmark
  (:mod:`medlens.data.lesions`): gate maps against Grad-CAM on the same model and on the plain
  CNN, and a faithfulness test in the spirit of Jain and Wallace (2019);
* :func:`run_patch_attention`: Ilse et al. (2018) / Tomita et al. (2019) on large slides
  (:mod:`medlens.data.slides`): slide AUROC, attention share on evidence patches, agreement of
  attention with gradients.

Every runner takes its sizes as arguments (the benchmarks in ``benchmarks/`` run them at full
size, the tests at a tiny one), seeds everything, and returns a dataclass of plain numbers
that :mod:`medlens.report.imaging_systems` turns into a report section.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _nanmean(v: torch.Tensor) -> float:
    v = v.double()
    v = v[~torch.isnan(v)]
    return float(v.mean()) if v.numel() else math.nan


def _weighted_ce(labels: torch.Tensor, n_classes: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy with weights ``1 / sqrt(frequency)`` (rare subtypes count, none does not swamp)."""
    counts = torch.bincount(labels, minlength=n_classes).double().clamp(min=1)
    w = (counts.sum() / counts).sqrt()
    w = (w / w.mean()).float()
    return lambda logits, y: F.cross_entropy(logits, y, weight=w.to(logits.dtype))


# ---- 1. haemorrhage detection on head CT ------------------------------------------------------


@dataclass
class HaemorrhageResult:
    """Acceptance numbers of the haemorrhage system (every value a plain number or dict of them).

    Attributes
    ----------
    sizes : dict
        Cases and slices per split, volume shape.
    slice_model, volume_model : dict
        Per variant (2.5D slices with context; 3D volumes): ``detection_auroc`` (slice level for
        2.5D, case level for both: ``case_detection_auroc``), ``subtype_accuracy`` per subtype
        and ``mean``, ``pointing`` and ``mass_in_mask`` of Grad-CAM per subtype (with the masks'
        share of the image, the ``mass`` a uniform map would get), ``train_seconds``.
    windows : dict
        Per class (``none`` and the subtypes), per window: ``ig_share`` (share of |integrated
        gradients| on the window's channels) and ``ablation_drop`` (fall of the class
        probability when the window is replaced by its training mean).
    basis : dict
        Prediction basis on positive test slices: ``same_subtype`` (share of the k retrieved
        training slices with the query's subtype), ``same_detection``, ``k``; ``chance`` (the
        training share of the query's class, averaged).
    example : dict
        One test case's report material: its subtype, predicted probabilities, the most
        suspicious slice, the retrieved training slices' subtypes and similarities.
    """

    sizes: dict[str, Any] = field(default_factory=dict)
    slice_model: dict[str, Any] = field(default_factory=dict)
    volume_model: dict[str, Any] = field(default_factory=dict)
    windows: dict[str, Any] = field(default_factory=dict)
    basis: dict[str, Any] = field(default_factory=dict)
    example: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _balanced_subtypes(n: int, none_share: float = 0.25) -> list[int]:
    n_none = round(n * none_share)
    return [-1] * n_none + [k % 5 for k in range(n - n_none)]


def _localisation(model: nn.Module, x: torch.Tensor, target: torch.Tensor, masks: torch.Tensor, groups: torch.Tensor,
                  names: tuple[str, ...], layer: str, batch_size: int) -> dict[str, Any]:
    from medlens.attribution.explain import explain
    from medlens.evaluation.localisation import mass_in_mask, pointing_game

    cam = explain(model, x, target=target, method="gradcam", layer=layer, batch_size=batch_size).values
    point, mass = pointing_game(cam, masks), mass_in_mask(cam, masks)
    share = masks.flatten(1).float().mean(1)
    out: dict[str, Any] = {"pointing": {}, "mass_in_mask": {}, "mask_share": {}}
    for k, name in enumerate(names):
        sel = groups == k
        if sel.any():
            out["pointing"][name] = _nanmean(point[sel])
            out["mass_in_mask"][name] = _nanmean(mass[sel])
            out["mask_share"][name] = float(share[sel].mean())
    out["pointing"]["all"], out["mass_in_mask"]["all"] = _nanmean(point), _nanmean(mass)
    out["mask_share"]["all"] = float(share.mean())
    return out


def run_haemorrhage(
    *,
    n_train: int = 64,
    n_val: int = 12,
    n_test: int = 25,
    shape: tuple[int, int, int] = (32, 64, 64),
    epochs: int = 8,
    epochs_3d: int = 20,
    context: int = 1,
    ig_steps: int = 16,
    basis_queries: int = 60,
    seed: int = 0,
    log: Log = _quiet,
) -> HaemorrhageResult:
    """Train and measure the 2.5D and 3D multi-window haemorrhage classifiers on phantoms.

    Training, validation and test phantoms come from different seeds; the subtypes are balanced
    (a quarter of the cases without haemorrhage, the rest cycling through the five subtypes).
    """
    from medlens.attribution.explain import explain
    from medlens.data.head_ct import SUBTYPES, make_head_ct
    from medlens.models.cnn import CNN
    from medlens.models.metrics import auroc
    from medlens.models.training import shift_augment, train_classifier
    from medlens.selfexplain.basis import build_index, prediction_basis
    from medlens.systems import haemorrhage as H

    result = HaemorrhageResult()
    t0 = time.perf_counter()
    sets = {}
    for split, n, s in (("train", n_train, 1), ("val", n_val, 2), ("test", n_test, 3)):
        sets[split] = make_head_ct(n, shape=shape, subtypes=_balanced_subtypes(n), seed=seed * 100 + s)
    log(f"phantoms generated in {time.perf_counter() - t0:.0f} s")
    recipe = H.haemorrhage_recipe()
    sl = {k: H.slice_data(v, recipe, context=context) for k, v in sets.items()}
    result.sizes = {
        "shape": list(shape), "cases": {k: len(v) for k, v in sets.items()},
        "slices": {k: len(v.labels) for k, v in sl.items()},
        "positive_slices": {k: int((v.labels > 0).sum()) for k, v in sl.items()},
        "windows": list(H.WINDOWS), "context": context,
    }
    names = H.CLASS_NAMES

    # -- 2.5D slice model --------------------------------------------------------------------
    tr, va, te = sl["train"], sl["val"], sl["test"]
    torch.manual_seed(seed)
    model = CNN(2, tr.inputs.shape[1], len(names), widths=(16, 32, 64), input_shape=tuple(tr.inputs.shape[1:]))
    t0 = time.perf_counter()
    train_classifier(model, tr.inputs, tr.labels, va.inputs, va.labels, epochs=epochs, seed=seed,
                     augment=shift_augment, loss_fn=_weighted_ce(tr.labels, len(names)), progress=False)
    secs = time.perf_counter() - t0
    log(f"2.5D model trained in {secs:.0f} s")
    with torch.no_grad():
        probs = torch.softmax(model(te.inputs), 1)
    det = H.detection_score(probs)
    pos = te.labels > 0
    sub_pred = H.subtype_prediction(probs)
    acc = {SUBTYPES[k]: float((sub_pred[te.labels == k + 1] == k).float().mean()) for k in range(5) if (te.labels == k + 1).any()}
    acc["mean"] = sum(acc.values()) / len(acc)
    case_probs = H.case_probabilities(probs, te.case, len(sets["test"]))
    case_truth = sets["test"].subtype
    case_sub = H.subtype_prediction(case_probs)
    case_acc = {SUBTYPES[k]: float((case_sub[case_truth == k] == k).float().mean()) for k in range(5) if (case_truth == k).any()}
    case_acc["mean"] = sum(case_acc.values()) / len(case_acc)
    loc = _localisation(model, te.inputs[pos], te.labels[pos], te.masks[pos], te.labels[pos] - 1, SUBTYPES,
                        "features.block3.act", 32)
    result.slice_model = {
        "detection_auroc": auroc(det, pos.long()),
        "case_detection_auroc": auroc(H.detection_score(case_probs), (case_truth >= 0).long()),
        "subtype_accuracy": acc, "case_subtype_accuracy": case_acc,
        "detection_accuracy": float(((det > 0.5) == pos).float().mean()),
        **loc, "train_seconds": secs, "epochs": epochs,
    }
    log(f"2.5D: slice AUROC {result.slice_model['detection_auroc']:.3f}, subtype accuracy {acc['mean']:.3f}")

    # -- windows' contribution ---------------------------------------------------------------
    fill = torch.stack([tr.inputs[:, w::len(H.WINDOWS)].mean() for w in range(len(H.WINDOWS))])
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for k in range(len(names)):
        idx = torch.nonzero(te.labels == k)[:, 0]
        chosen.append(idx[torch.randperm(len(idx), generator=gen)[:40]])
    idx = torch.cat(chosen)
    ig = explain(model, te.inputs[idx], target=te.labels[idx], method="integrated_gradients", n_steps=ig_steps,
                 batch_size=64).values
    shares = H.window_shares(ig, len(H.WINDOWS))
    drops = H.window_ablation(model, te.inputs[idx], te.labels[idx], len(H.WINDOWS), fill, batch_size=64)
    for k, name in enumerate(names):
        sel = te.labels[idx] == k
        if sel.any():
            result.windows[name] = {
                w: {"ig_share": float(shares[sel, j].mean()), "ablation_drop": float(drops[sel, j].mean())}
                for j, w in enumerate(H.WINDOWS)
            }

    # -- prediction basis --------------------------------------------------------------------
    index = build_index(model, tr.inputs, tr.labels, budget=_budget(64))
    q = torch.nonzero(pos)[:, 0]
    q = q[torch.randperm(len(q), generator=gen)[:basis_queries]]
    basis = prediction_basis(model, te.inputs[q], tr.inputs, k=5, index=index, saliency=False, budget=_budget(64))
    same = (basis.labels == te.labels[q][:, None]).double()
    freq = torch.bincount(tr.labels, minlength=len(names)).double() / len(tr.labels)
    result.basis = {
        "k": 5, "queries": len(q), "same_subtype": float(same.mean()),
        "same_detection": float(((basis.labels > 0) == (te.labels[q][:, None] > 0)).double().mean()),
        "chance": float(freq[te.labels[q]].mean()),
        "similarity": float(basis.similarity.mean()),
    }
    c = int(te.case[q[0]])
    result.example = {
        "case": c, "subtype": names[int(case_truth[c]) + 1],
        "probabilities": {n: float(v) for n, v in zip(names, case_probs[c])},
        "slice": int(te.slice[q[0]]), "basis_subtypes": [names[int(v)] for v in basis.labels[0]],
        "basis_similarity": [float(v) for v in basis.similarity[0]],
    }

    # -- 3D volume model ---------------------------------------------------------------------
    vol = {k: H.volume_data(v, recipe) for k, v in sets.items()}
    torch.manual_seed(seed)
    model3 = CNN(3, len(H.WINDOWS), len(names), widths=(8, 16, 32), input_shape=tuple(vol["train"][0].shape[1:]))
    t0 = time.perf_counter()
    train_classifier(model3, *vol["train"], *vol["val"], epochs=epochs_3d, batch_size=8, seed=seed,
                     augment=shift_augment, progress=False)
    secs3 = time.perf_counter() - t0
    log(f"3D model trained in {secs3:.0f} s")
    xv, yv = vol["test"]
    with torch.no_grad():
        p3 = torch.softmax(model3(xv), 1)
    sub3 = H.subtype_prediction(p3)
    acc3 = {SUBTYPES[k]: float((sub3[yv == k + 1] == k).float().mean()) for k in range(5) if (yv == k + 1).any()}
    acc3["mean"] = sum(acc3.values()) / len(acc3)
    posv = yv > 0
    loc3 = _localisation(model3, xv[posv], yv[posv], sets["test"].haemorrhage[posv] > 0, yv[posv] - 1, SUBTYPES,
                         "features.block3.act", 4)
    result.volume_model = {
        "case_detection_auroc": auroc(H.detection_score(p3), posv.long()),
        "subtype_accuracy": acc3, **loc3, "train_seconds": secs3, "epochs": epochs_3d,
    }
    log(f"3D: case AUROC {result.volume_model['case_detection_auroc']:.3f}, subtype accuracy {acc3['mean']:.3f}")
    return result


def _budget(batch_size: int):
    from medlens.core.engine import Budget

    return Budget(batch_size=batch_size)
