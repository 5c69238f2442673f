"""The severity card (section 3: class, supplementation, recheck) and the persistent-low card (section 7)."""

from __future__ import annotations

from dataclasses import replace

from ...protocol.response import Action, Card, Suggestion
from .. import codes
from ..facts import number, Symptom, UsableResult
from ..rules import Assessment, ChildDosing, GivenSince, PersistentLow, RenalFunction, Severity, SeverityFinding
from ..suggestions import intravenous_magnesium, lab_order, oral_magnesium
from ..thresholds import MG_UNIT_TO_MEQ_PER_L, Thresholds
from .common import (
    CardContext,
    _card,
    _create,
    _detail,
    _drug_names,
    _repeat_mg,
    _symptom_names,
    _tacrolimus_line,
    clinical_name,
    first_fitting,
    mg_dated,
    mg_text,
    short_drug,
)

_SEVERITY_TITLES = {
    Severity.SEVERE: "Severe low magnesium",
    Severity.SYMPTOMATIC: "Symptomatic low magnesium",
    Severity.SYMPTOMATIC_MINOR: "Low magnesium",
    Severity.MILD_MODERATE: "Low magnesium",
    Severity.BELOW_TARGET: "Magnesium just below target",
}


def _days_old(result: UsableResult, ctx: CardContext) -> int:
    return (ctx.orders.now - result.when).days


def _target_text(t: Thresholds) -> str:
    """The target in the three units labs report (section 2's factors)."""
    target = t.target_above
    return (f"≥ {number(target)} mEq/L ({target / MG_UNIT_TO_MEQ_PER_L['mg/dl']:.2f} mg/dL, "
            f"{target / MG_UNIT_TO_MEQ_PER_L['mmol/l']:.2f} mmol/L)")


def renal_text(renal: RenalFunction, t: Thresholds) -> str:
    """'eGFR 24 mL/min/1.73 m² on DATE' or 'estimated eGFR 9 ... from creatinine ... on DATE'."""
    result = renal.result  # set whenever the eGFR is known
    if renal.unknown or result is None:
        return f"unknown (no eGFR or serum creatinine in the last {t.renal_function_recent_days} days)"
    if not renal.estimated:
        return f"eGFR {result.shown} on {result.day}"
    sex = " (sex unknown: the lower of the female and male estimates)" if renal.sex_unknown else ""
    return (f"estimated eGFR {renal.egfr:.0f} mL/min/1.73 m² (CKD-EPI 2021{sex}) from serum "
            f"creatinine {result.shown} on {result.day}")


def _caution(renal: RenalFunction, t: Thresholds) -> str | None:
    if not renal.impaired:
        return None
    return (f"renal impairment ({renal_text(renal, t)}, below {t.egfr_caution_below:g}): lower "
            "doses (IV halved, oral once daily) and check magnesium more often (risk of "
            "hypermagnesemia)")


def _given_text(g: GivenSince) -> str:
    """'magnesium sulfate 2 g/50 mL: 2 g IV (completed) on 2026-11-25 00:00 UTC'."""
    route = {"intravenous": " IV", "oral": " by mouth"}.get(g.route, "")
    given = f": {g.dose}{route}" if g.dose else ""
    return f"{clinical_name(g.name)}{given} ({g.status}) on {g.when.strftime('%Y-%m-%d %H:%M')} UTC"


def _severity_evidence(f: SeverityFinding, a: Assessment, ctx: CardContext) -> list[str]:
    """What the severity card is based on: the result, tacrolimus, symptoms, kidneys, age."""
    t = ctx.thresholds
    latest = f.latest
    low = f.severity.is_low
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
        evidence.append(f"Ionized magnesium {a.ionized.shown} on {a.ionized.day} "
                        "(shown only; not classified with serum thresholds).")
    if latest.comparator in ("<", "<="):
        evidence.append(f"Reported as an upper bound ({latest.shown}): the true value may be lower.")
    if f.trough_missing_days is not None:
        evidence.append(f"No tacrolimus level in the last {f.trough_missing_days} days: a trough "
                        "is suggested (higher levels waste more magnesium).")
    return evidence


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
    target = (f"; target > {number(t.low_at_or_below)} mEq/L" if f.severity in (
        Severity.MILD_MODERATE, Severity.SYMPTOMATIC_MINOR) else
        f"; target ≥ {number(t.target_above)} mEq/L" if f.severity is Severity.BELOW_TARGET else "")
    dated = mg_dated(latest)
    prelim = (f"; preliminary {mg_text(a.preliminary[0])} on {a.preliminary[0].day}"
              if a.preliminary else "")
    head = f"{title}: {dated[:-1]}{target}){stale}{prelim}"
    short_head = f"{title}: {dated}{stale}{prelim}"  # without the target when space is short
    evidence = _severity_evidence(f, a, ctx)
    advice: list[str] = []
    if a.preliminary:
        advice.append(f"Confirm the preliminary result of {a.preliminary[0].day} "
                      f"({mg_text(a.preliminary[0])}) today.")
    if f.stale:
        advice.append(_stale_line(f, ctx))
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
        # The repeat is already the first word: "…, repeat now" after the treatment says it twice.
        action = "repeat Mg now; if confirmed, " + (short_action if action.endswith("repeat now") else action)
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


