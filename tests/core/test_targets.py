import pytest
import torch

from medlens.core.targets import probabilities, to_target
from medlens.errors import TargetError

OUT = torch.tensor([[1.0, 3.0, 2.0], [0.5, -1.0, 4.0]])


def test_int_sequence_tensor_none_callable():
    assert to_target(1, OUT)(OUT).tolist() == [3.0, -1.0]
    assert to_target([0, 2], OUT)(OUT).tolist() == [1.0, 4.0]
    assert to_target(torch.tensor([2, 1]), OUT)(OUT).tolist() == [2.0, -1.0]
    assert to_target(None, OUT).classes.tolist() == [1, 2]
    t = to_target(lambda out: out[:, 0] - out[:, 1], OUT)
    assert t(OUT).tolist() == [-2.0, 1.5] and t.classes is None


def test_repeat_and_take():
    t = to_target([0, 2], OUT).repeat_each(3)
    assert t.classes.tolist() == [0, 0, 0, 2, 2, 2]
    assert t.take(slice(2, 4)).classes.tolist() == [0, 2]


def test_probability_space():
    t = to_target([1, 2], OUT).on_probabilities()
    torch.testing.assert_close(t(OUT), torch.softmax(OUT, 1)[[0, 1], [1, 2]])
    single = torch.tensor([[0.0], [2.0]])
    torch.testing.assert_close(probabilities(single)[:, 1], torch.sigmoid(single[:, 0]))


@pytest.mark.parametrize(
    "bad, message",
    [(3, "out of range"), (-1, "out of range"), ([0, 1, 2], "3 targets for a batch of 2"),
     (torch.tensor([0.5, 1.0]), "integer"), (lambda out: out, "one score per sample"), (True, "bool")],
)
def test_bad_targets(bad, message):
    with pytest.raises(TargetError, match=message):
        to_target(bad, OUT)
