"""The ``generate`` use case: write a ground-truth benchmark (lesions, EEG, reports, head-CT phantoms)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medlens.errors import MedlensError

KINDS = ("lesions", "lesions-shortcut", "eeg", "reports", "head-ct")


@dataclass(frozen=True)
class GenerateRequest:
    """The arguments of ``medlens generate``: ``kind`` one of :data:`KINDS`."""

    kind: str
    out: str
    seed: int = 0
    n_train: int | None = None
    spatial_dims: int = 2
    size: int | None = None
    phantoms: int = 20
    format: str = "nifti"


def generate_benchmark(request: GenerateRequest) -> str:
    """Write the benchmark; returns the line that says what was written where."""
    if request.kind == "head-ct":
        from medlens.data.synthetic.head_ct import make_head_ct, write_head_ct

        if request.phantoms < 1:
            raise MedlensError(f"--phantoms must be at least 1, got {request.phantoms}")
        path = write_head_ct(make_head_ct(request.phantoms, seed=request.seed), request.out, fmt=request.format)
        return f"wrote {request.phantoms} head-CT phantoms ({request.format}) to {path}"
    options: dict = {"seed": request.seed}
    if request.n_train is not None:
        if request.n_train < 2:
            raise MedlensError(f"--n-train must be at least 2, got {request.n_train}")
        options["n_train"] = request.n_train
    if request.kind.startswith("lesions"):
        from medlens.data.synthetic.lesions import write_lesion_benchmark

        options.update(spatial_dims=request.spatial_dims, shortcut=request.kind == "lesions-shortcut")
        if request.size is not None:
            options["size"] = request.size
        path: Path | str = write_lesion_benchmark(request.out, **options)
    elif request.kind == "eeg":
        from medlens.data.synthetic.eeg import write_eeg_npz

        path = write_eeg_npz(request.out, **options)
    else:
        from medlens.data.synthetic.reports_text import write_reports_npz

        path = write_reports_npz(request.out, **options)
    return f"wrote {request.kind} benchmark to {path}"
