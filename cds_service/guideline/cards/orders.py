"""The order-hook cards (section 6): starting tacrolimus, a magnesium-wasting drug, an interacting drug."""

from __future__ import annotations

from ...protocol.response import Action, Card, Suggestion
from .. import codes
from ..facts import LabResult, MedicationUse, number
from ..orders import (
    InteractingDrugOrdered,
    InteractionStrength,
    TacrolimusStart,
    WastingDrugOrdered,
    interaction_strength,
)
from ..rules import Assessment
from ..suggestions import famotidine_instead, is_mappable, lab_order
from ..thresholds import Thresholds
from .common import (
    SUMMARY_LIMIT,
    CardContext,
    _card,
    _create,
    _detail,
    _repeat_mg,
    capitalised,
    clinical_name,
    first_fitting,
    listing,
    mg_dated,
    mg_text,
)


def _latest_mg_line(latest: LabResult | None) -> str:
    return (f"Latest serum {mg_text(latest)} on {latest.day}." if latest
            else "No usable serum magnesium on record.")


def _level_line(level: LabResult | None) -> str:
    return (f"Latest tacrolimus level {level.shown} on {level.day}." if level
            else "No tacrolimus level on record.")


def _mg_dated(latest: LabResult | None) -> str:
    """'Mg 1.6 mEq/L (2026-11-20)': the number and date of a summary (section 10)."""
    return f"{mg_text(latest)} ({latest.day})" if latest else "Mg never measured"


def _mg_forms(latest: LabResult | None) -> list[str]:
    """The latest Mg with its number and date for a summary, longest form first: both units,
    then the date folded in, then the lab's unit only. A summary that does not fit shortens its
    finding this way, never its action (section 10)."""
    if latest is None:
        return ["Mg never measured"]
    return list(dict.fromkeys([_mg_dated(latest), mg_dated(latest), f"Mg {latest.shown} ({latest.day})"]))


def _mg_on_forms(latest: LabResult) -> list[str]:
    """'Mg 0.62 mmol/L (1.24 mEq/L) on 2026-10-01', then 'Mg 0.62 mmol/L on 2026-10-01'."""
    return list(dict.fromkeys([f"{mg_text(latest)} on {latest.day}", f"Mg {latest.shown} on {latest.day}"]))


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
    # Each summary from its fullest form to its shortest (section 10: the action stays whole).
    if f.concern == "low":
        summary = first_fitting(*(f"Starting tacrolimus with low {mg}: treat it (severity card), "
                                  f"then serum Mg {early} for the {first}" for mg in _mg_forms(f.latest)))
    elif f.concern:
        findings = ([f"no Mg in {t.order_recent_mg_days} days (last {mg})" for mg in _mg_on_forms(f.latest)]
                    if f.latest else ["Mg never measured"])
        action = ("baseline serum Mg already ordered" if f.mg_ordered
                  else "order a baseline serum Mg") + f", then {early}"
        summary = first_fitting(*(f"Starting tacrolimus, {finding}: {action}" for finding in findings))
    else:
        when = "now" if f.due_now else f"in {t.early_interval_days} days"
        action = (f"serum Mg already ordered, then {early} for the {first}" if f.mg_ordered
                  else f"first {early} serum Mg check {when}")
        summary = first_fitting(*(f"Starting tacrolimus, baseline {mg} in range: {action}"
                                  for mg in _mg_forms(f.latest)))
    evidence = [f"Ordering {clinical_name(f.draft.name)}; no active tacrolimus on record.",
                _latest_mg_line(f.latest)]
    plan = monitoring_plan(t)
    if f.concern:
        advice = [f"Tacrolimus wastes magnesium, most in the first weeks: check a baseline serum "
                  f"Mg, then {plan}."]
    else:
        advice = [f"The baseline is in range (within {t.order_recent_mg_days} days). Tacrolimus "
                  f"wastes magnesium, most in the first weeks: check serum Mg {plan}."
                  + ("" if f.mg_ordered else " The suggested order is the first of these checks, "
                     "not a new baseline.")]
    suggestions: tuple[Suggestion, ...] = ()
    if f.mg_ordered:
        # The plan still stands; the order placed is its first check (section 4: never two).
        advice.append("A serum magnesium is already ordered for this patient: it is the "
                      + ("baseline" if f.concern else "first of these checks")
                      + "; no second order is suggested. Make sure it is drawn.")
    elif f.suggest_baseline:
        why = ("baseline before tacrolimus" if f.concern else
               f"first {early} check" + ("" if f.due_now else f" in {t.early_interval_days} days"))
        suggestions = (_repeat_mg(ctx, 1 if f.due_now else t.early_interval_days, why),)
    else:
        advice.append("The serum Mg order is on the severity card.")
    return _card(ctx, "mg-order-tacrolimus", "warning" if f.concern else "info", summary,
                 _detail(evidence, advice, a, "mg-order-tacrolimus"), suggestions)


