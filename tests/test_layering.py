"""The house's import arrows: monitors/ and simulators/ never import app/; monitors/ never imports
simulators/. Checked on the source (AST), so a lazy import inside a function is caught too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "monitors": ("app", "simulators"),
    "simulators": ("app",),
}


def imported_roots(path: Path) -> set[str]:
    """Top-level package names a Python file imports (absolute imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_forbidden_layers(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"no Python files found under {package}/"
    violations = [
        f"{f.relative_to(REPO)} imports {root}" for f in files for root in imported_roots(f) & set(FORBIDDEN[package])
    ]
    assert not violations, "layering broken:\n" + "\n".join(violations)


def test_checker_detects_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from app.hub import Hub\n    import simulators.physiology\n")
    assert imported_roots(bad) >= {"app", "simulators"}
