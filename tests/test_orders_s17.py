# ruff: noqa: E501  (a FHIR resource or an EHR text reads best on one line)
"""Order-hook cards (docs/clinical-rules.md section 6) against section 10's summary rule, famotidine's renal
dosing from eGFR bounds, and the tacrolimus-start card next to an active serum Mg order.

Patients are built the way EHRs send them (tests/test_independent_patients.py: both the EHR's
prefetch and no prefetch with a mocked FHIR server); every answer is also checked against
section 10 there (length, no cut action, ranges, drug names, override reasons).
"""

from __future__ import annotations

import re

import pytest

from cds_service.guideline.cards.orders import _summary

from . import test_independent_patients as patients
from .test_independent_patients import (
    MODES, run,
    ORAL, day, draft, egfr, med_suggestions, mg, obs, patient, recipient, rx, rxcode, the,
    trough,
)


# ---------------------------------------------------------------------------------------------
# Section 10: "summary ≤ 140 characters: the finding, its number and date, then the action".
# The longest realistic inputs: the longest PPI ingredient, several drafts, a diuretic drafted
# first, results in mmol/L and mg/dL (shown with their mEq/L equivalent), bounds, old results.

DEXILANT = draft({"text": "dexlansoprazole (DEXILANT) 60 mg delayed-release capsule"}, id="draft-dexi",
                 sig="60 mg by mouth daily")
PANTO = draft({"text": "pantoprazole 40 mg EC tablet"}, id="draft-panto")
HCTZ = draft({"text": "hydrochlorothiazide 25 mg tablet"}, id="draft-hctz")
ETHACRYNIC = draft({"text": "ethacrynic acid 25 mg tablet"}, id="draft-etha")
BUMEX = draft({"text": "bumetanide (BUMEX) 1 mg tablet"}, id="draft-bumex")

# name: (the latest serum Mg, the number as the lab wrote it, its date, state words, action end)
MG_STATES = {
    "low-mmol": (lambda: mg(0.62, "mmol/L"), "0.62 mmol/L", day(1), "low", "recheck Mg in 1–2 weeks"),
    "low-mgdl-3-decimals": (lambda: mg(1.22, "mg/dL"), "1.22 mg/dL", day(1), "low", "recheck Mg in 1–2 weeks"),
    "severe-bound-mmol": (lambda: mg(0.5, "mmol/L", comparator="<"), "<0.5 mmol/L", day(1), "low",
                          "recheck Mg in 1–2 weeks"),
    "below-target-mmol": (lambda: mg(0.72, "mmol/L"), "0.72 mmol/L", day(1), "below target", "recheck Mg in 1–2 weeks"),
    "below-target-mgdl": (lambda: mg(1.81, "mg/dL"), "1.81 mg/dL", day(1), "below target", "recheck Mg in 1–2 weeks"),
    "at-target-mmol": (lambda: mg(0.95, "mmol/L"), "0.95 mmol/L", day(1), "at target", "keep routine Mg checks (every 42 days)"),
    "not-measured-mmol": (lambda: mg(0.72, "mmol/L", days=50), "0.72 mmol/L", day(50), "no Mg in 42 days", "check serum Mg now"),
}
DRAFT_SETS = {
    "dexilant": [DEXILANT],
    "hctz-then-dexilant": [HCTZ, DEXILANT],
    "four-drafts": [HCTZ, DEXILANT, PANTO, ETHACRYNIC],
    "diuretics-only": [HCTZ, ETHACRYNIC, BUMEX],
}


def _listed(summary: str, names: list[str]) -> None:
    """Every drafted drug is named or counted ('dexlansoprazole +3'), never cut mid-word."""
    lead = re.split(r" ordered, |, Mg |, no Mg ", summary, maxsplit=1)[0].lower()
    shown = [n for n in names if n in lead]
    more = re.search(r"\+(\d+)$", lead)
    assert shown and len(shown) + (int(more.group(1)) if more else 0) == len(names), (lead, names)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("drafts", list(DRAFT_SETS))
