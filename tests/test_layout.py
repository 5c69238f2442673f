"""Where code lives: bench/ and fhir_fixtures/ are tools of their own and never import the
test suite; shared helpers are in cds_service.testing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted([*ROOT.glob("bench/*.py"), *ROOT.glob("fhir_fixtures/*.py"),
                                         *ROOT.glob("cds_service/**/*.py")]),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_outside_tests_imports_the_test_suite(path):
    assert not {m for m in imported_modules(path) if m == "tests" or m.startswith("tests.")}


def test_the_service_does_not_import_its_test_helpers():
    for path in (ROOT / "cds_service").rglob("*.py"):
        if "testing" not in path.relative_to(ROOT).parts:
            assert not {m for m in imported_modules(path) if "testing" in m.split(".")}, path
