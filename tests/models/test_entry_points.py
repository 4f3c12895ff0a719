"""The one deliberate upward reference: ``models.io.ENTRY_POINTS`` names architectures that live
above ``models`` as strings. The import contract cannot see a string, so this test does: every
entry names a class that exists and builds the model a file of that architecture asks for."""

import importlib

import pytest
from torch import nn

from medlens.models.io import ARCHITECTURES, ENTRY_POINTS


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_names_a_module_class(name):
    module, attr = ENTRY_POINTS[name].split(":")
    cls = getattr(importlib.import_module(module), attr)
    assert isinstance(cls, type) and issubclass(cls, nn.Module)
    assert name in ARCHITECTURES.names()


def test_entry_points_reach_only_packages_above_models():
    # a model of models/ itself registers with the decorator; an entry point for it would hide
    # a layer violation the contract could otherwise see
    for where in ENTRY_POINTS.values():
        assert not where.startswith("medlens.models."), where
