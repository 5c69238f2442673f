"""The oldest Python admitted (pyproject's requires-python) is the one CI runs.

3.10 is not admitted: its datetime.fromisoformat rejects FHIR instants with 1-5 fractional
digits ("2026-11-20T10:00:00.5Z" is valid FHIR), so a magnesium result would lose its date
there (and not be used) while 3.11 reads it. Debian 12, where CI runs, ships 3.11.
"""

from __future__ import annotations

import sys
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cds_service.guideline.facts import parse_datetime

ROOT = Path(__file__).resolve().parent.parent


def test_requires_python_is_the_version_ci_runs():
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    assert sys.version_info >= (3, 11)


@pytest.mark.parametrize("text, expected", [
    ("2026-11-20T10:00:00.5Z", datetime(2026, 11, 20, 10, 0, 0, 500000, tzinfo=timezone.utc)),
    ("2026-11-20T10:00:00.1234+01:00", datetime(2026, 11, 20, 9, 0, 0, 123400, tzinfo=timezone.utc)),
    ("2026-11-20T10:00:00Z", datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)),
])
def test_fhir_instants_with_any_fraction_of_a_second_are_read(text, expected):
    """FHIR instant/dateTime allow any number of fractional digits (what 3.10 cannot parse)."""
    assert parse_datetime(text) == expected
