"""Shared fixtures: small seeded models and inputs for 1D, 2D and 3D."""

from __future__ import annotations

import pytest
import torch

from medlens.models import CNN

SHAPES = {1: (2, 64), 2: (1, 24, 24), 3: (1, 12, 12, 12)}


def make_model(spatial_dims: int, num_classes: int = 3, seed: int = 0) -> CNN:
    torch.manual_seed(seed)
    shape = SHAPES[spatial_dims]
    model = CNN(spatial_dims, shape[0], num_classes, widths=(4, 6, 8), input_shape=shape).double()
    # give batch norm non-trivial statistics so eval mode differs from identity
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def make_input(spatial_dims: int, batch: int = 3, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *SHAPES[spatial_dims], generator=gen, dtype=torch.float64)


@pytest.fixture(params=[1, 2, 3], ids=["1d", "2d", "3d"])
def spatial_dims(request) -> int:
    return request.param


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Run the whole suite with one torch thread.

    On a shared 2-core machine torch's default of one thread per core makes small-tensor tests
    10x slower when other processes hold the cores (threads spin waiting for each other), and
    one thread also keeps floating-point reductions in a fixed order.
    """
    from medlens.core.threads import torch_threads

    with torch_threads(1):
        yield


#: Names an output folder must never keep: a staging folder of :func:`medlens.core.files.staged_folder`,
#: a temporary file of ``atomic_write``, or a lock file (:func:`medlens.core.files.folder_lock`).
LEFTOVER_MARKS = (".partial-", ".lock")


def leftovers(folder) -> list[str]:
    """Staging folders, temporary files and lock files anywhere under ``folder``."""
    import os

    found = []
    for top, dirs, files in os.walk(folder):
        for name in dirs + files:
            if any(mark in name for mark in LEFTOVER_MARKS) or (name.startswith(".") and name.endswith(".tmp")):
                found.append(os.path.relpath(os.path.join(top, name), folder))
    return sorted(found)


@pytest.fixture(autouse=True)
def no_leftovers(request):
    """Every test that writes into ``tmp_path`` leaves no staging folder, temporary file or lock
    there, on success or failure (a test that makes one on purpose removes it)."""
    tmp_path = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if tmp_path is not None:
        assert leftovers(tmp_path) == [], f"left behind in {tmp_path}"
