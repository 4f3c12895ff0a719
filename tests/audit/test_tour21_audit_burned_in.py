"""An audit's exemplars of scans whose pixels name the patient (tour 21).

Seen: ``medlens audit`` on a folder of ultrasounds whose headers say BurnedInAnnotation YES drew
each exemplar's image, name banner and all, in ``audit.html``. Now such an exemplar's map is drawn
on a blank background unless ``--show-identifiers``, and the report says how many.
"""

from __future__ import annotations

import base64
import json
import re
import zlib

import numpy as np
import torch

from medlens.cli import main
from medlens.data.recipe import Recipe
from medlens.models import CNN, save_model
from tests.data.burned_in_dicom import write_ultrasound


def _bases(html: str) -> list[np.ndarray]:
    """The picture under the map of every viewer of the page (as viewer.js decodes it)."""
    out = []
    for block in re.findall(r'<script type="application/json" class="ml-data">(.*?)</script>', html, re.S):
        payload = json.loads(block)
        raw = np.frombuffer(zlib.decompress(base64.b64decode(payload["base"]["data"])), dtype=np.uint8)
        out.append((np.cumsum(raw.reshape(payload["shape"]).astype(np.int64), axis=-1) % 256).astype(np.uint8))
    return out


def test_audit_exemplars_of_burned_in_scans_are_drawn_without_their_image_unless_asked(tmp_path):
    torch.manual_seed(0)
    model = save_model(CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 32, 32)), tmp_path / "m.pt",
                       {"input_shape": [1, 32, 32], "class_names": ["a", "b"],
                        "recipe": Recipe(normalize="minmax", channels=1, size=(32, 32))})
    scans = tmp_path / "scans"
    scans.mkdir()
    for k in range(3):
        write_ultrasound(scans / f"us{k}.dcm", "YES", seed=k)
    for name, extra in (("hidden", []), ("shown", ["--show-identifiers"])):
        assert main(["audit", "--model", str(model), "--data", str(scans), "--methods", "gradient", "--quiet",
                     "--out", str(tmp_path / name), *extra]) == 0
    hidden = (tmp_path / "hidden" / "audit.html").read_text()
    assert _bases(hidden) and all(np.ptp(b) == 0 for b in _bases(hidden))
    assert "Drawn without their image (3 exemplar scan(s))" in hidden
    shown = _bases((tmp_path / "shown" / "audit.html").read_text())
    assert shown and all(b[:6].mean() > b[6:].mean() + 60 for b in shown)  # asked for: the banners are there
