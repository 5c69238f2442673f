"""The clinical rules as documentation, from the definitions the cards use (no Flask here).

The rule pages (``/docs/...``, ``web/docs.py``) and the repository's ``docs/clinical-rules.md``
are both rendered from this module: each card kind's ``RuleDoc`` (guideline/cards/catalogue.py), the
thresholds with their units (guideline/thresholds.py), the code lists (guideline/codes.py) and
the references below. Regenerate the document after changing any of them:

    cds-service docs          # writes docs/clinical-rules.md
    cds-service docs --check  # exit 1 when the committed file is out of date (a test runs it)
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from .config import threshold_variable
from .guideline import codes
from .guideline.cards import GUIDELINE_LABEL, RULES, RuleDoc
from .guideline.facts import number
from .guideline.thresholds import DEFAULT_THRESHOLDS, THRESHOLD_UNITS, Thresholds

DOCUMENT = Path("docs") / "clinical-rules.md"

# What each threshold decides, and its guideline section.
THRESHOLD_MEANINGS: dict[str, tuple[str, str]] = {
    "severe_below": ("3", "severe low magnesium below this"),
    "low_at_or_below": ("3", "low (mild-moderate) at or below this"),
    "target_above": ("3", "at the tacrolimus target from this"),
    "egfr_caution_below": ("3", "renal-impairment caution on supplementation below this eGFR"),
    "routine_interval_days": ("4", "routine monitoring interval"),
    "early_interval_days": ("4", "monitoring interval in the early phase"),
    "early_phase_days": ("4", "early phase after a transplant or tacrolimus start"),
    "inpatient_interval_days": ("4", "monitoring interval while hospitalized"),
    "symptom_window_days": ("5", "a symptom counts when this recent"),
    "order_recent_mg_days": ("6", "order hooks: magnesium 'not measured' beyond this"),
    "tacrolimus_high_above": ("7", "high tacrolimus level (whole blood) above this"),
    "tacrolimus_level_recent_days": ("7", "a tacrolimus level counts when this recent"),
    "egfr_rise_fraction": ("7", "an eGFR rise by this fraction counts as a factor"),
    "egfr_rise_window_days": ("7", "window of that eGFR rise"),
    "persistent_min_results": ("7", "low results needed for persistence"),
    "persistent_min_span_days": ("7", "days those low results must span"),
    "femg_window_hours": ("7", "FEMg inputs must lie within this many hours"),
    "femg_renal_wasting_above": ("7", "FEMg above this points to renal wasting"),
    # Added by the clinical and orders branches (guideline revision 2); listed ahead of the merge.
    "high_above": ("3", "high magnesium while a supplement is active above this"),
    "renal_function_recent_days": ("3", "eGFR or creatinine older than this is not used for the renal caution"),
    "body_weight_recent_days": ("3", "a body weight this recent gives children's doses in mg"),
    "dialysis_recent_days": ("3", "a dialysis procedure this recent means the patient is on dialysis"),
    "recently_stopped_days": ("1", "tacrolimus stopped this recently keeps the patient in scope"),
    "future_tolerance_minutes": ("2", "results dated later than now plus this are not used"),
    "tacrolimus_level_recent_days_late": ("7", "a tacrolimus level counts when this recent, after the first year"),
}

SECTIONS = {
    "1": "Who is in scope", "2": "Reading magnesium results", "3": "Severity",
    "4": "Monitoring interval", "5": "Symptoms", "6": "order-select and order-sign",
    "7": "Contributing factors and persistence", "8": "Drug lists", "9": "Codes", "10": "Cards",
}

# Sections without a card kind of their own, in a sentence each.
SECTION_NOTES = {
    "1": "Patients on systemic tacrolimus (the tacrolimus codes and names of the code lists below; "
         "topical forms excluded) are in scope; other patients get no cards.",
    "8": "The drugs that waste magnesium or change tacrolimus levels are in the drug lists below.",
    "9": "Every code list the rules use is listed below, each code with its system and display.",
    "10": "One card per kind, each with a stable topic, a summary of at most 140 characters, its "
          "evidence, and a link to its rule page (`/docs/rules/<topic>`).",
}


@dataclass(frozen=True)
class Reference:
    """A published source a rule rests on."""

    id: str
    citation: str
    url: str = ""


REFERENCES = {r.id: r for r in (
    Reference("seed", "Management of Hypomagnesemia in Patients Taking Tacrolimus (the seed guideline "
                      "summary of this project): thresholds, monitoring every 4-6 weeks, pitfalls."),
    Reference("kdigo", "KDIGO Clinical Practice Guideline for the Care of Kidney Transplant Recipients. "
                       "Am J Transplant 2009;9 Suppl 3: magnesium in recipients on calcineurin "
                       "inhibitors."),
    Reference("statpearls", "Hypomagnesemia. StatPearls, NCBI Bookshelf: reference range, oral and IV "
                            "replacement, caution in renal failure, FEMg interpretation."),
    Reference("prograf", "Prograf (tacrolimus) prescribing information: hypomagnesemia as an adverse "
                         "reaction; CYP3A inhibitors and inducers that change tacrolimus levels."),
    Reference("fda-ppi", "FDA Drug Safety Communication (2011): low magnesium levels with long-term "
                         "use of proton pump inhibitors."),
    Reference("fhir-observation", "HL7 FHIR R4 Observation: status, valueQuantity, comparator and "
                                  "UCUM units.", "https://hl7.org/fhir/R4/observation.html"),
    Reference("cds-hooks", "HL7 CDS Hooks 2.0: the patient-view, order-select and order-sign hooks, "
                           "cards and suggestions.", "https://cds-hooks.hl7.org/2.0/"),
)}

# The references of each card kind (a new card kind needs an entry: tests check it).
RULE_REFERENCES: dict[str, tuple[str, ...]] = {
    "mg-severity": ("seed", "statpearls", "kdigo"),
    "mg-monitoring": ("seed", "kdigo"),
    "mg-symptoms": ("statpearls", "seed"),
    "mg-contributing": ("prograf", "fda-ppi", "statpearls", "seed"),
    "mg-persistent": ("seed", "statpearls"),
    "mg-not-used": ("fhir-observation", "seed"),
    "mg-order-tacrolimus": ("prograf", "kdigo", "seed", "cds-hooks"),
    "mg-order-wasting": ("fda-ppi", "statpearls", "cds-hooks"),
    "mg-order-interaction": ("prograf", "cds-hooks"),
    "mg-femg": ("statpearls", "seed"),
    "mg-high": ("statpearls", "seed"),
}


def thresholds_used(doc: RuleDoc) -> list[str]:
    """The thresholds a rule's text names, in order of first mention."""
    names = [name for _, name, _, _ in string.Formatter().parse(doc.text) if name]
    return list(dict.fromkeys(names))


