"""A single-file HTML report: images embedded as data URIs, every piece of text escaped.

Only :class:`Report` and :class:`Section` write markup. Callers hand them plain text, numbers
and PNG bytes; nothing a caller passes (file metadata, class names, generated sentences) is
inserted unescaped, except through :meth:`Section.add_trusted_html`, which the package's own
visualisers use for markup they built from escaped parts.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#12355b;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;opacity:.85;font-size:13px}
nav{padding:8px 32px;background:#e9edf2;font-size:13px} nav a{margin-right:14px;color:#12355b}
main{padding:8px 32px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:14px 20px;margin:16px 0}
h2{font-size:18px;margin:4px 0 10px;color:#12355b} h3{font-size:15px;margin:14px 0 6px}
p{line-height:1.45;font-size:14px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #d5dbe2;padding:4px 8px;text-align:right} th{background:#eef2f6}
td:first-child,th:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;border:1px solid #e3e7ec;border-radius:4px;padding:6px;background:#fff}
figure img{display:block;max-width:100%} figcaption{font-size:12px;color:#444;margin-top:4px;max-width:420px}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px;font-size:13px}
.verdict-good{border-left:4px solid #2e7d32;padding:6px 10px;background:#eef7ee}
.verdict-bad{border-left:4px solid #c62828;padding:6px 10px;background:#fbeeee}
footer{font-size:12px;color:#666;padding:10px 32px}
details{margin:6px 0;font-size:13px} details summary{cursor:pointer;color:#12355b}
@media print{nav,footer{display:none} header{background:none;color:#000;padding:0 0 6px}
 main{padding:0} section{border:none;padding:0;margin:6px 0;break-inside:avoid} section.detail{display:none}}
"""


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _class_attr(kind: str) -> str:
    return f' class="{html.escape(kind)}"' if kind else ""


def sentence_html(segments: Sequence[dict]) -> str:
    """A sentence made of segments ``{"text": str, "claim": {...}}`` (the leaderboard's wording,
    :mod:`medlens.evaluation.leaderboard.wording`) as escaped markup: every claimed phrase is a
    ``<span data-claim="KIND" data-metric=... data-method=...>`` naming what it compares, so a
    reader's tool (and the prose-vs-table test) can check it against the table it describes."""
    out = []
    for seg in segments:
        text = html.escape(str(seg["text"]))
        claim = seg.get("claim")
        if not claim:
            out.append(text)
            continue
        attrs = "".join(
            f' data-{html.escape(("claim" if k == "kind" else k).replace("_", "-"))}="{html.escape(_attr(v))}"'
            for k, v in claim.items() if v is not None
        )
        out.append(f"<span{attrs}>{text}</span>")
    return "".join(out)


def _attr(value: object) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def _cell(value: object) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}" if value == value else "n/a"
    else:
        text = str(value)
    return html.escape(text)


@dataclass
class Section:
    """One titled part of a report; parts are rendered in the order they were added."""

    title: str
    anchor: str
    parts: list[str] = field(default_factory=list)
    kind: str = ""  # CSS class of the section: "summary" (printed) or "detail" (left out of print)
    has_viewer: bool = False

    def add_text(self, text: str, *, kind: str = "") -> "Section":
        """A paragraph of plain text. ``kind``: ``""``, ``"note"``, ``"verdict-good"``, ``"verdict-bad"``."""
        cls = f' class="{html.escape(kind)}"' if kind else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")
        return self

    def add_sentence(self, segments: Sequence[dict], *, kind: str = "") -> "Section":
        """A paragraph whose comparative phrases carry their claims (:func:`sentence_html`)."""
        self.parts.append(f"<p{_class_attr(kind)}>{sentence_html(segments)}</p>")
        return self

    def add_heading(self, text: str) -> "Section":
        self.parts.append(f"<h3>{html.escape(text)}</h3>")
        return self

    def add_table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> "Section":
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        return self

    def add_images(self, images: Sequence[tuple[bytes, str]]) -> "Section":
        """A row of PNG images, each ``(png_bytes, caption)``."""
        figs = "".join(
            f'<figure><img src="{png_data_uri(png)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            for png, caption in images
        )
        self.parts.append(f'<div class="grid">{figs}</div>')
        return self

    def add_image(self, png: bytes, caption: str = "") -> "Section":
        return self.add_images([(png, caption)])

    def add_viewer(self, fragment: str) -> "Section":
        """A viewer from :func:`medlens.report.viewer.viewer_html` (the page then carries its script)."""
        self.parts.append(fragment)
        self.has_viewer = True
        return self

    def add_details(self, summary: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> "Section":
        """A table folded behind one click (``<details>``), e.g. the numbers behind a sentence."""
        before = len(self.parts)
        self.add_table(headers, rows)
        table = self.parts.pop(before)
        self.parts.append(f"<details><summary>{html.escape(summary)}</summary>{table}</details>")
        return self

    def add_trusted_html(self, markup: str) -> "Section":
        """Markup built by medlens itself from escaped parts (e.g. highlighted text)."""
        self.parts.append(markup)
        return self


class Report:
    """An HTML report under construction.

    Examples
    --------
    >>> report = Report("medlens demo")
    >>> report.section("Model").add_text("Test accuracy 0.91")  # doctest: +ELLIPSIS
    <...>
    >>> report.write("report.html")  # doctest: +SKIP
    """

    def __init__(self, title: str, subtitle: str = "", *, extra_css: str = "") -> None:
        self.title = title
        self.subtitle = subtitle
        self.extra_css = extra_css
        self.sections: list[Section] = []

    def section(self, title: str, *, kind: str = "") -> Section:
        """A new section; ``kind="summary"`` marks what the one-page print keeps,
        ``kind="detail"`` what it leaves out."""
        anchor = f"s{len(self.sections) + 1}"
        sec = Section(title, anchor, kind=kind)
        self.sections.append(sec)
        return sec

    def render(self) -> str:
        """The page. It is self-contained and its Content-Security-Policy forbids every request
        and every script except the viewer's own (allowed by its hash): text that slipped
        through unescaped still could not run or load anything."""
        from medlens.report.viewer import viewer_assets, viewer_script_hash

        viewers = any(s.has_viewer for s in self.sections)
        nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in self.sections)
        body = "".join(
            f'<section id="{s.anchor}"{_class_attr(s.kind)}><h2>{html.escape(s.title)}</h2>{"".join(s.parts)}</section>'
            for s in self.sections
        )
        stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        csp = (
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src {viewer_script_hash() if viewers else chr(39) + 'none' + chr(39)}; "
            "base-uri 'none'; form-action 'none'"
        )
        return (
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{html.escape(self.title)}</title>"
            f"<style>{_CSS}{self.extra_css}</style>{viewer_assets() if viewers else ''}</head><body><header><h1>{html.escape(self.title)}</h1>"
            f"<p>{html.escape(self.subtitle)}</p></header><nav>{nav}</nav><main>{body}</main>"
            f"<footer>Generated by medlens on {stamp}. Explanations are aids for review, not diagnoses.</footer>"
            "</body></html>"
        )

    def write(self, path: str | Path) -> Path:
        """Write the page to ``path`` (atomically: a reader never sees half a report); return the path."""
        from medlens.core.files import atomic_write

        return atomic_write(path, self.render())
