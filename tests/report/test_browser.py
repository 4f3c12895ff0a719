"""The reports in a real browser (Playwright driving Debian's Chromium): no console error, no
request, sliders and method switches change what is drawn, hostile identifiers stay text, and
the print summary fits one page. Skipped, with the reason, only when no Chromium is installed."""

from __future__ import annotations

import pytest

from tests.data.identified_dicom import HOSTILE_NAME
from tests.report.browser import browser_page, pdf_pages, require_browser

pytestmark = pytest.mark.usefixtures("browser")


@pytest.fixture(scope="module")
def browser():
    return require_browser()


def _pixels(page, selector: str) -> str:
    return page.eval_on_selector(selector, "c => c.toDataURL()")


def _grey(page, selector: str) -> bool:
    return page.eval_on_selector(selector, """c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false;
        return true; }""")


def test_case_report_2d(reports, tmp_path):
    with browser_page(reports["2d"]) as visit:
        page = visit.page
        assert visit.wait_for_viewers() == 1
        pane = "canvas.ml-pane"
        assert page.get_attribute(pane, "width") == "128"  # the DICOM's native 128 x 128, not the model's 24
        names = ["gradient", "gradcam"]
        initial = int(page.get_attribute(".ml-viewer", "data-method"))  # the method the checks favour
        assert f"{names[initial]} map overlaid at 50% opacity" in page.get_attribute(pane, "aria-label")
        first = _pixels(page, pane)
        other = 1 - initial
        page.check(f"input.ml-method[value='{other}']")
        assert page.get_attribute(".ml-viewer", "data-method") == str(other)
        assert f"{names[other]} map" in page.get_attribute(pane, "aria-label")
        assert _pixels(page, pane) != first
        page.check(f"input.ml-method[value='{initial}']")
        assert _pixels(page, pane) == first
        page.check("input.ml-method[value='0']")  # gradient: a signed map with colour everywhere
        page.focus("input.ml-opacity")
        page.keyboard.press("Home")  # keyboard: opacity 0 shows the scan alone, in grey
        assert page.inner_text("output.ml-opacity-value") == "0%" and _grey(page, pane)
        page.keyboard.press("End")
        assert page.inner_text("output.ml-opacity-value") == "100%" and not _grey(page, pane)
        assert page.locator("img:not([alt])").count() == 0 and page.locator("canvas:not([aria-label])").count() == 0
        page.screenshot(path=str(tmp_path / "case-2d.png"), full_page=True)
        assert pdf_pages(page.pdf(format="A4")) == 1
        visit.assert_clean()
    assert (tmp_path / "case-2d.png").stat().st_size > 10_000


def test_case_report_3d_slices_follow_the_sliders(reports, tmp_path):
    with browser_page(reports["3d"]) as visit:
        page = visit.page
        visit.wait_for_viewers()
        axial = "canvas.ml-pane[data-plane='0']"
        start = int(page.get_attribute(axial, "data-slice"))
        assert start == int(page.get_attribute("input.ml-slice[data-plane='0']", "value"))  # the map's maximum
        before = _pixels(page, axial)
        page.focus("input.ml-slice[data-plane='0']")
        page.keyboard.press("ArrowLeft" if start > 0 else "ArrowRight")
        moved = int(page.get_attribute(axial, "data-slice"))
        assert moved == start + (-1 if start > 0 else 1)
        assert f"axial slice {moved + 1} of 16" in page.inner_text("output.ml-slice-value[data-plane='0']")
        assert _pixels(page, axial) != before
        sagittal = "canvas.ml-pane[data-plane='2']"
        before = _pixels(page, sagittal)
        page.fill("input.ml-slice[data-plane='2']", "3")
        assert page.get_attribute(sagittal, "data-slice") == "3" and _pixels(page, sagittal) != before
        page.click("button.ml-peak")
        assert page.get_attribute(axial, "data-slice") == str(start)
        page.check("input.ml-method[value='2']")
        assert "integrated_gradients" in page.get_attribute(axial, "aria-label")
        page.screenshot(path=str(tmp_path / "case-3d.png"), full_page=True)
        assert pdf_pages(page.pdf(format="A4")) == 1
        visit.assert_clean()


def test_signal_report_zooms(reports, tmp_path):
    with browser_page(reports["signal"]) as visit:
        page = visit.page
        visit.wait_for_viewers()
        pane = "canvas.ml-pane"
        assert page.get_attribute(pane, "data-window") == "0-64"
        before = _pixels(page, pane)
        page.focus("input.ml-zoom")
        page.keyboard.press("End")
        window = page.get_attribute(pane, "data-window")
        assert window != "0-64" and _pixels(page, pane) != before
        page.fill("input.ml-position", "1000")
        assert page.get_attribute(pane, "data-window").endswith("-64")
        page.check("input.ml-method[value='1']")
        assert "occlusion" in page.get_attribute(pane, "aria-label")
        page.screenshot(path=str(tmp_path / "signal.png"), full_page=True)
        assert pdf_pages(page.pdf(format="A4")) == 1
        visit.assert_clean()


def test_hostile_identifiers_stay_text(reports):
    with browser_page(reports["2d-shown"]) as visit:
        page = visit.page
        visit.wait_for_viewers()
        assert page.locator("img[src='x']").count() == 0 and page.locator("[onerror]").count() == 0
        assert page.get_by_text(HOSTILE_NAME, exact=True).count() == 1  # shown, as text
        page.wait_for_timeout(200)
        visit.assert_clean()  # no dialog opened, no request


def test_demo_report_uses_the_viewer(tmp_path):
    import torch

    from medlens.app.demo import DemoContext, attribution_section
    from medlens.report import Report
    from tests.conftest import make_input, make_model

    model = make_model(2, num_classes=2)
    x = make_input(2, batch=4, seed=2)
    ctx = DemoContext(tmp_path, model, {}, x, torch.tensor([0, 1, 0, 1]), [0, 1], ["normal", "pneumonia"])
    report = Report("demo")
    attribution_section(ctx, report)
    path = report.write(tmp_path / "report.html")
    with browser_page(path) as visit:
        page = visit.page
        assert visit.wait_for_viewers() == 2  # one per demo case, every method switchable
        assert page.locator(".ml-viewer").first.locator("input.ml-method").count() >= 5
        before = _pixels(page, "canvas.ml-pane")
        page.locator(".ml-viewer").first.locator("input.ml-method[value='4']").check()
        assert _pixels(page, "canvas.ml-pane") != before
        page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
        visit.assert_clean()
