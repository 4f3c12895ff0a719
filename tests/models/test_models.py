
import pytest
import torch

from medlens.errors import FileFormatError
from medlens.models import CNN, load_model, save_model
from medlens.models.metrics import auroc
from tests.conftest import make_input, make_model


def test_save_load_round_trip_is_exact(tmp_path, spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    path = save_model(model, tmp_path / "m.pt", {"class_names": ["a", "b", "c"]})
    loaded, meta = load_model(path)
    assert meta == {"class_names": ["a", "b", "c"]}
    assert isinstance(loaded, CNN) and loaded.config == model.config and not loaded.training
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_torchscript_model_loads(tmp_path):
    model, x = make_model(2), make_input(2)
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.trace(model, x), str(path))
    loaded, meta = load_model(path)
    assert meta == {}
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


class Evil:
    def __reduce__(self):
        return (exec, ("import sys; sys.exit(99)",))


@pytest.mark.parametrize("kind", ["pickle", "random", "plain_state_dict", "missing"])
def test_non_model_files_are_refused(tmp_path, kind):
    path = tmp_path / "bad.pt"
    if kind == "pickle":
        torch.save({"format": "medlens-model", "payload": Evil()}, path)
    elif kind == "random":
        path.write_bytes(b"\x00\x01garbage" * 50)
    elif kind == "plain_state_dict":
        torch.save(make_model(2).state_dict(), path)
    with pytest.raises(FileFormatError, match="not a medlens or TorchScript model|does not exist"):
        load_model(path)


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    path = save_model(make_model(2), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"]["widths"] = [5, 6, 8]
    torch.save(payload, path)
    with pytest.raises(FileFormatError, match="weights do not match"):
        load_model(path)


def test_auroc_known_values():
    labels = torch.tensor([0, 0, 1, 1])
    assert auroc(torch.tensor([0.1, 0.2, 0.8, 0.9]), labels) == 1.0
    assert auroc(torch.tensor([0.9, 0.8, 0.2, 0.1]), labels) == 0.0
    assert auroc(torch.tensor([0.5, 0.5, 0.5, 0.5]), labels) == 0.5
    # one inversion out of four pairs
    assert auroc(torch.tensor([0.1, 0.6, 0.5, 0.9]), labels) == 0.75
