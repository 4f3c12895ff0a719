"""Open a report in a real browser: Playwright driving Debian's Chromium (no downloaded browser).

:func:`browser_page` yields a :class:`Visit`: the page plus every console error, page error,
dialog and request seen while it was open. Tests skip (with the reason) only when no Chromium
is installed or the ``playwright`` package is missing.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def chromium_path() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return None


def require_browser() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium at /usr/bin/chromium (install Debian's 'chromium' package; .ci/run does)")
    pytest.importorskip("playwright.sync_api", reason="the 'playwright' package (test extra) is not installed")
    return path


@dataclass
class Visit:
    page: Any
    url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        """Requests other than the report file itself and inline data."""
        return [u for u in self.requests if u != self.url and not u.startswith(("data:", "blob:"))]

    def assert_clean(self) -> None:
        assert not self.console_errors, self.console_errors
        assert not self.page_errors, self.page_errors
        assert not self.dialogs, self.dialogs
        assert not self.foreign_requests(), self.foreign_requests()

    def wait_for_viewers(self, timeout: float = 20_000) -> int:
        n = self.page.locator(".ml-viewer").count()
        if n:
            self.page.wait_for_function(
                "() => [...document.querySelectorAll('.ml-viewer')].every(v => v.dataset.ready === '1')", timeout=timeout)
        return n


@contextmanager
def browser_page(path: str | Path, *, viewport: tuple[int, int] = (1280, 900)) -> Iterator[Visit]:
    from playwright.sync_api import sync_playwright

    executable = require_browser()
    profile = tempfile.mkdtemp(prefix="medlens-chromium-")
    url = Path(path).resolve().as_uri()
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": viewport[0], "height": viewport[1]},
            )
            try:
                page = context.new_page()
                visit = Visit(page, url)
                page.on("console", lambda m: visit.console_errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: visit.page_errors.append(str(e)))

                def on_dialog(d):
                    visit.dialogs.append(d.message)
                    d.dismiss()

                page.on("dialog", on_dialog)
                context.on("request", lambda r: visit.requests.append(r.url))
                page.goto(url, wait_until="load")
                yield visit
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def pdf_pages(pdf: bytes) -> int:
    """Number of pages of a PDF written by Chromium (its page objects are uncompressed)."""
    import re

    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))