@pytest.mark.parametrize("state", list(MG_STATES))
def test_wasting_order_summary_keeps_number_date_and_whole_action(state, drafts, hook, mode, discovery,
                                                                  monkeypatch):
    """§6 "a card naming the drug and the latest Mg"; "For an oral PPI, offer famotidine";
    §10 the summary carries the finding, its number and date, then the whole action."""
    result, number, date, words, action_end = MG_STATES[state]
    chosen = DRAFT_SETS[drafts]
    cards = run(recipient(result()), mode, discovery, monkeypatch, hook=hook, drafts=chosen)
    c = the(cards, "mg-order-wasting")
    s = c["summary"]
    assert len(s) <= 140 and s.endswith(action_end), s
    assert number in s and date in s and words in s, s
    oral_ppi = drafts != "diuretics-only"
    assert ("consider famotidine instead; " in s) == oral_ppi, s
    if oral_ppi:  # the PPI the swap replaces is the one named, whatever the draft order
        assert s.lower().startswith("dexlansoprazole"), s
    names = {"dexilant": ["dexlansoprazole"], "hctz-then-dexilant": ["dexlansoprazole", "hydrochlorothiazide"],
             "four-drafts": ["dexlansoprazole", "pantoprazole", "hydrochlorothiazide", "ethacrynic acid"],
             "diuretics-only": ["hydrochlorothiazide", "ethacrynic acid", "bumetanide"]}[drafts]
    _listed(s, names)


def test_wasting_summary_keeps_both_units_when_they_fit(discovery, monkeypatch):
    """§2 "Show values in the unit the lab used, with the mEq/L equivalent where it differs":
    the finding is only shortened when the summary would not fit otherwise."""
    cards = run(recipient(mg(0.62, "mmol/L")), "prefetch", discovery, monkeypatch, hook="order-select",
                drafts=[HCTZ])
    s = the(cards, "mg-order-wasting", "warning")["summary"]
    assert s == f"Hydrochlorothiazide ordered, Mg 0.62 mmol/L (1.24 mEq/L) ({day(1)}) low: use the lowest dose, recheck Mg in 1–2 weeks"


PAXLOVID = draft(rxcode("2587899", "nirmatrelvir 150 MG / ritonavir 100 MG Oral Tablet Co-packaged",
                        "PAXLOVID 300 mg-100 mg tablets"), id="draft-paxlovid")
TYBOST = draft({"text": "cobicistat (TYBOST) 150 mg tablet"}, id="draft-tybost")
RIFAMPIN = draft({"text": "rifampin 300 mg capsule"}, id="draft-rif")
TEGRETOL = draft({"text": "carbamazepine (TEGRETOL) 200 mg tablet"}, id="draft-tegretol")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n", [1, 2, 4])
@pytest.mark.parametrize("level", [None, 12.35, 31.5])
@pytest.mark.parametrize("state", ["active", "on-hold", "stopped"])
def test_interaction_summary_keeps_whole_action(state, level, n, mode, discovery, monkeypatch):
    """§6 ritonavir/cobicistat: "critical: tacrolimus usually has to be held or sharply reduced
    ... tacrolimus trough on day 2–3"; §1 held or stopped tacrolimus never gets a trough
    suggestion; §10 the summary ends with the whole action."""
    stopped = state == "stopped"
    tac = rx(rxcode("198377", "tacrolimus 1 MG Oral Capsule", "tacrolimus (PROGRAF) 1 mg capsule"), route=ORAL,
             status=state, days=10 if stopped else 800)
    res = [patient(), tac, egfr(58), mg(0.62, "mmol/L")] + ([trough(level, days=3)] if level else [])
    cards = run(res, mode, discovery, monkeypatch, hook="order-sign", drafts=[PAXLOVID, TYBOST, RIFAMPIN, TEGRETOL][:n])
    c = the(cards, "mg-order-interaction", "critical")
    s = c["summary"]
    assert len(s) <= 140, s
    if state == "active":
        assert s.endswith("hold or sharply reduce tacrolimus (transplant team); trough on day 2–3"), s
        if level:
            assert f"{level:g} ng/mL" in s and day(3) in s, s
    else:
        assert s.endswith("agree any restart dose with the transplant team"), s
    assert s.startswith("Ritonavir"), s


