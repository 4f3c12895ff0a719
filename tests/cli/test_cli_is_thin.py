"""The command line is argument parsing, one call into the application layer, and printing:
no module under ``medlens/cli/`` imports torch, numpy or a layer below ``medlens.app``."""

from __future__ import annotations

import ast
from pathlib import Path

import medlens.cli

ALLOWED_MEDLENS = ("medlens.app", "medlens.cli", "medlens.errors")
ALLOWED_OTHERS = {"__future__", "argparse", "ast", "importlib", "json", "os", "pathlib", "pkgutil", "sys", "typing",
                  "dataclasses"}


def violations(source: str) -> list[str]:
    """The imports of ``source`` (at any depth, lazy ones included) that a cli module must not make."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [("." * node.level) + (node.module or "")]
        else:
            continue
        for name in names:
            if name.startswith("medlens"):
                ok = any(name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED_MEDLENS)
            else:
                ok = name.split(".")[0] in ALLOWED_OTHERS
            if not ok:
                bad.append(f"line {node.lineno}: {name}")
    return bad


def test_no_cli_module_imports_torch_or_a_layer_below_the_application():
    folder = Path(medlens.cli.__file__).parent
    modules = sorted(folder.glob("*.py"))
    assert len(modules) > 10
    found = {p.name: violations(p.read_text(encoding="utf-8")) for p in modules}
    assert not {name: bad for name, bad in found.items() if bad}


def test_the_check_sees_a_planted_import():
    planted = "def run(args):\n    import torch\n    from medlens.models import load_model\n    import numpy as np\n"
    assert violations(planted) == ["line 2: torch", "line 3: medlens.models", "line 4: numpy"]
    assert violations("from medlens.app.explain_file import explain_file\nimport argparse\n") == []
