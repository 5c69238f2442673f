"""What every card shares: the context, number and text formatting, fitting a summary into 140
characters, the link to the rule page, the source, the detail layout and the override reasons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ...protocol.response import Action, Card, Coding, Link, Source, Suggestion
from ..facts import LabResult, MedicationUse, Symptom, clip
from ..rules import Assessment
from ..suggestions import OrderContext, lab_order
from ..thresholds import Thresholds
from .catalogue import RULES

SUMMARY_LIMIT = 140
TOPIC_SYSTEM = "urn:tacrolimus-magnesium-cds:card-kind"
GUIDELINE_LABEL = "Tacrolimus–magnesium guideline"
OVERRIDE_SYSTEM = "urn:tacrolimus-magnesium-cds:override-reason"
ALREADY_ADDRESSED = Coding(OVERRIDE_SYSTEM, "already-addressed", "Already addressed")
PATIENT_DECLINED = Coding(OVERRIDE_SYSTEM, "patient-declined", "Patient declined")
NOT_RELEVANT = Coding(OVERRIDE_SYSTEM, "not-relevant", "Not clinically relevant")
LAB_ELSEWHERE = Coding(OVERRIDE_SYSTEM, "lab-elsewhere", "Lab ordered elsewhere")
BENEFIT_OUTWEIGHS = Coding(OVERRIDE_SYSTEM, "benefit-outweighs-risk", "Benefit outweighs the risk")
TRANSPLANT_TEAM = Coding(OVERRIDE_SYSTEM, "transplant-team-aware", "Transplant team already managing")
OVERRIDE_REASONS = (ALREADY_ADDRESSED, PATIENT_DECLINED, NOT_RELEVANT, LAB_ELSEWHERE,
                    BENEFIT_OUTWEIGHS, TRANSPLANT_TEAM)
LINK_LABEL = "How this advice is derived"
# Cards about a drug being ordered (section 6); the others are about the patient's magnesium.
ORDER_TOPICS = frozenset({"mg-order-tacrolimus", "mg-order-wasting", "mg-order-interaction"})
_DRUG_ORDER_TOPICS = frozenset({"mg-order-wasting", "mg-order-interaction"})


@dataclass(frozen=True)
class CardContext:
    """What cards need besides the findings: the orders' context and where rule pages live."""

    orders: OrderContext
    thresholds: Thresholds
    docs_base_url: str  # e.g. "https://cds.example.org/docs/rules"


# --------------------------------------------------------------------------------------------
# Formatting


def mg_text(result: LabResult) -> str:
    """'Mg 1.1 mg/dL (0.91 mEq/L)': the lab's unit, with mEq/L where it differs."""
    text = f"Mg {result.shown}"
    if result.normalised is not None and result.unit.replace(" ", "").lower() not in ("meq/l",):
        text += f" ({result.comparator or ''}{_meq_text(result.normalised)} mEq/L)"
    return text


def mg_dated(result: LabResult) -> str:
    """'Mg 0.9 mEq/L (2026-11-24)' or 'Mg 1.3 mg/dL (1.07 mEq/L, 2026-11-23)' for summaries."""
    text = mg_text(result)
    if text.endswith(")"):
        return f"{text[:-1]}, {result.day})"
    return f"{text} ({result.day})"


def short_drug(name: str) -> str:
    """'magnesium oxide 400 MG Oral Tablet' -> 'magnesium oxide' (summaries must stay short)."""
    found = re.match(r"(?i)\s*(magnesium \w+)", name)
    return found.group(1).lower() if found else clip(name, 30)


def _meq_text(value: float) -> str:
    """Two decimals, or three when rounding would land on a tenth (where the section 3
    thresholds sit): 1.21 mg/dL is 0.996 mEq/L (severe), never shown as "1.00"."""
    text = f"{value:.2f}"
    if text.endswith("0") and abs(float(text) - value) > 1e-9:
        text = f"{value:.3f}"
    return text


_SEPARATORS = ("; ", ", ", ": ", " — ", " (")


def fit(summary: str) -> str:
    """Keep summaries within the spec's 140 characters. The builders budget their lists (see
    `listing`); this is the safety net: cut at the last separator, else the last space, never
    inside a word, and mark the cut with an ellipsis."""
    if len(summary) <= SUMMARY_LIMIT:
        return summary
    head = summary[:SUMMARY_LIMIT - 1]
    cut = max(head.rfind(sep) for sep in _SEPARATORS)
    if cut < SUMMARY_LIMIT // 2:
        cut = head.rfind(" ")
    if cut <= 0:  # one unbroken token (hostile input): nothing better than a hard cut
        cut = len(head)
    return head[:cut].rstrip(" ,;:—(") + "…"


