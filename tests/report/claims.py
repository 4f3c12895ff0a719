"""Read a rendered report back and check every comparative sentence against the tables it describes.

A sentence's comparative phrases carry their claims as ``data-*`` attributes
(:func:`medlens.report.html.sentence_html`); this module parses the page with the standard
library's HTML parser, finds the tables of the same section (the leaderboard's means, the paired
differences, the mean ranks, or a case's "numbers behind this") and checks each claim: argmax /
argmin for "best", the sign of the difference and whether its 95 % interval excludes 0 for
"better / worse / indistinguishable", the threshold for "passes / fails".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from medlens.evaluation.registry import get_metric

#: Words that make a sentence comparative: such a paragraph must carry at least one claim.
COMPARATIVE = re.compile(r"\b(best|better|worse|faster|slower|more slowly|no higher|tell it apart|told apart)\b")


@dataclass
class Page:
    claims: list[dict] = field(default_factory=list)  # attributes + "text" + "section" + "paragraph"
    paragraphs: list[dict] = field(default_factory=list)  # "text", "claims" (count), "section", "cls"
    tables: list[dict] = field(default_factory=list)  # "section", "headers", "rows", "summary"
    titles: list[str] = field(default_factory=list)  # each section's heading


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.section = -1
        self.paragraph: dict | None = None
        self.span: dict | None = None
        self.table: dict | None = None
        self.cell: list[str] | None = None
        self.row: list[str] | None = None
        self.in_head = False
        self.summary: list[str] | None = None
        self.last_summary = ""
        self.title = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section += 1
            self.page.titles.append("")
        elif tag == "h2":
            self.title = True
        elif tag == "p":
            self.paragraph = {"text": "", "claims": 0, "section": self.section, "cls": a.get("class") or ""}
        elif tag == "span" and "data-claim" in a:
            self.span = {k[5:].replace("-", "_"): v for k, v in a.items() if k.startswith("data-")}
            self.span.update(text="", section=self.section)
        elif tag == "summary":
            self.summary = []
        elif tag == "table":
            self.table = {"section": self.section, "headers": [], "rows": [], "summary": self.last_summary}
        elif tag == "thead":
            self.in_head = True
        elif tag == "tr" and self.table is not None:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "h2":
            self.title = False
        if tag == "p" and self.paragraph is not None:
            self.page.paragraphs.append(self.paragraph)
            self.paragraph = None
        elif tag == "span" and self.span is not None:
            if self.paragraph is not None:
                self.paragraph["claims"] += 1
                self.span["paragraph"] = self.paragraph
            self.page.claims.append(self.span)
            self.span = None
        elif tag == "summary" and self.summary is not None:
            self.last_summary = "".join(self.summary)
            self.summary = None
        elif tag == "details":
            self.last_summary = ""
        elif tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            (self.table["headers"] if self.in_head else self.table["rows"]).append(self.row)
            self.row = None
        elif tag == "thead":
            self.in_head = False
        elif tag == "table" and self.table is not None:
            self.table["headers"] = self.table["headers"][0] if self.table["headers"] else []
            self.page.tables.append(self.table)
            self.table = None

    def handle_data(self, data):
        if self.title and self.page.titles:
            self.page.titles[-1] += data
        for target in (self.paragraph, self.span):
            if target is not None:
                target["text"] += data
        if self.cell is not None:
            self.cell.append(data)
        if self.summary is not None:
            self.summary.append(data)


def read_page(markup: str) -> Page:
    reader = _Reader()
    reader.feed(markup)
    return reader.page


def _number(cell: str) -> float:
    return float(cell.split()[0]) if cell not in ("n/a", "") else float("nan")


def _entry(name: str) -> str:
    return name.partition(":")[2] + " (baseline)" if name.startswith("baseline:") else name


def _table(page: Page, section: int, first_header: str, summary_start: str = "") -> dict | None:
    for t in page.tables:
        if t["section"] == section and t["headers"] and t["headers"][0] == first_header and t["summary"].startswith(summary_start):
            return t
    return None


def _means(page: Page, section: int, metric: str) -> dict[str, float]:
    """``{row name: mean}`` of ``metric``'s column in the section's leaderboard table."""
    label = get_metric(metric).label
    table = next(t for t in page.tables if t["section"] == section and t["headers"][:1] == ["method"]
                 and any(h.startswith(label) for h in t["headers"]))
    col = next(i for i, h in enumerate(table["headers"]) if h.startswith(label))
    return {row[0]: _number(row[col]) for row in table["rows"]}


def _paired(page: Page, section: int, metric: str, method: str, versus: str) -> dict:
    table = _table(page, section, "metric", "Paired differences")
    assert table is not None, "no table of paired differences in the claim's section"
    label = get_metric(metric).label
    for row in table["rows"]:
        if row[0] == label and row[1] == method and row[2] == _entry(versus):
            return {"mean": float(row[3]), "ci_low": float(row[4]), "ci_high": float(row[5]), "n": int(row[6])}
    raise AssertionError(f"no paired difference {method} - {versus} on {metric} in the table")


def _relation(d: dict, higher: bool) -> str:
    if (d["ci_low"] > 0) if higher else (d["ci_high"] < 0):
        return "better"
    if (d["ci_high"] < 0) if higher else (d["ci_low"] > 0):
        return "worse"
    return "indistinguishable"


def check_leaderboard_claim(page: Page, claim: dict) -> None:
    """Raise AssertionError when ``claim`` disagrees with its section's tables."""
    kind, section, text = claim["claim"], claim["section"], claim["text"]
    if kind in ("best", "versus", "extremes"):
        metric = claim["metric"]
        means = _means(page, section, metric)
        # a metric without a direction (mass on the marker) is compared in the one the claim names
        named = claim.get("higher")
        higher = get_metric(metric).higher_is_better if named is None else str(named) == "True"
    if kind == "best":
        methods = {k: v for k, v in means.items() if not k.endswith("(baseline)") and v == v}
        best = (max if higher else min)(methods.values())
        assert abs(methods[claim["method"]] - best) < 5e-4, f"{claim['method']} is not the best on {metric}: {methods}"
        table = _table(page, section, "metric", "Paired differences")
        label = get_metric(metric).label
        rows = [r for r in table["rows"] if r[0] == label and r[1] == claim["method"] and not r[2].endswith("(baseline)")]
        rels = {r[2]: _relation({"ci_low": float(r[4]), "ci_high": float(r[5])}, higher) for r in rows}
        expected = "better" if rels and all(r == "better" for r in rels.values()) else "indistinguishable" if rels else "only"
        assert claim["relation"] == expected, f"'{text}' says {claim['relation']}, the intervals say {expected}"
        if expected == "indistinguishable":
            assert rels[claim["versus"]] != "better", f"'{text}' names {claim['versus']}, which the intervals tell apart"
            assert "better than" not in text
    elif kind == "versus":
        d = _paired(page, section, metric, claim["method"], claim["versus"])
        for key in ("ci_low", "ci_high"):
            assert abs(float(claim[key]) - d[key]) <= 1e-3 * max(1.0, abs(d[key])), f"'{text}': {key} differs from the table"
        expected = _relation(d, higher)
        assert claim["relation"] == expected, f"'{text}' says {claim['relation']}, the interval says {expected}"
        own, other = means[claim["method"]], means[_entry(claim["versus"])]
        sign = (own > other) == bool(higher)  # the method's mean is on the good side
        if expected == "better":
            assert sign, f"'{text}' says better, but the table's means say otherwise ({own} vs {other})"
        else:
            assert "better than" not in text, f"'{text}' says better than, the interval says {expected}"
        if own != other and sign:
            assert "no better" not in text and "no higher" not in text and "worse" not in text, \
                f"'{text}' reads as worse, the table's means say better ({own} vs {other})"
        if own != other and not sign:
            assert "higher," not in text, f"'{text}' says higher, the table's means say lower ({own} vs {other})"
    elif kind == "extremes":
        methods = {k: v for k, v in means.items() if not k.endswith("(baseline)") and v == v}
        assert abs(methods[claim["method"]] - max(methods.values())) < 5e-4
        assert abs(methods[claim["low_method"]] - min(methods.values())) < 5e-4
    elif kind == "rank":
        table = _table(page, section, "method", "Mean rank")
        assert table is not None, "no mean-rank table in the claim's section"
        eligible = sorted(((float(r[2]), r[0]) for r in table["rows"] if r[1] == "yes"))
        position = {"best_eligible": 0, "second_eligible": 1}[claim["relation"]]
        assert eligible[position][1] == claim["method"], f"'{text}': the mean ranks say {eligible}"
    elif kind == "threshold":
        means = _means(page, section, claim["metric"])
        value, threshold = means[claim["method"]], float(claim["threshold"])
        assert (value < threshold) == (claim["relation"] == "passes"), f"'{text}': {value} against {threshold}"
    else:
        raise AssertionError(f"unknown claim kind {kind!r}")


