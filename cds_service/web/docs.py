"""Documentation pages: an index, one page per rule (the `source.url` of each card) and the
table of values in force, rendered by cds_service.ruledocs from the definitions the cards use.

Every route answers with or without a trailing slash; links are absolute paths, so they work
from either form.
"""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response, current_app, url_for

from ..guideline.cards import GUIDELINE_LABEL, RULES
from ..guideline.thresholds import Thresholds
from ..protocol.errors import UnknownService
from ..ruledocs import (REFERENCES, RULE_REFERENCES, SECTIONS, rule_text, threshold_rows,
                        thresholds_used)

bp = Blueprint("docs", __name__)

STYLE = ("body{font-family:system-ui,sans-serif;max-width:52em;margin:2em auto;line-height:1.5;"
         "padding:0 1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;"
         "text-align:left;vertical-align:top}")


def _page(title: str, body: str) -> Response:
    html = (f"<!doctype html><html lang=en><meta charset=utf-8><title>{escape(title)}</title>"
            f"<style>{STYLE}</style><h1>{escape(title)}</h1>{body}</html>")
    return Response(html, mimetype="text/html")


def _thresholds() -> Thresholds:
    return current_app.extensions["cds"].settings.thresholds


def _values_table(names: list[str] | None = None) -> str:
    """The values in force (and the defaults), each with its unit and CDS_GUIDELINE_* variable."""
    rows = [r for r in threshold_rows(_thresholds()) if names is None or r.name in names]
    if names is not None:
        rows.sort(key=lambda r: names.index(r.name))
    cells = "".join(
        f"<tr><td><code>{escape(r.variable)}</code></td><td>{escape(r.value)}</td>"
        f"<td class=\"default\">{escape(r.default)}</td><td>{escape(r.section)}</td><td>{escape(r.meaning)}</td>"
        + (f"<td>{_topic_links(r.topics)}</td>" if names is None else "") + "</tr>"
        for r in rows)
    head = ("<tr><th>variable</th><th>in force</th><th>default</th><th>section</th><th>meaning</th>"
            + ("<th>rules</th>" if names is None else "") + "</tr>")
    return f"<table>{head}{cells}</table>"


def _topic_links(topics: tuple[str, ...]) -> str:
    return ", ".join(f'<a href="{url_for("docs.rule", topic=t)}">{escape(t)}</a>' for t in topics) or "-"


def _rule_list() -> str:
    items = "".join(f'<li><a href="{url_for("docs.rule", topic=r.topic)}">{escape(r.title)}</a> '
                    f"(section {escape(r.section)})</li>"
                    for r in sorted(RULES.values(), key=lambda d: (int(d.section), d.topic)))
    return f"<ul>{items}</ul>"


@bp.get("/docs", strict_slashes=False)
def home() -> Response:
    body = (f"<p>What this CDS Hooks service decides and why. Each card links to the page of its rule; "
            f'discovery is at <a href="{url_for("cds.discovery")}"><code>/cds-services</code></a>.</p>'
            f"<h2>Rules</h2>{_rule_list()}"
            f"<h2>Values in force</h2><p>A deployment changes a value with its variable; the defaults "
            f"are those of the guideline.</p>{_values_table()}")
    return _page(GUIDELINE_LABEL, body)


@bp.get("/docs/rules", strict_slashes=False)
def index() -> Response:
    body = f"{_rule_list()}<h2>Values in force</h2>{_values_table()}"
    return _page(f"Rules — {GUIDELINE_LABEL}", body)


@bp.get("/docs/rules/<topic>", strict_slashes=False)
def rule(topic: str) -> Response:
    doc = RULES.get(topic)
    if doc is None:
        raise UnknownService("no rule with this topic; see /docs/rules")
    used = thresholds_used(doc)
    references = "".join(
        f"<li>{escape(REFERENCES[r].citation)}"
        + (f' <a href="{escape(REFERENCES[r].url)}">{escape(REFERENCES[r].url)}</a>' if REFERENCES[r].url else "")
        + "</li>" for r in RULE_REFERENCES.get(topic, ()))
    body = (f"<p><b>Card topic</b> <code>{escape(doc.topic)}</code> · guideline section "
            f"{escape(doc.section)} ({escape(SECTIONS.get(doc.section, ''))})</p>"
            f"<p>{escape(rule_text(doc, _thresholds()))}</p>"
            + (f"<h2>Values in force</h2>{_values_table(used)}" if used else "")
            + f"<h2>References</h2><ul class=\"references\">{references}</ul>"
            f'<p><a href="{url_for("docs.index")}">All rules and values</a></p>')
    return _page(f"{doc.title} — {GUIDELINE_LABEL}", body)
