"""Section 2 and 5, as EHRs send them: text-only results from other specimens, SI units of
creatinine, a UCUM code and a unit text that disagree, symptoms named as clinicians write them.
(Found by the second independent review of the session; the patients there run end to end in
tests/test_review2_s17.py, these pin each reading at its edges.)"""

from __future__ import annotations

import pytest

from cds_service.guideline.codes import LabKind
from cds_service.guideline.facts import read_lab
from cds_service.guideline.facts.conditions import read_symptom

LOCAL = "urn:oid:1.2.840.114350.1.13.0.1.7.2.768282"  # an Epic-style local code system


def observation(text: str, value: float, unit: str | None, code: str | None = None, *,
                loinc: str | None = None) -> dict:
    coding = [{"system": "http://loinc.org", "code": loinc}] if loinc else [{"system": LOCAL, "code": "1606"}]
    quantity: dict = {"value": value}
    if unit is not None:
        quantity["unit"] = unit
    if code is not None:
        quantity.update(system="http://unitsofmeasure.org", code=code)
    return {"resourceType": "Observation", "id": "o1", "status": "final",
            "code": {"coding": coding, "text": text},
            "effectiveDateTime": "2026-11-24T08:00:00Z", "valueQuantity": quantity}


@pytest.mark.parametrize("text", [
    "Magnesium, peritoneal fluid", "Magnesium, body fluid", "Magnesium, dialysate", "Drain fluid magnesium",
    "Magnesium pleural fluid", "Magnesium, ascitic fluid", "Magnesium CSF", "Magnesium, stool",
    "Creatinine, drain fluid", "Creatinine, peritoneal dialysate", "Creatinine, fluid", "Creatinine ascites",
])
def test_a_text_only_result_from_another_specimen_is_no_serum_or_urine_result(text):
    assert read_lab(observation(text, 1.0, "mg/dL", "mg/dL")) is None


@pytest.mark.parametrize("text, kind", [
    ("Magnesium", LabKind.MG_SERUM), ("Magnesium, serum", LabKind.MG_SERUM),
    ("Mg, plasma", LabKind.MG_SERUM), ("Magnesium, urine", LabKind.MG_URINE),
    ("Creatinine, serum", LabKind.CREATININE_SERUM), ("Creatinine, random urine", LabKind.CREATININE_URINE),
])
def test_blood_and_urine_by_text_are_still_read(text, kind):
    result = read_lab(observation(text, 1.0, "mg/dL", "mg/dL"))
    assert result is not None and result.kind == kind


def test_a_loinc_coded_result_is_not_judged_by_its_text():
    """Text decides only without a LOINC coding: a serum LOINC code with an odd text stays serum."""
    result = read_lab(observation("Magnesium (fluid balance panel)", 1.8, "mg/dL", "mg/dL", loinc="19123-9"))
    assert result is not None and result.kind == LabKind.MG_SERUM


@pytest.mark.parametrize("value, unit, mg_dl", [
    (5.3052, "mmol/L", 60.0), (0.08842, "mmol/L", 1.0), (88.42, "umol/L", 1.0), (1.0, "mg/dL", 1.0),
])
def test_creatinine_in_si_units(value, unit, mg_dl):
    for text, loinc in (("Creatinine, urine", "2161-8"), ("Creatinine", "2160-0")):
        result = read_lab(observation(text, value, unit, unit, loinc=loinc))
        assert result is not None and result.normalised == pytest.approx(mg_dl, rel=1e-9)


@pytest.mark.parametrize("unit_text, code, shown, meq", [
    ("mg/dL", "mmol/L", "mmol/L", 0.90),  # the texts contradict: the code is used, so shown
    ("mmol/l", "mmol/L", "mmol/l", 0.90),  # the same unit written otherwise: the lab's text
    ("millimoles per litre", "mmol/L", "millimoles per litre", 0.90),  # a text the table does not know
    ("mmol/L", None, "mmol/L", 0.90),
    (None, "mmol/L", "mmol/L", 0.90),
])
def test_the_unit_shown_is_never_one_the_conversion_contradicts(unit_text, code, shown, meq):
    result = read_lab(observation("Magnesium", 0.45, unit_text, code, loinc="2601-3"))
    assert result is not None
    assert result.unit == shown and result.normalised == pytest.approx(meq)
    assert result.shown == f"0.45 {shown}"


def condition(text: str) -> dict:
    return {"resourceType": "Condition", "id": "c1", "code": {"text": text},
            "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetDateTime": "2026-11-22"}


@pytest.mark.parametrize("text", ["Convulsions", "Convulsion", "Febrile convulsion", "Seizures"])
def test_convulsions_are_a_major_urgent_symptom(text):
    symptom = read_symptom(condition(text))
    assert symptom is not None and symptom.major and symptom.urgent


def test_a_muscle_cramp_stays_minor():
    symptom = read_symptom(condition("Muscle cramps"))
    assert symptom is not None and not symptom.major


@pytest.mark.parametrize("written, shown", [("2026-11", "2026-11"), ("2026", "2026"),
                                            ("2026-11-24", "2026-11-24"), ("2026-11-24T23:30:00-05:00", "2026-11-24")])
def test_a_result_is_dated_as_precisely_as_the_lab_wrote_it(written, shown):
    obs = observation("Magnesium", 1.2, "mEq/L", "mEq/L", loinc="19123-9")
    obs["effectiveDateTime"] = written
    result = read_lab(obs)
    assert result is not None and result.day == shown and result.when is not None


@pytest.mark.parametrize("code, name", [
    ({"coding": [{"system": "urn:local", "code": "9", "display": "Long QT syndrome"}], "text": "Long QT syndrome"},
     "Long QT syndrome"),
    ({"coding": [{"system": "urn:local", "code": "9", "display": "Atrial fibrillation with RVR"}]},
     "Atrial fibrillation with RVR"),
    ({"text": "Tremors, hands"}, "Tremors, hands"),
])
def test_a_symptom_is_named_once_as_the_clinician_wrote_it(code, name):
    condition = {"resourceType": "Condition", "id": "c1", "code": code,
                 "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetDateTime": "2026-11-22"}
    symptom = read_symptom(condition)
    assert symptom is not None and symptom.name == name


@pytest.mark.parametrize("names, shown", [
    (("Atrial fibrillation with RVR",), "atrial fibrillation with RVR"),
    (("Prolonged QT interval", "Seizure"), "prolonged QT interval, seizure"),
    (("MUSCLE CRAMPS",), "muscle cramps"),
])
def test_symptoms_read_in_a_sentence_keep_their_acronyms(names, shown):
    from cds_service.guideline.cards.common import _symptom_names
    from cds_service.guideline.facts.model import Symptom

    assert _symptom_names(tuple(Symptom(n, None, None, False) for n in names)) == shown
