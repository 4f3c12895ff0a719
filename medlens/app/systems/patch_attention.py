"""Attention over patches (Ilse et al. 2018 / Tomita et al. 2019) on large slides
(:mod:`medlens.data.synthetic.slides`): slide AUROC, attention share on evidence patches, agreement
of attention with gradients. :mod:`medlens.report.imaging_systems` turns the numbers into a
report section.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from medlens.app.systems.base import NumbersAndPictures, SystemInfo, nanmean, picture
from medlens.core.progress import SILENT, Progress
from medlens.core.random import derive_seed, seeded

__all__ = ["INFO", "PatchAttentionResult", "run_patch_attention"]


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
    progress: Progress = SILENT,
) -> PatchAttentionResult:
    """Train attention-MIL on large slides (only slide labels) and measure where its attention goes."""
    from medlens.attribution.explain import explain
    from medlens.data.synthetic.slides import make_slides
    from medlens.evaluation.attention import kendall_tau
    from medlens.models.metrics import auroc
    from medlens.models.mil import PatchAttentionMIL, train_mil

    res = PatchAttentionResult()
    sets = {s: make_slides(n, size=size, patch=patch, split=s, seed=derive_seed(seed, "slides", s))
            for s, n in (("train", n_train), ("test", n_test))}
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
    progress(f"MIL trained in {res.train_seconds:.0f} s")
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
    res.images.append((picture(te.images[first, 0], amap, scale=1), "attention per patch over a positive slide"))
    res.images.append((picture(te.images[first, 0], te.masks[first].float(), scale=1), "the evidence rings (ground truth)"))
    gx = explain(model, te.images[pos], target=1, method="grad_x_input", batch_size=4).values.abs()
    per_patch = F.avg_pool2d(gx, patch).flatten(1)  # (P, grid * grid), row-major like the attention
    tau = kendall_tau(att[pos], per_patch)
    res.agreement = {
        "kendall_tau": nanmean(tau),
        "same_top_patch": float((att[pos].argmax(1) == per_patch.argmax(1)).float().mean()),
        "gradient_on_evidence": float(((per_patch / per_patch.sum(1, keepdim=True)) * ev[pos]).sum(1).mean()),
    }
    progress(f"MIL: slide AUROC {res.slide_auroc:.3f}, attention on evidence {res.attention_on_evidence:.3f}")
    return res


#: The registry entry: ``INFO.run(SystemConfig(...), progress)``.
INFO = SystemInfo(
    "patch_attention", "imaging", "Attention-MIL on large slides", run_patch_attention,
    quick={"size": 128, "patch": 16, "n_train": 8, "n_test": 8, "epochs": 1},
)
