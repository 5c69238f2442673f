"""The whole assessment: every rule applied to one patient's facts (sections 1-5 and 7)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Iterable

from ..facts import LabResult, PatientFacts
from ..thresholds import COMPARISON_TOLERANCE, Thresholds
from .contributing import contributing_factors, femg, given_since, persistent_low, trough_missing
from .findings import (
    Assessment,
    Finding,
    MagnesiumHigh,
    MonitoringDue,
    ResultsNotUsed,
    Severity,
    SeverityFinding,
    SymptomsWithNormalMagnesium,
)
from .monitoring import is_older_than, monitoring_interval, recent_symptoms, symptom_class
from .renal import child_dosing, dialysis_reason, latest_egfr, renal_function
from .severity import classify, latest_usable, set_aside_future, tacrolimus_use


def magnesium_high(facts: PatientFacts, latest: LabResult, now: datetime,
                   thresholds: Thresholds) -> MagnesiumHigh | None:
    """Section 3: Mg above high_above while a magnesium supplement is active."""
    if latest.comparator in ("<", "<="):
        return None
    if latest.normalised <= thresholds.high_above + COMPARISON_TOLERANCE:
        return None
    supplements = tuple(m for m in facts.medications if m.is_magnesium_supplement and m.active)
    if not supplements:
        return None
    return MagnesiumHigh(latest, supplements, renal_function(facts, now, thresholds))


def assess(facts: PatientFacts, now: datetime, thresholds: Thresholds) -> Assessment:
    """Apply sections 1-5 and 7 to one patient's facts."""
    use = tacrolimus_use(facts, now, thresholds)
    if use is None:
        return Assessment(on_tacrolimus=False, unavailable=facts.unavailable)
    facts, future_labs = set_aside_future(facts, now, thresholds)
    future = tuple(sorted((r for r in future_labs if r.kind == "mg_serum"),
                          key=lambda r: r.when, reverse=True))
    serum = facts.labs_of("mg_serum")
    # A lower bound below target ('> 1.0') cannot be classified: it is reported, not used.
    bounds = [r for r in serum if r.usable and classify(r.normalised, r.comparator, False, thresholds) is None]
    latest = latest_usable(r for r in serum if r not in bounds)

    def newer(r: LabResult) -> bool:
        return latest is None or r.when is None or r.when >= latest.when

    def newest_first(results: Iterable[LabResult]) -> tuple[LabResult, ...]:
        return tuple(sorted(results, key=lambda r: r.when.timestamp() if r.when else 0.0, reverse=True))

    superseded = set()
    if latest is not None:  # same time, lower standing: corrected away, not "could not be read"
        superseded = {id(r) for r in serum if r.when == latest.when and r is not latest}
    unreadable = newest_first(r for r in serum if (r.unreadable_reason or r in bounds) and newer(r)
                              and id(r) not in superseded)
    preliminary = newest_first(r for r in serum if r.status == "preliminary" and not r.unreadable_reason
                               and newer(r))
    ionized = latest_usable(facts.labs_of("mg_ionized"))
    interval = monitoring_interval(facts, now, thresholds)
    symptoms = recent_symptoms(facts, now, thresholds)
    findings: list[Finding] = []

    severity = None
    if latest is not None:
        severity = classify(latest.normalised, latest.comparator, symptom_class(symptoms), thresholds)
    stale = latest is None or is_older_than(latest, interval.days, now)
    high = magnesium_high(facts, latest, now, thresholds) if latest is not None else None

    if severity is not None and severity is not Severity.AT_TARGET:
        active = tuple(m for m in facts.medications if m.is_magnesium_supplement and m.active)
        given = given_since(facts, latest)
        given_orders = {(g.name, g.when) for g in given}
        supplements = tuple(m for m in active if (m.name, m.authored_on) not in given_orders)
        drafts = tuple(m for m in facts.draft_orders if m.is_magnesium_supplement)
        dialysis = dialysis_reason(facts, now, thresholds)
        renal = renal_function(facts, now, thresholds)
        fem = femg(facts, latest, thresholds) if severity.is_low else None
        persistent = persistent_low(facts, thresholds) if severity.is_low else None
        if persistent is not None:
            persistent = replace(persistent, renal_caution=renal.result if renal.impaired else None,
                                 severe=severity.is_acute)
        femg_missing = fem is not None and fem.value is None
        # Section 7: the work-up only where it can be interpreted: on the persistent card, or
        # with no supplement active, being ordered, given or about to be suggested; never on
        # dialysis.
        supplement_coming = severity.is_low  # a low result always gets replacement advice
        workup = femg_missing and dialysis is None and (
            persistent is not None or not (active or drafts or given or supplement_coming))
        findings.append(SeverityFinding(
            severity, latest, symptoms, stale, interval,
            renal.result if renal.impaired else None, supplements, drafts,
            latest_egfr(facts), femg_missing=femg_missing, persistent=persistent, renal=renal,
            given=given, child=child_dosing(facts, now, thresholds), dialysis=dialysis,
            trough_missing_days=trough_missing(facts, use, now, thresholds) if severity.is_low else None,
            tacrolimus=use, femg_workup=workup, future=future))
        if fem is not None and fem.value is not None:
            findings.append(fem)
    elif high is not None:
        findings.append(high)
    elif stale:
        findings.append(MonitoringDue(interval, latest, symptoms))
    if latest is not None and severity is Severity.AT_TARGET and symptoms and high is None:
        findings.append(SymptomsWithNormalMagnesium(latest, symptoms))
    if latest is not None and severity is not None and severity.is_low:
        factors = contributing_factors(facts, latest, now, thresholds)
        if factors is not None:
            findings.append(factors)
    if not findings and (unreadable or preliminary or future):
        # Never silent: a newer result exists that could not be used (section 2).
        findings.append(ResultsNotUsed(latest, unreadable, preliminary, future))
    return Assessment(on_tacrolimus=True, findings=tuple(findings), unreadable=unreadable,
                      ionized=ionized, preliminary=preliminary, unavailable=facts.unavailable,
                      # A restart after a recent stop is a start too (section 6: "no active tacrolimus").
                      starting_tacrolimus=use.state == "starting" or (
                          use.state == "stopped" and any(m.is_systemic_tacrolimus for m in facts.draft_orders)),
                      latest=latest,
                      tacrolimus=use, future=future)
