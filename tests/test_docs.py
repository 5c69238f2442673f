"""The documentation: /docs pages answer with or without a trailing slash, every number has its
unit, the values in force are listed with their variables, each rule has its own references, and
docs/clinical-rules.md is what the generator makes from the same definitions."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import fields
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cds_service import create_app
from cds_service.config import threshold_variable
from cds_service.guideline.cards import RULES
from cds_service.guideline.facts import number
from cds_service.guideline.thresholds import DEFAULT_THRESHOLDS, THRESHOLD_UNITS, Thresholds
from cds_service.ruledocs import (REFERENCES, RULE_REFERENCES, THRESHOLD_MEANINGS, markdown,
                                  rule_text, thresholds_used, value_text)

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["/docs", "/docs/", "/docs/rules", "/docs/rules/",
         *[f"/docs/rules/{t}" for t in RULES], *[f"/docs/rules/{t}/" for t in RULES]]


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.hrefs += [v for k, v in attrs if k == "href" and v]


def text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


@pytest.mark.parametrize("path", PAGES)
def test_every_docs_page_answers_with_or_without_a_slash(client, path):
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/html"


@pytest.mark.parametrize("path", ["/docs", "/docs/", "/docs/rules/", "/docs/rules/mg-severity/"])
def test_links_on_docs_pages_resolve_from_either_form(client, path):
    parser = Links()
    parser.feed(client.get(path).get_data(as_text=True))
    local = [h for h in parser.hrefs if h.startswith("/")]
    assert local
    for href in local:
        assert client.get(href).status_code == 200, (path, href)


def test_unknown_rule_is_404(client):
    assert client.get("/docs/rules/nope").status_code == 404
    assert client.get("/docs/rules/nope/").status_code == 404


def plain(value: object) -> str:
    """A threshold as the pages print it: floats as a clinician writes them (30, 1.0)."""
    return number(value) if isinstance(value, float) else str(value)


@pytest.mark.parametrize("topic", list(RULES))
def test_rule_pages_give_a_unit_with_every_threshold(client, topic):
    page = text_of(client.get(f"/docs/rules/{topic}").get_data(as_text=True))
    for name in thresholds_used(RULES[topic]):
        value, unit = getattr(DEFAULT_THRESHOLDS, name), THRESHOLD_UNITS[name]
        if name == "egfr_rise_fraction":
            assert f"{value:.0%}" in page
        else:
            shown = f"{plain(value)}%" if unit == "%" else f"{plain(value)} {unit}"
            assert shown in page, (name, shown)


def test_rule_text_never_leaves_a_threshold_without_its_unit():
    for doc in RULES.values():
        text = rule_text(doc)
        for name in thresholds_used(doc):
            unit = THRESHOLD_UNITS[name]
            if name == "egfr_rise_fraction" or unit == "%":
                continue
            shown = plain(getattr(DEFAULT_THRESHOLDS, name))
            # Another threshold of the rule may have the same number (30 days, eGFR 30): either unit.
            units = tuple(THRESHOLD_UNITS[n] for n in thresholds_used(doc)
                          if plain(getattr(DEFAULT_THRESHOLDS, n)) == shown)
            for match in re.finditer(rf"(?<![\d.]){re.escape(shown)}(?![\d.])", text):
                assert text[match.end():].lstrip().startswith(units), (doc.topic, name, text[match.start():][:40])


def test_the_values_in_force_are_listed_with_their_variables():
    app = create_app({"log_level": "WARNING", "thresholds": Thresholds(severe_below=0.9)})
    page = text_of(app.test_client().get("/docs").get_data(as_text=True))
    for f in fields(Thresholds):
        assert threshold_variable(f.name) in page
    assert "0.9 mEq/L" in page  # in force
    assert "1.0 mEq/L" in page  # the default beside it
    rule = text_of(app.test_client().get("/docs/rules/mg-severity/").get_data(as_text=True))
    assert "severe below 0.9 mEq/L" in rule and "CDS_GUIDELINE_SEVERE_BELOW" in rule


def test_each_rule_has_its_own_references(client):
    assert set(RULE_REFERENCES) == set(RULES), set(RULE_REFERENCES) ^ set(RULES)
    assert all(RULE_REFERENCES[t] and set(RULE_REFERENCES[t]) <= set(REFERENCES) for t in RULES)
    assert len({RULE_REFERENCES[t] for t in RULES}) > len(RULES) // 2  # not the same list everywhere
    page = client.get("/docs/rules/mg-order-wasting").get_data(as_text=True)
    assert "proton pump inhibitors" in page and "KDIGO" not in page
    page = client.get("/docs/rules/mg-not-used").get_data(as_text=True)
    assert "FHIR R4 Observation" in page and "Prograf" not in page


def test_every_threshold_is_explained():
    missing = {f.name for f in fields(Thresholds)} - set(THRESHOLD_MEANINGS)
    assert not missing


def test_value_text_has_units():
    assert value_text("severe_below", 1.0) == "1.0 mEq/L"
    assert value_text("routine_interval_days", 42) == "42 days"
    assert value_text("egfr_rise_fraction", 0.2) == "0.2 (20% of the earlier eGFR)"


def test_the_committed_rules_document_is_what_the_generator_makes():
    """Regenerate with `cds-service docs` after changing a rule, a threshold or a code list."""
    assert (ROOT / "docs" / "clinical-rules.md").read_text("utf-8") == markdown()


def test_docs_command_checks_and_writes(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "cds_service.cli", "docs", *a],  # noqa: E731
                                    cwd=tmp_path, capture_output=True, text=True, timeout=60)
    missing = run("--check")
    assert missing.returncode == 1 and "docs/clinical-rules.md is out of date" in missing.stderr
    assert run().returncode == 0
    assert (tmp_path / "docs" / "clinical-rules.md").read_text("utf-8") == markdown()
    assert run("--check").returncode == 0


# Files that may name the folder outside the repository, each saying why (the conformance
# examples are not ours to copy; see tests/test_conformance.py).
MAY_NAME_SHARED = {"tests/test_conformance.py", "tests/test_docs.py", "README.md"}
OUTSIDE_DOCUMENTS = ("GUIDELINE" + ".md", "STYLE" + ".md")  # split, so this file does not cite them


def repository_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:  # not a git checkout (an sdist): walk the tree
        return [p for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts]
    return [ROOT / name for name in listed.stdout.splitlines() if (ROOT / name).is_file()]


def test_nothing_cites_a_file_outside_the_repository():
    offenders = []
    for path in repository_files():
        if path.suffix not in (".py", ".md", ".toml", ".txt", ".cfg", ".json", ".html") and path.name != "Procfile":
            continue
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text("utf-8", errors="replace")
        if any(name in text for name in OUTSIDE_DOCUMENTS):
            offenders.append(rel)
        if ("../shared" in text or "/work/shared" in text) and rel not in MAY_NAME_SHARED:
            offenders.append(rel)
    assert not offenders
