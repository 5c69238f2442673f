"""Build the synthetic fixtures: one patient Bundle, one hook request and the expected cards per
scenario (docs/clinical-rules.md sections 1-7). Most scenarios are patient-view; the order scenarios
(section 6) name order-select or order-sign and carry draft orders.

Run from the repository root: ``python -m fhir_fixtures.generate``. Output is deterministic:
every date is relative to cds_service.testing.factories.NOW (2026-11-25T12:00Z) and resource ids
restart for each scenario. No real patient data: every resource is made up here.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from cds_service.guideline.facts import number
from cds_service.testing import factories as f

HERE = Path(__file__).parent
NOW = "2026-11-25T12:00:00Z"
FHIR_BASE = "https://fhir.example.org/r4"  # synthetic server; fullUrl base of the patient Bundles

# Card topics (cds_service.guideline.cards): one card per kind.
SEVERITY, MONITORING, SYMPTOMS = "mg-severity", "mg-monitoring", "mg-symptoms"
CONTRIBUTING, PERSISTENT, FEMG = "mg-contributing", "mg-persistent", "mg-femg"
ORDER_START, ORDER_WASTING = "mg-order-tacrolimus", "mg-order-wasting"
ORDER_INTERACTION = "mg-order-interaction"
HOOKS = ("patient-view", "order-select", "order-sign")


def day(days: float) -> str:
    """The calendar day (as cards print it) of a time `days` before NOW."""
    return f.days_ago(days)[:10]


# --------------------------------------------------------------------------------------------
# Patient building blocks


def tacrolimus(**kwargs) -> dict:
    """Systemic tacrolimus (Prograf 1 mg capsule), active for over a year unless told."""
    return f.tacrolimus(**kwargs)


def tacrolimus_level(value: float = 8.0, days: float = 3, **kwargs) -> dict:
    return f.lab("11253-2", value, "ng/mL", days=days, **kwargs)


def egfr(value: float = 55, days: float = 3) -> dict:
    return f.lab("98979-8", value, "mL/min/{1.73_m2}", days=days)


def stable_recipient(*extra: dict, level: bool = True) -> list[dict]:
    """A kidney recipient on tacrolimus for over a year, trough 8 ng/mL and eGFR 55 three days ago.

    A recent in-range trough keeps the "no recent tacrolimus level" factor (section 7) out of
    scenarios about something else.
    """
    resources = [tacrolimus(), f.transplant(days=800), egfr()]
    if level:
        resources.append(tacrolimus_level())
    return resources + list(extra)


# --------------------------------------------------------------------------------------------
# Expected cards


def card(indicator: str, topic: str, *summary: str, detail: tuple[str, ...] = (),
         suggestions: tuple[str, ...] = (), no_suggestions: tuple[str, ...] = ()) -> dict:
    """One expected card: substrings of its summary and detail, and of its suggestion labels
    (`suggestions`: each in some label; `no_suggestions`: in none)."""
    expected = {"indicator": indicator, "topic": topic, "summary_contains": list(summary)}
    if detail:
        expected["detail_contains"] = list(detail)
    if suggestions:
        expected["suggestions_contain"] = list(suggestions)
    if no_suggestions:
        expected["suggestions_exclude"] = list(no_suggestions)
    return expected


def severe(mg: str, *more: str, days: float = 1, **kw) -> dict:
    return card("critical", SEVERITY, "Severe low magnesium", mg, day(days), *more, **kw)


def mild(mg: str, *more: str, days: float = 1, **kw) -> dict:
    return card("warning", SEVERITY, "Low magnesium", mg, day(days), *more, **kw)


def below_target(mg: str, *more: str, days: float = 1, **kw) -> dict:
    return card("info", SEVERITY, "Magnesium just below target", mg, day(days), *more, **kw)


def persistent(indicator: str, mg: str, *more: str, days: float = 1, **kw) -> dict:
    return card(indicator, PERSISTENT, "Persistent low magnesium despite supplement", mg, day(days), *more, **kw)


def due(*summary: str, **kw) -> dict:
    return card("warning", MONITORING, "Serum magnesium due", *summary, **kw)


@dataclass
class Scenario:
    name: str
    description: str
    build: object  # () -> resources, or (history, drafts) for an order hook; called after the id reset
    expected: list[dict]
    encounter_id: str | None = None
    hook: str = "patient-view"
    selected: tuple[int, ...] | None = None  # order-select: indices of the selected drafts (None: all)
    resources: list[dict] = field(default_factory=list)  # the history: the patient Bundle, the prefetch
    drafts: list[dict] = field(default_factory=list)  # order hooks: context.draftOrders

    @property
    def request_file(self) -> str:
        return f"{self.name}.{self.hook}.json"


SCENARIOS: list[Scenario] = []


def scenario(name: str, description: str, expected: list[dict], encounter_id: str | None = None):
    def register(build):
        SCENARIOS.append(Scenario(name, description, build, expected, encounter_id))
        return build
    return register


def order_scenario(name: str, description: str, expected: list[dict], *, hook: str = "order-select",
                   selected: tuple[int, ...] | None = None, encounter_id: str | None = None):
    """An order-hook scenario: `build` returns (history, drafts); `selected` picks drafts by index."""
    assert hook in ("order-select", "order-sign")
    assert selected is None or hook == "order-select"

    def register(build):
        SCENARIOS.append(Scenario(name, description, build, expected, encounter_id, hook,
                                  tuple(selected) if selected is not None else None))
        return build
    return register


def mg(value: float, unit: str = "mEq/L", days: float = 1, **kwargs) -> dict:
    """Serum magnesium, LOINC 2601-3 for mmol/L and mEq/L results, 19123-9 for mass units."""
    kwargs.setdefault("code", "19123-9" if unit in ("mg/dL", "mg/L") else "2601-3")
    return f.magnesium(value, unit, days=days, **kwargs)


# --- Section 3: one scenario per severity class ----------------------------------------------

@scenario("severe", "Mg 0.9 mEq/L yesterday on tacrolimus: severe (critical), IV magnesium.",
          [severe("Mg 0.9 mEq/L", detail=("IV magnesium sulfate 2 g",))])
def _():
    return stable_recipient(mg(0.9))


@scenario("symptomatic", "Mg 1.2 mEq/L with a seizure 3 days ago (a major symptom): symptomatic "
          "(critical), IV magnesium, urgent; seizure is also a sign of tacrolimus toxicity.",
          [card("critical", SEVERITY, "Symptomatic low magnesium with seizure", "Mg 1.2 mEq/L", day(1),
                "MgSO4 2 g IV", detail=("**Urgent**", "also a sign of tacrolimus toxicity"),
                suggestions=("Magnesium sulfate 2 g IV",))])
def _():
    return stable_recipient(mg(1.2), f.condition("Seizure", snomed="91175000", days=3))


@scenario("symptomatic-minor-cramp", "Mg 1.2 mEq/L with a muscle cramp 3 days ago (a minor symptom): "
          "warning, oral magnesium oxide three times daily, IV offered but not recommended.",
          [card("warning", SEVERITY, "Low magnesium with cramp", "Mg 1.2 mEq/L", day(1),
                "three times daily", suggestions=("Magnesium oxide 400 mg by mouth three times daily",
                                                  "(if oral is not tolerated)"))])
def _():
    return stable_recipient(mg(1.2), f.condition("Muscle cramp", snomed="55300003", days=3))


@scenario("symptomatic-minor-tremor-mmol", "Mg 0.6 mmol/L (1.20 mEq/L) with tremor: warning (minor "
          "symptom); the card says tremor is also tacrolimus toxicity (check the trough).",
          [card("warning", SEVERITY, "Low magnesium with tremor", "Mg 0.6 mmol/L (1.20 mEq/L", day(1),
                detail=("also a sign of tacrolimus toxicity",))])
def _():
    return stable_recipient(mg(0.6, "mmol/L"), f.condition("Tremor", snomed="26079004", days=2))


@scenario("chronic-af-rerecorded", "Atrial fibrillation with onset in 2019, re-recorded 3 days ago, and Mg "
          "1.2 mEq/L: onset decides (section 5), so mild-moderate, not a new arrhythmia.",
          [mild("Mg 1.2 mEq/L")])
def _():
    af = f.condition("Atrial fibrillation", snomed="49436004", days=3)
    af["onsetDateTime"] = "2019-03-02"
    return stable_recipient(mg(1.2), af)


@scenario("mild-moderate", "Mg 1.2 mEq/L, no symptoms: mild-moderate (warning), oral magnesium oxide.",
          [mild("Mg 1.2 mEq/L", "target > 1.4 mEq/L", "magnesium oxide 400 mg twice daily, recheck in 1–2 weeks",
                detail=("magnesium oxide 400 mg", "1–2 weeks", "2 hours apart from mycophenolate"))])
def _():
    return stable_recipient(mg(1.2))


@scenario("below-target", "Mg 1.45 mEq/L: below target (info) only; no factors card for a result above 1.4.",
          [below_target("Mg 1.45 mEq/L")])
def _():
    return stable_recipient(mg(1.45), f.medication("omeprazole 20 MG Delayed Release Oral Capsule",
                                                   rxnorm="7646", display="omeprazole"))


@scenario("at-target", "Mg 1.8 mEq/L measured 10 days ago: at target, no cards.", [])
def _():
    return stable_recipient(mg(1.8, days=10))


# --- Section 3: both sides of every boundary, in the three units --------------------------------

_CLASS_CARDS = {
    "severe": lambda text: [severe(text)],
    "mild-moderate": lambda text: [mild(text)],
    "below target": lambda text: [below_target(text)],
    "at target": lambda text: [],
}
BOUNDARIES = [
    # (value, unit, mEq/L equivalent as printed, class)
    (0.99, "mEq/L", None, "severe"), (1.0, "mEq/L", None, "mild-moderate"),
    (1.4, "mEq/L", None, "mild-moderate"), (1.41, "mEq/L", None, "below target"),
    (1.49, "mEq/L", None, "below target"), (1.5, "mEq/L", None, "at target"),
    (0.49, "mmol/L", "0.98", "severe"), (0.5, "mmol/L", "1.00", "mild-moderate"),
    (0.7, "mmol/L", "1.40", "mild-moderate"), (0.71, "mmol/L", "1.42", "below target"),
    (0.74, "mmol/L", "1.48", "below target"), (0.75, "mmol/L", "1.50", "at target"),
    # mg/dL: 1.0 / 1.4 / 1.5 mEq/L are 1.2153 / 1.7013 / 1.8229 mg/dL; labs report 2 decimals.
    # The mEq/L equivalent gets a third decimal where two would round onto a threshold.
    (1.21, "mg/dL", "0.996", "severe"),  # 0.9957 mEq/L
    (1.22, "mg/dL", "1.004", "mild-moderate"),  # 1.0039 mEq/L
    (1.70, "mg/dL", "1.399", "mild-moderate"),  # 1.3989 mEq/L
    (1.71, "mg/dL", "1.41", "below target"),  # 1.4071 mEq/L
    (1.82, "mg/dL", "1.498", "below target"),  # 1.4976 mEq/L
    (1.83, "mg/dL", "1.51", "at target"),  # 1.5059 mEq/L
]


def _boundary(value: float, unit: str, meq: str | None, klass: str) -> None:
    # Summaries print the date inside the unit's parenthesis: "Mg 1.21 mg/dL (0.996 mEq/L, 2026-…".
    shown = f"Mg {number(value)} {unit}" + (f" ({meq} mEq/L, " if meq else "")
    unit_key = {"mEq/L": "meq", "mmol/L": "mmol", "mg/dL": "mgdl"}[unit]
    name = f"boundary-{unit_key}-{value:.2f}"
    description = (f"Mg {value:g} {unit}" + (f" (= {meq} mEq/L)" if meq else "")
                   + f" yesterday: {klass}" + (" (no severity card)." if klass == "at target" else "."))
    scenario(name, description, _CLASS_CARDS[klass](shown))(lambda: stable_recipient(mg(value, unit)))


for _boundary_args in BOUNDARIES:
    _boundary(*_boundary_args)


@scenario("comparator-below-0.5-mmol", "Mg reported as '<0.5 mmol/L': an upper bound, certainly severe.",
          [severe("Mg <0.5 mmol/L", detail=("upper bound",))])
def _():
    return stable_recipient(mg(0.5, "mmol/L", comparator="<"))


@scenario("stale-low-result", "Mg 1.2 mEq/L 50 days ago and nothing since: the severity card asks for a "
          "repeat level (no second card for the same test).",
          [card("warning", SEVERITY, "Low magnesium", "Mg 1.2 mEq/L", day(50),
                "(50 days ago)", "repeat Mg now",
                detail=("50 days old, beyond the 42-day monitoring interval", "if the repeat confirms"))])
def _():
    return stable_recipient(mg(1.2, days=50))


@scenario("renal-impairment-caution", "Severe Mg 0.9 mEq/L with eGFR 24: supplementation carries the "
          "renal caution (halve the dose, hypermagnesemia risk).",
          [severe("Mg 0.9 mEq/L", "MgSO4 1 g IV",
                  detail=("Caution: renal impairment (eGFR 24", "IV halved, oral once daily"),
                  suggestions=("Magnesium sulfate 1 g (halved for renal impairment)",))])
def _():
    return [tacrolimus(), f.transplant(days=800), tacrolimus_level(), egfr(24, days=2), mg(0.9)]


# --- Section 4: monitoring ------------------------------------------------------------------

@scenario("routine-due", "Mg 1.8 mEq/L 50 days ago, routine follow-up: due (42-day interval).",
          [due(f"last Mg 1.8 mEq/L on {day(50)}", "42-day interval", detail=("routine on tacrolimus",))])
def _():
    return stable_recipient(mg(1.8, days=50))


@scenario("routine-not-yet-due", "Mg 1.8 mEq/L 41 days ago, routine follow-up: not due yet, no cards.", [])
def _():
    return stable_recipient(mg(1.8, days=41))


@scenario("never-measured", "On tacrolimus, no magnesium result on record: due (never measured).",
          [due("never measured")])
def _():
    return stable_recipient()


@scenario("early-phase-after-transplant", "Kidney transplant 20 days ago, Mg 1.8 mEq/L 10 days ago: "
          "due (7-day interval in the first month).",
          [due(f"last Mg 1.8 mEq/L on {day(10)}", "7-day interval", detail=("first 30 days after transplant",))])
def _():
    return [tacrolimus(days=21), f.transplant(days=20), tacrolimus_level(days=2), egfr(days=2),
            mg(1.8, days=10)]


@scenario("early-phase-tacrolimus-start", "Tacrolimus started 15 days ago (no earlier order, no transplant "
          "on record), Mg 1.9 mEq/L 9 days ago: due (7-day interval).",
          [due(f"last Mg 1.9 mEq/L on {day(9)}", "7-day interval", detail=("first 30 days of tacrolimus",))])
def _():
    return [tacrolimus(days=15), tacrolimus_level(days=2), egfr(days=2), mg(1.9, days=9)]


@scenario("tacrolimus-renewal-not-a-start", "Active tacrolimus order written 10 days ago renews one started "
          "300 days ago (now completed): routine interval, Mg 1.9 mEq/L 9 days ago, no cards.", [])
def _():
    return [tacrolimus(days=10), tacrolimus(days=300, status="completed"), tacrolimus_level(days=2),
            egfr(days=2), mg(1.9, days=9)]


@scenario("inpatient-due", "In-progress inpatient encounter, Mg 1.8 mEq/L 4 days ago: due (3-day interval).",
          [due(f"last Mg 1.8 mEq/L on {day(4)}", "3-day interval", detail=("hospitalized",))],
          encounter_id="enc-1")
def _():
    return stable_recipient(mg(1.8, days=4), f.encounter("IMP"))


@scenario("outpatient-encounter-not-due", "Ambulatory encounter, Mg 1.8 mEq/L 4 days ago: routine interval, "
          "no cards.", [], encounter_id="enc-1")
def _():
    return stable_recipient(mg(1.8, days=4), f.encounter("AMB"))


# --- Section 5: symptoms --------------------------------------------------------------------

@scenario("symptoms-normal-mg", "Tremor recorded 3 days ago with Mg 1.8 mEq/L: info card (serum Mg may "
          "not reflect body stores), never a severity card.",
          [card("info", SYMPTOMS, "Symptoms despite Mg 1.8 mEq/L", day(2), "(tremor)", "consider ionized Mg",
                detail=("ionized Mg", "FEMg"))])
def _():
    return stable_recipient(mg(1.8, days=2), f.condition("Tremor", snomed="26079004", days=3))


@scenario("symptom-older-than-14-days", "Muscle cramp recorded 20 days ago with Mg 1.2 mEq/L: outside the "
          "14-day window, so mild-moderate, not symptomatic.",
          [mild("Mg 1.2 mEq/L")])
def _():
    return stable_recipient(mg(1.2), f.condition("Muscle cramp", snomed="55300003", days=20))


# --- Section 7: contributing factors, persistence, FEMg ----------------------------------------

@scenario("contributing-ppi-and-loop-diuretic", "Mg 1.2 mEq/L on omeprazole and furosemide: factors card "
          "naming both, with stop suggestions and the H2-blocker alternative.",
          [mild("Mg 1.2 mEq/L"),
           card("warning", CONTRIBUTING, "Factors worsening magnesium loss", "omeprazole", "furosemide",
                detail=("famotidine",))])
def _():
    return stable_recipient(
        mg(1.2),
        f.medication("omeprazole 20 MG Delayed Release Oral Capsule", rxnorm="7646", display="omeprazole"),
        f.medication("furosemide 40 MG Oral Tablet", days=90))


@scenario("contributing-high-tacrolimus-level", "Mg 1.3 mEq/L with a tacrolimus trough of 18.2 ng/mL "
          "(above 15): factors card.",
          [mild("Mg 1.3 mEq/L"),
           card("warning", CONTRIBUTING, "Factors worsening magnesium loss", "tacrolimus level 18.2 ng/mL",
                detail=("above range (> 15 ng/mL)",))])
def _():
    return [tacrolimus(), f.transplant(days=800), egfr(), tacrolimus_level(18.2, days=2), mg(1.3)]


@scenario("contributing-tacrolimus-above-lab-range", "Mg 1.3 mEq/L, trough 13 ng/mL above the lab's own "
          "reference high of 12: factors card.",
          [mild("Mg 1.3 mEq/L"),
           card("warning", CONTRIBUTING, "Factors worsening magnesium loss", "tacrolimus level 13 ng/mL",
                detail=("above range (> 12 ng/mL)",))])
def _():
    return [tacrolimus(), f.transplant(days=800), egfr(),
            tacrolimus_level(13, days=2, reference_high=12), mg(1.3)]


@scenario("contributing-azole", "Mg 1.2 mEq/L on voriconazole (raises tacrolimus levels): factors card.",
          [mild("Mg 1.2 mEq/L"),
           card("warning", CONTRIBUTING, "Factors worsening magnesium loss", "voriconazole",
                detail=("raises tacrolimus levels",))])
def _():
    return stable_recipient(mg(1.2), f.medication("voriconazole 200 MG Oral Tablet", days=20))


@scenario("missing-tacrolimus-level-late", "Mg 1.2 mEq/L more than a year after transplant, last trough "
          "100 days ago: no 'factors' card for a missing level (section 7); the severity card suggests "
          "a trough (90-day window after the first year).",
          [mild("Mg 1.2 mEq/L", detail=("No tacrolimus level in the last 90 days",),
                suggestions=("Order tacrolimus trough level",))])
def _():
    return stable_recipient(mg(1.2), tacrolimus_level(7.5, days=100), level=False)


@scenario("tacrolimus-level-45-days-late-is-recent", "Mg 1.2 mEq/L two years after transplant, trough 45 "
          "days ago: within the 90-day window, no trough suggested, no factors card.",
          [mild("Mg 1.2 mEq/L", no_suggestions=("tacrolimus trough",))])
def _():
    return stable_recipient(mg(1.2), tacrolimus_level(7.5, days=45), level=False)


@scenario("missing-tacrolimus-level-first-year", "Mg 0.55 mmol/L (1.10 mEq/L) 200 days after transplant, "
          "trough 45 days ago: first year, 30-day window: the severity card suggests a trough.",
          [mild("Mg 0.55 mmol/L (1.10 mEq/L", detail=("No tacrolimus level in the last 30 days",),
                suggestions=("Order tacrolimus trough level",))])
def _():
    return [tacrolimus(days=200), f.transplant(days=200), egfr(), tacrolimus_level(7.5, days=45),
            mg(0.55, "mmol/L")]


@scenario("contributing-egfr-rise", "Mg 1.2 mEq/L, eGFR up from 40 to 55 in 60 days (better graft "
          "function): factors card.",
          [mild("Mg 1.2 mEq/L"),
           card("warning", CONTRIBUTING, "Factors worsening magnesium loss", "eGFR up 38%")])
def _():
    return stable_recipient(mg(1.2), egfr(40, days=63))


@scenario("persistent-despite-supplementation", "Magnesium oxide since 60 days; Mg 1.2, 1.3 and 1.25 mEq/L "
          "over 39 days since: persistent (warning).",
          [persistent("warning", "Mg 1.25 mEq/L", f"3 low since {day(40)}", "increase magnesium oxide",
                      detail=("amiloride", "FEMg", "check adherence"),
                      suggestions=("for FEMg", "Order serum magnesium"),
                      no_suggestions=("Magnesium oxide 400 mg by mouth",))])
def _():
    return stable_recipient(f.medication("magnesium oxide 400 MG Oral Tablet", days=60),
                            mg(1.2, days=40), mg(1.3, days=20), mg(1.25, days=1))


@scenario("persistent-severe", "Magnesium oxide since 45 days; Mg 1.1 then 0.9 mEq/L 21 days apart: "
          "persistent and severe (critical).",
          [persistent("critical", "Mg 0.9 mEq/L", f"2 low since {day(22)}", "MgSO4 2 g IV",
                      detail=("amiloride",), suggestions=("Magnesium sulfate 2 g IV", "for FEMg"))])
def _():
    return stable_recipient(f.medication("magnesium oxide 400 MG Oral Tablet", days=45),
                            mg(1.1, days=22), mg(0.9, days=1))


def _femg_inputs(urine_mg: float) -> list[dict]:
    """Serum creatinine 1.2 mg/dL, urine creatinine 80 mg/dL, urine Mg (mg/dL), all yesterday."""
    return [f.lab("2160-0", 1.2, "mg/dL"), f.lab("2161-8", 80, "mg/dL"), f.lab("19124-7", urine_mg, "mg/dL")]


@scenario("femg-renal-wasting", "Mg 1.4 mg/dL with same-day urine Mg 4.0 mg/dL, urine creatinine 80 and "
          "serum creatinine 1.2 mg/dL: FEMg 6.1% (renal wasting).",
          [mild("Mg 1.4 mg/dL (1.15 mEq/L"),
           card("info", FEMG, "FEMg 6.1%", day(1), "renal magnesium wasting", "review wasting drugs")])
def _():
    return stable_recipient(mg(1.4, "mg/dL"), *_femg_inputs(4.0))


@scenario("femg-extrarenal", "Mg 1.4 mg/dL with urine Mg 1.0 mg/dL: FEMg 1.5% (extrarenal loss).",
          [mild("Mg 1.4 mg/dL (1.15 mEq/L"),
           card("info", FEMG, "FEMg 1.5%", day(1), "extrarenal loss", "look for diarrhoea or poor intake")])
def _():
    return stable_recipient(mg(1.4, "mg/dL"), *_femg_inputs(1.0))


# --- Section 1: scope and how tacrolimus is recognised ---------------------------------------

@scenario("topical-tacrolimus-only", "Protopic 0.1% ointment (topical route) only, Mg 0.8 mEq/L: out of "
          "scope, no cards.", [])
def _():
    return [f.medication("Protopic 0.1% ointment", days=100,
                         dosageInstruction=[{"route": {"coding": [{"system": f.SNOMED, "code": "6064005"}],
                                                       "text": "Topical route"}}]),
            mg(0.8)]


@scenario("not-on-tacrolimus", "No tacrolimus at all, Mg 0.8 mEq/L: no cards from this service.", [])
def _():
    return [f.medication("omeprazole 20 MG Delayed Release Oral Capsule", rxnorm="7646"), mg(0.8)]


@scenario("tacrolimus-stopped", "Tacrolimus order stopped with no end date or later update (ordered 400 "
          "days ago): not stopped within 14 days, so not in scope; Mg 0.8 mEq/L, no cards.", [])
def _():
    return [tacrolimus(status="stopped"), mg(0.8)]


@scenario("tacrolimus-on-hold", "Tacrolimus on hold still counts (effect outlasts a hold); Mg 1.2 mEq/L.",
          [mild("Mg 1.2 mEq/L")])
def _():
    return [tacrolimus(status="on-hold"), f.transplant(days=800), egfr(), tacrolimus_level(), mg(1.2)]


@scenario("contained-medication", "Tacrolimus given as medicationReference '#med' to a contained "
          "Medication (Prograf); Mg 1.2 mEq/L.",
          [mild("Mg 1.2 mEq/L")])
def _():
    return [f.medication_with_contained("Prograf 1 mg capsule", form="Capsule"), f.transplant(days=800),
            egfr(), tacrolimus_level(), mg(1.2)]


@scenario("text-only-codes", "Tacrolimus ('Envarsus XR 1 mg'), serum magnesium and 'leg cramps' carry text "
          "only, no codings: recognised by name; leg cramps are a minor symptom (warning).",
          [card("warning", SEVERITY, "Low magnesium with leg cramps", "Mg 1.3 mEq/L")])
def _():
    return [f.medication("Envarsus XR 1 mg tablet"), tacrolimus_level(), egfr(),
            f.magnesium(1.3, "mEq/L", code=None, text="Magnesium, serum"), f.condition("Leg cramps")]


# --- Section 2: reading results -------------------------------------------------------------

@scenario("unknown-unit-only", "The only Mg result has the unit 'mmol' (no volume): not interpretable. "
          "Due, and the card says the result could not be read (not 'never measured').",
          [due(f"latest result ({day(1)}) could not be read",
               detail=("Could not read a magnesium result", "'mmol' not recognised"))])
def _():
    return stable_recipient(mg(0.6, "mmol"))


@scenario("unknown-unit-newer-than-low", "Mg 1.2 mEq/L 10 days ago, then 0.6 'mmol' yesterday: severity "
          "from the readable result only; the card says the newer one could not be read.",
          [mild("Mg 1.2 mEq/L", days=10, detail=(f"Could not read a magnesium result of {day(1)}",))])
def _():
    return stable_recipient(mg(1.2, days=10), mg(0.6, "mmol", days=1))


@scenario("entered-in-error-ignored", "Mg 1.2 mEq/L 10 days ago; 0.6 mEq/L yesterday entered in error: "
          "the error is ignored (mild-moderate, not severe).",
          [mild("Mg 1.2 mEq/L", days=10)])
def _():
    return stable_recipient(mg(1.2, days=10), mg(0.6, days=1, status="entered-in-error"))


@scenario("preliminary-not-classified", "Mg 1.2 mEq/L final 10 days ago; 0.8 mEq/L preliminary yesterday: "
          "the preliminary result is not used for classification (mild-moderate, not severe).",
          [mild("Mg 1.2 mEq/L", days=10)])
def _():
    return stable_recipient(mg(1.2, days=10), mg(0.8, days=1, status="preliminary"))


@scenario("same-time-lowest-counts", "Two Mg results collected at the same time yesterday, 1.6 mEq/L and "
          "0.62 mmol/L (1.24 mEq/L): the lowest counts (mild-moderate).",
          [mild("Mg 0.62 mmol/L (1.24 mEq/L")])
def _():
    when = f.days_ago(1)
    return stable_recipient(mg(1.6, when=when), mg(0.62, "mmol/L", when=when))


# --- Revision 2: patients as EHRs really send them ------------------------------------------------


def years_ago(years: float) -> str:
    return f.days_ago(years * 365.25)[:10]


def stopped_tacrolimus(days_since_stop: float, status: str = "stopped") -> dict:
    """A tacrolimus order that ended `days_since_stop` ago (its dosage bounds say when)."""
    order = tacrolimus(status=status, days=400)
    order["dosageInstruction"] = [{"text": "2 mg by mouth twice daily",
                                   "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d",
                                                         "boundsPeriod": {"start": f.days_ago(400),
                                                                          "end": f.days_ago(days_since_stop)}}}}]
    return order


@scenario("statement-only-tacrolimus", "Tacrolimus only as a home medication (MedicationStatement, active, "
          "Prograf by RxNorm 108513), Mg 0.9 mEq/L: in scope, severe (critical).",
          [severe("Mg 0.9 mEq/L")])
def _():
    return [f.statement("Prograf 1 mg capsule", rxnorm="108513"), f.transplant(days=800), egfr(),
            tacrolimus_level(), mg(0.9)]


@scenario("statement-intended-envarsus", "MedicationStatement 'intended' for Envarsus XR coded only as "
          "RxNorm 1664463, Mg 1.2 mEq/L: in scope, mild-moderate.",
          [mild("Mg 1.2 mEq/L")])
def _():
    return [f.statement(rxnorm="1664463", status="intended"), f.transplant(days=800), egfr(),
            tacrolimus_level(), mg(1.2)]


@scenario("envarsus-product-code-only", "Tacrolimus ordered with only its product code (RxNorm 1664461, "
          "24 h ER 1 mg tablet, no text), Mg 0.9 mEq/L: in scope, severe.",
          [severe("Mg 0.9 mEq/L")])
def _():
    return [f.medication(rxnorm="1664461"), f.transplant(days=800), egfr(), tacrolimus_level(), mg(0.9)]


@scenario("plan-intent-is-not-treatment", "The only tacrolimus is a MedicationRequest with intent 'plan' "
          "(not yet a treatment), Mg 0.9 mEq/L: out of scope, no cards.", [])
def _():
    return [tacrolimus(intent="plan"), mg(0.9)]


@scenario("oral-prograf-sunscreen-sig", "Oral Prograf whose sig says 'use sunscreen cream' (patient "
          "instruction 'avoid sun; apply sunscreen cream'), Mg 0.9 mEq/L: topical is decided from route "
          "and dose form only, so in scope and severe.",
          [severe("Mg 0.9 mEq/L")])
def _():
    order = tacrolimus(dosageInstruction=[{
        "text": "1 mg by mouth twice daily; use sunscreen cream",
        "patientInstruction": "Avoid sun exposure and apply sunscreen cream",
        "route": {"coding": [{"system": f.SNOMED, "code": "26643006"}], "text": "Oral"}}])
    return [order, f.transplant(days=800), egfr(), tacrolimus_level(), mg(0.9)]


@scenario("tacrolimus-stopped-recently", "Tacrolimus stopped 5 days ago (within 14 days), Mg 1.2 mEq/L: "
          "still in scope (wasting outlasts the drug); the card says when it stopped and never asks for a "
          "tacrolimus level.",
          [mild("Mg 1.2 mEq/L", detail=(f"Tacrolimus stopped on {day(5)}",),
                no_suggestions=("tacrolimus trough",))])
def _():
    return [stopped_tacrolimus(5), f.transplant(days=800), egfr(), mg(1.2)]


@scenario("tacrolimus-stopped-15-days-ago", "Tacrolimus stopped 15 days ago (beyond 14 days), Mg 0.9 "
          "mEq/L: out of scope, no cards.", [])
def _():
    return [stopped_tacrolimus(15), f.transplant(days=800), egfr(), mg(0.9)]


@scenario("tacrolimus-on-hold-no-trough", "Tacrolimus on hold, no level on record, Mg 1.2 mEq/L: the card "
          "says 'on hold' and suggests no tacrolimus level.",
          [mild("Mg 1.2 mEq/L", detail=("Tacrolimus on hold",), no_suggestions=("tacrolimus trough",))])
def _():
    return [tacrolimus(status="on-hold"), f.transplant(days=800), egfr(), mg(1.2)]


@scenario("future-dated-normal-hides-nothing", "Mg 0.9 mEq/L yesterday and a normal 1.9 mEq/L dated 3 days "
          "in the future (clock skew or typo): the future result is not used, the severe card stands and "
          "names it.",
          [severe("Mg 0.9 mEq/L", detail=(f"A result dated {day(-3)}, in the future, was not used",))])
def _():
    return stable_recipient(mg(0.9), mg(1.9, days=-3))


@scenario("future-dated-mmol-only-change", "Mg 1.8 mEq/L 10 days ago (not due) and 0.4 mmol/L dated 2 "
          "days ahead: no severity from the future result; the not-used card names it.",
          [card("info", "mg-not-used", f"Magnesium result of {day(-2)} is dated in the future",
                "last usable Mg 1.8 mEq/L")])
def _():
    return stable_recipient(mg(1.8, days=10), mg(0.4, "mmol/L", days=-2))


@scenario("future-within-tolerance", "Mg 1.1 mg/dL (0.91 mEq/L) dated 30 minutes ahead of the clock "
          "(within the 60-minute tolerance): used, severe.",
          [severe("Mg 1.1 mg/dL (0.91 mEq/L", days=0)])
def _():
    return stable_recipient(mg(1.1, "mg/dL", days=-30 / 1440))


@scenario("future-beyond-tolerance", "Mg 1.1 mg/dL dated 61 minutes ahead (beyond the tolerance) and Mg "
          "1.9 mg/dL 5 days ago: the future result is not used; named on the not-used card.",
          [card("info", "mg-not-used", "is dated in the future", "last usable Mg 1.9 mg/dL")])
def _():
    return stable_recipient(mg(1.9, "mg/dL", days=5), mg(1.1, "mg/dL", days=-61 / 1440))


@scenario("corrected-supersedes-final", "A haemolysed 0.45 mmol/L final result and the lab's corrected "
          "0.65 mmol/L (1.30 mEq/L), same collection time, another id: the correction supersedes the final "
          "one (mild-moderate, not severe).",
          [mild("Mg 0.65 mmol/L (1.30 mEq/L")])
def _():
    when = f.days_ago(1)
    return stable_recipient(mg(0.45, "mmol/L", when=when, issued=f.days_ago(0.9)),
                            mg(0.65, "mmol/L", when=when, status="corrected", issued=f.days_ago(0.5)))


@scenario("amended-later-issued-wins", "Two final results at the same time, 1.1 and 1.3 mEq/L, the 1.3 "
          "issued later: the later issue wins (mild-moderate, not severe).",
          [mild("Mg 1.3 mEq/L")])
def _():
    when = f.days_ago(1)
    return stable_recipient(mg(1.1, when=when, issued=f.days_ago(0.9)),
                            mg(1.3, when=when, issued=f.days_ago(0.6)))


@scenario("loinc-blood-mg-not-read-as-serum", "A whole-blood Mg (LOINC 2593-3, not serum) of 0.9 mEq/L "
          "and a serum Mg of 1.8 mEq/L 10 days ago: the LOINC-coded blood result is not read from its "
          "text as serum: no cards.", [])
def _():
    blood = mg(0.9, code="2593-3", text="Magnesium [Moles/volume] in Blood")
    return stable_recipient(mg(1.8, days=10), blood)


@scenario("iv-given-since-result", "Mg 0.9 mEq/L yesterday; magnesium sulfate 2 g IV charted as given "
          "(MedicationAdministration, completed) 12 hours ago: no second dose; the card says what was given "
          "and asks for the post-replacement recheck.",
          [severe("Mg 0.9 mEq/L", "no new dose", detail=("magnesium sulfate 2 g in 50 mL IV: 2 g IV (completed)",),
                  suggestions=("Order serum magnesium (recheck within 24 hours",),
                  no_suggestions=("Magnesium sulfate", "Magnesium oxide"))])
def _():
    return stable_recipient(mg(0.9), f.administration(days=0.5))


@scenario("iv-order-completed-since-result", "Mg 0.45 mmol/L yesterday; a one-time IV magnesium sulfate "
          "order authored 10 hours ago is already 'completed': no second dose.",
          [severe("Mg 0.45 mmol/L (0.90 mEq/L", "no new dose", detail=("(completed)",),
                  no_suggestions=("Magnesium sulfate", "Magnesium oxide"))])
def _():
    order = f.medication("magnesium sulfate 2 g/50 mL IV", status="completed", days=10 / 24)
    return stable_recipient(mg(0.45, "mmol/L"), order)


@scenario("iv-given-before-result-does-not-count", "Magnesium sulfate given 3 days ago, Mg 0.9 mEq/L "
          "yesterday: the dose was before the result, so IV magnesium is suggested.",
          [severe("Mg 0.9 mEq/L", suggestions=("Magnesium sulfate 2 g IV",))])
def _():
    return stable_recipient(mg(0.9), f.administration(days=3))


def child(years: float, *extra: dict) -> list[dict]:
    """A kidney recipient aged `years` (female), on tacrolimus, eGFR and trough recent."""
    return [f.patient(birth_date=years_ago(years)), tacrolimus(), f.transplant(days=500), egfr(),
            tacrolimus_level()] + list(extra)


@scenario("child-with-weight", "A 6-year-old of 20 kg (weighed 5 days ago), Mg 0.9 mEq/L: no fixed adult "
          "dose; weight-based text 500–1000 mg (25–50 mg/kg), discuss with paediatric nephrology; lab "
          "recheck still suggested.",
          [severe("Mg 0.9 mEq/L", "weight-based dose", detail=("500–1000 mg for 20 kg", "paediatric nephrology"),
                  suggestions=("Order serum magnesium",), no_suggestions=("Magnesium sulfate", "Magnesium oxide"))])
def _():
    return child(6, f.weight(20, days=5), mg(0.9))


@scenario("child-heavy-capped-at-2-g", "A 16-year-old of 70 kg, Mg 1.1 mg/dL: 25–50 mg/kg capped at 2 g "
          "(1750–2000 mg).",
          [severe("Mg 1.1 mg/dL (0.91 mEq/L", detail=("1750–2000 mg for 70 kg",),
                  no_suggestions=("Magnesium sulfate",))])
def _():
    return child(16, f.weight(70, days=2), mg(1.1, "mg/dL"))


@scenario("child-without-weight", "A 9-year-old, no weight in the last 30 days (one 40 days ago), Mg 0.6 "
          "mmol/L (1.20 mEq/L): weight-based text only, 'weigh the child', no medication order.",
          [card("warning", SEVERITY, "Low magnesium", "Mg 0.6 mmol/L (1.20 mEq/L", "weight-based dose",
                detail=("no body weight in the last 30 days", "paediatric protocol"),
                no_suggestions=("Magnesium oxide", "Magnesium sulfate"))])
def _():
    return child(9, f.weight(28, days=40), mg(0.6, "mmol/L"))


@scenario("adult-on-18th-birthday", "A patient who turns 18 today, Mg 0.9 mEq/L: an adult, IV magnesium "
          "sulfate 2 g suggested.",
          [severe("Mg 0.9 mEq/L", suggestions=("Magnesium sulfate 2 g IV",))])
def _():
    return [f.patient(birth_date="2008-11-25"), tacrolimus(), f.transplant(days=500), egfr(),
            tacrolimus_level(), mg(0.9)]


@scenario("dialysis-esrd", "End-stage renal disease on the problem list, Mg 0.9 mEq/L: no one-click "
          "magnesium, discuss with nephrology, no FEMg; the recheck is still suggested.",
          [severe("Mg 0.9 mEq/L", "nephrology", detail=("dialysate",),
                  suggestions=("Order serum magnesium",),
                  no_suggestions=("Magnesium sulfate", "Magnesium oxide", "FEMg"))])
def _():
    return [tacrolimus(), f.transplant(days=800), f.esrd(), tacrolimus_level(), mg(0.9)]


@scenario("dialysis-procedure-recent", "Haemodialysis 5 days ago (no ESRD condition), Mg 1.3 mg/dL "
          "(1.07 mEq/L) on magnesium oxide for 60 days with an earlier low: even persistent, no supplement "
          "order and no FEMg work-up.",
          [persistent("warning", "Mg 1.3 mg/dL (1.07 mEq/L", "discuss with nephrology",
                      no_suggestions=("Magnesium sulfate", "Magnesium oxide", "FEMg"))])
def _():
    return [tacrolimus(), f.transplant(days=800), f.dialysis(days=5), tacrolimus_level(),
            f.medication("magnesium oxide 400 MG Oral Tablet", days=60),
            mg(1.2, "mg/dL", days=30), mg(1.3, "mg/dL")]


@scenario("dialysis-procedure-old", "Haemodialysis 40 days ago (before the graft worked), eGFR 55, Mg 0.9 "
          "mEq/L: not on dialysis now, IV magnesium suggested.",
          [severe("Mg 0.9 mEq/L", suggestions=("Magnesium sulfate 2 g IV",))])
def _():
    return stable_recipient(f.dialysis(days=40), mg(0.9))


@scenario("egfr-88294-4-renal-dose", "eGFR 20 reported under LOINC 88294-4 (CKD-EPI, non-black), Mg 1.2 "
          "mEq/L: renal caution, magnesium oxide 400 mg ONCE daily (never half a tablet).",
          [mild("Mg 1.2 mEq/L", "once daily", detail=("Caution: renal impairment (eGFR 20",),
                suggestions=("Magnesium oxide 400 mg by mouth once daily (renal impairment)",))])
def _():
    return [tacrolimus(), f.transplant(days=800), tacrolimus_level(),
            f.lab("88294-4", 20, "mL/min/{1.73_m2}", days=2), mg(1.2)]


@scenario("creatinine-only-renal-function", "No eGFR; serum creatinine 5.8 mg/dL 2 days ago, a 56-year-old "
          "woman, Mg 0.9 mEq/L: CKD-EPI 2021 estimate 8 mL/min/1.73 m², so IV magnesium sulfate halved "
          "(1 g); the card says the value is estimated and from which creatinine.",
          [severe("Mg 0.9 mEq/L", "MgSO4 1 g IV",
                  detail=("estimated eGFR 8 mL/min/1.73 m² (CKD-EPI 2021) from serum creatinine 5.8 mg/dL",),
                  suggestions=("Magnesium sulfate 1 g",))])
def _():
    return [tacrolimus(), f.transplant(days=800), tacrolimus_level(), f.lab("2160-0", 5.8, "mg/dL", days=2),
            mg(0.9)]


@scenario("creatinine-umol-sex-unknown", "No eGFR; creatinine 230 µmol/L (2.60 mg/dL), sex not recorded, "
          "age 56, Mg 1.2 mEq/L: the lower of the two estimates (female, 21) is used: oral once daily.",
          [mild("Mg 1.2 mEq/L", "once daily", detail=("sex unknown: the lower of the female and male estimates",
                                                       "estimated eGFR 21"))])
def _():
    return [f.patient(gender=None), tacrolimus(), f.transplant(days=800), tacrolimus_level(),
            f.lab("14682-9", 230, "umol/L", days=3), mg(1.2)]


@scenario("renal-function-unknown", "No eGFR and no creatinine in 90 days (an eGFR 120 days ago), Mg 1.2 "
          "mEq/L: the card says renal function is unknown and suggests a serum creatinine with the recheck.",
          [mild("Mg 1.2 mEq/L", detail=("Renal function unknown",),
                suggestions=("Order serum creatinine", "Order serum magnesium"))])
def _():
    return [tacrolimus(), f.transplant(days=800), tacrolimus_level(), egfr(24, days=120), mg(1.2)]


@scenario("mg-high-on-supplement", "Mg 3.8 mg/dL (3.13 mEq/L) on magnesium oxide with eGFR 22: high "
          "magnesium card: hold or reduce, renal impairment the likely cause; stop suggestion not "
          "recommended by default, and a recheck.",
          [card("warning", "mg-high", "High magnesium on a supplement", "Mg 3.8 mg/dL (3.13 mEq/L",
                "hold or reduce magnesium oxide", detail=("likely cause",),
                suggestions=("Stop magnesium oxide", "Order serum magnesium"))])
def _():
    return [tacrolimus(), f.transplant(days=800), tacrolimus_level(), egfr(22, days=2),
            f.medication("magnesium oxide 400 MG Oral Tablet", days=30), mg(3.8, "mg/dL")]


@scenario("mg-2.5-on-supplement-not-high", "Mg 1.25 mmol/L (2.50 mEq/L, exactly the limit) on magnesium "
          "oxide: not above 2.5, no cards.", [])
def _():
    return stable_recipient(f.medication("magnesium oxide 400 MG Oral Tablet", days=30),
                            mg(1.25, "mmol/L"))


@scenario("mg-high-without-supplement", "Mg 2.8 mEq/L with no magnesium supplement: no high-magnesium card.",
          [])
def _():
    return stable_recipient(mg(2.8))


@scenario("bowel-prep-is-not-a-supplement", "Suprep bowel preparation (sodium, potassium and magnesium "
          "sulfate) active, Mg 1.2 mEq/L: not a supplement, so oral magnesium is suggested.",
          [mild("Mg 1.2 mEq/L", suggestions=("Magnesium oxide 400 mg by mouth twice daily",))])
def _():
    prep = f.medication("Suprep Bowel Prep Kit (sodium sulfate, potassium sulfate, magnesium sulfate) "
                        "oral solution", days=1)
    return stable_recipient(prep, mg(1.2))


@scenario("kidney-transplant-175902000", "Cadaveric renal transplant (SNOMED 175902000) 20 days ago, Mg 1.8 "
          "mEq/L 10 days ago: first month, due (7-day interval).",
          [due(f"last Mg 1.8 mEq/L on {day(10)}", "7-day interval", detail=("first 30 days after transplant",))])
def _():
    return [tacrolimus(days=400), f.transplant(days=20, snomed="175902000"), tacrolimus_level(days=2),
            egfr(days=2), mg(1.8, days=10)]


@scenario("trough-77348-1-high", "Tacrolimus trough coded LOINC 77348-1, 18 ng/mL, Mg 1.2 mEq/L: the "
          "factors card names the high level.",
          [mild("Mg 1.2 mEq/L"),
           card("warning", CONTRIBUTING, "Factors worsening magnesium loss", "tacrolimus level 18 ng/mL")])
def _():
    return [tacrolimus(), f.transplant(days=800), egfr(), f.lab("77348-1", 18, "ng/mL", days=2), mg(1.2)]


@scenario("tacrolimus-start-from-stopped-order", "First tacrolimus order (stopped) 20 days ago, renewed "
          "10 days ago, no transplant on record: the start is the earliest order, so the first-month 7-day "
          "interval applies (Mg 1.9 mEq/L 8 days ago: due).",
          [due(f"last Mg 1.9 mEq/L on {day(8)}", "7-day interval", detail=("first 30 days of tacrolimus",))])
def _():
    return [tacrolimus(days=10), tacrolimus(days=20, status="stopped"), tacrolimus_level(days=2),
            egfr(days=2), mg(1.9, days=8)]


# --- Section 6: order-select and order-sign ------------------------------------------------------


def ordered(text: str | None = None, **kwargs) -> dict:
    """A draft MedicationRequest being placed now (status draft, authoredOn NOW)."""
    return f.draft(f.medication(text, **kwargs))


def prograf_draft() -> dict:
    """Tacrolimus ordered the way an EHR drafts it: RxNorm 198377 and the product name as text."""
    return ordered("Prograf 1 mg capsule", rxnorm="198377", display="tacrolimus 1 MG Oral Capsule")


def sandbox_tacrolimus() -> dict:
    """Tacrolimus as the CDS Hooks sandbox drafts it: RxNorm 198377 coding only, R4 dosageInstruction
    with structured timing and doseAndRate (no text anywhere)."""
    order = ordered(rxnorm="198377", display="tacrolimus 1 MG Oral Capsule")
    order["dosageInstruction"] = [{
        "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "mg", "system": f.UCUM, "code": "mg"}}]}]
    return order


def new_recipient(*extra: dict) -> list[dict]:
    """A kidney recipient transplanted 2 days ago, eGFR 35 yesterday, no tacrolimus yet."""
    return [f.transplant(days=2), egfr(35, days=1)] + list(extra)


OMEPRAZOLE = dict(rxnorm="7646", display="omeprazole")


def start(*summary: str, indicator: str = "info", **kw) -> dict:
    return card(indicator, ORDER_START, "Starting tacrolimus", *summary, **kw)


def wasting(*summary: str, indicator: str = "warning", **kw) -> dict:
    return card(indicator, ORDER_WASTING, *summary, **kw)


def interaction(*summary: str, indicator: str = "warning", **kw) -> dict:
    return card(indicator, ORDER_INTERACTION, *summary, **kw)


WITHIN_A_WEEK = "trough and Mg within a week"


@order_scenario("order-start-never-measured", "Tacrolimus ordered 2 days after a kidney transplant, no "
                "magnesium ever measured: warning, baseline serum Mg with the monitoring plan.",
                [start("Mg never measured", "order a baseline serum Mg", indicator="warning",
                       detail=("Ordering Prograf 1 mg capsule", "every 7 days (weekly) for the first 30 days"),
                       suggestions=("Order serum magnesium (baseline",))])
def _():
    return new_recipient(), [prograf_draft()]


@order_scenario("order-start-recent-normal-mg", "Tacrolimus ordered, Mg 1.9 mEq/L 3 days ago and no serum "
                "Mg order in place: info card; the suggestion is the first weekly check, not a new baseline.",
                [start(f"baseline Mg 1.9 mEq/L ({day(3)}) in range", "first weekly serum Mg check in 7 days",
                       detail=("not a new baseline", "every 7 days (weekly)"),
                       suggestions=("Order serum magnesium (first weekly check",))])
def _():
    return new_recipient(mg(1.9, days=3)), [prograf_draft()]


@order_scenario("order-start-plan-in-place", "Tacrolimus ordered, Mg 1.9 mEq/L 3 days ago and an active "
                "serum Mg ServiceRequest already placed: the plan is in place, no cards.",
                [])
def _():
    return (new_recipient(mg(1.9, days=3), f.serum_mg_order("active")),
            [prograf_draft()])


@order_scenario("order-start-low-mg", "Tacrolimus ordered with Mg 1.2 mEq/L 3 days ago: the severity card "
                "(with the Mg order) and a warning start card.",
                [mild("Mg 1.2 mEq/L", days=3, suggestions=("Magnesium oxide 400 mg", "Order serum magnesium")),
                 start(f"with low Mg 1.2 mEq/L ({day(3)})", indicator="warning",
                       detail=("The serum Mg order is on the severity card",),
                       no_suggestions=("serum magnesium",))])
def _():
    return new_recipient(mg(1.2, days=3)), [prograf_draft()]


@order_scenario("order-tacrolimus-renewal", "Tacrolimus renewed for a stable recipient already on it, Mg 1.8 "
                "mEq/L 5 days ago: a renewal is not a start, no cards.", [])
def _():
    return stable_recipient(mg(1.8, days=5)), [prograf_draft()]


@order_scenario("order-ppi-on-tacrolimus", "Oral omeprazole ordered for a stable recipient on tacrolimus, Mg "
                "1.6 mEq/L 5 days ago (at target): info, coded famotidine offered in its place.",
                [wasting("Omeprazole ordered", f"Mg 1.6 mEq/L ({day(5)}) at target", "famotidine instead",
                         indicator="info", detail=("famotidine", "8.0 ng/mL", "omeprazole 20 mg delayed-release"),
                         suggestions=("Replace omeprazole with famotidine",),
                         no_suggestions=("Order serum magnesium",))])
def _():
    return (stable_recipient(mg(1.6, days=5)),
            [ordered("omeprazole 20 MG Delayed Release Oral Capsule", **OMEPRAZOLE)])


@order_scenario("order-ppi-low-mg", "Oral omeprazole ordered with Mg 1.2 mEq/L yesterday: the severity card "
                "and a warning wasting card with the famotidine swap.",
                [mild("Mg 1.2 mEq/L"),
                 wasting("Omeprazole ordered", f"Mg 1.2 mEq/L ({day(1)}) low", "famotidine instead",
                         suggestions=("Replace omeprazole with famotidine",))])
def _():
    return (stable_recipient(mg(1.2)),
            [ordered("omeprazole 20 MG Delayed Release Oral Capsule", **OMEPRAZOLE)])


@order_scenario("order-ppi-intravenous", "IV pantoprazole ordered with Mg 1.2 mEq/L yesterday: warning, no "
                "one-click swap for an IV PPI; the text mentions IV famotidine.",
                [mild("Mg 1.2 mEq/L"),
                 wasting("Pantoprazole ordered", f"Mg 1.2 mEq/L ({day(1)}) low", detail=("IV famotidine",),
                         no_suggestions=("famotidine",))], hook="order-sign")
def _():
    iv = ordered("pantoprazole 40 MG Injection", rxnorm="40790", display="pantoprazole",
                 dosageInstruction=[{"route": {"coding": [{"system": f.SNOMED, "code": "47625008",
                                                           "display": "Intravenous route"}]}}])
    return stable_recipient(mg(1.2)), [iv]


@order_scenario("order-loop-diuretic", "Furosemide ordered for a stable recipient on tacrolimus (Mg 1.7 "
                "mEq/L 5 days ago, at target): info, routine Mg checks, no famotidine.",
                [wasting("Furosemide ordered", f"Mg 1.7 mEq/L ({day(5)}) at target",
                         "keep routine Mg checks (every 42 days)", indicator="info", detail=("loop diuretic",),
                         no_suggestions=("famotidine",))])
def _():
    return stable_recipient(mg(1.7, days=5)), [ordered("furosemide 40 MG Oral Tablet")]


@order_scenario("order-loop-diuretic-mg-unmeasured", "Furosemide ordered, last Mg 60 days ago (beyond the "
                "42-day routine interval): the due card carries the Mg order; the wasting card is a warning.",
                [due(f"last Mg 1.8 mEq/L on {day(60)}"),
                 wasting("Furosemide ordered", "no Mg in 42 days", "check serum Mg now")], hook="order-sign")
def _():
    return stable_recipient(mg(1.8, days=60)), [ordered("furosemide 40 MG Oral Tablet")]


@order_scenario("order-fluconazole", "Fluconazole ordered for a recipient on tacrolimus (trough 8 ng/mL 3 "
                "days ago): other inhibitor, warning, trough and Mg within a week.",
                [interaction("Fluconazole raises tacrolimus levels", f"trough 8.0 ng/mL ({day(3)})", WITHIN_A_WEEK,
                             detail=("within about a week",),
                             suggestions=("Order tacrolimus trough within a week", "Order serum magnesium"))])
def _():
    return stable_recipient(mg(1.8, days=5)), [ordered("fluconazole 200 MG Oral Tablet")]


@order_scenario("order-clotrimazole-troche", "Oral clotrimazole troche (swallowed, systemic) ordered: counts "
                "as an interacting azole.",
                [interaction("Clotrimazole raises tacrolimus levels", WITHIN_A_WEEK)])
def _():
    return stable_recipient(mg(1.8, days=5)), [ordered("clotrimazole 10 MG Oral Troche")]


@order_scenario("order-voriconazole", "Voriconazole ordered: a strong CYP3A inhibitor, warning, dose reduction "
                "usually needed, trough within 2-3 days.",
                [interaction("Voriconazole raises tacrolimus levels", "reduce tacrolimus dose at start",
                             "trough within 2–3 days", detail=("dose reduction is usually needed",),
                             suggestions=("Order tacrolimus trough within 2–3 days",))])
def _():
    return stable_recipient(mg(1.8, days=5)), [ordered("voriconazole 200 MG Oral Tablet")]


@order_scenario("order-paxlovid", "Paxlovid (nirmatrelvir/ritonavir) ordered: ritonavir is named, critical, "
                "hold or sharply reduce tacrolimus with the transplant team, trough on day 2-3.",
                [interaction("Ritonavir raises tacrolimus levels", "hold or sharply reduce tacrolimus",
                             "trough on day 2–3", indicator="critical",
                             detail=("transplant team before the first dose", "several-fold"),
                             suggestions=("Order tacrolimus trough for day 2–3",))], hook="order-sign")
def _():
    return stable_recipient(mg(1.8, days=5)), [
        ordered("nirmatrelvir 150 MG / ritonavir 100 MG Oral Tablet, co-packaged (Paxlovid)")]


@order_scenario("order-rifampin", "Rifampin ordered for a recipient on tacrolimus: inducer, warning "
                "(lowers tacrolimus), trough and Mg within a week.",
                [interaction("Rifampin lowers tacrolimus levels", f"trough 8.0 ng/mL ({day(3)})", WITHIN_A_WEEK,
                             detail=("within about a week", "rejection"),
                             suggestions=("Order tacrolimus trough", "Order serum magnesium"))],
                hook="order-sign")
def _():
    return stable_recipient(mg(1.8, days=5)), [ordered("rifampin 300 MG Oral Capsule")]


@order_scenario("order-topical-azoles", "Ketoconazole shampoo and clotrimazole cream at signing: topical forms "
                "do not change tacrolimus levels, no cards.", [], hook="order-sign")
def _():
    return stable_recipient(mg(1.8, days=5)), [ordered("ketoconazole 20 MG/ML Medicated Shampoo"),
                                               ordered("clotrimazole 10 MG/ML Topical Cream")]


@order_scenario("order-magnesium-oxide-for-low-mg", "Mg 1.2 mEq/L yesterday and magnesium oxide already "
                "drafted: the severity card says 'Magnesium already being ordered' instead of suggesting it "
                "again.",
                [mild("Mg 1.2 mEq/L",
                      detail=("Magnesium already being ordered: magnesium oxide 400 mg oral tablet",),
                      suggestions=("Order serum magnesium",), no_suggestions=("Magnesium oxide",))])
def _():
    return stable_recipient(mg(1.2)), [ordered("magnesium oxide 400 MG Oral Tablet")]


@order_scenario("order-magnesium-lab-draft", "A serum Mg order selected, Mg 1.2 mEq/L yesterday: a magnesium "
                "lab order is relevant, so the severity card is shown.",
                [mild("Mg 1.2 mEq/L")])
def _():
    return stable_recipient(mg(1.2)), [f.draft(f.serum_mg_order("draft"))]


@order_scenario("order-magnesium-oxide-with-high-mg", "Magnesium oxide drafted with Mg 2.8 mEq/L yesterday "
                "(no supplement active yet): the high-magnesium card covers the draft and offers to remove it.",
                [card("warning", "mg-high", "High magnesium on a supplement", "Mg 2.8 mEq/L",
                      suggestions=("Stop magnesium oxide", "Order serum magnesium"))])
def _():
    return stable_recipient(mg(2.8)), [ordered("magnesium oxide 400 MG Oral Tablet")]


@order_scenario("order-ppi-with-high-mg-on-supplement", "Omeprazole ordered while Mg is 2.8 mEq/L on an active "
                "magnesium oxide: the high-magnesium card without a one-click stop of the active order (in an "
                "order hook a delete may only remove a draft), and the wasting card.",
                [card("warning", "mg-high", "High magnesium on a supplement", "Mg 2.8 mEq/L",
                      no_suggestions=("Stop magnesium oxide",)),
                 wasting("Omeprazole ordered", "at target", indicator="info")], hook="order-sign")
def _():
    return (stable_recipient(mg(2.8), f.medication("magnesium oxide 400 MG Oral Tablet", days=30)),
            [ordered("omeprazole 20 MG Delayed Release Oral Capsule", **OMEPRAZOLE)])


def _ppi_and_amlodipine() -> tuple[list[dict], list[dict]]:
    return (stable_recipient(mg(1.8, days=5)),
            [ordered("omeprazole 20 MG Delayed Release Oral Capsule", **OMEPRAZOLE),
             ordered("amlodipine 5 MG Oral Tablet")])


order_scenario("order-select-ppi-not-selected", "Omeprazole and amlodipine drafted, only amlodipine "
               "selected: order-select acts on the selection, so no wasting card.",
               [], selected=(1,))(_ppi_and_amlodipine)
order_scenario("order-sign-ppi-among-drafts", "The same omeprazole and amlodipine drafts at signing: "
               "order-sign looks at every draft, so the wasting card appears (info: Mg at target).",
               [wasting("Omeprazole ordered", f"Mg 1.8 mEq/L ({day(5)}) at target", indicator="info",
                        detail=("famotidine",), suggestions=("Replace omeprazole with famotidine",))],
               hook="order-sign")(_ppi_and_amlodipine)


def _unrelated_with(value: float):
    def build() -> tuple[list[dict], list[dict]]:
        return (stable_recipient(mg(value), f.medication("furosemide 40 MG Oral Tablet", days=90)),
                [ordered("amlodipine 5 MG Oral Tablet")])
    return build


order_scenario("order-select-unrelated-severe", "Amlodipine selected for a patient with Mg 0.8 mEq/L on "
               "furosemide: an unrelated order, so order-select says nothing (patient-view's job).",
               [])(_unrelated_with(0.8))
order_scenario("order-sign-unrelated-severe", "The same amlodipine at signing: order-sign keeps only the "
               "critical severity card (no factors card, no order card).",
               [severe("Mg 0.8 mEq/L")], hook="order-sign")(_unrelated_with(0.8))
order_scenario("order-sign-unrelated-mild", "Amlodipine at signing with Mg 1.2 mEq/L: not critical, so no "
               "cards at signing.", [], hook="order-sign")(_unrelated_with(1.2))


@order_scenario("order-sandbox-page-load", "The sandbox's page-load draft (no medication chosen yet) for a "
                "patient with Mg 0.8 mEq/L: nothing to say about the order, no cards, no error.",
                [])
def _():
    blank = {"resourceType": "MedicationRequest", "id": "sandbox-draft", "status": "draft",
             "intent": "order", "subject": {"reference": f"Patient/{f.PATIENT_ID}"}}
    return stable_recipient(mg(0.8)), [blank]


@order_scenario("order-sandbox-tacrolimus", "Sandbox-shaped tacrolimus draft (RxNorm 198377 only, R4 timing "
                "and doseAndRate), Mg 1.9 mEq/L 20 days ago: recognised as a start; info (a result within 30 "
                "days), but the first check is asked for now (older than the first month's 7-day interval).",
                [start(f"baseline Mg 1.9 mEq/L ({day(20)}) in range", "first weekly serum Mg check now",
                       detail=("Ordering tacrolimus 1 mg oral capsule", "every 7 days (weekly)"),
                       suggestions=("Order serum magnesium (first weekly check",))], hook="order-sign")
def _():
    return new_recipient(mg(1.9, days=20)), [sandbox_tacrolimus()]


# --------------------------------------------------------------------------------------------
# Output


def patient_bundle(name: str, resources: list[dict]) -> dict:
    """A FHIR R4 collection Bundle: the Patient first, then every resource of the scenario."""
    given = [r for r in resources if r["resourceType"] == "Patient"]
    everything = (given or [f.patient()]) + [r for r in resources if r["resourceType"] != "Patient"]
    return {"resourceType": "Bundle", "id": name, "type": "collection", "timestamp": NOW,
            "entry": [{"fullUrl": f"{FHIR_BASE}/{r['resourceType']}/{r['id']}", "resource": r}
                      for r in everything]}


def hook_request(s: Scenario) -> dict:
    """The request with full prefetch; order hooks add `magnesiumOrders` and the drafts in context."""
    if s.hook == "patient-view":
        body = f.hook_request(s.resources, encounter_id=s.encounter_id)
    else:
        selected = None if s.selected is None else [s.drafts[i] for i in s.selected]
        body = f.order_request(s.resources, s.drafts, hook=s.hook, selected=selected,
                               encounter_id=s.encounter_id)
        assert "magnesiumOrders" in body["prefetch"]
    body["hookInstance"] = f"fixture-{s.name}"
    return body


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", "utf-8")


def main(out: Path = HERE) -> None:
    """Write every scenario's files under `out` (the package directory by default)."""
    names = [s.name for s in SCENARIOS]
    assert len(names) == len(set(names)), "scenario names must be unique"
    for directory in ("patients", "requests"):
        for stale in (out / directory).glob("*.json"):
            stale.unlink()
    index = []
    saved = f._ids
    try:
        for s in SCENARIOS:
            f._ids = itertools.count(1)  # ids restart per scenario: stable files, readable diffs
            built = s.build()
            if s.hook == "patient-view":
                s.resources, s.drafts = built, []
            else:
                s.resources, s.drafts = built
            write_json(out / "patients" / f"{s.name}.json", patient_bundle(s.name, s.resources))
            write_json(out / "requests" / s.request_file, hook_request(s))
            index.append({"name": s.name, "description": s.description, "now": NOW, "hook": s.hook,
                          "request": s.request_file, "expected": s.expected})
    finally:
        f._ids = saved  # other users of the factories (tests in the same process) keep unique ids
    write_json(out / "scenarios.json", index)
    print(f"wrote {len(SCENARIOS)} scenarios to {out}")


if __name__ == "__main__":
    main()
