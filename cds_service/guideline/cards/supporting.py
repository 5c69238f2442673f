"""Cards beside the severity card: high magnesium on a supplement (section 3), symptoms with a
normal magnesium (section 5), contributing factors and FEMg (section 7), results not used (section 2).
"""

from __future__ import annotations

from ...protocol.response import Card, Suggestion
from .. import codes
from ..codes import LabKind
from ..facts import MedicationUse, number
from ..rules import (
    Assessment,
    ContributingFactors,
    FemgFinding,
    MagnesiumHigh,
    NoLevelSince,
    ResultsNotUsed,
    SymptomsWithNormalMagnesium,
)
from .common import (
    SUMMARY_LIMIT,
    CardContext,
    _card,
    _detail,
    _drug_names,
    _repeat_mg,
    _symptom_names,
    _tacrolimus_line,
    clinical_name,
    first_fitting,
    listing,
    mg_dated,
    mg_text,
    short_drug,
    stop_active_orders,
)
from .severity import _neurotoxicity, _serum_creatinine, _trough, renal_text


def high_card(f: MagnesiumHigh, a: Assessment, ctx: CardContext) -> Card:
    """Section 3: Mg above high_above on a supplement: hold or reduce, check renal function."""
    t = ctx.thresholds
    names = _drug_names(f.supplements)
    summary = (f"High magnesium on a supplement: {mg_dated(f.latest)}: hold or reduce "
               f"{short_drug(f.supplements[0].name)}, check renal function")
    evidence = [f"Latest serum {mg_text(f.latest)} on {f.latest.day}, above {number(t.high_above)} mEq/L.",
                f"Active magnesium supplement: {names}.", _tacrolimus_line(a),
                f"Renal function: {renal_text(f.renal, t)}."]
    advice = ["Hold or reduce the magnesium supplement; recheck serum Mg.",
              "Check renal function (magnesium is cleared by the kidney)."]
    drafts = tuple(m for m in f.supplements if m.status == "draft")
    taking = tuple(m for m in f.supplements if m.status != "draft")
    if drafts and taking:
        # Order hooks: only the draft can be removed from here (build.py); say what else to hold.
        advice.insert(0, f"Do not sign {_drug_names(drafts)}; hold or reduce the supplements already "
                         f"taken ({_drug_names(taking)}) in the medication list.")
    if f.renal.impaired:
        advice.append(f"Renal impairment ({renal_text(f.renal, t)}) is the likely cause.")
    suggestions = stop_active_orders(f.supplements, "magnesium above target")
    suggestions.append(_repeat_mg(ctx, 3, "recheck after holding the supplement"))
    suggestions.append(_serum_creatinine(ctx, "renal function with high magnesium"))
    return _card(ctx, "mg-high", "warning", summary, _detail(evidence, advice, a, "mg-high"),
                 tuple(suggestions))


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


def _drug_line(m: MedicationUse, why: str) -> str:
    started = f", since {m.authored_on.date().isoformat()}" if m.authored_on else ""
    return f"{clinical_name(m.name)} ({why}{started}, status {m.status})"


def _name(m: MedicationUse) -> str:
    return m.ingredient or clinical_name(m.name)


def _no_level_line(u: NoLevelSince, f: ContributingFactors) -> str:
    """Section 7: 'no tacrolimus level since <drug> started (<date>)', and the last level."""
    line = f"No tacrolimus level since {_name(u.drug)} started ({u.started.date().isoformat()})"
    level = f.tacrolimus_level
    if level is None:
        return line + ": no tacrolimus level on record."
    if u.level_same_day:
        return line + (f": the last, {level.shown}, was taken on {level.day}, the day it started, "
                       "before its effect on the level could show.")
    return line + f": the last, {level.shown}, was taken on {level.day}."


def _contributing_action(f: ContributingFactors) -> str:
    """What to do about the factors listed (section 10: the summary ends with the action)."""
    if f.no_level_since:
        # Section 7: the first thing to say is a drug started with no trough since.
        return ": check a tacrolimus trough, review them"
    if f.wasting_drugs or f.raising_drugs:
        return ": review them"
    if f.tacrolimus_high and f.egfr_rise is None:
        return ": review the tacrolimus dose"
    if f.egfr_rise is not None and not f.tacrolimus_high:
        # Better graft function can increase magnesium excretion (section 7): watch, not stop.
        return ": recheck Mg sooner"
    return ": review them"


def contributing_card(f: ContributingFactors, a: Assessment, ctx: CardContext) -> Card:
    t = ctx.thresholds
    # Section 7: "the most actionable first": a drug started with no tacrolimus level since
    # (raising_drugs holds those first), then the drugs wasting magnesium, then the others.
    unknown = tuple(u.drug for u in f.no_level_since)
    others = tuple(m for m in f.raising_drugs if m not in unknown)
    named = [m.ingredient or clinical_name(m.name) for m in unknown + f.wasting_drugs + others]
    if f.tacrolimus_high and f.tacrolimus_level is not None:
        named.append(f"tacrolimus level {f.tacrolimus_level.shown}")
    if f.egfr_rise is not None:
        named.append(f"eGFR up {'≥ ' if f.egfr_rise.at_least else ''}{f.egfr_rise.fraction:.0%}")
    head = f"Factors worsening magnesium loss with {mg_dated(f.latest)}: "
    action = _contributing_action(f)
    listed = listing(named, SUMMARY_LIMIT - len(head) - len(action))
    summary = f"{head}{listed}{action}"
    evidence = [f"Latest serum {mg_text(f.latest)} on {f.latest.day}."]
    evidence += [_no_level_line(u, f) for u in f.no_level_since]
    evidence += [_drug_line(m, "raises tacrolimus levels") for m in unknown]
    evidence += [_drug_line(m, "wastes magnesium") for m in f.wasting_drugs]
    evidence += [_drug_line(m, "raises tacrolimus levels") for m in others]
    suggestions: list[Suggestion] = []
    if f.suggest_trough:
        suggestions.append(_trough(ctx))
    if f.tacrolimus_level is not None:
        level = f.tacrolimus_level
        line = f"Tacrolimus level {level.shown} on {level.day}"
        if f.tacrolimus_high:
            limit = level.reference_high if level.reference_high is not None else t.tacrolimus_high_above
            line += f": above range (> {limit:g} ng/mL); higher levels waste more magnesium"
        evidence.append(line + ".")
    if f.egfr_rise is not None:
        r = f.egfr_rise
        least = "at least " if r.at_least else ""  # a '>60' or '<15' result: the least rise (section 7)
        evidence.append(f"eGFR rose {least}{r.fraction:.0%} ({r.earlier.shown} on {r.earlier.day} → "
                        f"{r.latest.shown} on {r.latest.day}): better graft function can "
                        "increase magnesium excretion.")
    suggestions += stop_active_orders(f.wasting_drugs, "worsens magnesium loss")
    advice = []
    if f.no_level_since:
        names = ", ".join(dict.fromkeys(_name(u.drug) for u in f.no_level_since))
        advice.append(f"Check a tacrolimus trough: {names} raises tacrolimus levels and no level was "
                      "taken since it started (higher levels waste more magnesium; the transplant "
                      "team adjusts the dose).")
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


_LAB_NAMES = {LabKind.MG_SERUM: "serum Mg", LabKind.CREATININE_SERUM: "serum creatinine",
              LabKind.MG_URINE: "urine Mg", LabKind.CREATININE_URINE: "urine creatinine"}


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
