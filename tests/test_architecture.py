"""The layer contract (docs/architecture.md) holds, and it would catch a wrong import."""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "medlens"


def lint_imports(cwd: pathlib.Path) -> subprocess.CompletedProcess:
    exe = pathlib.Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.fail("lint-imports is missing: install medlens with its test extras (pip install -e '.[test]')")
    return subprocess.run(
        [str(exe), "--config", "pyproject.toml", "--no-cache"],
        cwd=cwd, capture_output=True, text=True, env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )


def test_the_layer_contract_is_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, wrong_import",
    [
        ("core/resize.py", "import medlens.attribution.explain"),       # core reaching up to compute
        ("data/synthetic/eeg.py", "import medlens.models.cnn"),                   # data knowing a model
        ("evaluation/maps.py", "import medlens.app.demo"),              # compute importing the app
        ("viz/figures.py", "import medlens.core.engine"),               # pictures running a model
        ("viz/figures.py", "import medlens.models.io"),                 # pictures loading a model
        ("report/html.py", "import medlens.audit.run"),                 # a report running the audit
    ],
)
def test_the_contract_fails_on_a_wrong_import(tmp_path, module, wrong_import):
    copy = tmp_path / "tree"
    shutil.copytree(PACKAGE, copy / "medlens", ignore=shutil.ignore_patterns("__pycache__", "bundled"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    path = copy / "medlens" / module
    path.write_text(path.read_text() + f"\n{wrong_import}  # deliberately wrong\n")
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout


def test_the_contract_fails_on_a_package_it_does_not_place(tmp_path):
    """``exhaustive = true``: a new subpackage fails the lint until the contract gives it a layer."""
    copy = tmp_path / "tree"
    shutil.copytree(PACKAGE, copy / "medlens", ignore=shutil.ignore_patterns("__pycache__", "bundled"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    (copy / "medlens" / "unplaced").mkdir()
    (copy / "medlens" / "unplaced" / "__init__.py").write_text('"""A package nobody placed."""\n')
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    assert "unplaced" in result.stdout + result.stderr


def test_nothing_inside_the_package_imports_the_public_face():
    """``import medlens`` / ``from medlens import x`` reach the face, which lint-imports cannot
    tell from the package root: only the command line may do it."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "cli" or rel.name in ("__init__.py", "__main__.py") and len(rel.parts) == 1:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import) and any(a.name == "medlens" for a in node.names):
                offenders.append(f"{rel}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and node.module in ("medlens", "medlens.api"):
                offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, offenders
