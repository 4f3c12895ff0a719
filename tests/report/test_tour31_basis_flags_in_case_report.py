"""The case report's "Similar cases from training" flags a retrieved training case that is the query
(``same_image``) or of its patient (``same_patient``), in the basis command's words."""

from __future__ import annotations

import numpy as np
import torch

from medlens.app.case_report.build import _basis
from medlens.core.engine import Budget
from medlens.models import CNN
from medlens.report.case import BasisCase, render_case_report
from tests.report.test_case_page import _case


def test_the_query_found_in_the_training_data_is_flagged():
    torch.manual_seed(0)
    model = CNN(2, 1, 2, widths=(4,), input_shape=(1, 12, 12)).eval()
    inputs = torch.rand(6, 1, 12, 12)
    cases, _ = _basis(model, inputs[2:3].clone(), inputs, torch.tensor([0, 1, 0, 1, 0, 1]), 3, "gradient", {},
                      ["normal", "lesion"], 0, Budget())
    assert [b.same_image for b in cases] == [b.index == 2 for b in cases] and cases[0].index == 2
    assert all(b.same_patient is None for b in cases)  # a data set names no patient


def test_the_section_says_same_image_and_same_patient():
    image = np.random.default_rng(0).random((1, 16, 20))
    basis = [BasisCase(7, image, None, "pneumonia", "pneumonia", 0.99, same_image=True),
             BasisCase(3, image, None, "normal", "pneumonia", 0.88, same_patient=True),
             BasisCase(4, image, None, "normal", "normal", 0.5)]
    page = render_case_report(_case(basis=basis))
    caption = '<figcaption>training case #{}: label {}'
    assert "the same image as the query: it is in the training data</figcaption>" in page.split(caption.format(7, ""))[1][:300]
    assert "(another image): the patient is in the training data</figcaption>" in page.split(caption.format(3, ""))[1][:300]
    assert "the training data</figcaption>" not in page.split(caption.format(4, ""))[1][:300]


def test_a_multilabel_basis_names_each_neighbours_findings():
    torch.manual_seed(0)
    model = CNN(2, 1, 2, widths=(4,), input_shape=(1, 12, 12)).eval()
    inputs = torch.rand(4, 1, 12, 12)
    findings = torch.tensor([[1, 1], [0, 0], [0, 1], [1, 0]], dtype=torch.float32)
    cases, text = _basis(model, inputs[1:2].clone(), inputs, findings, 4, "gradient", {}, ["Effusion", "Mass"], 1,
                         Budget())
    words = {b.index: b.label for b in cases}
    assert words == {0: "Effusion;Mass", 1: "No Finding", 2: "Mass", 3: "Effusion"} and cases[0].same_image
    assert "2 of them have the finding Mass" in text