def check_leaderboard_page(markup: str) -> int:
    """Check every claim of a page with leaderboard sections; return how many were checked.
    Every paragraph of a leaderboard section that compares must carry a claim."""
    page = read_page(markup)
    leaderboard = {t["section"] for t in page.tables if t["summary"].startswith("Paired differences")}
    for p in page.paragraphs:
        if p["section"] in leaderboard and COMPARATIVE.search(p["text"]):
            assert p["claims"], f"comparative sentence without a claim: {p['text']!r}"
    checked = 0
    for claim in page.claims:
        if claim["section"] in leaderboard:
            check_leaderboard_claim(page, claim)
            checked += 1
    return checked


def _numbers(page: Page, section: int, method: str) -> dict[str, str]:
    table = next((t for t in page.tables if t["section"] == section and t["summary"] == f"Numbers behind this ({method})"), None)
    assert table is not None, f"no numbers behind the sentence of {method}"
    return {row[0]: row[1] for row in table["rows"]}


def _row(numbers: dict[str, str], start: str) -> str:
    return next(v for k, v in numbers.items() if k.startswith(start))


def check_case_page(markup: str) -> int:
    """Check every claim of a case report's per-case trust sentences against the numbers behind
    them; a paragraph that compares must carry a claim, and "supported" needs a rank test at
    p <= alpha. Returns how many claims were checked."""
    page = read_page(markup)
    checked = 0
    supported = {}
    for claim in page.claims:
        if not claim["claim"].startswith("case_"):
            continue
        numbers = _numbers(page, claim["section"], claim["method"])
        value = float(_row(numbers, "deletion AUC of this map"))
        kind, rel = claim["claim"], claim["relation"]
        if kind == "case_random":
            randoms = [float(v) for v in _row(numbers, "deletion AUC of each random map").split(",")]
            p = (1 + sum(r <= value for r in randoms)) / (len(randoms) + 1)
            alpha = float(claim["alpha"])
            assert abs(float(claim["p"]) - p) < 1e-9, f"stated p {claim['p']} is not the table's {p}"
            expected = ("better" if p <= alpha else "underpowered" if 1 / (len(randoms) + 1) > alpha
                        else "indistinguishable")
            assert rel == expected, f"'{claim['text']}' says {rel}, the rank test says {expected}"
            supported[claim["method"]] = p <= alpha
        elif kind == "case_free":
            edge, centre = (float(v) for v in _row(numbers, "deletion AUC of the edge map").split("/"))
            ref = {"edge": edge, "centre": centre}[claim["versus"]]
            expected = "better" if value < ref else "indistinguishable" if value == ref else "worse"
            assert rel == expected, f"'{claim['text']}' says {rel}, the numbers say {value} against {ref}"
            assert ("better than" in claim["text"]) == (rel == "better")
        elif kind == "case_threshold":
            rho = float(_row(numbers, "rank correlation with the randomised model"))
            threshold = float(_row(numbers, "threshold of the randomisation check"))
            assert (rho < threshold) == (rel == "passes"), f"'{claim['text']}': {rho} against {threshold}"
        else:
            raise AssertionError(f"unknown claim kind {kind!r}")
        checked += 1
    for p in page.paragraphs:
        if p["cls"].startswith("trust-") and p["section"] > 0 and COMPARATIVE.search(p["text"]):
            assert p["claims"], f"comparative sentence without a claim: {p['text']!r}"
    for p in page.paragraphs:
        if p["cls"] == "trust-supported" and p["section"] > 0:
            method = p["text"].split(":", 1)[0]
            assert supported.get(method), f"{method} is 'supported' without a rank test at p <= alpha"
    return checked