ENV_LONG = {"CDS_GUIDELINE_EARLY_INTERVAL_DAYS": "14", "CDS_GUIDELINE_EARLY_PHASE_DAYS": "60",
            "CDS_GUIDELINE_ORDER_RECENT_MG_DAYS": "120"}
START = draft(rxcode("198377", "tacrolimus 1 MG Oral Capsule", "tacrolimus (PROGRAF) 1 mg capsule"), id="draft-tac-start")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("env", [{}, ENV_LONG], ids=["defaults", "overridden-intervals"])
@pytest.mark.parametrize("result, number, days, action_end", [
    (lambda: mg(0.62, "mmol/L", days=2), "0.62 mmol/L", 2, " for the first {phase} days"),
    (lambda: mg(1.22, "mg/dL", days=2), "1.22 mg/dL", 2, " for the first {phase} days"),
    (lambda: mg(0.5, "mmol/L", days=2, comparator="<"), "<0.5 mmol/L", 2, " for the first {phase} days"),
    (lambda: mg(0.72, "mmol/L", days=150), "0.72 mmol/L", 150, "order a baseline serum Mg, then {early}"),
    (lambda: mg(0.95, "mmol/L", days=2), "0.95 mmol/L", 2, "serum Mg check in {days} days"),
], ids=["low-mmol", "low-mgdl", "bound-mmol", "old-mmol", "in-range-mmol"])
def test_start_summary_keeps_number_date_and_whole_action(result, number, days, action_end, env, mode,
                                                          discovery, monkeypatch):
    """§6 starting tacrolimus: "warning when Mg is low or unmeasured in 30 days ... monitoring
    plan"; section 10: the numbers a hospital overrides appear in the text; the summary keeps
    the finding's number and date and its whole action."""
    cards = run([patient(), egfr(80), result()], mode, discovery, monkeypatch, hook="order-select",
                drafts=[START], env=env)
    s = the(cards, "mg-order-tacrolimus")["summary"]
    early_days = int(env.get("CDS_GUIDELINE_EARLY_INTERVAL_DAYS", 7))
    early = "weekly" if early_days == 7 else f"every {early_days} days"
    phase = env.get("CDS_GUIDELINE_EARLY_PHASE_DAYS", "30")
    assert len(s) <= 140 and number in s and day(days) in s, s
    assert s.endswith(action_end.format(phase=phase, early=early, days=early_days)), s


def test_summary_cuts_a_hostile_finding_at_a_word_never_the_action():
    """§10 "never mid-word"; the action is the part a clinician acts on: it stays whole."""
    action = "consider famotidine instead; use the lowest dose, recheck Mg in 1–2 weeks"
    name = "pantoprazole " + "supercalifragilistic " * 6 + "tablet"
    s = _summary(["{list} ordered, Mg 0.62 mmol/L (2026-11-24) low"], action, [name])
    assert len(s) <= 140 and s.endswith(": " + action), s
    head = s[:-len(action) - 2]
    assert head.endswith("…") and head[:-1].split()[-1] in name.split(), s


# ---------------------------------------------------------------------------------------------
# Section 6: famotidine in place of an oral PPI, "renal dosing as today" (famotidine label: full
# dose from 60 mL/min, 20 mg once daily from 30, 20 mg every other day below 30), with eGFRs as
# EHRs report them: numbers, and bounds (Epic ">60", Cerner "<15", as valueQuantity.comparator
# or as valueString).

