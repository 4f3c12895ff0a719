"""Files of a note explanation: ``tokens.csv``, a highlighted-text picture per score, an HTML page.

Takes the rows :func:`medlens.attribution.tokens.token_rows` returns (position, token, word,
one column per method, attention) and writes them; runs no model.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from medlens.core.files import atomic_write, write_csv
from medlens.viz.text import highlighted_html, text_figure

_FIXED = ("position", "token", "word")


def score_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The score columns of token rows, in order (everything but position, token and word)."""
    return [k for k in (rows[0] if rows else {}) if k not in _FIXED]


def write_note_explanation(
    out_dir: str | os.PathLike,
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str = "",
    picture: str | None = None,
) -> dict[str, Path]:
    """Write ``tokens.csv``, ``note.png`` (highlighted by ``picture``, default the first score
    column), ``note_<column>.png`` for every other column and ``note.html`` (every column).

    Returns the paths written, by name.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    columns = score_columns(rows)
    if not rows or not columns:
        raise ValueError("no token rows with scores to write")
    paths = {"tokens.csv": write_csv(out / "tokens.csv", rows, list(rows[0]))}
    words = [str(r.get("word") or r["token"]) for r in rows]
    first = picture or columns[0]
    import matplotlib.pyplot as plt

    for col in [first, *[c for c in columns if c != first]]:
        name = "note.png" if col == first else f"note_{col}.png"
        fig = text_figure(words, [float(r[col]) for r in rows], title=f"{title}  [{col}]".strip())
        try:
            fig.savefig(out / name, dpi=110, bbox_inches="tight")
        finally:
            plt.close(fig)
        paths[name] = out / name
    parts = [highlighted_html(words, [float(r[c]) for r in rows], title=c) for c in columns]
    page = ("<!doctype html><meta charset='utf-8'><title>note</title>"
            f"<h3 style='font-family:sans-serif'>{html.escape(title)}</h3>" + "".join(parts))
    paths["note.html"] = atomic_write(out / "note.html", page)
    return paths
