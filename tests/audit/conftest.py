"""Small audit fixtures: a tiny lesion benchmark with masks and a float32 reference CNN file."""

from __future__ import annotations

import pytest
import torch

from medlens.audit.cases import AuditSettings

# Cheap settings: Grad-CAM per case, SmoothGrad with 4 samples for the clusters, 5 deletion steps.
FAST = dict(
    methods=("gradcam",),
    cluster_method="smoothgrad",
    method_options={"smoothgrad": {"n_samples": 4}},
    metric_options={"deletion_auc": {"steps": 5}, "insertion_auc": {"steps": 5}},
    cases_per_batch=4,
)


def fast_settings(**overrides) -> AuditSettings:
    return AuditSettings(**{**FAST, **overrides})


@pytest.fixture(scope="session")
def lesion_npz(tmp_path_factory):
    from medlens.data.synthetic.lesions import write_lesion_benchmark

    path = tmp_path_factory.mktemp("audit-data") / "lesions.npz"
    return write_lesion_benchmark(path, size=24, n_train=4, n_val=2, n_test=24, seed=3, shortcut=True)


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    from medlens.models import CNN
    from medlens.models.io import save_model

    torch.manual_seed(0)
    model = CNN(2, 1, 2, widths=(4, 6, 8), input_shape=(1, 24, 24)).eval()
    path = tmp_path_factory.mktemp("audit-model") / "cnn.pt"
    return save_model(model, path, {"class_names": ["no lesion", "lesion"], "input_shape": [1, 24, 24]})