def _ingredients(drafts: tuple[MedicationUse, ...]) -> list[str]:
    return list(dict.fromkeys(d.ingredient or clinical_name(d.name) for d in drafts))


def _summary(findings: list[str], action: str, items: list[str], template: str = "{items}") -> str:
    """The finding (with its list budgeted, '+N' for what does not fit), then the action.

    Section 10: the summary ends with its whole action. `findings` are the same finding from
    the fullest form to the shortest (e.g. the Mg in both units, then in the lab's unit only);
    the first one that fits is used. Should none fit (a very long drug name), the finding is cut
    at a word, never the action.
    """
    summary = ""
    for finding in findings:
        fixed = len(finding.replace("{list}", "")) + len(action) + 2
        listed = listing(items, max(SUMMARY_LIMIT - fixed, 12))
        summary = f"{finding.replace('{list}', template.format(items=listed))}: {action}"
        if len(summary) <= SUMMARY_LIMIT:
            return summary
    head = summary[:-len(action) - 2]
    room = SUMMARY_LIMIT - len(action) - 3  # ': ' and the ellipsis
    cut = head[:room + 1].rfind(" ")
    return f"{head[:cut if cut > 0 else room].rstrip(' ,;:(')}…: {action}"


_MG_ALREADY_ORDERED = ("A serum magnesium is already ordered for this patient: no second order is "
                       "suggested; make sure it is drawn.")


def wasting_order_card(f: WastingDrugOrdered, a: Assessment, ctx: CardContext) -> Card:
    t = ctx.thresholds
    ppis = [d for d in f.drafts if d.wasting_class == "ppi"]
    oral_ppis = [d for d in ppis if not d.is_intravenous and d.request_id]
    # The PPI the famotidine swap replaces is named first: a list cut to "+N" must not leave
    # "consider famotidine instead" next to a diuretic.
    names = _ingredients(tuple(oral_ppis) + tuple(d for d in f.drafts if d not in oral_ppis))
    if f.concern == "not measured":
        findings = (["{list} ordered, " + f"no Mg in {t.routine_interval_days} days (last {mg})"
                     for mg in _mg_on_forms(f.latest)] if f.latest else ["{list} ordered, Mg never measured"])
        action = "serum Mg already ordered" if f.mg_ordered else "check serum Mg now"
    else:
        state = {"low": "low", "below target": "below target", None: "at target"}[f.concern]
        findings = ["{list} ordered, " + f"{mg} {state}" for mg in _mg_forms(f.latest)]
        action = ("use the lowest dose, recheck Mg in 1–2 weeks" if f.concern
                  else f"keep routine Mg checks (every {t.routine_interval_days} days)")
    findings.append(findings[-1].replace("{list} ordered, ", "{list}, "))  # last: 'ordered' goes
    if oral_ppis:
        action = "consider famotidine instead; " + action
    summary = capitalised(_summary(findings, action, names))
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
        if f.child_age is not None:  # section 3: no fixed adult dose for a child
            advice.append(f"Child ({f.child_age} years): dose {codes.PPI_ALTERNATIVE} by weight per the "
                          "paediatric protocol (no one-click adult dose is offered).")
            continue
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
    if f.mg_ordered:
        # Section 4: never two orders for the same test; the one placed is the recheck.
        advice.append(_MG_ALREADY_ORDERED)
    elif f.concern is not None:
        now = f.concern == "not measured"
        suggestions.append(_repeat_mg(ctx, 1 if now else 14,
                                      "now: on a magnesium-wasting drug" if now
                                      else "recheck in 1–2 weeks on a magnesium-wasting drug",
                                      not_before_days=0 if now else 7))
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
    verb = verb + "s" if len(items) == 1 else verb
    # Shorter forms of the same finding for long inputs (section 10: never cut the action).
    findings = ["{list} " + f"{verb} tacrolimus levels, {level}", "{list} " + f"{verb} tacrolimus, {level}"]
    summary = capitalised(_summary(findings, action, items))
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
            InteractionStrength.STRONG: "trough within 2–3 days of starting the interacting drug, "
                                        "before the morning dose",
            InteractionStrength.OTHER: "trough before the morning dose; interacting drug started"}[f.strength]
    label = {InteractionStrength.BOOSTER: "Order tacrolimus trough for day 2–3",
             InteractionStrength.STRONG: "Order tacrolimus trough within 2–3 days",
             InteractionStrength.OTHER: "Order tacrolimus trough within a week"}[f.strength]
    trough = _create(label, "Order tacrolimus trough",
                     lab_order(ctx.orders, codes.TACROLIMUS_TROUGH_ORDER, within_days=closes, note=note,
                               reason_low_mg=False, starting_in_days=opens), recommended=True)
    suggestions = ((trough,) if not paused else ()) + (
        () if f.mg_ordered else (_repeat_mg(ctx, 7, "within a week of an interacting drug"),))
    if f.mg_ordered:
        advice.append(_MG_ALREADY_ORDERED)
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