def _titled_rows(page: Page, prefix: str, key: str) -> dict[tuple[str, str], dict[str, str]]:
    """``{(class, row[key]): {header: cell}}`` from every "PREFIX'CLASS'" section's table with a
    verdict column (the audit's "Strategies for 'C'", the notes audit's "Tokens of 'C'")."""
    rows = {}
    for t in page.tables:
        title = page.titles[t["section"]] if 0 <= t["section"] < len(page.titles) else ""
        if not title.startswith(prefix + "'") or "verdict" not in t["headers"]:
            continue
        cls = title[len(prefix) + 1:-1]
        for row in t["rows"]:
            cells = dict(zip(t["headers"], row))
            rows[(cls, cells[key])] = cells
    return rows


def check_audit_page(markup: str) -> int:
    """Check the audit report's verdict sentences against its strategies' tables: a strategy said
    to be flagged is flagged in its table with p below the level, one sign in at least the rule's
    share of cases and a difference of at least the rule's change (the table's numbers equal the
    sentence's); an undecided one is undecided; "no candidate shortcut" means no flagged row and
    the right count; every flagged row has its sentence. Returns how many claims were checked."""
    page = read_page(markup)
    rows = _titled_rows(page, "Strategies for ", "strategy")
    assert rows, "no strategies table"
    checked, said_flagged = 0, set()
    for claim in page.claims:
        kind = claim["claim"]
        if kind not in ("flagged", "undecided", "none_flagged"):
            continue
        checked += 1
        if kind == "none_flagged":
            assert not [k for k, r in rows.items() if r["verdict"] == "flagged"], "'no candidate shortcut' beside a flagged row"
            clusters = [k for k in rows if k[1].isdigit()]  # hotspot groups are rows of their own
            assert int(claim["strategies"]) == len(clusters), f"{claim['strategies']} strategies said, {len(clusters)} in the tables"
            continue
        key = (claim["class"], claim["strategy"])
        assert key in rows, f"no table row for strategy {key}"
        row = rows[key]
        assert row["verdict"] == kind, f"'{claim['text']}' says {kind}, the table says {row['verdict']}"
        if kind == "flagged":
            said_flagged.add(key)
            p, effect = _number(row["p (Wilcoxon, Holm)"]), _number(row["same-sign share"])
            difference = abs(_number(row["change (removal)"]) - _number(row["change (elsewhere)"]))
            assert abs(p - float(claim["p"])) <= 1e-3 * max(abs(p), 1e-12) + 1e-12 and p < float(claim["alpha"])
            assert abs(effect - float(claim["effect"])) < 1e-3 and effect >= float(claim["min_effect"])
            assert abs(difference - float(claim["difference"])) < 2e-3 and difference >= float(claim["min_change"])
    flagged_rows = {k for k, r in rows.items() if r["verdict"] == "flagged"}
    assert flagged_rows == said_flagged, f"flagged rows {flagged_rows}, flagged sentences {said_flagged}"
    return checked