def listing(items: list[str], room: int) -> str:
    """Items joined with ', ' within `room` characters; what does not fit is counted, never
    cut: 'omeprazole, furosemide +2'."""
    items = list(dict.fromkeys(items))
    for shown in range(len(items), 0, -1):
        text = ", ".join(items[:shown])
        if shown < len(items):
            text += f" +{len(items) - shown}"
        if len(text) <= room:
            return text
    return f"{items[0]} +{len(items) - 1}" if len(items) > 1 else items[0]


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


# RxNorm's normalised names shout their units and dose forms ("omeprazole 20 MG Delayed
# Release Oral Capsule"); a clinician writes "omeprazole 20 mg delayed-release oral capsule".
_UNIT_WORDS = {"MG": "mg", "ML": "mL", "MCG": "mcg", "G": "g", "UNT": "units", "MEQ": "mEq",
               "HR": "h", "ACTUAT": "actuation"}
_FORM_WORDS = re.compile(
    r"\b(Oral|Tablet|Capsule|Delayed|Release|Extended|Injection|Injectable|Solution|Suspension|"
    r"Topical|Cream|Ointment|Chewable|Disintegrating|Prefilled|Syringe|Troche|Lozenge|Pack|"
    r"Powder|Product|Shampoo|Lotion|Intravenous|Vaginal|Film|Coated|Enteric|Granules|Packet|"
    r"Sprinkle|Buccal|Sublingual|Effervescent)\b")


@lru_cache(maxsize=2048)  # drug names, not patient data: the same few in every call (README Security)
def clinical_name(name: str) -> str:
    """A drug name as a clinician writes it (RxNorm capitals and all-caps EHR text lowered)."""
    if name.isupper():
        return name.lower()
    text = re.sub(r"(?<=\d) ?(MG|ML|MCG|G|UNT|MEQ|HR|ACTUAT)\b",
                  lambda m: " " + _UNIT_WORDS[m.group(1)], name)
    text = re.sub(r"/(MG|ML|MCG|G|UNT|MEQ|HR|ACTUAT)\b", lambda m: "/" + _UNIT_WORDS[m.group(1)], text)
    text = _FORM_WORDS.sub(lambda m: m.group(1).lower(), text)
    return text.replace("delayed release", "delayed-release").replace("extended release", "extended-release")


def first_fitting(*candidates: str) -> str:
    """The first summary that fits in 140 characters (most complete first), else the last one
    cut: a summary keeps its action rather than lose it to a cut (section 10)."""
    for candidate in candidates:
        if len(candidate) <= SUMMARY_LIMIT:
            return candidate
    return candidates[-1]


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines if line)


def _rule_page(ctx: CardContext, topic: str) -> str:
    return f"{ctx.docs_base_url}/{topic}"


def _source(ctx: CardContext, topic: str) -> Source:
    rule = RULES[topic]
    return Source(label=f"{GUIDELINE_LABEL}, section {rule.section}",
                  url=_rule_page(ctx, topic),
                  topic=Coding(TOPIC_SYSTEM, topic, rule.title))


def _reference(topic: str) -> str:
    rule = RULES[topic]
    return (f"*Rule:* {rule.title} (guideline section {rule.section}); reference: "
            "Management of Hypomagnesemia in Patients Taking Tacrolimus; KDIGO transplant "
            "recipient guideline 2009.")


def _not_read(assessment: Assessment) -> list[str]:
    lines = [f"Could not read a magnesium result of {r.day} ({r.shown}): "
             f"{r.unreadable_reason or 'a lower bound cannot be classified'}; it was not used."
             for r in assessment.unreadable]
    lines += [f"Preliminary magnesium result of {r.day}: {mg_text(r)}; not used until final."
              for r in assessment.preliminary]
    lines += [f"A result dated {r.day}, in the future, was not used ({mg_text(r)}): check its date."
              for r in assessment.future]
    if assessment.unavailable:
        lines.append("Not available from the EHR: " + ", ".join(assessment.unavailable)
                     + "; rules needing them may be incomplete.")
    return lines


def _detail(evidence: list[str], advice: list[str], assessment: Assessment, topic: str) -> str:
    parts = ["**Evidence**", _bullets(evidence)]
    if advice:
        parts += ["", "**Recommendation**", _bullets(advice)]
    missing = _not_read(assessment)
    if missing:
        parts += ["", "**Not known**", _bullets(missing)]
    parts += ["", _reference(topic)]
    return "\n".join(parts)


