"""CONTRIBUTING.md points at files and names that exist: a checklist that names a moved module
or a renamed table sends the next engineer looking for nothing."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEXT = (ROOT / "CONTRIBUTING.md").read_text("utf-8")
PATHS = sorted(set(re.findall(r"`((?:[\w.]+/)*[\w.]+\.(?:py|json|md))`", TEXT)))
# `module.NAME` or `package/module.NAME`: the module under cds_service/ (or tests/), then the name.
NAMES = sorted({(module, name) for module, name in
                re.findall(r"`((?:tests/|[a-z_]+/)?[a-z_0-9]+)\.([A-Za-z_][A-Za-z0-9_]*)`", TEXT)
                if name not in ("py", "json", "md")})


def _exists(relative: str) -> bool:
    bases = (ROOT, ROOT / "cds_service", ROOT / "cds_service" / "guideline", ROOT / "cds_service" / "web",
             ROOT / "fhir_fixtures")
    return any((base / relative).exists() for base in bases)


@pytest.mark.parametrize("relative", PATHS)
def test_every_file_named_exists(relative):
    assert _exists(relative), relative


def _module(path: str):
    dotted = path.replace("/", ".")
    for prefix in ("cds_service.", "cds_service.guideline.", ""):
        try:
            return importlib.import_module(prefix + dotted)
        except ModuleNotFoundError:
            continue
    return None


@pytest.mark.parametrize("module, name", NAMES)
def test_every_module_attribute_named_exists(module, name):
    found = _module(module)
    if found is None:
        pytest.skip(f"{module} is not a module (e.g. a command)")
    assert hasattr(found, name), f"{module}.{name}"
