"""The imaging systems of section 4 of the reference survey, trained and measured on ground truth.

Three systems, each composed here from medlens's compute packages (which do not import each
other) and measured against known answers:

* :func:`run_haemorrhage` (in :mod:`medlens.app.haemorrhage`, re-exported here): Lee et al.
  (2019) on head-CT phantoms: 2.5D and 3D multi-window classifiers, detection AUROC, per-subtype
  accuracy, maps per slice and per volume, the windows' contribution, the prediction basis;
* :func:`run_attention_gates`: Schlemper et al. (2019) on the lesion benchmark
  (:mod:`medlens.data.synthetic.lesions`): gate maps against Grad-CAM on the same model and on the plain
  CNN, and a faithfulness test in the spirit of Jain and Wallace (2019);
* :func:`run_patch_attention`: Ilse et al. (2018) / Tomita et al. (2019) on large slides
  (:mod:`medlens.data.synthetic.slides`): slide AUROC, attention share on evidence patches, agreement of
  attention with gradients.

Every runner takes its sizes as arguments (the benchmarks in ``benchmarks/`` run them at full
size, the tests at a tiny one), seeds everything, and returns a dataclass of plain numbers
that :mod:`medlens.report.imaging_systems` turns into a report section.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medlens.app.haemorrhage import HaemorrhageResult, run_haemorrhage
from medlens.app.imaging_common import Log, NumbersAndPictures, nanmean as _nanmean, picture as _picture, quiet as _quiet
from medlens.core.random import seeded

__all__ = ["HaemorrhageResult", "run_haemorrhage", "AttentionGatesResult", "run_attention_gates",
           "PatchAttentionResult", "run_patch_attention", "run_systems"]


# ---- attention-gated networks on the lesion benchmark -----------------------------------


@dataclass
class AttentionGatesResult(NumbersAndPictures):
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
    from medlens.data.synthetic.lesions import make_lesion_benchmark
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


# ---- attention over patches ---------------------------------------------------------------


@dataclass
class PatchAttentionResult(NumbersAndPictures):
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
    from medlens.data.synthetic.slides import make_slides
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
    "haemorrhage": {"n_train": 6, "n_val": 2, "n_test": 7, "epochs": 1, "n_train_3d": 6, "n_val_3d": 2, "n_test_3d": 6,
                    "epochs_3d": 1, "ig_steps": 4, "window_slices": 4, "basis_queries": 5},
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


def write_imaging_report(
    out: Any,
    *,
    which: Any = ("haemorrhage", "attention_gates", "patch_attention"),
    quick: bool = False,
    seed: int = 0,
    results: dict[str, dict[str, Any]] | None = None,
    log: Log = _quiet,
) -> Any:
    """Run the named systems (or take ``results`` a benchmark wrote) and write ``out/report.html``
    and ``out/results.json``; return the report's path. ``medlens imaging-report`` and
    ``medlens demo --systems`` both come here."""
    import json
    import pathlib

    from medlens.report.imaging_systems import imaging_systems_report

    images: dict[str, list[tuple[bytes, str]]] = {}
    if results is None:
        results, images = run_systems(which, quick=quick, seed=seed, log=log)
    out = pathlib.Path(out)
    path = imaging_systems_report(results, images).write(out / "report.html")
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return path
