"""explain and report warn that an ultrasound whose header does not say whether it carries burned-in
text should be checked before sharing; audit, basis and concepts drew such scans silently. Their
exemplars now come with a sentence saying how many to check (an e2e audit run: 11 s, so the helper
they share is tested here on real DICOM files)."""

from __future__ import annotations

import torch

from medlens.app.pixel_privacy import blank_identifying_exemplars, pixels_unsure
from medlens.data.cases import Case
from medlens.data.formats.dicom import load_dicom
from tests.data.burned_in_dicom import write_ultrasound


def _case(path, flag, seed):
    write_ultrasound(path, flag, seed=seed)
    return Case(torch.zeros(1, 1, 32, 32), None, "", record=load_dicom(path))


def test_exemplars_whose_headers_do_not_say_are_drawn_with_a_check_sentence(tmp_path):
    cases = [_case(tmp_path / f"us{k}.dcm", flag, k) for k, flag in enumerate([None, None, "NO", "YES"])]
    assert [pixels_unsure(c) for c in cases] == [True, True, False, False]
    exemplars = {k: (torch.ones(1, 32, 32), torch.ones(32, 32)) for k in range(4)}
    drawn, said = blank_identifying_exemplars(exemplars, cases.__getitem__)
    assert [float(drawn[k][0].max()) for k in range(4)] == [1.0, 1.0, 1.0, 0.0]  # only the declared one blanked
    assert len(said) == 2 and said[1].startswith("Check before sharing (2 exemplar scan(s))")
