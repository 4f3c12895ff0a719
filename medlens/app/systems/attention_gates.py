"""Attention-gated networks (Schlemper et al. 2019) on the lesion benchmark
(:mod:`medlens.data.synthetic.lesions`): gate maps against Grad-CAM on the same model and on the
plain CNN, and a faithfulness test in the spirit of Jain and Wallace (2019).
:mod:`medlens.report.imaging_systems` turns the numbers into a report section.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from medlens.app.systems.base import (
    NumbersAndPictures,
    SystemInfo,
    nanmean,
    outputs,
    picture,
)
from medlens.core.progress import SILENT, Progress
from medlens.core.random import seeded

__all__ = ["INFO", "AttentionGatesResult", "run_attention_gates"]


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
    progress: Progress = SILENT,
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
        p = torch.softmax(outputs(m, xs["test"]), 1)
        res.accuracy[name] = {"accuracy": float((p.argmax(1) == ys["test"]).float().mean()),
                              "auroc": auroc(p[:, 1], ys["test"]), "train_seconds": time.perf_counter() - t0}
        models[name] = m
        progress(f"{name}: test accuracy {res.accuracy[name]['accuracy']:.3f}")
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
            res.images.append((picture(xp[i, 0], maps[key][i, 0]), f"lesion {i + 1}: {caption}"))
        res.images.append((picture(xp[i, 0], mp[i].float()), f"lesion {i + 1}: the lesion (ground truth)"))
    share = float(mp.flatten(1).float().mean())
    for name, v in maps.items():
        res.localisation[name] = {"pointing": nanmean(pointing_game(v, mp)), "mass_in_mask": nanmean(mass_in_mask(v, mp)),
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
    base = torch.softmax(outputs(gated, x), 1)

    def permute(a: torch.Tensor) -> torch.Tensor:
        flat = a.flatten(2)
        perm = torch.stack([torch.randperm(flat.shape[-1], generator=gen) for _ in range(len(a))])
        return flat.gather(2, perm[:, None, :]).reshape(a.shape)

    for name, fn in (("permuted", permute), ("uniform", lambda a: a.mean(tuple(range(2, a.ndim)), keepdim=True).expand_as(a))):
        with replaced_gates(gated, fn):
            q = torch.softmax(outputs(gated, x), 1)
        res.gates_replaced[name] = {
            "accuracy": float((q.argmax(1) == y).float().mean()),
            "flipped": float((q.argmax(1) != base.argmax(1)).float().mean()),
            "total_variation": float(0.5 * (q - base).abs().sum(1).mean()),
            "positive_p_change": float((q[pos, 1] - base[pos, 1]).mean()),
        }
    res.gates_replaced["original_accuracy"] = float((base.argmax(1) == y).float().mean())
    progress("attention gates measured")
    return res


#: The registry entry: ``INFO.run(SystemConfig(...), progress)``.
INFO = SystemInfo(
    "attention_gates", "imaging", "Attention gates on the lesion benchmark", run_attention_gates,
    quick={"n_train": 40, "n_val": 20, "n_test": 40, "epochs": 1, "deletion_images": 8},
)