EGFR_CODE = [(patients.LOINC, "98979-8", "eGFR CKD-EPI 2021")]


def _egfr(value, comparator=None, **kw):
    return obs(EGFR_CODE, value, "mL/min/1.73m2", "mL/min/{1.73_m2}", days=3, text="eGFR", comparator=comparator, **kw)


FAMOTIDINE_GRID = [
    # eGFR as reported, (tablets, every N days), words the sig must carry
    ("60", lambda: _egfr(60), (2, 1), ["twice daily"]),
    ("59.9", lambda: _egfr(59.9), (1, 1), ["once daily", "reduced for egfr 59.9"]),
    ("30", lambda: _egfr(30), (1, 1), ["once daily", "reduced for egfr 30"]),
    ("29.9", lambda: _egfr(29.9), (1, 2), ["every other day", "reduced for egfr 29.9"]),
    (">60", lambda: _egfr(60, ">"), (2, 1), ["twice daily", "egfr >60"]),
    (">=60", lambda: _egfr(60, ">="), (2, 1), ["twice daily", "egfr >=60"]),
    (">90 valueString", lambda: _egfr(None, valueString=">90"), (2, 1), ["twice daily", "egfr >90"]),
    (">59", lambda: _egfr(59, ">"), (1, 1), ["once daily", "egfr >59", "bound", "check renal function"]),
    (">30", lambda: _egfr(30, ">"), (1, 1), ["once daily", "egfr >30", "bound"]),
    (">=30", lambda: _egfr(30, ">="), (1, 1), ["once daily", "egfr >=30", "bound"]),
    (">25", lambda: _egfr(25, ">"), (1, 2), ["every other day", "egfr >25", "bound", "check renal function"]),
    ("<15 valueString", lambda: _egfr(None, valueString="<15"), (1, 2), ["every other day", "egfr <15"]),
    ("<30", lambda: _egfr(30, "<"), (1, 2), ["every other day", "egfr <30"]),
    ("<=30", lambda: _egfr(30, "<="), (1, 2), ["every other day", "egfr <=30", "bound"]),
    ("<60", lambda: _egfr(60, "<"), (1, 2), ["every other day", "egfr <60", "bound", "check renal function"]),
    ("none", None, (1, 1), ["once daily", "no egfr on record"]),
]


