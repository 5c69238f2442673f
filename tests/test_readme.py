"""The README stays true: its commands are CI's, and every setting it documents exists."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from cds_service.config import Settings
from cds_service.guideline.thresholds import Thresholds

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    test_command = re.search(r"Run the tests:\n\n```sh\n(.+)\n```", README).group(1)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_every_setting_is_documented_with_its_default():
    for f in fields(Settings):
        if f.name == "thresholds":
            continue
        row = re.search(rf"\| `CDS_{f.name.upper()}` \| ([^|]+) \|", README)
        assert row, f.name
        if f.default != "":
            assert row.group(1).strip().strip("`") == str(f.default), f.name


def test_every_threshold_is_documented_with_its_default():
    for f in fields(Thresholds):
        row = re.search(rf"\| `CDS_GUIDELINE_{f.name.upper()}` \| ([^|]+) \|", README)
        assert row and row.group(1).strip() == str(f.default), f.name


def test_procfile_serves_the_factory_with_gunicorn_on_port():
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    assert "gunicorn" in web and "$PORT" in web.replace("${PORT", "$PORT") and "cds_service:create_app()" in web
