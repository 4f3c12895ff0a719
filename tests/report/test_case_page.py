"""The case report page from hand-made results: what it says, what it withholds, how it escapes."""

from __future__ import annotations

import html
import re

import numpy as np

from medlens.report.case import CAVEATS, BasisCase, CaseReport, MethodTrust, TrustAssessment, render_case_report
from medlens.report.viewer import MapLayer

HOSTILE = "<img src=x onerror=alert(1)>^Doe"


def _case(**kwargs) -> CaseReport:
    base = np.linspace(0, 1, 16 * 20).reshape(16, 20)
    trust = TrustAssessment("case", "Treat the highlighted areas with caution.", "caution", [
        MethodTrust("gradient", "supported", "It reflects the model.", [("deletion AUC", "0.210")]),
        MethodTrust("gradcam", "unsupported", "It shows the image <b>more</b>.", []),
    ], details="Checks run on this case only.")
    defaults = dict(
        scan="CT file, 16 x 20", kind="image", base=base,
        maps=[MapLayer("gradient", base - 0.5), MapLayer("gradcam", base)],
        class_names=["normal", "pneumonia"], probabilities=[0.2, 0.8], predicted=1, explained=1, trust=trust,
        withheld=["PatientName", "StudyDate"], model="trained on x",
    )
    defaults.update(kwargs)
    return CaseReport(**defaults)


def test_summary_states_finding_trust_and_caveats():
    page = render_case_report(_case(calibration="Of the 40 validation cases where the model was between 80% and 90% sure, it was right in 85%.",
                                    sentence="a round lesion in the left lung"))
    assert "<b>pneumonia</b> (probability 0.80)" in page
    assert "right in 85%" in page and "a round lesion in the left lung" in page
    assert 'class="trust-caution">Treat the highlighted areas with caution.' in page
    for caveat in CAVEATS:
        assert html.escape(caveat) in page
    assert "It shows the image &lt;b&gt;more&lt;/b&gt;." in page  # method sentences are escaped
    assert "<details><summary>Numbers behind this (gradient)</summary>" in page
    summary = re.search(r'<section id="s1" class="summary">(.*?)</section>', page, re.S).group(1)
    assert 'class="ml-viewer"' in summary  # the viewer is in the printed summary
    assert page.count('class="detail"') == 3  # trust, probabilities, about


def test_identifiers_withheld_by_default_and_escaped_when_shown():
    identifiers = {"PatientName": HOSTILE, "StudyDate": "20240102"}
    page = render_case_report(_case(withheld=sorted(identifiers)))
    assert "Doe" not in page and "20240102" not in page
    assert "Withheld to protect the patient" in page and "PatientName, StudyDate" in page
    shown = render_case_report(_case(withheld=sorted(identifiers), identifiers=identifiers))
    assert "&lt;img src=x onerror=alert(1)&gt;^Doe" in shown and "<img src=x" not in shown
    assert "20240102" in shown and "--show-identifiers" in shown


def test_basis_cases_are_shown_with_labels_and_maps():
    image = np.random.default_rng(0).random((1, 16, 20))
    basis = [BasisCase(7, image, image - 0.5, "pneumonia", "pneumonia", 0.93),
             BasisCase(3, image, image, "normal", "pneumonia", 0.88)]
    page = render_case_report(_case(basis=basis, basis_summary="1 of 2 carry the label pneumonia."))
    assert "training case #7: label pneumonia, model said pneumonia, similarity 0.93" in page
    assert "training case #3: label normal" in page and page.count('<img src="data:image/png;base64,') == 2


def test_page_is_self_contained():
    page = render_case_report(_case())
    assert not re.search(r'(src|href|action)\s*=\s*["\']?(https?:)?//', page)
    assert "http://" not in page and "https://" not in page
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src 'none'" in page


def test_the_favoured_method_is_shown_first():
    case = _case()
    trust = TrustAssessment("evaluation", "Trust gradcam.", "supported", case.trust.methods, best="gradcam")
    page = render_case_report(_case(trust=trust))
    assert 'value="1" checked' in page and 'data-method="1"' in page
    assert 'value="0" checked' in render_case_report(_case())
