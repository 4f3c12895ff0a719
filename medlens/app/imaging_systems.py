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

from medlens.core.random import seeded

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _picture(image: torch.Tensor, heat: torch.Tensor, scale: int = 3) -> bytes:
    """PNG of ``heat`` ``(H, W)`` over ``image`` ``(H, W)``, each pixel shown ``scale`` x ``scale``."""
    import numpy as np

    from medlens.viz.figures import image_png, overlay_image

    rgb = overlay_image(image, heat)
    return image_png(np.kron(rgb, np.ones((scale, scale, 1), dtype=np.uint8)))


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

    images: list[tuple[bytes, str]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The numbers as plain data (JSON-ready); the pictures left out."""
        return {k: v for k, v in asdict(self).items() if k != "images"}


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
    epochs: int = 12,
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
    with seeded(seed):  # weight initialisation draws from torch's global generator
        model = CNN(2, tr.inputs.shape[1], len(names), widths=(16, 32, 64), input_shape=tuple(tr.inputs.shape[1:]))
        t0 = time.perf_counter()
        # small batches: a few thousand slices give few steps per epoch at the default 64
        train_classifier(model, tr.inputs, tr.labels, va.inputs, va.labels, epochs=epochs, seed=seed, batch_size=16,
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
    brain = context * len(H.WINDOWS)  # the brain window of the slice itself
    for k, name in enumerate(SUBTYPES):
        idx = torch.nonzero(te.labels == k + 1)[:, 0]
        if len(idx):
            i = int(idx[len(idx) // 2])
            cam = explain(model, te.inputs[i : i + 1], target=k + 1, method="gradcam", layer="features.block3.act").values
            result.images.append((_picture(te.inputs[i, brain], cam[0, 0]),
                                  f"{name}: Grad-CAM over the brain window (case {int(te.case[i])}, slice {int(te.slice[i])})"))
            result.images.append((_picture(te.inputs[i, brain], te.masks[i].float()), f"{name}: the blood (ground truth)"))
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
    index = build_index(model, tr.inputs, tr.labels, batch_size=64)
    q = torch.nonzero(pos)[:, 0]
    q = q[torch.randperm(len(q), generator=gen)[:basis_queries]]
    basis = prediction_basis(model, te.inputs[q], tr.inputs, k=5, index=index, saliency=False, batch_size=64)
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
    with seeded(seed):  # weight initialisation draws from torch's global generator
        model3 = CNN(3, len(H.WINDOWS), len(names), widths=(8, 16, 32), input_shape=tuple(vol["train"][0].shape[1:]))
        t0 = time.perf_counter()
        train_classifier(model3, *vol["train"], *vol["val"], epochs=epochs_3d, batch_size=4, seed=seed,
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


# ---- 2. attention-gated networks on the lesion benchmark -----------------------------------


@dataclass
class AttentionGatesResult:
    """Acceptance numbers of the attention-gated classifier on the 2D lesion benchmark.

    Attributes
    ----------
    accuracy : dict
        Test accuracy and AUROC of the attention-gated network and of the plain CNN.
    localisation : dict
        Per map (``gates`` = mean of the gate maps, ``gate_0``/``gate_1`` each gate,
        ``gradcam_gated`` = Grad-CAM on the gated model's last block, ``gradcam_cnn`` =
        Grad-CAM on the plain CNN): mean ``pointing`` and ``mass_in_mask`` over the positive
        test images, and ``mask_share`` (the mass a uniform map gets).
    deletion : dict
        Deletion AUC (probability of "lesion" as the most important 4x4 patches are replaced
        by a blurred copy of the image, lower = more faithful) on the gated model with the gate map, Grad-CAM and a random map
        (seeded); the same for Grad-CAM on the CNN.
    gates_replaced : dict
        For permuted gates (each gate's coefficients shuffled over positions) and uniform gates
        (each gate's mean everywhere): accuracy, share of decisions flipped, mean total
        variation between output distributions, mean change of p(lesion) on positives.
    """

    sizes: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, Any] = field(default_factory=dict)
    localisation: dict[str, Any] = field(default_factory=dict)
    deletion: dict[str, Any] = field(default_factory=dict)
    gates_replaced: dict[str, Any] = field(default_factory=dict)

    images: list[tuple[bytes, str]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The numbers as plain data (JSON-ready); the pictures left out."""
        return {k: v for k, v in asdict(self).items() if k != "images"}


def run_attention_gates(
    *,
    size: int = 64,
    n_train: int = 800,
    n_val: int = 100,
    n_test: int = 200,
    epochs: int = 10,
    deletion_images: int = 60,
    seed: int = 0,
    log: Log = _quiet,
) -> AttentionGatesResult:
    """Train an attention-gated network and the plain CNN on the lesion benchmark and measure both."""
    from medlens.attribution.explain import explain
    from medlens.core.engine import Budget
    from medlens.data.lesions import make_lesion_benchmark
    from medlens.evaluation.faithfulness import deletion
    from medlens.evaluation.localisation import mass_in_mask, pointing_game
    from medlens.models.attention_gated import AttentionGatedCNN, replaced_gates
    from medlens.models.cnn import CNN
    from medlens.models.metrics import auroc
    from medlens.models.training import shift_augment, train_classifier

    res = AttentionGatesResult()
    d = make_lesion_benchmark(spatial_dims=2, size=size, n_train=n_train, n_val=n_val, n_test=n_test, seed=seed)
    xs = {s: torch.from_numpy(d[f"{s}_images"])[:, None].float() for s in ("train", "val", "test")}
    ys = {s: torch.from_numpy(d[f"{s}_labels"]).long() for s in ("train", "val", "test")}
    masks = torch.from_numpy(d["test_masks"])
    res.sizes = {"size": size, "train": n_train, "val": n_val, "test": n_test, "epochs": epochs}
    models: dict[str, nn.Module] = {}
    for name in ("gated", "cnn"):
        t0 = time.perf_counter()
        with seeded(seed):  # weight initialisation draws from torch's global generator
            if name == "gated":
                m: nn.Module = AttentionGatedCNN(2, 1, 2, widths=(16, 32, 64, 64), input_shape=(1, size, size))
            else:
                m = CNN(2, 1, 2, widths=(16, 32, 64), input_shape=(1, size, size))
            train_classifier(m, xs["train"], ys["train"], xs["val"], ys["val"], epochs=epochs, seed=seed,
                             augment=shift_augment, progress=False)
        with torch.no_grad():
            p = torch.softmax(m(xs["test"]), 1)
        res.accuracy[name] = {"accuracy": float((p.argmax(1) == ys["test"]).float().mean()),
                              "auroc": auroc(p[:, 1], ys["test"]), "train_seconds": time.perf_counter() - t0}
        models[name] = m
        log(f"{name}: test accuracy {res.accuracy[name]['accuracy']:.3f}")
    pos = ys["test"] == 1
    xp, mp = xs["test"][pos], masks[pos]
    gated, cnn = models["gated"], models["cnn"]
    maps = {
        "gates": explain(gated, xp, target=1, method="attention_gates").values,
        "gate_0": explain(gated, xp, target=1, method="attention_gates", gate=0).values,
        "gate_1": explain(gated, xp, target=1, method="attention_gates", gate=1).values,
        "gradcam_gated": explain(gated, xp, target=1, method="gradcam", layer="blocks.3.act").values,
        "gradcam_cnn": explain(cnn, xp, target=1, method="gradcam").values,
    }
    for i in range(min(2, len(xp))):
        for key, caption in (("gates", "gate map"), ("gradcam_gated", "Grad-CAM, gated"), ("gradcam_cnn", "Grad-CAM, CNN")):
            res.images.append((_picture(xp[i, 0], maps[key][i, 0]), f"lesion {i + 1}: {caption}"))
        res.images.append((_picture(xp[i, 0], mp[i].float()), f"lesion {i + 1}: the lesion (ground truth)"))
    share = float(mp.flatten(1).float().mean())
    for name, v in maps.items():
        res.localisation[name] = {"pointing": _nanmean(pointing_game(v, mp)), "mass_in_mask": _nanmean(mass_in_mask(v, mp)),
                                  "mask_share": share}
    # deletion: gate map vs Grad-CAM vs a random map
    k = min(deletion_images, len(xp))
    gen = torch.Generator().manual_seed(seed)
    random_map = torch.rand(k, 1, size, size, generator=gen)
    budget = Budget(batch_size=64)
    for name, model, v in (("gates", gated, maps["gates"][:k]), ("gradcam_gated", gated, maps["gradcam_gated"][:k]),
                           ("random_gated", gated, random_map), ("gradcam_cnn", cnn, maps["gradcam_cnn"][:k]),
                           ("random_cnn", cnn, random_map)):
        # blurred, not zeroed, patches: a black patch on a chest X-ray looks like a dark lesion,
        # so zero deletion keeps p(lesion) near 1 whatever the order (measured: AUC 0.96-0.99
        # for gate maps, Grad-CAM and random maps alike)
        curve = deletion(model, xp[:k], v, 1, steps=16, patch=4, baseline="blur", **budget.kwargs())
        res.deletion[name] = float(curve.auc.mean())
    # Jain & Wallace: what happens to the decision when the gates are permuted or made uniform
    x, y = xs["test"], ys["test"]
    with torch.no_grad():
        base = torch.softmax(gated(x), 1)

    def permute(a: torch.Tensor) -> torch.Tensor:
        flat = a.flatten(2)
        perm = torch.stack([torch.randperm(flat.shape[-1], generator=gen) for _ in range(len(a))])
        return flat.gather(2, perm[:, None, :]).reshape(a.shape)

    for name, fn in (("permuted", permute), ("uniform", lambda a: a.mean(tuple(range(2, a.ndim)), keepdim=True).expand_as(a))):
        with replaced_gates(gated, fn), torch.no_grad():
            q = torch.softmax(gated(x), 1)
        res.gates_replaced[name] = {
            "accuracy": float((q.argmax(1) == y).float().mean()),
            "flipped": float((q.argmax(1) != base.argmax(1)).float().mean()),
            "total_variation": float(0.5 * (q - base).abs().sum(1).mean()),
            "positive_p_change": float((q[pos, 1] - base[pos, 1]).mean()),
        }
    res.gates_replaced["original_accuracy"] = float((base.argmax(1) == y).float().mean())
    log("attention gates measured")
    return res


# ---- 3. attention over patches ---------------------------------------------------------------


@dataclass
class PatchAttentionResult:
    """Acceptance numbers of attention-MIL on large slides.

    Attributes
    ----------
    slide_auroc, slide_accuracy : float
        Slide-level classification of the test slides.
    attention_on_evidence : float
        Mean over positive test slides of the attention mass on the evidence patches.
    evidence_patch_share : float
        Mean share of patches that are evidence patches (what uniform attention would give).
    attention_on_distractors, distractor_patch_share : float
        The same for the distractor (disc) patches.
    top_patch_is_evidence : float
        Share of positive test slides whose most-attended patch is an evidence patch.
    agreement : dict
        Attention vs per-patch gradient magnitude (sum of |gradient x input| over each patch):
        mean Kendall tau over positive slides, and the share of slides where both rank the same
        patch first; the gradient's own ``gradient_on_evidence`` share.
    """

    sizes: dict[str, Any] = field(default_factory=dict)
    slide_auroc: float = math.nan
    slide_accuracy: float = math.nan
    attention_on_evidence: float = math.nan
    evidence_patch_share: float = math.nan
    attention_on_distractors: float = math.nan
    distractor_patch_share: float = math.nan
    top_patch_is_evidence: float = math.nan
    agreement: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = math.nan

    images: list[tuple[bytes, str]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The numbers as plain data (JSON-ready); the pictures left out."""
        return {k: v for k, v in asdict(self).items() if k != "images"}


def run_patch_attention(
    *,
    size: int = 256,
    patch: int = 32,
    n_train: int = 160,
    n_test: int = 80,
    epochs: int = 15,
    gated: bool = True,
    lr: float = 2e-3,
    seed: int = 0,
    log: Log = _quiet,
) -> PatchAttentionResult:
    """Train attention-MIL on large slides (only slide labels) and measure where its attention goes."""
    from medlens.attribution.explain import explain
    from medlens.data.slides import make_slides
    from medlens.evaluation.attention import kendall_tau
    from medlens.models.metrics import auroc
    from medlens.models.mil import PatchAttentionMIL, train_mil

    res = PatchAttentionResult()
    sets = {s: make_slides(n, size=size, patch=patch, split=s, seed=seed * 10 + k)
            for k, (s, n) in enumerate((("train", n_train), ("test", n_test)))}
    grid = size // patch
    res.sizes = {"size": size, "patch": patch, "patches_per_slide": grid * grid,
                 "train": n_train, "test": n_test, "epochs": epochs, "gated": gated}
    with seeded(seed):  # weight initialisation draws from torch's global generator
        model = PatchAttentionMIL(2, 1, 2, patch=patch, widths=(8, 16, 32), embed_dim=64, attention_dim=32, gated=gated,
                                  input_shape=(1, size, size))
        t0 = time.perf_counter()
        tr = sets["train"]
        train_mil(model, tr.images, tr.labels, epochs=epochs, batch_size=8, lr=lr, seed=seed)
    res.train_seconds = time.perf_counter() - t0
    log(f"MIL trained in {res.train_seconds:.0f} s")
    te = sets["test"]
    with torch.no_grad():
        chunks = [model.forward_with_attention(te.images[i : i + 8]) for i in range(0, len(te), 8)]
    probs = torch.softmax(torch.cat([c[0] for c in chunks]), 1)
    att = torch.cat([c[1] for c in chunks])  # (N, grid * grid)
    res.slide_auroc = auroc(probs[:, 1], te.labels)
    res.slide_accuracy = float((probs.argmax(1) == te.labels).float().mean())
    pos = te.labels == 1
    ev = te.evidence.flatten(1)
    dis = (F.max_pool2d(te.distractors[:, None].float(), patch)[:, 0] > 0).flatten(1)
    res.attention_on_evidence = float((att[pos] * ev[pos]).sum(1).mean())
    res.evidence_patch_share = float(ev[pos].float().mean(1).mean())
    has_d = dis.any(1)
    res.attention_on_distractors = float((att[has_d] * dis[has_d]).sum(1).mean())
    res.distractor_patch_share = float(dis[has_d].float().mean(1).mean())
    res.top_patch_is_evidence = float(ev[pos].gather(1, att[pos].argmax(1, keepdim=True)).float().mean())
    from medlens.models.mil import from_patches

    first = int(torch.nonzero(pos)[0, 0]) if pos.any() else 0
    amap = from_patches(att[first : first + 1], (grid, grid), patch)[0, 0]
    res.images.append((_picture(te.images[first, 0], amap, scale=1), "attention per patch over a positive slide"))
    res.images.append((_picture(te.images[first, 0], te.masks[first].float(), scale=1), "the evidence rings (ground truth)"))
    gx = explain(model, te.images[pos], target=1, method="grad_x_input", batch_size=4).values.abs()
    per_patch = F.avg_pool2d(gx, patch).flatten(1)  # (P, grid * grid), row-major like the attention
    tau = kendall_tau(att[pos], per_patch)
    res.agreement = {
        "kendall_tau": _nanmean(tau),
        "same_top_patch": float((att[pos].argmax(1) == per_patch.argmax(1)).float().mean()),
        "gradient_on_evidence": float(((per_patch / per_patch.sum(1, keepdim=True)) * ev[pos]).sum(1).mean()),
    }
    log(f"MIL: slide AUROC {res.slide_auroc:.3f}, attention on evidence {res.attention_on_evidence:.3f}")
    return res


# ---- all three, for ``medlens imaging-report`` ---------------------------------------------


QUICK = {
    "haemorrhage": {"n_train": 6, "n_val": 2, "n_test": 7, "epochs": 1, "epochs_3d": 1, "ig_steps": 4, "basis_queries": 5},
    "attention_gates": {"n_train": 40, "n_val": 20, "n_test": 40, "epochs": 1, "deletion_images": 8},
    "patch_attention": {"size": 128, "patch": 16, "n_train": 8, "n_test": 8, "epochs": 1},
}


def run_systems(
    which: Any = ("haemorrhage", "attention_gates", "patch_attention"),
    *,
    quick: bool = False,
    seed: int = 0,
    log: Log = _quiet,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[tuple[bytes, str]]]]:
    """Run the named systems; return their numbers (plain data) and pictures, keyed by system."""
    runners = {"haemorrhage": run_haemorrhage, "attention_gates": run_attention_gates,
               "patch_attention": run_patch_attention}
    numbers: dict[str, dict[str, Any]] = {}
    pictures: dict[str, list[tuple[bytes, str]]] = {}
    for name in which:
        options = QUICK[name] if quick else {}
        res = runners[name](seed=seed, log=log, **options)
        numbers[name], pictures[name] = res.as_dict(), list(res.images)
    return numbers, pictures