def _stale_line(f: SeverityFinding, ctx: CardContext) -> str:
    """Section 3: a card on a result older than the monitoring interval asks for a repeat first."""
    return (f"This result is {_days_old(f.latest, ctx)} days old, beyond the {f.interval.days}-day "
            f"monitoring interval ({f.interval.reason}): repeat it now; the treatment below applies "
            "if the repeat confirms it.")


def _dialysis_line(dialysis: str) -> str:
    return (f"On dialysis / end-stage kidney disease ({dialysis}): magnesium depends on the "
            "dialysate and intake; discuss replacement with nephrology (no standard dose is "
            "suggested).")


def _child_line(child: ChildDosing, acute: bool, t: Thresholds) -> str:
    """Section 3, children: weight-based text, never a fixed adult dose."""
    weight = child.weight
    per_kg = "IV magnesium sulfate 25–50 mg/kg per dose (max 2 g)"
    if weight is not None and weight.normalised is not None:
        low_mg = min(25 * weight.normalised, 2000)
        high_mg = min(50 * weight.normalised, 2000)
        per_kg += f": {low_mg:.0f}–{high_mg:.0f} mg for {weight.shown} ({weight.day})"
    else:
        per_kg += f"; no body weight in the last {t.body_weight_recent_days} days: weigh the child"
    route = per_kg if acute else f"oral magnesium per the paediatric protocol; if IV is needed, {per_kg}"
    return (f"Child ({child.age_years} years): no fixed adult dose. {route[0].upper()}{route[1:]}. "
            "Discuss with paediatric nephrology.")


def _iv_alternative(ctx: CardContext, caution: str | None) -> Suggestion:
    """Section 3, minor symptoms: IV magnesium as a second suggestion, not recommended by default."""
    dose = "1 g (halved for renal impairment)" if caution else "2 g"
    return _create(f"Magnesium sulfate {dose} IV over 1 hour (if oral is not tolerated)",
                   "Order IV magnesium sulfate",
                   intravenous_magnesium(ctx.orders, caution, ctx.thresholds.severe_below), recommended=False)


_IV_ALTERNATIVE_LINE = "IV magnesium is offered as an alternative, not recommended by default for minor symptoms."


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
    """Section 7: the FEMg work-up, one description per test. All four results must be within
    24 h of each other, and collected before the next magnesium dose (a dose makes FEMg
    uninterpretable)."""
    note = ("for FEMg: collect with the next serum magnesium, before the next magnesium dose")
    return Suggestion(
        label="Order urine Mg, urine and serum creatinine for FEMg (before the next Mg dose)",
        isRecommended=False,
        actions=tuple(Action("create", description,
                             resource=lab_order(ctx.orders, test, within_days=14, note=note))
                      for test, description in (
                          (codes.URINE_MG_ORDER, "Order a spot urine magnesium for FEMg"),
                          (codes.URINE_CREATININE_ORDER, "Order a spot urine creatinine for FEMg"),
                          (codes.SERUM_CREATININE_ORDER, "Order a serum creatinine for FEMg"))))


def _serum_creatinine(ctx: CardContext, why: str) -> Suggestion:
    test = codes.SERUM_CREATININE_ORDER
    return _create(f"Order serum creatinine ({why})", f"Order {test.display}",
                   lab_order(ctx.orders, test, within_days=2, note=why))


