"""The root README's examples, checked so that they cannot rot: its Python snippets run (the cheap
one as written; the one that trains and evaluates is checked call by call: each function exists and
takes every keyword it is given), and every option its "Command line" block shows is an option of
that command's parser. No test read the README's code before; a new user following it found
``medlens.open_cases("scans/", labels="scans/labels.csv")`` refusing the README's own labels file.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import inspect
import io
import re
import typing
from pathlib import Path

import pytest

import medlens

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def _section(title: str) -> str:
    return README.split(f"\n{title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_has_the_snippets_this_test_reads():
    blocks = _python_blocks()
    assert len(blocks) == 2, "the README's Python snippets changed: update this test with them"
    assert "load_model(" in blocks[0] and "medlens.train(" in blocks[1]


def test_python_in_five_lines_runs_as_written_and_prints_what_its_comments_say(tmp_path, monkeypatch):
    """The snippet's model file is the demo's; an untrained CNN of the demo's architecture stands in for
    it (the snippet only loads it), so the snippet's own lines run unchanged."""
    from medlens.models import build_model, save_model

    config = {"spatial_dims": 2, "in_channels": 1, "num_classes": 2, "widths": [16, 32, 64], "kernel_size": 3,
              "input_shape": [1, 28, 28]}
    save_model(build_model("cnn", config), tmp_path / "demo-out/models/pneumoniamnist-cnn.pt",
               {"class_names": ["normal", "pneumonia"], "input_shape": [1, 28, 28]})
    monkeypatch.chdir(tmp_path)
    snippet = _python_blocks()[0]
    printed = io.StringIO()
    scope: dict = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(snippet, "README.md", "exec"), scope)
    shape = re.search(r"load_dataset\(.*#\s*(\(\d+(?:, \d+)*\))", snippet).group(1)
    assert str(tuple(scope["test"].inputs.shape)) == shape
    lines = printed.getvalue().splitlines()
    said = re.search(r"print\(attr\)\s*#\s*(Attribution\(method='\w+', shape=\([\d, ]+\))", snippet).group(1)
    assert lines[0].startswith(said)
    assert lines[1] == str(medlens.methods())


def _calls(snippet: str) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(snippet)) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "medlens"]


def _keywords_of(name: str) -> set[str]:
    """What ``medlens.NAME(...)`` accepts by keyword: a request class's fields (for a command
    function, its request's fields and the recipe options it folds in), else the signature's."""
    from dataclasses import fields, is_dataclass

    from medlens.api import _RECIPE_FIELDS

    obj = getattr(medlens, name)
    if is_dataclass(obj):
        return {f.name for f in fields(obj)}
    hints = typing.get_type_hints(obj)
    request = next((a for a in typing.get_args(hints.get("request")) if is_dataclass(a)), None)
    if request is not None:
        return {f.name for f in fields(request)} | set(_RECIPE_FIELDS)
    return {p.name for p in inspect.signature(obj).parameters.values()}


def test_the_commands_from_python_name_functions_and_keywords_that_exist():
    calls = _calls(_python_blocks()[1])
    assert {c.func.attr for c in calls} >= {"train", "explain_file", "evaluate", "audit_cohort", "case_report",
                                            "ReportRequest", "open_cases"}
    for call in calls:
        unknown = {k.arg for k in call.keywords} - _keywords_of(call.func.attr)
        assert not unknown, f"medlens.{call.func.attr} takes no keyword {sorted(unknown)}"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    from medlens.cli import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def _command_lines() -> list[tuple[str, str]]:
    """Each line of the "Command line" block with its command (a continuation line belongs to the
    command above it)."""
    pairs, command = [], ""
    for line in _section("## Command line").split("```")[1].splitlines():
        m = re.match(r"medlens\s+(\S+)", line.strip())
        command = m.group(1) if m else command
        if line.strip():
            pairs.append((command, line.split("#", 1)[0]))
    return pairs


@pytest.mark.parametrize(("command", "line"), _command_lines())
def test_every_option_of_the_command_line_block_is_an_option_of_its_command(command, line):
    known = set(_subparsers()[command]._option_string_actions)
    shown = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", line))
    assert not shown - known, f"medlens {command}: no option {sorted(shown - known)}"


def test_every_command_takes_quiet_and_its_help_ends_with_examples():
    """The README: the options apply where they make sense, ``--quiet`` everywhere, and "``medlens
    COMMAND --help`` ends with examples"."""
    for name, parser in _subparsers().items():
        assert "--quiet" in parser._option_string_actions, name
        assert (parser.epilog or "").lstrip().startswith("examples:"), name


def test_the_open_cases_line_runs_as_written_on_the_readmes_own_labels_file(tmp_path, monkeypatch):
    """``scans/labels.csv`` as the README shows it (``case,label,group``, labels that are words)."""
    import numpy as np
    from PIL import Image

    head = re.search(r"\$ head -3 scans/labels.csv\n(.*?)\n\n", README, flags=re.S).group(1).splitlines()
    (tmp_path / "scans").mkdir()
    for row in head[1:]:
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "scans" / row.split(",")[0])
    (tmp_path / "scans" / "labels.csv").write_text("\n".join(head) + "\n", encoding="utf-8")
    line = next(line for line in _python_blocks()[1].splitlines() if "medlens.open_cases(" in line)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile("import medlens\n" + line, "README.md", "exec"), scope)
    assert len(scope["cases"]) == len(head) - 1 and scope["cases"].case(0).label is not None