def _close(cell: str, said: str, tol: float = 1e-3) -> bool:
    return abs(_number(cell) - float(said)) <= tol * max(1.0, abs(float(said)))


def check_notes_audit_page(markup: str) -> int:
    """Check a text audit's verdict sentences against its tokens' tables: a token said to be
    depended on is "depended on" in its class's table with p below the level, one sign in at least
    the rule's share of notes, its own deletion moving the probability further than the others' and
    by at least the rule's change (the table's numbers equal the sentence's); a small-effect token is
    "small effect" with a change below the threshold; an undecided one is undecided; "no token the
    model depends on" means no such row and the right count of measured tokens; every depended-on
    row has its sentence. Returns how many claims were checked."""
    page = read_page(markup)
    rows = _titled_rows(page, "Tokens of ", "token")
    assert rows, "no tokens table"
    checked, said = 0, set()
    for claim in page.claims:
        kind = claim["claim"]
        if not kind.startswith("token"):
            continue
        checked += 1
        if kind == "tokens_none":
            assert not [k for k, r in rows.items() if r["verdict"] == "depended on"], "'no token' beside a depended-on row"
            measured = [k for k, r in rows.items() if r["verdict"] not in ("not tested", "undecided")]
            assert int(claim["tested"]) == len(measured), f"{claim['tested']} tokens said tested, {len(measured)} in the tables"
            continue
        key = (claim["class"], claim["token"])
        assert key in rows, f"no table row for token {key}"
        row = rows[key]
        expected = {"token_depended": "depended on", "token_small": "small effect", "token_undecided": "undecided"}[kind]
        assert row["verdict"] == expected, f"'{claim['text']}' says {expected}, the table says {row['verdict']}"
        if kind == "token_undecided":
            continue
        own, other = _number(row["change (deleted)"]), _number(row["change (others deleted)"])
        assert _close(row["change (deleted)"], claim["change"]) and _close(row["change (others deleted)"], claim["null_change"])
        p = _number(row["p (Wilcoxon, Holm)"])
        assert abs(p - float(claim["p"])) <= 1e-3 * max(abs(p), 1e-12) + 1e-12 and p < float(claim["alpha"])
        assert abs(own) > abs(other) and own * (own - other) > 0, f"'{claim['text']}': {own} against {other}"
        big = abs(own - other) >= float(claim["min_change"]) and abs(own) >= float(claim["min_change"])
        if kind == "token_depended":
            said.add(key)
            assert big, f"'{claim['text']}': {own} against {other} is below {claim['min_change']}"
            effect = _number(row["same-sign share"])
            assert abs(effect - float(claim["effect"])) < 1e-3 and effect >= float(claim["min_effect"])
        else:
            assert not big, f"'{claim['text']}' is called small, but {own} against {other} is not"
    depended = {k for k, r in rows.items() if r["verdict"] == "depended on"}
    assert depended == said, f"depended-on rows {depended}, sentences {said}"
    return checked
