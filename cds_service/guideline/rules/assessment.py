"""The whole assessment: every rule applied to one patient's facts (sections 1-5 and 7)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from ..codes import LabKind
from ..facts import LabResult, PatientFacts, Symptom, UsableResult, is_usable
from ..thresholds import COMPARISON_TOLERANCE, Thresholds
from .contributing import contributing_factors, femg, given_since, persistent_low, trough_missing
from .findings import (
    Assessment,
    FemgFinding,
    Finding,
    MagnesiumHigh,
    MonitoringDue,
    MonitoringInterval,
    PersistentLow,
    RenalFunction,
    ResultsNotUsed,
    Severity,
    SeverityFinding,
    SymptomsWithNormalMagnesium,
    TacrolimusUse,
)
from .monitoring import (
    is_first_tacrolimus_order,
    is_older_than,
    monitoring_interval,
    recent_symptoms,
    symptom_class,
)
from .renal import child_dosing, dialysis_reason, latest_egfr, renal_function
from .severity import classify, latest_usable, set_aside_future, tacrolimus_use


def magnesium_high(facts: PatientFacts, latest: UsableResult, now: datetime,
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


@dataclass(frozen=True)
class MagnesiumResults:
    """The serum magnesium results, sorted by what the rules do with them (section 2)."""

    latest: UsableResult | None  # the result the rules classify; None: no usable result
    unreadable: tuple[LabResult, ...]  # newer, could not be read (or a bound that cannot be classified)
    preliminary: tuple[LabResult, ...]  # newer and preliminary: shown, not classified
    future: tuple[LabResult, ...]  # dated in the future: named, never used


def _newest_first(results: Iterable[LabResult]) -> tuple[LabResult, ...]:
    return tuple(sorted(results, key=lambda r: r.when.timestamp() if r.when else 0.0, reverse=True))


def magnesium_results(facts: PatientFacts, future_labs: Iterable[LabResult],
                      thresholds: Thresholds) -> MagnesiumResults:
    """Section 2: the latest usable serum Mg, and the newer results that could not be used."""
    future = _newest_first(r for r in future_labs if r.kind == LabKind.MG_SERUM)
    serum = facts.labs_of(LabKind.MG_SERUM)
    # A lower bound below target ('> 1.0') cannot be classified: it is reported, not used.
    bounds = [r for r in serum if r.comparator in (">", ">=") and is_usable(r)
              and classify(r.normalised, r.comparator, False, thresholds) is None]
    latest = latest_usable(r for r in serum if r not in bounds)

    def newer(r: LabResult) -> bool:
        return latest is None or r.when is None or r.when >= latest.when

    superseded: set[int] = set()
    if latest is not None:  # same time, lower standing: corrected away, not "could not be read"
        superseded = {id(r) for r in serum if r.when == latest.when and r is not latest}
    unreadable = _newest_first(r for r in serum if newer(r) and (r.unreadable_reason or r in bounds)
                               and id(r) not in superseded)
    preliminary = _newest_first(r for r in serum if r.status == "preliminary" and not r.unreadable_reason
                                and newer(r))
    return MagnesiumResults(latest, unreadable, preliminary, future)


def _persistence(facts: PatientFacts, severity: Severity, renal: RenalFunction,
                 thresholds: Thresholds) -> PersistentLow | None:
    """Section 7: a low result that persists on a supplement, with the renal caution it carries."""
    persistent = persistent_low(facts, thresholds) if severity.is_low else None
    if persistent is None:
        return None
    return replace(persistent, renal_caution=renal.result if renal.impaired else None,
                   severe=severity.is_acute)


def _femg_workup(fem: FemgFinding | None, dialysis: str | None, persistent: PersistentLow | None,
                 under_way: bool, severity: Severity) -> bool:
    """Section 7: the work-up only where it can be interpreted: on the persistent card, or with
    no supplement active, being ordered, given or about to be suggested; never on dialysis."""
    femg_missing = fem is not None and fem.value is None
    supplement_coming = severity.is_low  # a low result always gets replacement advice
    return femg_missing and dialysis is None and (
        persistent is not None or not (under_way or supplement_coming))


def severity_findings(facts: PatientFacts, use: TacrolimusUse, latest: UsableResult, severity: Severity,
                      symptoms: tuple[Symptom, ...], stale: bool, interval: MonitoringInterval,
                      future: tuple[LabResult, ...], now: datetime, thresholds: Thresholds) -> list[Finding]:
    """Sections 3 and 7: the severity finding for a result below target, then its FEMg."""
    active = tuple(m for m in facts.medications if m.is_magnesium_supplement and m.active)
    given = given_since(facts, latest)
    given_orders = {(g.name, g.when) for g in given}
    supplements = tuple(m for m in active if (m.name, m.authored_on) not in given_orders)
    drafts = tuple(m for m in facts.draft_orders if m.is_magnesium_supplement)
    dialysis = dialysis_reason(facts, now, thresholds)
    renal = renal_function(facts, now, thresholds)
    fem = femg(facts, latest, thresholds) if severity.is_low else None
    persistent = _persistence(facts, severity, renal, thresholds)
    under_way = bool(active or drafts or given)
    findings: list[Finding] = [SeverityFinding(
        severity, latest, symptoms, stale, interval,
        renal.result if renal.impaired else None, supplements, drafts,
        latest_egfr(facts), femg_missing=fem is not None and fem.value is None, persistent=persistent,
        renal=renal, given=given, child=child_dosing(facts, now, thresholds), dialysis=dialysis,
        trough_missing_days=trough_missing(facts, use, now, thresholds) if severity.is_low else None,
        tacrolimus=use, femg_workup=_femg_workup(fem, dialysis, persistent, under_way, severity),
        future=future)]
    if fem is not None and fem.value is not None:
        findings.append(fem)
    return findings


def findings_for(facts: PatientFacts, use: TacrolimusUse, mg: MagnesiumResults, now: datetime,
                 thresholds: Thresholds) -> list[Finding]:
    """Sections 3-5 and 7 for the latest usable result: at most one finding per kind."""
    latest = mg.latest
    interval = monitoring_interval(facts, now, thresholds)
    symptoms = recent_symptoms(facts, now, thresholds)
    severity = None
    if latest is not None:
        severity = classify(latest.normalised, latest.comparator, symptom_class(symptoms), thresholds)
    stale = latest is None or is_older_than(latest, interval.days, now)
    high = magnesium_high(facts, latest, now, thresholds) if latest is not None else None
    findings: list[Finding] = []
    if latest is not None and severity is not None and severity is not Severity.AT_TARGET:
        findings += severity_findings(facts, use, latest, severity, symptoms, stale, interval, mg.future,
                                      now, thresholds)
    elif high is not None:
        findings.append(high)
    elif stale:
        findings.append(MonitoringDue(interval, latest, symptoms))
    if latest is not None and severity is Severity.AT_TARGET and symptoms and high is None:
        findings.append(SymptomsWithNormalMagnesium(latest, symptoms))
    if latest is not None and severity is not None and severity.is_low:
        trough_suggested = any(isinstance(f, SeverityFinding) and f.trough_missing_days is not None
                               for f in findings)
        factors = contributing_factors(facts, latest, now, thresholds, use, trough_suggested)
        if factors is not None:
            findings.append(factors)
    if not findings and (mg.unreadable or mg.preliminary or mg.future):
        # Never silent: a newer result exists that could not be used (section 2).
        findings.append(ResultsNotUsed(latest, mg.unreadable, mg.preliminary, mg.future))
    return findings


def _starting_tacrolimus(use: TacrolimusUse, facts: PatientFacts) -> bool:
    """Section 6's "starting tacrolimus": a systemic tacrolimus draft, no active tacrolimus, and
    (section 4) no earlier one: an order renewed after it ran out or was stopped, or tacrolimus
    known only from a statement, is a renewal or a resumption, not a start."""
    return use.state == "starting" and is_first_tacrolimus_order(facts)


def assess(facts: PatientFacts, now: datetime, thresholds: Thresholds) -> Assessment:
    """Apply sections 1-5 and 7 to one patient's facts."""
    use = tacrolimus_use(facts, now, thresholds)
    if use is None:
        return Assessment(on_tacrolimus=False, unavailable=facts.unavailable)
    facts, future_labs = set_aside_future(facts, now, thresholds)
    mg = magnesium_results(facts, future_labs, thresholds)
    findings = findings_for(facts, use, mg, now, thresholds)
    return Assessment(on_tacrolimus=True, findings=tuple(findings), unreadable=mg.unreadable,
                      ionized=latest_usable(facts.usable_labs_of(LabKind.MG_IONIZED)), preliminary=mg.preliminary,
                      unavailable=facts.unavailable, starting_tacrolimus=_starting_tacrolimus(use, facts),
                      latest=mg.latest, tacrolimus=use, future=mg.future)