def _famotidine(card: dict) -> dict:
    found = [r for r in med_suggestions(card)
             if any(cd.get("code") == "310273" for cd in r["medicationCodeableConcept"].get("coding", []))]
    assert len(found) == 1, [r["medicationCodeableConcept"] for r in med_suggestions(card)]
    return found[0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reported, result, dose, words", FAMOTIDINE_GRID, ids=[g[0] for g in FAMOTIDINE_GRID])
def test_famotidine_renal_dose_from_reported_egfr(reported, result, dose, words, mode, discovery, monkeypatch):
    """§6 "offer famotidine (RxNorm 310273, famotidine 20 MG Oral Tablet, renal dosing as today)";
    §2 a comparator makes the value a bound. A lower bound at or above 60 is normal renal
    function (full dose, the eGFR named, never "no eGFR on record"); a bound that leaves the
    band open is dosed for the lowest eGFR it admits and says so; the text and the structured
    timing agree."""
    res = recipient(mg(1.8, "mEq/L", days=10), *([result()] if result else []), renal=False)
    d = draft({"text": "omeprazole 20 mg capsule"}, id="draft-ome", sig="20 mg by mouth daily")
    cards = run(res, mode, discovery, monkeypatch, hook="order-select", drafts=[d])
    famotidine = _famotidine(the(cards, "mg-order-wasting", "info"))
    instruction = famotidine["dosageInstruction"][0]
    sig = instruction["text"].lower()
    repeat = instruction["timing"]["repeat"]
    assert (repeat["frequency"], repeat["period"]) == dose, (repeat, sig)
    assert instruction["doseAndRate"][0]["doseQuantity"]["value"] == 20
    for word in words:
        assert word in sig, (word, sig)
    if reported != "none":
        assert "no egfr" not in sig, sig
    if dose == (2, 1) and reported[0] not in "<>":
        assert "(" not in sig, sig  # a plain normal eGFR: the plain full-dose sig, as before


# ---------------------------------------------------------------------------------------------
# Section 6 starting tacrolimus with a serum Mg already ordered (section 4: never two orders for
# the same test). The card keeps its plan and says the Mg is ordered; it orders no second one.


def _serum_mg_order(status: str, id: str) -> dict:
    return {"resourceType": "ServiceRequest", "id": id, "status": status, "intent": "order",
            "category": [{"coding": [{"system": patients.SNOMED, "code": "108252007", "display": "Laboratory procedure"}]}],
            "code": {"coding": [{"system": patients.LOINC, "code": "19123-9",
                                 "display": "Magnesium [Mass/volume] in Serum or Plasma"}], "text": "Magnesium, serum"},
            "subject": {"reference": f"Patient/{patients.PID}"}, "authoredOn": patients.at(0.1)}


def _serum_mg_suggested(card: dict) -> bool:
    return any(cd.get("code") in ("19123-9", "2601-3")
               for s in card.get("suggestions") or [] for a in s.get("actions", [])
               if (a.get("resource") or {}).get("resourceType") == "ServiceRequest"
               for cd in a["resource"]["code"].get("coding", []))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("latest, finding", [
    (lambda: [mg(0.9, "mmol/L", days=40)], "no Mg in 30 days"),
    (lambda: [], "Mg never measured"),
], ids=["last-mg-40-days-ago", "never-measured"])
@pytest.mark.parametrize("where", ["active-order", "draft-being-signed"])
def test_start_card_with_serum_mg_already_ordered_keeps_plan_without_second_order(where, latest, finding, mode,
                                                                                  discovery, monkeypatch):
    """§6 "Starting tacrolimus ...: an info card (or warning when Mg is low or unmeasured in 30
    days) recommending a baseline serum Mg and the monitoring plan (weekly for the first month,
    then every 4–6 weeks)"; §4 a serum Mg already ordered is the one to draw (no second order)."""
    res = [patient(), egfr(80)] + latest()
    drafts = [START]
    if where == "active-order":
        res.append(_serum_mg_order("active", "sr-mg-active"))
        hook = "order-select"
    else:
        drafts.append(_serum_mg_order("draft", "sr-mg-draft"))
        hook = "order-sign"
    cards = run(res, mode, discovery, monkeypatch, hook=hook, drafts=drafts)
    c = the(cards, "mg-order-tacrolimus", "warning")
    assert finding in c["summary"] and c["summary"].endswith("baseline serum Mg already ordered, then weekly"), c["summary"]
    assert "weekly" in c["detail"] and "already ordered" in c["detail"], c["detail"]
    assert not any(_serum_mg_suggested(card) for card in cards), [s["label"] for card in cards
                                                                  for s in card.get("suggestions") or []]
    assert "mg-monitoring" not in [card["source"]["topic"]["code"] for card in cards]


@pytest.mark.parametrize("mode", MODES)
def test_start_card_without_an_order_still_suggests_the_baseline(mode, discovery, monkeypatch):
    """§6: "... with the ServiceRequest suggestion" when no serum Mg is ordered (the control)."""
    cards = run([patient(), egfr(80), mg(0.9, "mmol/L", days=40)], mode, discovery, monkeypatch,
                hook="order-select", drafts=[START])
    c = the(cards, "mg-order-tacrolimus", "warning")
    assert _serum_mg_suggested(c) and c["summary"].endswith("order a baseline serum Mg, then weekly"), c["summary"]