def _tacrolimus_line(a: Assessment) -> str:
    """Section 1: 'on tacrolimus', 'tacrolimus on hold' or 'tacrolimus stopped on DATE'."""
    use = a.tacrolimus
    if a.starting_tacrolimus:
        return "Systemic tacrolimus is being ordered (no active tacrolimus on record)."
    if use is not None and use.state == "starting":
        # Sections 4 and 6: an earlier order (stopped long ago) makes this one a renewal.
        return "Systemic tacrolimus is being ordered again (an earlier tacrolimus order is on record)."
    if use is not None and use.state == "on-hold":
        return "Tacrolimus on hold (its effect on magnesium outlasts a hold)."
    if use is not None and use.state == "stopped":
        when = use.stopped_on.date().isoformat() if use.stopped_on else "recently"
        return (f"Tacrolimus stopped on {when}: renal magnesium wasting outlasts the drug, so the "
                "guideline still applies.")
    return "Patient on systemic tacrolimus."


def _asks_for_a_lab(suggestions: tuple[Suggestion, ...]) -> bool:
    return any(a.type == "create" and (a.resource or {}).get("resourceType") == "ServiceRequest"
               for s in suggestions for a in s.actions)


def override_reasons(topic: str, suggestions: tuple[Suggestion, ...]) -> tuple[Coding, ...]:
    """Reasons that fit the card (section 10): "lab ordered elsewhere" only where the card asks
    for a lab; "patient declined" only where it proposes something; drug-order cards add
    "benefit outweighs the risk" and, for interactions, "transplant team already managing"."""
    reasons = [ALREADY_ADDRESSED]
    if suggestions:
        reasons.append(PATIENT_DECLINED)
    reasons.append(NOT_RELEVANT)
    if _asks_for_a_lab(suggestions):
        reasons.append(LAB_ELSEWHERE)
    if topic in _DRUG_ORDER_TOPICS:
        reasons.append(BENEFIT_OUTWEIGHS)
    if topic == "mg-order-interaction":
        reasons.append(TRANSPLANT_TEAM)
    return tuple(reasons)


def _card(ctx: CardContext, topic: str, indicator: str, summary: str, detail: str,
          suggestions: tuple[Suggestion, ...] = ()) -> Card:
    source = _source(ctx, topic)
    return Card(summary=fit(summary), indicator=indicator, source=source,
                detail=detail, suggestions=suggestions,
                selectionBehavior="any" if suggestions else None,
                overrideReasons=override_reasons(topic, suggestions),
                links=(Link(LINK_LABEL, _rule_page(ctx, topic), "absolute"),))


def _create(label: str, description: str, *resources: dict, recommended: bool | None = None) -> Suggestion:
    return Suggestion(label=label, isRecommended=recommended,
                      actions=tuple(Action("create", description, resource=r) for r in resources))


def stop_active_orders(medications: tuple[MedicationUse, ...], why: str) -> list[Suggestion]:
    """A not-recommended `delete` of each active MedicationRequest (the clinician decides):
    statements and administrations are records, not orders, and get none."""
    return [Suggestion(label=f"Stop {clinical_name(m.name)}", isRecommended=False,
                       actions=(Action("delete", f"Stop {clinical_name(m.name)} ({why})",
                                       resourceId=f"MedicationRequest/{m.request_id}"),))
            for m in medications if m.request_id and m.resource_type == "MedicationRequest"]


def _symptom_names(symptoms: tuple[Symptom, ...]) -> str:
    """The symptoms in running text: 'seizure', 'atrial fibrillation with RVR' (acronyms kept)."""
    return ", ".join(sorted({_in_sentence(s.name) for s in symptoms}))


def _in_sentence(name: str) -> str:
    """A name inside a sentence: all-caps EHR text lowered, else every word but acronyms."""
    if name.isupper():
        return name.lower()
    return " ".join(word if word.isupper() else word.lower() for word in name.split(" "))


def _repeat_mg(ctx: CardContext, within_days: float, why: str, *, not_before_days: float = 0) -> Suggestion:
    """A serum Mg order due within `within_days`; with `not_before_days`, not drawn before
    (a recheck "in 1–2 weeks" measures what oral magnesium did: not with tomorrow's bloods)."""
    test = ctx.orders.serum_mg_order
    return _create(f"Order serum magnesium ({why})", f"Order {test.display}",
                   lab_order(ctx.orders, test, within_days=within_days, note=why,
                             starting_in_days=not_before_days))


def _drug_names(medications: tuple[MedicationUse, ...]) -> str:
    return ", ".join(dict.fromkeys(clinical_name(m.name) for m in medications))
