"""Fixtures shared by the familiarity tests."""

import pytest
import torch

from medlens.data import load_dataset
from medlens.evaluation.familiarity import familiarity_reference
from medlens.models.cnn import CNN


@pytest.fixture(scope="module")
def chest_xray_reference():
    """An untrained chest X-ray CNN, its familiarity reference (300 PneumoniaMNIST training cases,
    the validation split) and 20 test X-rays."""
    torch.manual_seed(0)
    model = CNN(2, 1, 2, input_shape=(1, 28, 28)).eval()
    train = load_dataset("pneumoniamnist", "train").inputs[:300]
    val = load_dataset("pneumoniamnist", "val").inputs
    return model, familiarity_reference(model, train, val), load_dataset("pneumoniamnist", "test").inputs[:20]