def _recheck_order(ctx: CardContext, days: float, text: str) -> Suggestion:
    """The recheck the text names: 'in 1–2 weeks' is drawn from one week on, not today."""
    return _repeat_mg(ctx, days, f"recheck {text}", not_before_days=7 if text == "in 1–2 weeks" else 0)


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
    recheck = _recheck_order(ctx, recheck_days, recheck_text)
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

    # Who the patient is changes what any dose means, even one already given or being ordered.
    population = ([_dialysis_line(f.dialysis)] if f.dialysis is not None else
                  [_child_line(f.child, acute, t)] if f.child is not None else [])
    if f.given:
        shown = "; ".join(_given_text(g) for g in f.given[:3])
        first = f.given[0]
        return urgent + [f"Magnesium already given or ordered since this result: {shown}. "
                         "No new dose: replacement is under way."] + population + [recheck_line] + renal_lines, \
            labs, f"Mg given {first.when.date().isoformat()}: no new dose, {short_recheck}"
    if f.supplement_drafts:
        check = " (for a severe level, make sure it is IV)" if acute else ""
        return urgent + [f"Magnesium already being ordered: {_drug_names(f.supplement_drafts)}{check}."] \
            + population + [recheck_line] + renal_lines, labs, f"magnesium being ordered, {short_recheck}"
    if f.dialysis is not None:
        return urgent + population + [recheck_line], [recheck], "discuss with nephrology, recheck"
    if f.child is not None:
        return urgent + population + [recheck_line] + renal_lines, labs, \
            "weight-based dose, discuss with paediatric nephrology"
    if acute:
        dose = "1 g (halved for renal impairment)" if caution else "2 g"
        more = "" if caution else (f" (up to 4 g over 4 hours if Mg stays below "
                                   f"{number(t.severe_below)} mEq/L or symptoms persist)")
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
        alternative = [_iv_alternative(ctx, caution)] if minor else []
        return [f"Already on {_drug_names(f.supplements)}: check adherence, then increase it "
                "(e.g. magnesium oxide 400 mg up to three times daily as tolerated; split doses "
                "limit diarrhoea)." if not caution else
                f"Already on {_drug_names(f.supplements)}: check adherence; with renal impairment "
                "increase only with close magnesium checks."] + ([_IV_ALTERNATIVE_LINE] if minor else []) \
            + [recheck_line] + renal_lines, labs[:1] + alternative + labs[1:], \
            f"increase {short_drug(f.supplements[0].name)}, {short_recheck}"
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
        ordered.append(_iv_alternative(ctx, caution))
        advice.insert(1, _IV_ALTERNATIVE_LINE)
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
    stale = severity is not None and severity.stale
    if severity is not None and severity.stale:
        advice.append(_stale_line(severity, ctx))
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
            suggestions.append(_recheck_order(ctx, recheck_days, recheck_text))
            # Section 3 under renal impairment: no titration to three times daily.
            how = ("only with close magnesium checks (renal impairment: hypermagnesemia risk; "
                   "magnesium oxide 400 mg once daily is the renal dose)" if severity.renal.impaired
                   else "(e.g. magnesium oxide 400 mg up to three times daily as tolerated)")
            advice.append(f"If the repeat confirms it, increase {regimen} {how}." if stale else
                          f"Increase {regimen} {how}; recheck serum Mg {recheck_text}.")
            if severity.severity is Severity.SYMPTOMATIC_MINOR:
                caution_given = _caution(severity.renal, t)
                suggestions.append(_iv_alternative(ctx, caution_given))
                advice.append(_IV_ALTERNATIVE_LINE)
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
    if caution and not any(line.startswith("Caution:") for line in advice):  # said once
        advice.append(f"Caution: renal impairment ({caution}): hypermagnesemia risk; increase the "
                      "dose only with close magnesium checks.")
    if severity is None or (severity.femg_workup and severity.dialysis is None):
        suggestions.append(_femg_workup(ctx))
    # Section 10: the action is never cut; the count of low results goes first, then the word
    # "magnesium" (a child's "weight-based dose, discuss with paediatric nephrology" is long).
    if stale:  # section 3: the repeat first, the treatment if it confirms the result
        short_action = action.split(", recheck")[0].split(", repeat")[0]
        action = "repeat Mg now; if confirmed, " + short_action
        summary_head += f" ({_days_old(last, ctx)} days ago)"
    summary = first_fitting(f"{summary_head}: {action}",
                            f"Persistent low magnesium despite supplement: {mg_dated(last)}: {action}",
                            f"Persistent low Mg despite supplement: {mg_dated(last)}: {action}",
                            f"Persistent low Mg despite supplement: {mg_dated(last)}: repeat Mg now"
                            if stale else f"Persistent low Mg despite supplement: {mg_dated(last)}: {action}")
    return _card(ctx, "mg-persistent", "critical" if f.severe else "warning", summary,
                 _detail(evidence, advice, a, "mg-persistent"), tuple(suggestions))
