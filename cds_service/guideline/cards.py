"""Findings -> CDS Hooks cards (docs/clinical-rules.md section 10).

One card per kind, each with a stable `topic`, a summary of at most 140 characters that starts
with the finding, its number and its date, a short markdown detail with the evidence and what
could not be read, and suggestions that are valid FHIR R4 resources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable

from ..protocol.response import INDICATOR_ORDER, Action, Card, Coding, Link, Source, Suggestion
from . import codes
from .facts import LabResult, MedicationUse, Symptom, clip, number
from .orders import (InteractingDrugOrdered, InteractionStrength, TacrolimusStart, WastingDrugOrdered,
                     interaction_strength)
from .rules import (Assessment, ContributingFactors, FemgFinding, MagnesiumHigh, MonitoringDue,
                    PersistentLow, RenalFunction, ResultsNotUsed, Severity, SeverityFinding,
                    SymptomsWithNormalMagnesium)
from .suggestions import (OrderContext, famotidine_instead, intravenous_magnesium, is_mappable,
                          lab_order, oral_magnesium)
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
            "a corrected result supersedes the final one of the same time; results dated more than "
            "{future_tolerance_minutes} minutes in the future are never used) is classed: severe "
            "below {severe_below} mEq/L (critical); symptomatic at or below {low_at_or_below} mEq/L "
            "with a major symptom (seizure, tetany, arrhythmia, QT prolongation) whose onset is in "
            "the last {symptom_window_days} days (critical); with only a minor symptom (muscle "
            "cramp, tremor) from {severe_below} to {low_at_or_below} mEq/L (warning: oral "
            "magnesium three times daily, IV offered but not recommended; tremor is also a sign of "
            "tacrolimus toxicity); mild-moderate from {severe_below} to {low_at_or_below} mEq/L "
            "inclusive (warning: oral magnesium oxide 400 mg twice daily, recheck in 1–2 weeks); "
            "just below target between {low_at_or_below} and {target_above} mEq/L (info). Severe "
            "or major symptoms: IV magnesium sulfate 2 g over 1 hour, recheck within 24 hours. "
            "No new dose when magnesium was given or ordered after the result (the card names it "
            "and asks for the post-replacement recheck). Renal impairment (eGFR below "
            "{egfr_caution_below} mL/min/1.73 m², reported within {renal_function_recent_days} "
            "days or estimated by CKD-EPI 2021 from a serum creatinine): IV 1 g, oral magnesium "
            "oxide 400 mg once daily, with a caution; renal function unknown: said on the card, "
            "with a serum creatinine suggested. Dialysis or end-stage kidney disease (an active "
            "condition, or dialysis within {dialysis_recent_days} days): no one-click "
            "supplement, discuss with nephrology. Children under 18: weight-based text only "
            "(IV 25–50 mg/kg, at most 2 g; mg shown with a weight from the last "
            "{body_weight_recent_days} days). No tacrolimus level within "
            "{tacrolimus_level_recent_days} days (first year after transplant or tacrolimus "
            "start) or {tacrolimus_level_recent_days_late} days (later): a trough is suggested, "
            "never for stopped or held tacrolimus. Tacrolimus stopped within "
            "{recently_stopped_days} days keeps the patient in scope."),
    RuleDoc("mg-monitoring", "Serum magnesium monitoring interval", "4",
            "A patient on systemic tacrolimus is due a serum magnesium when no usable result exists "
            "within the interval that applies, the shortest winning: {routine_interval_days} days "
            "routinely; {early_interval_days} days in the first {early_phase_days} days after a "
            "transplant or after tacrolimus was started (the earliest tacrolimus order, stopped "
            "ones included); {inpatient_interval_days} days while hospitalized. Never measured "
            "counts as due."),
    RuleDoc("mg-symptoms", "Symptoms with normal serum magnesium", "5",
            "A symptom of hypomagnesemia (muscle cramp, tremor, seizure, tetany, arrhythmia, QT "
            "prolongation) with onset in the last {symptom_window_days} days (the recorded date "
            "only when no onset is given) and a serum magnesium at target ({target_above} mEq/L "
            "or more): serum levels may not reflect body stores; consider ionized magnesium, FEMg "
            "or an empirical trial. Between {low_at_or_below} and {target_above} mEq/L the "
            "below-target card names the symptom instead."),
    RuleDoc("mg-contributing", "Factors worsening magnesium loss", "7",
            "With the latest magnesium at or below {low_at_or_below} mEq/L: active drugs that "
            "waste magnesium (each with a suggestion to stop it, not recommended by default), a "
            "tacrolimus level above {tacrolimus_high_above} ng/mL or the lab's range, drugs that "
            "raise tacrolimus levels (newest first), and eGFR up by {egfr_rise_fraction:.0%} or "
            "more within {egfr_rise_window_days} days. A missing tacrolimus level is not a factor: "
            "the severity card suggests a trough instead."),
    RuleDoc("mg-persistent", "Persistent hypomagnesemia despite supplementation", "7",
            "At least {persistent_min_results} results at or below {low_at_or_below} mEq/L "
            "spanning {persistent_min_span_days} days or more, all after an active magnesium "
            "supplement was started. This card replaces the severity card (critical when severe "
            "or with a major symptom, else warning) and carries its acute advice: increase the "
            "current supplement (named), IV magnesium if severe; split or increase the dose, "
            "check adherence and GI losses, FEMg to confirm renal wasting (collected before the "
            "next dose; never on dialysis), review the tacrolimus level and interacting drugs, "
            "consider amiloride and the transplant nephrology team."),
    RuleDoc("mg-high", "High magnesium on a supplement", "3",
            "The latest usable serum magnesium is above {high_above} mEq/L while a magnesium "
            "supplement is active: hold or reduce the supplement and check renal function (with "
            "eGFR below {egfr_caution_below} mL/min/1.73 m², renal impairment is the likely "
            "cause). Suggestions: stop the supplement (not recommended by default: the clinician "
            "decides) and a recheck."),
    RuleDoc("mg-not-used", "Magnesium results that could not be used", "2",
            "A serum magnesium result that cannot be interpreted (unknown unit, no value, a lower "
            "bound below target), is still preliminary, or is dated more than "
            "{future_tolerance_minutes} minutes in the future never drives a severity. Every card "
            "shown names such results; when no other card applies, an info card asks for them to "
            "be checked, so they are never ignored silently."),
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
            "With low magnesium, FEMg (%) = (U_Mg x S_Cr) / (0.7 x S_Mg x U_Cr) x 100 from spot "
            "results within {femg_window_hours} hours of each other. Above "
            "{femg_renal_wasting_above}%: renal wasting (expected on tacrolimus); below: "
            "extrarenal loss. The work-up (urine magnesium, urine and serum creatinine, collected "
            "before the next magnesium dose) is suggested only on the persistent card, or on a "
            "severity card when no supplement is active or suggested; never on dialysis."),
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
    Severity.SEVERE: "Severe low magnesium",
    Severity.SYMPTOMATIC: "Symptomatic low magnesium",
    Severity.SYMPTOMATIC_MINOR: "Low magnesium",
    Severity.MILD_MODERATE: "Low magnesium",
    Severity.BELOW_TARGET: "Magnesium just below target",
}


def _days_old(result: LabResult, ctx: CardContext) -> int:
    return (ctx.orders.now - result.when).days


def _target_text(t: Thresholds) -> str:
    """The target in the three units labs report (section 2's factors)."""
    target = t.target_above
    return (f"≥ {target:g} mEq/L ({target / MG_UNIT_TO_MEQ_PER_L['mg/dl']:.2f} mg/dL, "
            f"{target / MG_UNIT_TO_MEQ_PER_L['mmol/l']:.2f} mmol/L)")


def renal_text(renal: RenalFunction, t: Thresholds) -> str:
    """'eGFR 24 mL/min/1.73 m² on DATE' or 'estimated eGFR 9 ... from creatinine ... on DATE'."""
    if renal.unknown:
        return f"unknown (no eGFR or serum creatinine in the last {t.renal_function_recent_days} days)"
    if not renal.estimated:
        return f"eGFR {renal.result.shown} on {renal.result.day}"
    sex = " (sex unknown: the lower of the female and male estimates)" if renal.sex_unknown else ""
    return (f"estimated eGFR {renal.egfr:.0f} mL/min/1.73 m² (CKD-EPI 2021{sex}) from serum "
            f"creatinine {renal.result.shown} on {renal.result.day}")


def _caution(renal: RenalFunction, t: Thresholds) -> str | None:
    if not renal.impaired:
        return None
    return (f"renal impairment ({renal_text(renal, t)}, below {t.egfr_caution_below:g}): lower "
            "doses (IV halved, oral once daily) and check magnesium more often (risk of "
            "hypermagnesemia)")


def _given_text(g) -> str:
    """'magnesium sulfate 2 g/50 mL: 2 g IV (completed) on 2026-11-25 00:00 UTC'."""
    route = {"intravenous": " IV", "oral": " by mouth"}.get(g.route, "")
    given = f": {g.dose}{route}" if g.dose else ""
    return f"{clinical_name(g.name)}{given} ({g.status}) on {g.when.strftime('%Y-%m-%d %H:%M')} UTC"


def severity_card(f: SeverityFinding, a: Assessment, ctx: CardContext) -> Card:
    if f.persistent is not None:
        return persistent_card(f.persistent, a, ctx, f)
    t = ctx.thresholds
    latest = f.latest
    low = f.severity.is_low
    title = _SEVERITY_TITLES[f.severity]
    if f.symptoms and low:
        title += f" with {_symptom_names(f.symptoms)}"
    stale = f" ({_days_old(latest, ctx)} days ago)" if f.stale else ""
    target = (f"; target > {t.low_at_or_below:g} mEq/L" if f.severity in (
        Severity.MILD_MODERATE, Severity.SYMPTOMATIC_MINOR) else
        f"; target ≥ {t.target_above:g} mEq/L" if f.severity is Severity.BELOW_TARGET else "")
    dated = mg_dated(latest)
    prelim = (f"; preliminary {mg_text(a.preliminary[0])} on {a.preliminary[0].day}"
              if a.preliminary else "")
    head = f"{title}: {dated[:-1]}{target}){stale}{prelim}"
    short_head = f"{title}: {dated}{stale}{prelim}"  # without the target when space is short
    evidence = [f"Latest serum {mg_text(latest)} on {latest.day} (status {latest.status}).",
                _tacrolimus_line(a)]
    if f.symptoms:
        evidence.append(f"Symptoms with onset in the last {t.symptom_window_days} days: "
                        f"{_symptom_names(f.symptoms)}.")
    if f.supplements:
        evidence.append(f"On {_drug_names(f.supplements)}.")
    if low:
        evidence.append(f"Renal function: {renal_text(f.renal, t)}.")
    if f.dialysis:
        evidence.append(f"Dialysis / end-stage kidney disease: {f.dialysis}.")
    if f.child is not None:
        weight = (f"; body weight {f.child.weight.shown} on {f.child.weight.day}" if f.child.weight
                  else f"; no body weight in the last {t.body_weight_recent_days} days")
        evidence.append(f"Child: {f.child.age_years} years old{weight}.")
    if a.ionized is not None:
        evidence.append(f"Ionized magnesium {a.ionized.shown} on {a.ionized.day} (shown only; not classified with serum thresholds).")
    if latest.comparator in ("<", "<="):
        evidence.append(f"Reported as an upper bound ({latest.shown}): the true value may be lower.")
    if f.trough_missing_days is not None:
        evidence.append(f"No tacrolimus level in the last {f.trough_missing_days} days: a trough "
                        "is suggested (higher levels waste more magnesium).")
    advice: list[str] = []
    if a.preliminary:
        advice.append(f"Confirm the preliminary result of {a.preliminary[0].day} "
                      f"({mg_text(a.preliminary[0])}) today.")
    if f.stale:
        advice.append(f"This result is {_days_old(latest, ctx)} days old, beyond the "
                      f"{f.interval.days}-day monitoring interval ({f.interval.reason}): repeat it "
                      "now; the treatment below applies if the repeat confirms it.")
    if f.severity is Severity.BELOW_TARGET:
        advice.append(f"Target {_target_text(t)}. Not low enough for supplementation by the "
                      "guideline: consider dietary magnesium and recheck at the next interval.")
        if f.symptoms:
            advice.append("With these symptoms, serum Mg may not reflect body stores: consider "
                          "ionized Mg, FEMg or an empirical trial of supplementation.")
        suggestions = [_repeat_mg(ctx, 2, "repeat now")] if f.stale or a.preliminary else []
        action = "repeat Mg now" if f.stale else "dietary magnesium, recheck at the next interval"
    else:
        more_advice, suggestions, action = _supplementation(f, a, ctx)
        advice += more_advice
    advice += _neurotoxicity(f.symptoms)
    if f.trough_missing_days is not None:
        suggestions.append(_trough(ctx))
    if f.femg_workup:
        suggestions.append(_femg_workup(ctx))
    short_action = action.split(", recheck")[0].split(", repeat")[0]
    if (f.stale or a.preliminary) and not action.startswith("repeat"):
        brief = "repeat Mg now, treat if confirmed"
        action = "repeat Mg now; if confirmed, " + action
        short_action = "repeat Mg now; if confirmed, " + short_action
    summary = first_fitting(f"{head}: {action}", f"{short_head}: {action}",
                            f"{short_head}: {short_action}", f"{short_head}: repeat Mg now"
                            if f.stale or a.preliminary else f"{short_head}: {short_action}")
    # A stale result makes the patient due (section 4, a warning); the severity card carries
    # that repeat request instead of a second card, so it must not be milder than the due card.
    indicator = "info" if f.severity is Severity.BELOW_TARGET and not f.stale else (
        "critical" if f.severity.is_acute else "warning")
    return _card(ctx, "mg-severity", indicator, summary,
                 _detail(evidence, advice, a, "mg-severity"), tuple(suggestions))


def _trough(ctx: CardContext) -> Suggestion:
    return _create("Order tacrolimus trough level", "Order tacrolimus trough",
                   lab_order(ctx.orders, codes.TACROLIMUS_TROUGH_ORDER, within_days=7,
                             note="trough before the morning dose"))


def _neurotoxicity(symptoms: tuple[Symptom, ...]) -> list[str]:
    names = _symptom_names(symptoms)
    if "seizure" in names or "tremor" in names:
        return ["Tremor or seizure is also a sign of tacrolimus toxicity (neurotoxicity): check "
                "the tacrolimus trough."]
    return []


def _femg_workup(ctx: CardContext) -> Suggestion:
    """Section 7: the FEMg work-up. All four results must be within 24 h of each other, and
    collected before the next magnesium dose (a dose makes FEMg uninterpretable)."""
    note = ("for FEMg: collect with the next serum magnesium, before the next magnesium dose")
    return _create("Order urine Mg, urine and serum creatinine for FEMg (before the next Mg dose)",
                   "Order the FEMg work-up",
                   lab_order(ctx.orders, codes.URINE_MG_ORDER, within_days=14, note=note),
                   lab_order(ctx.orders, codes.URINE_CREATININE_ORDER, within_days=14, note=note),
                   lab_order(ctx.orders, codes.SERUM_CREATININE_ORDER, within_days=14, note=note),
                   recommended=False)


def _serum_creatinine(ctx: CardContext, why: str) -> Suggestion:
    test = codes.SERUM_CREATININE_ORDER
    return _create(f"Order serum creatinine ({why})", f"Order {test.display}",
                   lab_order(ctx.orders, test, within_days=2, note=why))


def _recheck(f: SeverityFinding, a: Assessment) -> tuple[float, str]:
    """When to recheck serum Mg (section 3): after IV replacement within 24 h, else 1-2 weeks
    (sooner when the monitoring interval is shorter)."""
    if f.stale or a.preliminary:
        return 2, "now"
    if f.dialysis is not None and not f.given:
        return (1, "within 24 hours") if f.severity.is_acute else (14, "in 1–2 weeks")
    if f.severity.is_acute or any(g.route == "intravenous" for g in f.given):
        return 1, "within 24 hours or after the infusion"
    days = min(14, f.interval.days)
    return days, ("in 1–2 weeks" if days == 14 else f"within {days} days ({f.interval.reason})")


def _supplementation(f: SeverityFinding, a: Assessment, ctx: CardContext,
                     current: str | None = None) -> tuple[list[str], list[Suggestion], str]:
    """Section 3's replacement advice and orders for a low level, and the summary's action.

    The order of the checks is the order of safety: magnesium already given or being ordered,
    dialysis, children, then the adult doses (renal impairment lowering them)."""
    t = ctx.thresholds
    acute = f.severity.is_acute
    minor = f.severity is Severity.SYMPTOMATIC_MINOR
    recheck_days, recheck_text = _recheck(f, a)
    recheck = _repeat_mg(ctx, recheck_days, f"recheck {recheck_text}")
    urgent = ["**Urgent**: seizure or arrhythmia recorded."] if any(s.urgent for s in f.symptoms) else []
    monitor = "; cardiac monitoring if arrhythmia" if acute else ""
    recheck_line = f"Recheck serum Mg {recheck_text}{monitor}."
    short_recheck = ("recheck in 24 h" if recheck_days == 1 else "repeat now" if recheck_text == "now"
                     else "recheck in 1–2 weeks" if recheck_days == 14 else f"recheck in {recheck_days:g} days")
    caution = _caution(f.renal, t)
    renal_lines: list[str] = []
    labs = [recheck]
    if f.renal.unknown and f.dialysis is None:
        renal_lines.append("Renal function unknown (no eGFR or serum creatinine in the last "
                           f"{t.renal_function_recent_days} days): the doses suggested assume normal "
                           "renal function; check a serum creatinine with the recheck.")
        labs.append(_serum_creatinine(ctx, "renal function unknown: before dosing magnesium"))
    elif caution:
        renal_lines.append(f"Caution: {caution}.")

    if f.given:
        shown = "; ".join(_given_text(g) for g in f.given[:3])
        first = f.given[0]
        return urgent + [f"Magnesium already given or ordered since this result: {shown}. "
                         "No new dose: replacement is under way.", recheck_line] + renal_lines,             labs, f"Mg given {first.when.date().isoformat()}: no new dose, {short_recheck}"
    if f.supplement_drafts:
        check = " (for a severe level, make sure it is IV)" if acute else ""
        return urgent + [f"Magnesium already being ordered: {_drug_names(f.supplement_drafts)}{check}.",
                         recheck_line] + renal_lines, labs, f"magnesium being ordered, {short_recheck}"
    if f.dialysis is not None:
        return urgent + [
            f"On dialysis / end-stage kidney disease ({f.dialysis}): magnesium depends on the "
            "dialysate and intake; discuss replacement with nephrology (no standard dose is "
            "suggested).", recheck_line], [recheck], "discuss with nephrology, recheck"
    if f.child is not None:
        weight = f.child.weight
        per_kg = "IV magnesium sulfate 25–50 mg/kg per dose (max 2 g)"
        if weight is not None and weight.normalised is not None:
            low_mg = min(25 * weight.normalised, 2000)
            high_mg = min(50 * weight.normalised, 2000)
            per_kg += f": {low_mg:.0f}–{high_mg:.0f} mg for {weight.shown} ({weight.day})"
        else:
            per_kg += f"; no body weight in the last {t.body_weight_recent_days} days: weigh the child"
        route = per_kg if acute else f"oral magnesium per the paediatric protocol; if IV is needed, {per_kg}"
        advice = urgent + [f"Child ({f.child.age_years} years): no fixed adult dose. {route[0].upper()}{route[1:]}. "
                           "Discuss with paediatric nephrology.", recheck_line] + renal_lines
        return advice, labs, "weight-based dose, discuss with paediatric nephrology"
    if acute:
        dose = "1 g (halved for renal impairment)" if caution else "2 g"
        more = "" if caution else (f" (up to 4 g over 4 hours if Mg stays below "
                                   f"{t.severe_below:g} mEq/L or symptoms persist)")
        after = (f"then increase the current {current} (never start a second regimen)" if current
                 else "then oral replacement, e.g. magnesium oxide 400 mg "
                      f"{'once' if caution else 'twice'} daily")
        advice = urgent + [f"Give IV magnesium sulfate {dose} over 1 hour{more}; {after}.",
                           recheck_line] + renal_lines
        label = f"Magnesium sulfate {dose} IV over 1 hour"
        # On a result older than the interval, the repeat level comes first (section 3).
        order = _create(label, "Order IV magnesium sulfate",
                        intravenous_magnesium(ctx.orders, caution, t.severe_below), recommended=not f.stale)
        action = f"MgSO4 {'1' if caution else '2'} g IV over 1 h, {short_recheck}"
        return advice, ([recheck, order] if f.stale else [order, recheck]) + labs[1:], action
    if f.supplements:
        return [f"Already on {_drug_names(f.supplements)}: check adherence, then increase it "
                "(e.g. magnesium oxide 400 mg up to three times daily as tolerated; split doses "
                "limit diarrhoea)." if not caution else
                f"Already on {_drug_names(f.supplements)}: check adherence; with renal impairment "
                "increase only with close magnesium checks.", recheck_line] + renal_lines, labs,             f"increase {short_drug(f.supplements[0].name)}, {short_recheck}"
    per_day = 1 if caution else (3 if minor else 2)
    frequency = {1: "once", 2: "twice", 3: "three times"}[per_day]
    if caution:
        start = ("Start oral magnesium oxide 400 mg once daily (renal impairment; the common "
                 "400 mg tablets are not scored: not half a tablet).")
    elif minor:
        start = ("Start oral magnesium oxide 400 mg (241 mg elemental) three times daily (minor "
                 "symptoms); split doses limit diarrhoea (slow-release magnesium chloride is an "
                 "alternative).")
    else:
        start = ("Start oral magnesium, e.g. magnesium oxide 400 mg (241 mg elemental) twice daily, "
                 "titrated to three times daily as tolerated; split doses limit diarrhoea "
                 "(slow-release magnesium chloride is an alternative).")
    advice = [start, "Take it at least 2 hours apart from mycophenolate, quinolones, "
              "tetracyclines, bisphosphonates and levothyroxine.", recheck_line] + renal_lines
    label = f"Magnesium oxide 400 mg by mouth {frequency} daily" + (" (renal impairment)" if caution else "")
    # On a stale result the repeat level comes first; the supplement stays on offer.
    order = _create(label, "Order oral magnesium oxide",
                    oral_magnesium(ctx.orders, caution, per_day=per_day), recommended=not f.stale)
    ordered = [recheck, order] if f.stale else [order, recheck]
    if minor:
        dose = "1 g (halved for renal impairment)" if caution else "2 g"
        ordered.append(_create(f"Magnesium sulfate {dose} IV over 1 hour (if oral is not tolerated)",
                               "Order IV magnesium sulfate",
                               intravenous_magnesium(ctx.orders, caution, t.severe_below), recommended=False))
        advice.insert(1, "IV magnesium is offered as an alternative, not recommended by default "
                         "for minor symptoms.")
    action = f"magnesium oxide 400 mg {frequency} daily, {short_recheck}"
    return advice, ordered + labs[1:], action


def _current_regimen(p: PersistentLow) -> str:
    return clinical_name(p.supplement.name)


def persistent_card(f: PersistentLow, a: Assessment, ctx: CardContext,
                    severity: SeverityFinding | None = None) -> Card:
    """Section 7: one card per result: persistence replaces the severity card and carries its
    acute advice ('increase' the current regimen, IV if severe) and the escalation."""
    t = ctx.thresholds
    first, last = f.results[0], f.results[-1]
    regimen = _current_regimen(f)
    acute = severity is not None and severity.severity.is_acute
    summary_head = (f"Persistent low magnesium despite supplement: {mg_dated(last)}, "
                    f"{len(f.results)} low since {first.day}")
    started = f.supplement.authored_on.date().isoformat() if f.supplement.authored_on else "unknown"
    evidence = [f"{clinical_name(f.supplement.name)} active since {started}."]
    evidence += [f"Serum {mg_text(r)} on {r.day}." for r in f.results]
    evidence.append(_tacrolimus_line(a))
    suggestions: list[Suggestion] = []
    advice: list[str] = []
    action = f"increase {short_drug(regimen)}"
    if severity is not None:
        evidence.append(f"Renal function: {renal_text(severity.renal, t)}.")
        if severity.symptoms:
            evidence.append(f"Symptoms with onset in the last {t.symptom_window_days} days: "
                            f"{_symptom_names(severity.symptoms)}.")
        if acute or severity.given or severity.supplement_drafts or severity.dialysis or severity.child:
            more, orders, acute_action = _supplementation(
                replace(severity, supplements=()), a, ctx, current=regimen)
            advice += more
            suggestions += orders
            action = acute_action
        else:
            recheck_days, recheck_text = _recheck(severity, a)
            suggestions.append(_repeat_mg(ctx, recheck_days, f"recheck {recheck_text}"))
            advice.append(f"Increase {regimen} (e.g. magnesium oxide 400 mg up to three times "
                          f"daily as tolerated); recheck serum Mg {recheck_text}.")
            if severity.renal.unknown:
                suggestions.append(_serum_creatinine(ctx, "renal function unknown: before increasing magnesium"))
                advice.append("Renal function unknown: check a serum creatinine before increasing the dose.")
        if severity.trough_missing_days is not None:
            evidence.append(f"No tacrolimus level in the last {severity.trough_missing_days} days.")
            suggestions.append(_trough(ctx))
    advice += ["Escalation: split or increase the dose; check adherence and GI losses (diarrhoea).",
               "Measure FEMg to confirm renal wasting (collect before the next magnesium dose).",
               "Review the tacrolimus level and interacting drugs.",
               "Consider amiloride (reduces renal magnesium loss) and involve the transplant "
               "nephrology team."]
    caution = renal_text(severity.renal, t) if severity is not None and severity.renal.impaired else None
    if f.renal_caution is not None and caution is None:
        caution = f"eGFR {f.renal_caution.shown} on {f.renal_caution.day}"
    if caution:
        advice.append(f"Caution: renal impairment ({caution}): increase the dose only with close "
                      "magnesium checks.")
    if severity is None or (severity.femg_workup and severity.dialysis is None):
        suggestions.append(_femg_workup(ctx))
    summary = f"{summary_head}: {action}"
    return _card(ctx, "mg-persistent", "critical" if f.severe else "warning", summary,
                 _detail(evidence, advice, a, "mg-persistent"), tuple(suggestions))


def high_card(f: MagnesiumHigh, a: Assessment, ctx: CardContext) -> Card:
    """Section 3: Mg above high_above on a supplement: hold or reduce, check renal function."""
    t = ctx.thresholds
    names = _drug_names(f.supplements)
    summary = (f"High magnesium on a supplement: {mg_dated(f.latest)}: hold or reduce "
               f"{short_drug(f.supplements[0].name)}, check renal function")
    evidence = [f"Latest serum {mg_text(f.latest)} on {f.latest.day}, above {t.high_above:g} mEq/L.",
                f"Active magnesium supplement: {names}.", _tacrolimus_line(a),
                f"Renal function: {renal_text(f.renal, t)}."]
    advice = ["Hold or reduce the magnesium supplement; recheck serum Mg.",
              "Check renal function (magnesium is cleared by the kidney)."]
    if f.renal.impaired:
        advice.append(f"Renal impairment ({renal_text(f.renal, t)}) is the likely cause.")
    suggestions: list[Suggestion] = []
    for m in f.supplements:
        if m.request_id and m.resource_type == "MedicationRequest":
            suggestions.append(Suggestion(
                label=f"Stop {clinical_name(m.name)}", isRecommended=False,
                actions=(Action("delete", f"Stop {clinical_name(m.name)} (magnesium above target)",
                                resourceId=f"MedicationRequest/{m.request_id}"),)))
    suggestions.append(_repeat_mg(ctx, 3, "recheck after holding the supplement"))
    suggestions.append(_serum_creatinine(ctx, "renal function with high magnesium"))
    return _card(ctx, "mg-high", "warning", summary, _detail(evidence, advice, a, "mg-high"),
                 tuple(suggestions))


def monitoring_card(f: MonitoringDue, a: Assessment, ctx: CardContext) -> Card:
    if f.latest is None and a.preliminary:
        summary = (f"Serum magnesium due: latest result ({a.preliminary[0].day}) is still "
                   "preliminary: order a serum Mg")
        evidence = ["No final serum magnesium result on record."]
    elif f.latest is None and a.unreadable:
        # Section 2: a result exists but could not be read; "never measured" would be untrue.
        summary = (f"Serum magnesium due: latest result ({a.unreadable[0].day}) could not be read: "
                   "order a serum Mg")
        evidence = ["No usable serum magnesium result on record."]
    elif f.latest is None and a.future:
        # Section 2: a future-dated result is not a measurement; "never measured" would hide it.
        summary = (f"Serum magnesium due: the only result ({a.future[0].day}) is dated in the "
                   "future: order a serum Mg")
        evidence = ["No usable serum magnesium result."]
    elif f.latest is None and a.ionized is not None:
        summary = (f"Serum magnesium due: no serum Mg on record (ionized {a.ionized.shown} on "
                   f"{a.ionized.day}): order a serum Mg")
        evidence = ["No usable serum magnesium result on record."]
    elif f.latest is None:
        summary = "Serum magnesium due: never measured: order a serum Mg"
        evidence = ["No usable serum magnesium result on record."]
    else:
        summary = (f"Serum magnesium due: last {mg_text(f.latest)} on {f.latest.day} "
                   f"({f.interval.days}-day interval): order a serum Mg")
        evidence = [f"Last usable serum {mg_text(f.latest)} on {f.latest.day}."]
    evidence.append(f"Interval that applies: every {f.interval.days} days ({f.interval.reason}).")
    evidence.append(_tacrolimus_line(a))
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
    summary = (f"Symptoms despite {mg_text(f.latest)} on {f.latest.day} ({names}): serum Mg may "
               "not reflect body stores; consider ionized Mg or FEMg")
    evidence = [f"Latest serum {mg_text(f.latest)} on {f.latest.day}.",
                f"Onset in the last {ctx.thresholds.symptom_window_days} days: {names}.",
                _tacrolimus_line(a)]
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
    named = [m.ingredient or clinical_name(m.name) for m in f.wasting_drugs + f.raising_drugs]
    if f.tacrolimus_high:
        named.append(f"tacrolimus level {f.tacrolimus_level.shown}")
    if f.egfr_rise is not None:
        named.append(f"eGFR up {f.egfr_rise.fraction:.0%}")
    head = f"Factors worsening magnesium loss with {mg_dated(f.latest)}: "
    listed = listing(named, SUMMARY_LIMIT - len(head) - len(": review them"))
    summary = f"{head}{listed}: review them"
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
    if f.egfr_rise is not None:
        r = f.egfr_rise
        evidence.append(f"eGFR rose {r.fraction:.0%} ({r.earlier.shown} on {r.earlier.day} → "
                        f"{r.latest.shown} on {r.latest.day}): better graft function can "
                        "increase magnesium excretion.")
    for m in f.wasting_drugs:
        if m.request_id and m.resource_type == "MedicationRequest":
            suggestions.append(Suggestion(
                label=f"Stop {clinical_name(m.name)}", isRecommended=False,
                actions=(Action("delete", f"Stop {clinical_name(m.name)} (worsens magnesium loss)",
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


_LAB_NAMES = {"mg_serum": "serum Mg", "creatinine_serum": "serum creatinine",
              "mg_urine": "urine Mg", "creatinine_urine": "urine creatinine"}


def femg_card(f: FemgFinding, a: Assessment, ctx: CardContext) -> Card:
    """A computed FEMg (a low Mg without one gets the work-up on its severity card)."""
    t = ctx.thresholds
    head = f"FEMg {f.value:.1f}% ({f.latest.day}, {mg_text(f.latest)})"
    if f.renal_wasting:
        summary = first_fitting(
            f"{head}: renal magnesium wasting (expected on tacrolimus): review wasting drugs and the tacrolimus level",
            f"{head}: renal magnesium wasting: review wasting drugs and the tacrolimus level",
            f"{head}: renal magnesium wasting: review drugs and tacrolimus level")
    else:
        summary = f"{head}: extrarenal loss: look for diarrhoea or poor intake"
    evidence = ["Inputs: " + "; ".join(f"{_LAB_NAMES[r.kind]} {r.shown} on {r.day}" for r in f.inputs) + "."]
    evidence.append(f"FEMg = (U_Mg × S_Cr) / (0.7 × S_Mg × U_Cr) × 100 = {f.value:.1f}% "
                    f"(threshold {t.femg_renal_wasting_above:g}%).")
    advice = [f"FEMg > {t.femg_renal_wasting_above:g}% in hypomagnesemia: renal wasting; "
              f"< {t.femg_renal_wasting_above:g}%: look for extrarenal loss.",
              "FEMg is unreliable while magnesium is being given: interpret it with the last dose in mind."]
    return _card(ctx, "mg-femg", "info", summary, _detail(evidence, advice, a, "mg-femg"))


def not_used_card(f: ResultsNotUsed, a: Assessment, ctx: CardContext) -> Card:
    candidates = f.unreadable + f.preliminary
    if candidates:
        newest = candidates[0]
        what = "is preliminary" if newest in f.preliminary else "could not be read"
    else:
        newest = f.future[0]
        what = "is dated in the future and was not used"
    short = {"is preliminary": "preliminary", "could not be read": "unreadable"}.get(what, "dated in the future")
    summary = f"Mg result of {newest.day} {short} ({newest.shown}), not used"
    if f.latest is not None:
        summary = first_fitting(
            f"Magnesium result of {newest.day} {what} ({newest.shown}); last usable "
            f"{mg_text(f.latest)} on {f.latest.day}: review it",
            f"Magnesium result of {newest.day} {what} ({newest.shown}); last usable "
            f"Mg {f.latest.shown} on {f.latest.day}: review it", summary)
    evidence = ([f"Last usable serum {mg_text(f.latest)} on {f.latest.day}."] if f.latest
                else ["No usable serum magnesium result."])
    advice = ["Check the result with the laboratory (unit, value, status, date); repeat it if it cannot be confirmed."]
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
                     "every 4–6 weeks" if t.routine_interval_days == 42 else None)
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
        action = "consider famotidine instead; " + action
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
    paused = f.tacrolimus_state in ("on-hold", "stopped")
    if paused:
        # Section 1: no trough for held or stopped tacrolimus; the interaction matters at restart.
        level = ("tacrolimus on hold" if f.tacrolimus_state == "on-hold" else
                 f"tacrolimus stopped on {f.tacrolimus_stopped_on.date().isoformat()}"
                 if f.tacrolimus_stopped_on else "tacrolimus stopped")
        action = "agree any restart dose with the transplant team"
    elif f.strength is InteractionStrength.BOOSTER:
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
        why = {InteractionStrength.BOOSTER: "a strong CYP3A inhibitor (booster): tacrolimus levels can "
                                            "rise several-fold within days",
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
    trough = _create(label, "Order tacrolimus trough",
                     lab_order(ctx.orders, codes.TACROLIMUS_TROUGH_ORDER, within_days=closes, note=note,
                               reason_low_mg=False, starting_in_days=opens), recommended=True)
    suggestions = ((trough,) if not paused else ()) + (
        _repeat_mg(ctx, 7, "within a week of an interacting drug"),)
    if paused:
        advice = [f"{capitalised(level)}: no tacrolimus trough is suggested now. If tacrolimus is "
                  "restarted while this drug is taken, agree the dose with the transplant team and "
                  "check a trough after the restart."] + [line for line in advice if "trough" not in line]
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
    MagnesiumHigh: high_card,
    TacrolimusStart: tacrolimus_start_card,
    WastingDrugOrdered: wasting_order_card,
    InteractingDrugOrdered: interaction_order_card,
}


def build_cards(assessment: Assessment, ctx: CardContext, findings=None,
                keep: Callable[[Card], bool] | None = None,
                deletable: frozenset[str] | None = None) -> list[Card]:
    """One card per finding (the rules emit at most one finding per kind); `findings` defaults
    to the assessment's own (the order hooks pass theirs, section 6), `keep` picks the cards
    an order hook answers (before the test de-duplication, so a dropped card takes no test away)
    and `deletable` (order hooks) the resources a delete may name: the drafts being placed."""
    chosen = assessment.findings if findings is None else findings
    cards = [_BUILDERS[type(f)](f, assessment, ctx) for f in chosen]
    if keep is not None:
        cards = [c for c in cards if keep(c)]
    if deletable is not None:
        cards = [_deletes_only_of(c, deletable) for c in cards]
    return _one_order_per_test(sorted(cards, key=lambda c: INDICATOR_ORDER[c.indicator]))


def _deletes_only_of(card: Card, deletable: frozenset[str]) -> Card:
    """In an order hook a delete may only remove a draft being placed: a client that keeps one
    draft (the CDS Hooks sandbox) applies any delete to it, so stopping an active order from
    there would empty the order being written. Such suggestions stay on patient-view."""
    kept = tuple(s for s in card.suggestions
                 if all(a.type != "delete" or a.resourceId in deletable for a in s.actions))
    if len(kept) == len(card.suggestions):
        return card
    return replace(card, suggestions=kept, selectionBehavior="any" if kept else None,
                   overrideReasons=override_reasons(card.topic or "", kept))


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
