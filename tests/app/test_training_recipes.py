"""The registry of training recipes behind ``medlens train --arch NAME``."""

import pytest

from medlens.app.recipes import BUILDERS, TRAINING, train
from medlens.errors import MedlensError


def test_every_architecture_has_one_training_recipe():
    assert set(BUILDERS.names()) | {"interpnet", "scinet", "groupinn"} == set(TRAINING.names())


def test_an_unknown_architecture_or_no_epochs_is_refused_before_training():
    with pytest.raises(MedlensError, match="nope"):
        train("nope", "pneumoniamnist", epochs=1)
    with pytest.raises(MedlensError, match="epochs"):
        train("cnn", "pneumoniamnist", epochs=0)