def _with_units(text: str) -> str:
    """The template with each threshold's unit after it, unless the text already says it."""
    def add(match: re.Match) -> str:
        name, spec = match.group(1), match.group(2) or ""
        unit = THRESHOLD_UNITS.get(name, "")
        # The whole unit may follow (a unit with spaces, "mL/min/1.73 m²", included).
        if not unit or spec.endswith("%") or match.string[match.end():].lstrip().startswith(unit) \
                or (unit == "fraction of the earlier eGFR"):
            return match.group(0)
        return f"{{{name}{spec}}}{'' if unit == '%' else ' '}{unit}"

    return re.sub(r"\{(\w+)(:[^}]*)?\}", add, text)


def rule_text(doc: RuleDoc, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> str:
    """The rule in words with the values of `thresholds`, each with its unit."""
    values = {f.name: getattr(thresholds, f.name) for f in fields(thresholds)}
    return _PLAIN_NUMBERS.format(_with_units(doc.text), **values)


class _PlainNumbers(string.Formatter):
    """Floats without a format spec as a clinician writes them (30, not 30.0)."""

    def format_field(self, value: object, format_spec: str) -> str:
        return str(_plain(value)) if not format_spec else super().format_field(value, format_spec)


_PLAIN_NUMBERS = _PlainNumbers()


def _plain(value: object) -> object:
    """A float as a clinician writes it (30, not 30.0; 1.0 stays 1.0); other values unchanged."""
    return number(value) if isinstance(value, float) else value


def value_text(name: str, value: object) -> str:
    """A threshold's value with its unit ('1.4 mEq/L', '42 days', '20 %')."""
    unit = THRESHOLD_UNITS.get(name, "")
    if unit == "fraction of the earlier eGFR" and isinstance(value, (int, float)):
        return f"{value} ({value:.0%} of the earlier eGFR)"
    return f"{_plain(value)} {unit}".strip()


@dataclass(frozen=True)
class ThresholdRow:
    """One line of the table of values in force."""

    name: str
    variable: str
    value: str
    default: str
    section: str
    meaning: str
    topics: tuple[str, ...]


def threshold_rows(thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[ThresholdRow]:
    """Every threshold: its variable, the value in force and the default, with units."""
    rows = []
    for f in fields(thresholds):
        section, meaning = THRESHOLD_MEANINGS.get(f.name, ("", ""))
        topics = tuple(t for t, doc in RULES.items() if f.name in thresholds_used(doc))
        rows.append(ThresholdRow(f.name, threshold_variable(f.name),
                                 value_text(f.name, getattr(thresholds, f.name)),
                                 value_text(f.name, getattr(DEFAULT_THRESHOLDS, f.name)),
                                 section, meaning, topics))
    return rows


def code_lists() -> Iterator[tuple[str, list]]:
    """The value sets of codes.py that are lists of codes (system, code, display)."""
    for name in sorted(vars(codes)):
        value = getattr(codes, name)
        if name.isupper() and isinstance(value, (tuple, frozenset)) and value \
                and all(hasattr(c, "system") and hasattr(c, "code") for c in value):
            yield name, sorted(value, key=lambda c: (str(c.system), str(c.code)))


def drug_lists() -> Iterator[tuple[str, list]]:
    """The drug groups of codes.py (section 8): each with a label, ingredients and brands."""
    for name in sorted(vars(codes)):
        value = getattr(codes, name)
        if name.isupper() and isinstance(value, tuple) and value \
                and all(hasattr(g, "label") and hasattr(g, "ingredients") for g in value):
            yield name, list(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """docs/clinical-rules.md: rules, values, code lists and references (default values)."""
    lines = [
        f"# Clinical rules: {GUIDELINE_LABEL}",
        "",
        "<!-- Generated by `cds-service docs` from cds_service/guideline/cards/catalogue.py,",
        "     thresholds.py, codes.py and cds_service/ruledocs.py. Do not edit: change those and regenerate. -->",
        "",
        "What the service decides and why, one part per card kind, with the default values; a",
        "deployment may change any value with its `CDS_GUIDELINE_*` variable, and its own pages",
        "(`/docs/rules/<topic>`) show the values in force there. Section numbers are those the",
        "cards cite (\"guideline section 3\"). This service supports, and does not replace,",
        "clinical judgement.",
        "",
        "## Values (defaults)",
        "",
        "| variable | default | section | meaning | card kinds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in threshold_rows():
        lines.append(f"| `{row.variable}` | {_cell(row.default)} | {row.section} | {_cell(row.meaning)} "
                     f"| {', '.join(f'`{t}`' for t in row.topics) or '-'} |")
    lines += ["", "## Sections", ""]
    for section, title in SECTIONS.items():
        lines += [f"### {section}. {title}", ""]
        if section in SECTION_NOTES:
            lines += [SECTION_NOTES[section], ""]
        for doc in sorted((d for d in RULES.values() if d.section == section), key=lambda d: d.topic):
            lines += [f"#### {doc.title}", "", f"Card topic `{doc.topic}`.", "", rule_text(doc), ""]
            used = thresholds_used(doc)
            if used:
                lines += ["Values: " + "; ".join(
                    f"`{threshold_variable(n)}` = {value_text(n, getattr(DEFAULT_THRESHOLDS, n))}"
                    for n in used) + ".", ""]
            lines += ["References: " + "; ".join(
                f"[{r}](#ref-{r})" for r in RULE_REFERENCES.get(doc.topic, ())) + ".", ""]
    lines += ["## Drug lists", "",
              "The drug groups of section 8, from `cds_service/guideline/codes.py` (RxNorm ingredient "
              "codes where codes.py lists one).", ""]
    for name, groups in drug_lists():
        lines += [f"### `{name}`", "", "| group | ingredients (RxNorm) | brands |", "| --- | --- | --- |"]
        for g in groups:
            ingredients = ", ".join(f"{i} ({c})" if c else i for i, c in dict(g.ingredients).items())
            brands = ", ".join(sorted(dict(getattr(g, "brands", {}) or {})))
            lines.append(f"| {_cell(str(g.label))} | {_cell(ingredients)} | {_cell(brands) or '-'} |")
        lines.append("")
    lines += ["## Code lists", "",
              "The codes the rules recognise (sections 8 and 9), from `cds_service/guideline/codes.py`.",
              ""]
    for name, entries in code_lists():
        lines += [f"### `{name}`", "", "| system | code | display |", "| --- | --- | --- |"]
        lines += [f"| {_cell(str(c.system))} | `{c.code}` | {_cell(str(getattr(c, 'display', '') or ''))} |"
                  for c in entries]
        lines.append("")
    lines += ["## References", ""]
    for ref in REFERENCES.values():
        url = f" <{ref.url}>" if ref.url else ""
        lines.append(f'- <a id="ref-{ref.id}"></a>**{ref.id}**: {ref.citation}{url}')
    return "\n".join(lines) + "\n"
