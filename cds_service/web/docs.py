"""One small documentation page per rule (the `source.url` of each card), generated from the
same definitions the cards use, with the thresholds in force."""

from __future__ import annotations

from dataclasses import asdict
from html import escape

from flask import Blueprint, Response, current_app

from ..guideline.cards import GUIDELINE_LABEL, RULES
from ..guideline.facts import number
from ..protocol.errors import UnknownService

bp = Blueprint("docs", __name__)

REFERENCES = (
    "Management of Hypomagnesemia in Patients Taking Tacrolimus (seed guideline summary).",
    "KDIGO Clinical Practice Guideline for the Care of Kidney Transplant Recipients. "
    "Am J Transplant 2009;9 Suppl 3.",
    "Hypomagnesemia. StatPearls, NCBI Bookshelf.",
    "Prograf (tacrolimus) prescribing information: hypomagnesemia; CYP3A inhibitors and inducers.",
    "FDA Drug Safety Communication (2011): low magnesium with long-term proton pump inhibitor use.",
    "HL7 CDS Hooks 2.0.",
)


def _page(title: str, body: str) -> Response:
    html = (f"<!doctype html><html lang=en><meta charset=utf-8><title>{escape(title)}</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:46em;margin:2em auto;"
            "line-height:1.5;padding:0 1em}</style>"
            f"<h1>{escape(title)}</h1>{body}</html>")
    return Response(html, mimetype="text/html")


@bp.get("/docs/rules")
def index() -> Response:
    items = "".join(f'<li><a href="rules/{escape(r.topic)}">{escape(r.title)}</a> '
                    f"(section {escape(r.section)})</li>" for r in RULES.values())
    return _page(GUIDELINE_LABEL, f"<ul>{items}</ul>")


@bp.get("/docs/rules/<topic>")
def rule(topic: str) -> Response:
    doc = RULES.get(topic)
    if doc is None:
        raise UnknownService("no rule with this topic")
    # Numbers as a clinician writes them (1.0, not 1), whatever the deployment set.
    thresholds = {name: (number(value) if isinstance(value, float) and name != "egfr_rise_fraction" else value)
                  for name, value in asdict(current_app.extensions["cds"].settings.thresholds).items()}
    references = "".join(f"<li>{escape(r)}</li>" for r in REFERENCES)
    body = (f"<p><b>Card topic</b> <code>{escape(doc.topic)}</code> · guideline section "
            f"{escape(doc.section)}</p><p>{escape(doc.text.format(**thresholds))}</p>"
            f"<p>Values shown are the thresholds in force in this deployment.</p>"
            f"<h2>References</h2><ul>{references}</ul>")
    return _page(f"{doc.title} — {GUIDELINE_LABEL}", body)
