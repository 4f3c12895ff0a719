"""The case report of a multi-label model calls an explained output other than the top one "the
finding X", not "the class X"; a single-label model's stays "the class X"."""

from __future__ import annotations

from medlens.report.case import render_case_report
from tests.report.test_case_page import _case


def test_a_multilabel_models_explained_output_is_a_finding():
    page = render_case_report(_case(class_names=["Effusion", "Mass"], explained=0, findings=["Mass"]))
    assert "Areas that drove the finding Effusion" in page and "the class Effusion" not in page
    assert "Areas that drove the class normal" in render_case_report(_case(explained=0))
