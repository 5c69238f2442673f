"""Findings -> CDS Hooks cards (GUIDELINE.md section 10).

One card per kind, each with a stable `topic`, a summary of at most 140 characters that starts
with the finding, its number and its date, a short markdown detail with the evidence and what
could not be read, and suggestions that are valid FHIR R4 resources.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import re

from ..protocol.response import INDICATOR_ORDER, Action, Card, Coding, Link, Source, Suggestion
from . import codes
from .facts import LabResult, MedicationUse, Symptom, number
from .orders import (InteractingDrugOrdered, InteractionStrength, TacrolimusStart, WastingDrugOrdered,
                     interaction_strength)
from .rules import (Assessment, ContributingFactors, FemgFinding, MonitoringDue, PersistentLow,
                    ResultsNotUsed, Severity, SeverityFinding, SymptomsWithNormalMagnesium)
from .suggestions import (OrderContext, famotidine_instead, intravenous_magnesium, is_mappable,
                          lab_order, oral_magnesium, renal_caution_text)
from .thresholds import MG_UNIT_TO_MEQ_PER_L, Thresholds

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
class RuleDoc:
    """A card kind: its stable topic code, title, guideline section and the rule in words.

    `text` names thresholds in braces; the documentation page fills in the values in force, so
    the page and the code cannot disagree.
    """

    topic: str
    title: str
    section: str
    text: str


RULES = {doc.topic: doc for doc in (
    RuleDoc("mg-severity", "Severity of low serum magnesium", "3",
            "The latest usable serum magnesium (final, amended or corrected; converted to mEq/L; "
            "the lowest of several at the same time) is classed: severe below {severe_below} mEq/L "
            "(critical); symptomatic at or below {low_at_or_below} mEq/L with a symptom recorded in "
            "the last {symptom_window_days} days (critical); mild-moderate from {severe_below} mEq/L "
            "to {low_at_or_below} mEq/L inclusive (warning); below target above {low_at_or_below} "
            "mEq/L and below {target_above} mEq/L (info); at target from {target_above} mEq/L. "
            "Mild-moderate: oral magnesium oxide 400 mg twice daily, recheck in 1–2 weeks. Severe or "
            "symptomatic: IV magnesium sulfate 2 g over 1 hour, recheck within 24 hours. With eGFR "
            "below {egfr_caution_below} mL/min/1.73 m² every supplementation suggestion carries a "
            "caution."),
    RuleDoc("mg-monitoring", "Serum magnesium monitoring interval", "4",
            "A patient on systemic tacrolimus is due a serum magnesium when no usable result exists "
            "within the interval that applies, the shortest winning: every {routine_interval_days} "
            "days routinely; every {early_interval_days} days in the first {early_phase_days} days "
            "after a transplant or after tacrolimus was started; every {inpatient_interval_days} "
            "days while hospitalized. Never measured counts as due."),
    RuleDoc("mg-symptoms", "Symptoms with normal serum magnesium", "5",
            "A symptom of hypomagnesemia (muscle cramp, tremor, seizure, tetany, arrhythmia, QT "
            "prolongation) recorded in the last {symptom_window_days} days with a serum magnesium "
            "at target ({target_above} mEq/L or more): serum levels may not reflect body stores; "
            "consider ionized magnesium, FEMg or an empirical trial. Above {low_at_or_below} mEq/L "
            "and below {target_above} mEq/L the below-target card names the symptom instead."),
    RuleDoc("mg-contributing", "Factors worsening magnesium loss", "7",
            "With the latest magnesium at or below {low_at_or_below} mEq/L: active drugs that "
            "waste magnesium (each with a suggestion to stop it), a tacrolimus level above "
            "{tacrolimus_high_above} ng/mL or the lab's range (no level in the last "
            "{tacrolimus_level_recent_days} days: suggest one), drugs that raise tacrolimus "
            "levels, and eGFR up by {egfr_rise_fraction:.0%} or more within "
            "{egfr_rise_window_days} days."),
    RuleDoc("mg-persistent", "Persistent hypomagnesemia despite supplementation", "7",
            "At least {persistent_min_results} results at or below {low_at_or_below} mEq/L "
            "spanning {persistent_min_span_days} days or more, all after an active magnesium "
            "supplement was started: increase or split the dose, check adherence and GI losses, "
            "measure FEMg, review tacrolimus and interacting drugs, consider amiloride and the "
            "transplant nephrology team."),
    RuleDoc("mg-not-used", "Magnesium results that could not be used", "2",
            "A serum magnesium result that cannot be interpreted (unknown unit, no value, a lower "
            "bound below target) or is still preliminary never drives a severity. When no other "
            "card applies and such a result is newer than the one used, an info card asks for it "
            "to be checked, so it is never ignored silently."),
    RuleDoc("mg-order-tacrolimus", "Starting tacrolimus: baseline magnesium and monitoring plan", "6",
            "When systemic tacrolimus is ordered for a patient not yet on it (a renewal is not a "
            "start): a baseline serum magnesium and the monitoring plan, every "
            "{early_interval_days} days for the first {early_phase_days} days, then every "
            "{routine_interval_days} days. A warning when magnesium is low (at or below "
            "{low_at_or_below} mEq/L) or not measured in the last {order_recent_mg_days} days, "
            "else info (the suggestion is then the first check of the plan, not a new baseline); "
            "no card when a recent normal result exists and a magnesium order is already in place."),
    RuleDoc("mg-order-wasting", "Ordering a drug that worsens magnesium loss", "6",
            "Ordering a magnesium-wasting drug (loop and thiazide diuretics, proton pump "
            "inhibitors, aminoglycosides, amphotericin B, platinum drugs, foscarnet, pentamidine, "
            "EGFR antibodies, cyclosporine) for a patient on tacrolimus: a card naming the drug and "
            "the latest magnesium, a warning when it is at or below {low_at_or_below} mEq/L, below "
            "target ({target_above} mEq/L) or not measured in the last {routine_interval_days} days "
            "(recheck in 1–2 weeks), info when it is at target. For an oral PPI, famotidine 20 mg "
            "(dosed to renal function) is offered in its place: the famotidine order is created "
            "first, then the PPI draft removed. An IV PPI gets no swap (IV famotidine is "
            "mentioned)."),
    RuleDoc("mg-order-interaction", "Ordering a drug that changes tacrolimus levels", "6",
            "Ordering a drug that raises (azoles including oral clotrimazole, macrolides other than "
            "azithromycin, diltiazem, verapamil, protease inhibitors and boosters, letermovir, "
            "amiodarone, grapefruit) or lowers (rifamycins, enzyme-inducing anticonvulsants, St "
            "John's wort) tacrolimus levels, naming the interacting ingredient (for "
            "nirmatrelvir/ritonavir: ritonavir). Ritonavir or cobicistat: critical, tacrolimus "
            "usually held or sharply reduced with the transplant team before the first dose, trough "
            "on day 2–3. Ketoconazole, itraconazole, voriconazole, posaconazole, clarithromycin: "
            "warning, a dose reduction is usually needed, trough within 2–3 days. Others: warning, "
            "trough and magnesium within about a week. Topical forms (shampoo, cream) do not count."),
    RuleDoc("mg-femg", "Fractional excretion of magnesium (FEMg)", "7",
            "With low magnesium, FEMg (%) = (U_Mg x S_Cr) / (0.7 x S_Mg x U_Cr) x 100 from results "
            "within {femg_window_hours} hours of each other. Above {femg_renal_wasting_above}%: "
            "renal wasting (expected on tacrolimus); below: extrarenal loss. Without FEMg, the "
            "severity card suggests urine magnesium, urine and serum creatinine on the day of the "
            "next serum magnesium."),
)}


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


def clinical_name(name: str) -> str:
    """A drug name as a clinician writes it (RxNorm capitals and all-caps EHR text lowered)."""
    if name.isupper():
        return name.lower()
    text = re.sub(r"(?<=\d) ?(MG|ML|MCG|G|UNT|MEQ|HR|ACTUAT)\b",
                  lambda m: " " + _UNIT_WORDS[m.group(1)], name)
    text = re.sub(r"/(MG|ML|MCG|G|UNT|MEQ|HR|ACTUAT)\b", lambda m: "/" + _UNIT_WORDS[m.group(1)], text)
    text = _FORM_WORDS.sub(lambda m: m.group(1).lower(), text)
    return text.replace("delayed release", "delayed-release").replace("extended release", "extended-release")


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines if line)


def _source(ctx: CardContext, topic: str) -> Source:
    rule = RULES[topic]
    return Source(label=f"{GUIDELINE_LABEL}, section {rule.section}",
                  url=f"{ctx.docs_base_url}/{topic}",
                  topic=Coding(TOPIC_SYSTEM, topic, rule.title))


def _reference(topic: str) -> str:
    rule = RULES[topic]
    return (f"*Rule:* {rule.title} (guideline section {rule.section}); reference: "
            "Management of Hypomagnesemia in Patients Taking Tacrolimus; KDIGO transplant "
            "recipient guideline 2009.")


def _not_read(assessment: Assessment) -> list[str]:
    lines = [f"Could not read a magnesium result of {r.day} ({r.shown}): {r.unreadable_reason or 'a lower bound cannot be classified'}; it was not used."
             for r in assessment.unreadable]
    lines += [f"Preliminary magnesium result of {r.day}: {mg_text(r)}; not used until final."
              for r in assessment.preliminary]
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


def _who(a: Assessment) -> str:
    return "starting tacrolimus" if a.starting_tacrolimus else "patient on tacrolimus"


def _tacrolimus_line(a: Assessment) -> str:
    if a.starting_tacrolimus:
        return "Systemic tacrolimus is being ordered (no active tacrolimus on record)."
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
                links=(Link(LINK_LABEL, source.url, "absolute"),))


def _create(label: str, description: str, *resources: dict, recommended: bool | None = None) -> Suggestion:
    return Suggestion(label=label, isRecommended=recommended,
                      actions=tuple(Action("create", description, resource=r) for r in resources))


def _symptom_names(symptoms: tuple[Symptom, ...]) -> str:
    return ", ".join(sorted({s.name.lower() for s in symptoms}))


def _repeat_mg(ctx: CardContext, within_days: float, why: str) -> Suggestion:
    test = ctx.orders.serum_mg_order
    return _create(f"Order serum magnesium ({why})", f"Order {test.display}",
                   lab_order(ctx.orders, test, within_days=within_days, note=why))


# --------------------------------------------------------------------------------------------
# One builder per finding


_SEVERITY_TITLES = {
    Severity.SEVERE: "Severe hypomagnesemia",
    Severity.SYMPTOMATIC: "Symptomatic hypomagnesemia",
    Severity.MILD_MODERATE: "Hypomagnesemia (mild-moderate)",
    Severity.BELOW_TARGET: "Magnesium below target",
}


def _days_old(result: LabResult, ctx: CardContext) -> int:
    return (ctx.orders.now - result.when).days


def _target_text(t: Thresholds) -> str:
    """The target in the three units labs report (section 2's factors)."""
    target = t.target_above
    return (f"≥ {target:g} mEq/L ({target / MG_UNIT_TO_MEQ_PER_L['mg/dl']:.2f} mg/dL, "
            f"{target / MG_UNIT_TO_MEQ_PER_L['mmol/l']:.2f} mmol/L)")


def severity_card(f: SeverityFinding, a: Assessment, ctx: CardContext) -> Card:
    t = ctx.thresholds
    latest = f.latest
    low = f.severity.is_low
    summary = f"{_SEVERITY_TITLES[f.severity]}: {mg_text(latest)} on {latest.day}"
    if f.symptoms and low:
        summary += f" with {_symptom_names(f.symptoms)}"
    if f.stale:
        summary += f" ({_days_old(latest, ctx)} days ago: repeat)"
    if a.preliminary:
        summary += f"; preliminary {mg_text(a.preliminary[0])} on {a.preliminary[0].day}"
    summary += f" — {_who(a)}"
    caution = renal_caution_text(f.renal_caution)
    evidence = [f"Latest serum {mg_text(latest)} on {latest.day} (status {latest.status}).",
                _tacrolimus_line(a)]
    if f.symptoms:
        evidence.append(f"Symptoms in the last {t.symptom_window_days} days: {_symptom_names(f.symptoms)}.")
    if f.supplements:
        evidence.append(f"On {_drug_names(f.supplements)}.")
    if f.egfr is not None:
        evidence.append(f"Latest eGFR {f.egfr.shown} on {f.egfr.day}.")
    if a.ionized is not None:
        evidence.append(f"Ionized magnesium {a.ionized.shown} on {a.ionized.day} (shown only; not classified with serum thresholds).")
    if latest.comparator in ("<", "<="):
        evidence.append(f"Reported as an upper bound ({latest.shown}): the true value may be lower.")
    advice: list[str] = []
    if a.preliminary:
        advice.append(f"Confirm the preliminary result of {a.preliminary[0].day} "
                      f"({mg_text(a.preliminary[0])}) today.")
    if f.stale:
        advice.append(f"This result is {_days_old(latest, ctx)} days old, beyond the "
                      f"{f.interval.days}-day monitoring interval ({f.interval.reason}): repeat it now.")
    if f.severity is Severity.BELOW_TARGET:
        advice.append(f"Target {_target_text(t)}. Not low enough for supplementation by the "
                      "guideline: consider dietary magnesium and recheck at the next interval.")
        if f.symptoms:
            advice.append("With these symptoms, serum Mg may not reflect body stores: consider "
                          "ionized Mg, FEMg or an empirical trial of supplementation.")
        suggestions = [_repeat_mg(ctx, 2, "repeat now")] if f.stale or a.preliminary else []
    else:
        more_advice, suggestions = _supplementation(f, a, ctx, caution)
        advice += more_advice
        if f.egfr is None and not f.supplement_drafts:
            advice.append("No eGFR on record: check renal function before supplementing "
                          "(hypermagnesemia risk in renal failure).")
    advice += _neurotoxicity(f.symptoms)
    if caution:
        advice.append(f"Caution: {caution}.")
    if f.femg_missing:
        suggestions.append(_femg_workup(ctx))
    # A stale result makes the patient due (section 4, a warning); the severity card carries
    # that repeat request instead of a second card, so it must not be milder than the due card.
    indicator = "info" if f.severity is Severity.BELOW_TARGET and not f.stale else (
        "warning" if f.severity in (Severity.MILD_MODERATE, Severity.BELOW_TARGET) else "critical")
    return _card(ctx, "mg-severity", indicator, summary,
                 _detail(evidence, advice, a, "mg-severity"), tuple(suggestions))


def _neurotoxicity(symptoms: tuple[Symptom, ...]) -> list[str]:
    names = _symptom_names(symptoms)
    if "seizure" in names or "tremor" in names:
        return ["Seizure or tremor can also be tacrolimus neurotoxicity: check the trough."]
    return []


def _femg_workup(ctx: CardContext) -> Suggestion:
    """Section 7: low Mg without FEMg. All four results must be within 24 h of each other."""
    note = ("for FEMg: collect on the same day as the serum magnesium, before a magnesium dose")
    return _create("Order urine Mg, urine and serum creatinine for FEMg (same day as the serum Mg)",
                   "Order the FEMg work-up",
                   lab_order(ctx.orders, codes.URINE_MG_ORDER, within_days=14, note=note),
                   lab_order(ctx.orders, codes.URINE_CREATININE_ORDER, within_days=14, note=note),
                   lab_order(ctx.orders, codes.SERUM_CREATININE_ORDER, within_days=14, note=note),
                   recommended=False)


def _supplementation(f: SeverityFinding, a: Assessment, ctx: CardContext,
                     caution: str | None) -> tuple[list[str], list[Suggestion]]:
    """Section 3's replacement advice and orders for a low level. No supplement is suggested
    while one is being ordered or was just ordered (section 6), or to a patient already taking
    one by mouth."""
    severe = f.severity in (Severity.SEVERE, Severity.SYMPTOMATIC)
    if f.stale or a.preliminary:
        recheck_days, recheck_text = 2, "now"
    elif severe:
        recheck_days, recheck_text = 1, "within 24 hours or after the infusion"
    else:
        # 1-2 weeks, or sooner when the monitoring interval is shorter (first month, inpatient).
        recheck_days = min(14, f.interval.days)
        recheck_text = "in 1–2 weeks" if recheck_days == 14 else f"within {recheck_days} days ({f.interval.reason})"
    recheck = _repeat_mg(ctx, recheck_days, f"recheck {recheck_text}".replace("–", "-"))
    urgent = ["**Urgent**: seizure or arrhythmia recorded."] if any(s.urgent for s in f.symptoms) else []
    monitor = "; cardiac monitoring if arrhythmia" if severe else ""
    recheck_line = f"Recheck serum Mg {recheck_text}{monitor}."

    if f.supplement_drafts:
        check = " (for a severe level, make sure it is IV)" if severe else ""
        return urgent + [f"Magnesium already being ordered: {_drug_names(f.supplement_drafts)}{check}.",
                         recheck_line], [recheck]
    if severe:
        dose = "1 g (halved for renal impairment)" if caution else "2 g"
        more = "" if caution else " (up to 4 g over 4 hours if Mg stays below 1.0 mEq/L or symptoms persist)"
        advice = urgent + [f"Give IV magnesium sulfate {dose} over 1 hour{more}; then oral "
                           "replacement, e.g. magnesium oxide 400 mg twice daily.", recheck_line]
        label = f"Magnesium sulfate {dose} IV over 1 hour"
        # On a result older than the interval, the repeat level comes first (section 3).
        order = _create(label, "Order IV magnesium sulfate",
                        intravenous_magnesium(ctx.orders, caution), recommended=not f.stale)
        return advice, [recheck, order] if f.stale else [order, recheck]
    if f.supplements and f.persistent:
        return [f"Low despite {_drug_names(f.supplements)}: see the persistent hypomagnesemia "
                "card for how to escalate.", recheck_line], [recheck]
    if f.supplements:
        return [f"Already on {_drug_names(f.supplements)}: check adherence, then titrate (e.g. "
                "magnesium oxide 400 mg up to three times daily as tolerated; split doses limit "
                "diarrhoea).", recheck_line], [recheck]
    advice = ["Start oral magnesium, e.g. magnesium oxide 400 mg (241 mg elemental) twice daily, "
              "titrated to three times daily as tolerated; split doses limit diarrhoea "
              "(slow-release magnesium chloride is an alternative).", recheck_line]
    label = ("Magnesium oxide 200 mg by mouth twice daily (halved: renal impairment)" if caution
             else "Magnesium oxide 400 mg by mouth twice daily")
    # On a stale result the repeat level comes first; the supplement stays on offer.
    order = _create(label, "Order oral magnesium oxide", oral_magnesium(ctx.orders, caution),
                    recommended=not f.stale)
    return advice, [recheck, order] if f.stale else [order, recheck]


def monitoring_card(f: MonitoringDue, a: Assessment, ctx: CardContext) -> Card:
    if f.latest is None and a.preliminary:
        summary = (f"Serum magnesium due: latest result ({a.preliminary[0].day}) is still "
                   f"preliminary — {_who(a)}")
        evidence = ["No final serum magnesium result on record."]
    elif f.latest is None and a.unreadable:
        # Section 2: a result exists but could not be read; "never measured" would be untrue.
        summary = (f"Serum magnesium due: latest result ({a.unreadable[0].day}) could not be read "
                   f"— {_who(a)}")
        evidence = ["No usable serum magnesium result on record."]
    elif f.latest is None and a.ionized is not None:
        summary = (f"Serum magnesium due: no serum Mg on record (ionized {a.ionized.shown} on "
                   f"{a.ionized.day}) — {_who(a)}")
        evidence = ["No usable serum magnesium result on record."]
    elif f.latest is None:
        summary = f"Serum magnesium due: never measured — {_who(a)}"
        evidence = ["No usable serum magnesium result on record."]
    else:
        summary = (f"Serum magnesium due: last {mg_text(f.latest)} on {f.latest.day} "
                   f"({f.interval.days}-day interval)")
        evidence = [f"Last usable serum {mg_text(f.latest)} on {f.latest.day}."]
    evidence.append(f"Interval that applies: every {f.interval.days} days ({f.interval.reason}).")
    if f.symptoms:
        evidence.append(f"Recent symptoms: {_symptom_names(f.symptoms)}.")
    if a.ionized is not None:
        evidence.append(f"Ionized magnesium {a.ionized.shown} on {a.ionized.day} (not a serum level).")
    advice = ["Order a serum magnesium level now."]
    return _card(ctx, "mg-monitoring", "warning", summary,
                 _detail(evidence, advice, a, "mg-monitoring"),
                 (_repeat_mg(ctx, 1 if f.symptoms else 7, "monitoring due"),))


def symptoms_card(f: SymptomsWithNormalMagnesium, a: Assessment, ctx: CardContext) -> Card:
    names = _symptom_names(f.symptoms)
    summary = (f"Symptoms despite {mg_text(f.latest)} on {f.latest.day}: serum Mg may not "
               f"reflect body stores ({names})")
    evidence = [f"Latest serum {mg_text(f.latest)} on {f.latest.day}.",
                f"Recorded in the last {ctx.thresholds.symptom_window_days} days: {names}."]
    advice = ["Serum levels may not reflect total body magnesium: consider ionized Mg, "
              "FEMg or an empirical trial of supplementation."] + _neurotoxicity(f.symptoms)
    return _card(ctx, "mg-symptoms", "info", summary, _detail(evidence, advice, a, "mg-symptoms"))


def _drug_names(medications: tuple[MedicationUse, ...]) -> str:
    return ", ".join(dict.fromkeys(clinical_name(m.name) for m in medications))


def _drug_line(m: MedicationUse, why: str) -> str:
    started = f", since {m.authored_on.date().isoformat()}" if m.authored_on else ""
    return f"{clinical_name(m.name)} ({why}{started}, status {m.status})"


def contributing_card(f: ContributingFactors, a: Assessment, ctx: CardContext) -> Card:
    t = ctx.thresholds
    named = [m.ingredient or m.name for m in f.wasting_drugs + f.raising_drugs]
    if f.tacrolimus_high:
        named.append(f"tacrolimus level {f.tacrolimus_level.shown}")
    if f.tacrolimus_level_missing:
        named.append("no recent tacrolimus level")
    if f.egfr_rise is not None:
        named.append(f"eGFR up {f.egfr_rise.fraction:.0%}")
    listed = ", ".join(dict.fromkeys(named))
    summary = f"Factors worsening magnesium loss, {mg_text(f.latest)} on {f.latest.day}: {listed}"
    evidence = [f"Latest serum {mg_text(f.latest)} on {f.latest.day}."]
    evidence += [_drug_line(m, "wastes magnesium") for m in f.wasting_drugs]
    evidence += [_drug_line(m, "raises tacrolimus levels") for m in f.raising_drugs]
    suggestions: list[Suggestion] = []
    if f.tacrolimus_level is not None:
        level = f.tacrolimus_level
        line = f"Tacrolimus level {level.shown} on {level.day}"
        if f.tacrolimus_high:
            limit = level.reference_high if level.reference_high is not None else t.tacrolimus_high_above
            line += f": above range (> {limit:g} ng/mL); higher levels waste more magnesium"
        evidence.append(line + ".")
    if f.tacrolimus_level_missing:
        evidence.append(f"No tacrolimus level in the last {t.tacrolimus_level_recent_days} days.")
        suggestions.append(_create(
            "Order tacrolimus trough level", "Order tacrolimus trough",
            lab_order(ctx.orders, codes.TACROLIMUS_TROUGH_ORDER, within_days=7,
                      note="trough before the morning dose")))
    if f.egfr_rise is not None:
        r = f.egfr_rise
        evidence.append(f"eGFR rose {r.fraction:.0%} ({r.earlier.shown} on {r.earlier.day} → "
                        f"{r.latest.shown} on {r.latest.day}): better graft function can "
                        "increase magnesium excretion.")
    for m in f.wasting_drugs:
        if m.request_id and m.resource_type == "MedicationRequest":
            suggestions.append(Suggestion(
                label=f"Stop {m.name}", isRecommended=False,
                actions=(Action("delete", f"Stop {m.name} (worsens magnesium loss)",
                                resourceId=f"MedicationRequest/{m.request_id}"),)))
    advice = []
    if f.wasting_drugs:
        advice.append("Review and, where possible, stop drugs that worsen magnesium loss (the clinician decides).")
    if any(m.wasting_class == "ppi" for m in f.wasting_drugs):
        advice.append(f"A PPI can often be replaced by an H2 blocker such as {codes.PPI_ALTERNATIVE}.")
    if f.tacrolimus_high:
        advice.append("Review the tacrolimus dose with the transplant team; confirm the level was a true trough.")
    if f.raising_drugs:
        advice.append("Drugs that raise tacrolimus levels increase magnesium wasting: keep the trough in range.")
    if f.egfr_rise is not None:
        advice.append("Improving graft function raises magnesium excretion: expect higher needs, recheck sooner.")
    return _card(ctx, "mg-contributing", "warning", summary,
                 _detail(evidence, advice, a, "mg-contributing"), tuple(suggestions))


def persistent_card(f: PersistentLow, a: Assessment, ctx: CardContext) -> Card:
    first, last = f.results[0], f.results[-1]
    summary = (f"Persistent hypomagnesemia despite supplementation: {mg_text(last)} on {last.day}, "
               f"{len(f.results)} low since {first.day}")
    started = f.supplement.authored_on.date().isoformat() if f.supplement.authored_on else "unknown"
    evidence = [f"{f.supplement.name} active since {started}."]
    evidence += [f"Serum {mg_text(r)} on {r.day}." for r in f.results]
    advice = ["Increase or split the magnesium dose; check adherence and GI losses.",
              "Measure FEMg to confirm renal wasting; review the tacrolimus level and interacting drugs.",
              "Consider adding amiloride (reduces renal magnesium loss) and involve the transplant "
              "nephrology team."]
    caution = renal_caution_text(f.renal_caution)
    if caution:
        advice[0] = f"Caution: {caution}; increase the dose only with close magnesium checks."
    return _card(ctx, "mg-persistent", "critical" if f.severe else "warning", summary,
                 _detail(evidence, advice, a, "mg-persistent"))


_LAB_NAMES = {"mg_serum": "serum Mg", "creatinine_serum": "serum creatinine",
              "mg_urine": "urine Mg", "creatinine_urine": "urine creatinine"}


def femg_card(f: FemgFinding, a: Assessment, ctx: CardContext) -> Card:
    """A computed FEMg (a low Mg without one gets the work-up on its severity card)."""
    t = ctx.thresholds
    meaning = ("points to renal magnesium wasting (expected on tacrolimus)" if f.renal_wasting
               else "points to extrarenal loss (diarrhoea, poor intake)")
    summary = f"FEMg {f.value:.1f}% on {f.latest.day} {meaning} — {mg_text(f.latest)}"
    evidence = ["Inputs: " + "; ".join(f"{_LAB_NAMES[r.kind]} {r.shown} on {r.day}" for r in f.inputs) + "."]
    evidence.append(f"FEMg = (U_Mg × S_Cr) / (0.7 × S_Mg × U_Cr) × 100 = {f.value:.1f}% "
                    f"(threshold {t.femg_renal_wasting_above:g}%).")
    advice = [f"FEMg > {t.femg_renal_wasting_above:g}% in hypomagnesemia: renal wasting; "
              f"< {t.femg_renal_wasting_above:g}%: look for extrarenal loss.",
              "FEMg is unreliable while magnesium is being given: interpret it with the last dose in mind."]
    return _card(ctx, "mg-femg", "info", summary, _detail(evidence, advice, a, "mg-femg"))


def not_used_card(f: ResultsNotUsed, a: Assessment, ctx: CardContext) -> Card:
    newest = (f.unreadable + f.preliminary)[0]
    what = "is preliminary" if newest in f.preliminary else "could not be read"
    summary = f"Magnesium result of {newest.day} {what} ({newest.shown}): review it"
    if f.latest is not None:
        summary += f"; last usable {mg_text(f.latest)} on {f.latest.day}"
    evidence = ([f"Last usable serum {mg_text(f.latest)} on {f.latest.day}."] if f.latest
                else ["No usable serum magnesium result."])
    advice = ["Check the result with the laboratory (unit, value, status); repeat it if it cannot be confirmed."]
    return _card(ctx, "mg-not-used", "info", summary, _detail(evidence, advice, a, "mg-not-used"))


def _latest_mg_line(latest: LabResult | None) -> str:
    return (f"Latest serum {mg_text(latest)} on {latest.day}." if latest
            else "No usable serum magnesium on record.")


def _level_line(level: LabResult | None) -> str:
    return (f"Latest tacrolimus level {level.shown} on {level.day}." if level
            else "No tacrolimus level on record.")


def _mg_dated(latest: LabResult) -> str:
    """'Mg 1.6 mEq/L (2026-11-20)': the number and date of a summary (section 10)."""
    return f"{mg_text(latest)} ({latest.day})"


def _every(days: int, word: str | None = None) -> str:
    """'every 7 days (weekly)': the configured number always, the familiar word only when the
    number is the guideline's (an overridden interval must not read as the default)."""
    return f"every {days} days" + (f" ({word})" if word else "")


def monitoring_plan(t: Thresholds) -> str:
    """Section 6's plan for a tacrolimus start, from the intervals in force."""
    early = _every(t.early_interval_days, "weekly" if t.early_interval_days == 7 else None)
    routine = _every(t.routine_interval_days,
                     "the seed's 4–6 weeks" if t.routine_interval_days == 42 else None)
    return f"{early} for the first {t.early_phase_days} days, then {routine}"


def tacrolimus_start_card(f: TacrolimusStart, a: Assessment, ctx: CardContext) -> Card:
    t = ctx.thresholds
    first = f"first {t.early_phase_days} days"
    early = "weekly" if t.early_interval_days == 7 else f"every {t.early_interval_days} days"
    if f.concern == "low":
        summary = (f"Starting tacrolimus with low {_mg_dated(f.latest)}: treat it (severity card), "
                   f"then serum Mg {early} for the {first}")
    elif f.concern:
        finding = (f"no Mg in {t.order_recent_mg_days} days (last {mg_text(f.latest)} on {f.latest.day})"
                   if f.latest else "Mg never measured")
        summary = f"Starting tacrolimus, {finding}: order a baseline serum Mg, then {early}"
    else:
        when = "now" if f.due_now else f"in {t.early_interval_days} days"
        summary = (f"Starting tacrolimus, baseline {_mg_dated(f.latest)} in range: first {early} "
                   f"serum Mg check {when}")
    evidence = [f"Ordering {clinical_name(f.draft.name)}; no active tacrolimus on record.",
                _latest_mg_line(f.latest)]
    plan = monitoring_plan(t)
    if f.concern:
        advice = [f"Tacrolimus wastes magnesium, most in the first weeks: check a baseline serum "
                  f"Mg, then {plan}."]
    else:
        advice = [f"The baseline is in range (within {t.order_recent_mg_days} days). Tacrolimus "
                  f"wastes magnesium, most in the first weeks: check serum Mg {plan}. The "
                  "suggested order is the first of these checks, not a new baseline."]
    suggestions: tuple[Suggestion, ...] = ()
    if f.suggest_baseline:
        why = ("baseline before tacrolimus" if f.concern else
               f"first {early} check" + ("" if f.due_now else f" in {t.early_interval_days} days"))
        suggestions = (_repeat_mg(ctx, 1 if f.due_now else t.early_interval_days, why),)
    else:
        advice.append("The serum Mg order is on the severity card.")
    return _card(ctx, "mg-order-tacrolimus", "warning" if f.concern else "info", summary,
                 _detail(evidence, advice, a, "mg-order-tacrolimus"), suggestions)


def _ingredients(drafts: tuple[MedicationUse, ...]) -> list[str]:
    return list(dict.fromkeys(d.ingredient or clinical_name(d.name) for d in drafts))


def _summary(finding: str, action: str, items: list[str], template: str = "{items}") -> str:
    """Finding (with its list budgeted, '+N' for what does not fit), then the action."""
    fixed = len(finding.replace("{list}", "")) + len(action) + 2
    listed = listing(items, max(SUMMARY_LIMIT - fixed, 12))
    return f"{finding.replace('{list}', template.format(items=listed))}: {action}"


def wasting_order_card(f: WastingDrugOrdered, a: Assessment, ctx: CardContext) -> Card:
    t = ctx.thresholds
    names = _ingredients(f.drafts)
    ppis = [d for d in f.drafts if d.wasting_class == "ppi"]
    oral_ppis = [d for d in ppis if not d.is_intravenous and d.request_id]
    if f.concern == "not measured":
        finding = "{list} ordered, " + (f"no Mg in {t.routine_interval_days} days (last "
                                        f"{mg_text(f.latest)} on {f.latest.day})" if f.latest
                                        else "Mg never measured")
        action = "check serum Mg now"
    else:
        state = {"low": "low", "below target": "below target", None: "at target"}[f.concern]
        finding = "{list} ordered, " + f"{_mg_dated(f.latest)} {state}"
        action = ("use the lowest dose, recheck Mg in 1–2 weeks" if f.concern
                  else f"keep routine Mg checks (every {t.routine_interval_days} days)")
    if oral_ppis:
        action = "famotidine instead, or " + action
    summary = capitalised(_summary(finding, action, names))
    evidence = [f"Ordering {clinical_name(d.name)} ({_class_label(d.wasting_class)}"
                + (", intravenous" if d.is_intravenous else "") + ")." for d in f.drafts]
    evidence += [_latest_mg_line(f.latest), _level_line(f.tacrolimus_level)]
    if f.concern is None:
        advice = [f"Magnesium is at target (≥ {number(t.target_above)} mEq/L). This drug adds to "
                  "tacrolimus' renal magnesium loss over weeks to months: check it is needed and "
                  f"keep serum Mg checks every {t.routine_interval_days} days."]
    else:
        advice = ["This drug adds to tacrolimus' renal magnesium loss: check it is needed, use the "
                  "lowest effective dose, and recheck serum Mg within 1–2 weeks."]
    suggestions: list[Suggestion] = []
    for draft in ppis:
        ppi = draft.ingredient or clinical_name(draft.name)
        if draft.is_intravenous:
            advice.append(f"IV {ppi}: IV famotidine is an alternative that does not waste magnesium "
                          "(no one-click swap is offered for an IV order).")
            continue
        advice.append(f"Instead of {ppi}, an H2 blocker such as {codes.PPI_ALTERNATIVE} does not "
                      "waste magnesium.")
        famotidine = famotidine_instead(ctx.orders, f.egfr)
        dose = famotidine["dosageInstruction"][0]["text"].split(" in place of")[0]
        # Create first, then delete: a client that applies actions in order and stops at the
        # first one it can apply (the CDS Hooks sandbox) then keeps famotidine, never an empty
        # order; and the draft is only removed when its replacement can be placed.
        actions = [Action("create", f"Order {dose[0].lower()}{dose[1:]}", resource=famotidine)]
        if draft.request_id and is_mappable(famotidine):
            actions.append(Action("delete", f"Remove the draft {clinical_name(draft.name)}",
                                  resourceId=f"MedicationRequest/{draft.request_id}"))
        suggestions.append(Suggestion(label=f"Replace {ppi} with famotidine" if len(actions) > 1
                                      else f"Add famotidine (then cancel {ppi})",
                                      isRecommended=False, actions=tuple(actions)))
    if f.concern is not None:
        suggestions.append(_repeat_mg(ctx, 1 if f.concern == "not measured" else 14,
                                      "now: on a magnesium-wasting drug" if f.concern == "not measured"
                                      else "recheck in 1–2 weeks on a magnesium-wasting drug"))
    return _card(ctx, "mg-order-wasting", "warning" if f.concern else "info", summary,
                 _detail(evidence, advice, a, "mg-order-wasting"), tuple(suggestions))


_TROUGH_TIMING = {  # section 6: (label, days until the window opens, days until it closes)
    InteractionStrength.BOOSTER: ("trough on day 2–3", 2, 3),
    InteractionStrength.STRONG: ("trough within 2–3 days", 0, 3),
    InteractionStrength.OTHER: ("trough and Mg within a week", 0, 7),
}


def interaction_order_card(f: InteractingDrugOrdered, a: Assessment, ctx: CardContext) -> Card:
    raising = _ingredients(f.raising)
    lowering = _ingredients(f.lowering)
    level = (f"trough {f.tacrolimus_level.shown} ({f.tacrolimus_level.day})"
             if f.tacrolimus_level else "no trough on record")
    timing, opens, closes = _TROUGH_TIMING[f.strength]
    if f.strength is InteractionStrength.BOOSTER:
        action = f"hold or sharply reduce tacrolimus (transplant team); {timing}"
    elif f.strength is InteractionStrength.STRONG:
        action = f"reduce tacrolimus dose at start; {timing}"
    else:
        action = timing
    items = list(f.interacting) or raising + lowering  # strongest first
    verb = "change" if raising and lowering else ("raise" if raising else "lower")
    finding = "{list} " + (verb + "s" if len(items) == 1 else verb) + " tacrolimus levels, " + level
    summary = capitalised(_summary(finding, action, items))
    evidence = []
    for d in f.raising:
        why = {InteractionStrength.BOOSTER: "a CYP3A booster: levels can rise several-fold within days",
               InteractionStrength.STRONG: "a strong CYP3A inhibitor"}.get(
                   interaction_strength(d), "raises tacrolimus levels")
        evidence.append(f"Ordering {clinical_name(d.name)}: {d.ingredient or 'it'} is {why}."
                        if interaction_strength(d) is not InteractionStrength.OTHER
                        else f"Ordering {clinical_name(d.name)}: {d.ingredient or 'it'} raises tacrolimus levels.")
    evidence += [f"Ordering {clinical_name(d.name)}: {d.ingredient or 'it'} lowers tacrolimus levels."
                 for d in f.lowering]
    evidence += [_level_line(f.tacrolimus_level), _latest_mg_line(f.latest)]
    advice = []
    if f.strength is InteractionStrength.BOOSTER:
        advice += [f"{capitalised(listing(raising, 60))} with tacrolimus: tacrolimus usually has to "
                   "be held or sharply reduced (levels can rise several-fold within days). Involve "
                   "the transplant team before the first dose.",
                   "Tacrolimus trough on day 2–3, then as the transplant team directs."]
    elif f.strength is InteractionStrength.STRONG:
        advice += ["A tacrolimus dose reduction is usually needed when this drug starts (tacrolimus "
                   "label): agree it with the transplant team; trough within 2–3 days."]
    else:
        advice.append("Check the tacrolimus trough and serum magnesium within about a week.")
        if f.raising:
            advice.append("Higher tacrolimus levels waste more magnesium and risk toxicity; adjust "
                          "the dose to the trough (transplant team).")
    if f.lowering:
        advice.append("Lower tacrolimus levels risk rejection: avoid the inducer where possible, "
                      "or increase the dose under close trough monitoring (transplant team).")
    if f.strength is not InteractionStrength.OTHER:
        advice.append("Higher tacrolimus levels also waste more magnesium: serum Mg within a week.")
    note = {InteractionStrength.BOOSTER: "trough on day 2–3 of the interacting drug, before the morning dose",
            InteractionStrength.STRONG: "trough within 2–3 days of starting the interacting drug, before the morning dose",
            InteractionStrength.OTHER: "trough before the morning dose; interacting drug started"}[f.strength]
    label = {InteractionStrength.BOOSTER: "Order tacrolimus trough for day 2–3",
             InteractionStrength.STRONG: "Order tacrolimus trough within 2–3 days",
             InteractionStrength.OTHER: "Order tacrolimus trough within a week"}[f.strength]
    suggestions = (
        _create(label, "Order tacrolimus trough",
                lab_order(ctx.orders, codes.TACROLIMUS_TROUGH_ORDER, within_days=closes, note=note,
                          reason_low_mg=False, starting_in_days=opens), recommended=True),
        _repeat_mg(ctx, 7, "within a week of an interacting drug"),
    )
    indicator = "critical" if f.strength is InteractionStrength.BOOSTER else "warning"
    return _card(ctx, "mg-order-interaction", indicator, summary,
                 _detail(evidence, advice, a, "mg-order-interaction"), suggestions)


def _class_label(key: str | None) -> str:
    for group in (codes.MAGNESIUM_WASTING, codes.RAISES_TACROLIMUS, codes.LOWERS_TACROLIMUS):
        for drug_class in group:
            if drug_class.key == key:
                return drug_class.label
    return "listed drug"


_BUILDERS: dict[type, Callable] = {
    SeverityFinding: severity_card,
    MonitoringDue: monitoring_card,
    SymptomsWithNormalMagnesium: symptoms_card,
    ContributingFactors: contributing_card,
    PersistentLow: persistent_card,
    FemgFinding: femg_card,
    ResultsNotUsed: not_used_card,
    TacrolimusStart: tacrolimus_start_card,
    WastingDrugOrdered: wasting_order_card,
    InteractingDrugOrdered: interaction_order_card,
}


def build_cards(assessment: Assessment, ctx: CardContext, findings=None,
                keep: Callable[[Card], bool] | None = None) -> list[Card]:
    """One card per finding (the rules emit at most one finding per kind); `findings` defaults
    to the assessment's own (the order hooks pass theirs, section 6), `keep` picks the cards
    an order hook answers (before the test de-duplication, so a dropped card takes no test away)."""
    chosen = assessment.findings if findings is None else findings
    cards = [_BUILDERS[type(f)](f, assessment, ctx) for f in chosen]
    if keep is not None:
        cards = [c for c in cards if keep(c)]
    return _one_order_per_test(sorted(cards, key=lambda c: INDICATOR_ORDER[c.indicator]))


def _lab_codes(suggestion: Suggestion) -> frozenset[str] | None:
    """The LOINC codes a lab-only suggestion orders, or None for any other suggestion."""
    found = set()
    for action in suggestion.actions:
        resource = action.resource or {}
        if action.type != "create" or resource.get("resourceType") != "ServiceRequest":
            return None
        found |= {c["code"] for c in resource["code"]["coding"]}
    return frozenset(found) or None


def _one_order_per_test(cards: list[Card]) -> list[Card]:
    """Section 4: two cards must not ask for the same test. The most urgent card keeps it."""
    ordered: set[str] = set()
    kept = []
    for card in cards:
        suggestions = []
        for suggestion in card.suggestions:
            tests = _lab_codes(suggestion)
            if tests is not None and tests <= ordered:
                continue
            ordered |= tests or set()
            suggestions.append(suggestion)
        if len(suggestions) != len(card.suggestions):
            card = replace(card, suggestions=tuple(suggestions),
                           selectionBehavior="any" if suggestions else None,
                           overrideReasons=override_reasons(card.topic or "", tuple(suggestions)))
        kept.append(card)
    return kept
