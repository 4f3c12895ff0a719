"""InterpNET's generate refuses inputs of another size than the model was trained on (its global
pooling would otherwise run them and write a sentence about an image it never learnt to read)."""

from __future__ import annotations

import pytest
import torch

from medlens.errors import InputError
from medlens.selfexplain.interpnet import InterpNet, generate


def test_other_size_is_refused_in_one_line():
    torch.manual_seed(0)
    model = InterpNet(2, 1, 2, widths=(4, 8), input_shape=(1, 16, 16), hidden=8, embed_dim=4, max_len=4).eval()
    assert len(generate(model, torch.rand(2, 1, 16, 16)).sentences) == 2
    with pytest.raises(InputError, match=r"does not fit the model, which expects \(batch, 1, 16, 16\)"):
        generate(model, torch.rand(2, 1, 28, 28))
