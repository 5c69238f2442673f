"""facts.py: raw FHIR resources -> the small facts the rules read (docs/clinical-rules.md sections 1, 2, 4, 5, 8)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cds_service.guideline import facts
from cds_service.guideline.facts import build_facts, read_lab, read_medication, read_symptom

from cds_service.testing import factories as f

MG_DL = 10 / 24.305 * 2  # 0.82288...
MG_L = 2 / 24.305  # 0.082288...


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# --------------------------------------------------------------------------------------------
# Section 2: units (UCUM code first, unit text second, case-insensitive), converted to mEq/L


@pytest.mark.parametrize("value, unit, expected_meq", [
    # mEq/L: as is, whatever the case
    (1.2, "mEq/L", 1.2),
    (1.2, "meq/L", 1.2),
    (1.2, "MEQ/L", 1.2),
    # mmol/L: x 2 (valence 2)
    (0.6, "mmol/L", 1.2),
    (0.6, "MMOL/L", 1.2),
    (0.7, "mmol/L", 1.4),
    # mg/dL: x 10 / 24.305 x 2
    (2.0, "mg/dL", 2.0 * MG_DL),
    (2.0, "mg/dl", 2.0 * MG_DL),
    (2.4305, "mg/dL", 2.0),
    # mg/L: x 2 / 24.305
    (20.0, "mg/L", 20.0 * MG_L),
    (24.305, "mg/L", 2.0),
])
@pytest.mark.parametrize("ucum", ["same", None], ids=["ucum-code", "unit-text-only"])
def test_magnesium_units_convert_to_meq_per_l(value, unit, expected_meq, ucum):
    lab = read_lab(f.magnesium(value, unit, ucum=ucum))
    assert lab.kind == "mg_serum"
    assert lab.normalised == pytest.approx(expected_meq, rel=1e-12)
    assert lab.value == value
    assert lab.usable


def test_ucum_code_wins_over_unit_text():
    lab = read_lab(f.magnesium(0.7, "mEq/L", ucum="mmol/L"))  # text says mEq/L, code says mmol/L
    assert lab.normalised == pytest.approx(1.4)


def test_unit_text_is_the_fallback_when_the_ucum_code_is_unknown():
    lab = read_lab(f.magnesium(0.7, "mmol/L", ucum="{not-a-unit}"))
    assert lab.normalised == pytest.approx(1.4)


@pytest.mark.parametrize("unit, ucum", [
    ("umol/L", "same"),       # a real unit, but not one of the table's
    ("mg", "same"),           # a mass, not a concentration
    ("mEq", "same"),
    ("g/dL", "same"),
    ("mmol/kg", "same"),
    ("", None),               # no unit at all
    ("units", None),
])
def test_unknown_unit_is_never_guessed(unit, ucum):
    lab = read_lab(f.magnesium(0.7, unit, ucum=ucum))
    assert lab.value == 0.7
    assert lab.normalised is None
    assert not lab.usable
    assert "not recognised" in lab.unreadable_reason


def test_value_shown_as_the_lab_reported_it():
    lab = read_lab(f.magnesium(0.45, "mmol/L", comparator="<"))
    assert lab.shown == "<0.45 mmol/L"
    assert lab.comparator == "<"
    assert lab.normalised == pytest.approx(0.9)


# --------------------------------------------------------------------------------------------
# Section 2: status, value, kind


@pytest.mark.parametrize("status, usable, shown_as_unreadable_when_broken", [
    ("final", True, True),
    ("amended", True, True),
    ("corrected", True, True),
    ("preliminary", False, True),     # may be shown, never classified
    ("entered-in-error", False, False),
    ("cancelled", False, False),
    ("registered", False, False),
    ("unknown", False, False),
])
def test_observation_status(status, usable, shown_as_unreadable_when_broken):
    assert read_lab(f.magnesium(1.2, status=status)).usable is usable
    # A broken result is reported as unreadable only when its status is one that may be shown.
    broken = read_lab(f.magnesium(1.2, "furlongs", status=status))
    assert (broken.unreadable_reason is not None) is shown_as_unreadable_when_broken


def test_preliminary_result_with_a_good_value_is_not_unreadable_just_unused():
    lab = read_lab(f.magnesium(1.2, status="preliminary"))
    assert lab.normalised == pytest.approx(1.2)
    assert lab.unreadable_reason is None
    assert not lab.usable


def test_data_absent_reason_means_no_value_even_with_a_quantity():
    obs = f.magnesium(1.2, dataAbsentReason={"coding": [{"code": "error"}]})
    lab = read_lab(obs)
    assert lab.value is None and lab.normalised is None
    assert not lab.usable
    assert lab.unreadable_reason == "no numeric value"


@pytest.mark.parametrize("quantity", [
    None,                                  # no valueQuantity at all
    {"unit": "mEq/L"},                     # a unit but no value
    {"value": "1.2", "unit": "mEq/L"},     # a string is not a number
    {"value": True, "unit": "mEq/L"},      # nor is a boolean
])
def test_missing_or_non_numeric_value_is_not_usable(quantity):
    obs = f.magnesium(None)
    if quantity is not None:
        obs["valueQuantity"] = quantity
    lab = read_lab(obs)
    assert lab.value is None
    assert not lab.usable
    assert lab.unreadable_reason == "no numeric value"


@pytest.mark.parametrize("code, text, kind", [
    ("19123-9", None, "mg_serum"),
    ("2601-3", None, "mg_serum"),
    ("73573-8", None, "mg_ionized"),
    ("19124-7", None, "mg_urine"),
    ("2160-0", None, "creatinine_serum"),
    ("14682-9", None, "creatinine_serum"),
    ("2161-8", None, "creatinine_urine"),
    ("98979-8", None, "egfr"),
    ("62238-1", None, "egfr"),
    ("11253-2", None, "tacrolimus_level"),
    (None, "Magnesium, serum", "mg_serum"),
    (None, "Ionized magnesium", "mg_ionized"),
    (None, "Magnesium, urine spot", "mg_urine"),
    (None, "RBC magnesium", None),
    (None, "Potassium", None),
    ("2823-3", None, None),  # potassium, by code
])
def test_lab_kind_by_loinc_code_then_text(code, text, kind):
    obs = f.magnesium(1.0, code=code, text=text)
    lab = read_lab(obs)
    assert (lab.kind if lab else None) == kind


def test_creatinine_in_umol_per_l_is_converted_to_mg_per_dl():
    lab = read_lab(f.lab("14682-9", 88.42, "umol/L"))
    assert lab.normalised == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# Section 2: time precedence and partial dates


def _timed_obs(**times) -> dict:
    obs = f.magnesium(1.2)
    del obs["effectiveDateTime"]
    obs.update(times)
    return obs


@pytest.mark.parametrize("times, expected", [
    ({"effectiveDateTime": "2026-11-20T08:00:00Z", "effectivePeriod": {"start": "2026-11-19T08:00:00Z"},
      "effectiveInstant": "2026-11-18T08:00:00Z", "issued": "2026-11-21T08:00:00Z"}, utc(2026, 11, 20, 8)),
    ({"effectivePeriod": {"start": "2026-11-19T08:00:00Z", "end": "2026-11-19T20:00:00Z"},
      "effectiveInstant": "2026-11-18T08:00:00Z", "issued": "2026-11-21T08:00:00Z"}, utc(2026, 11, 19, 8)),
    ({"effectivePeriod": {"end": "2026-11-19T20:00:00Z"},
      "effectiveInstant": "2026-11-18T08:00:00Z", "issued": "2026-11-21T08:00:00Z"}, utc(2026, 11, 19, 20)),
    ({"effectiveInstant": "2026-11-18T08:00:00Z", "issued": "2026-11-21T08:00:00Z"}, utc(2026, 11, 18, 8)),
    ({"issued": "2026-11-21T08:00:00Z"}, utc(2026, 11, 21, 8)),
    ({"effectiveDateTime": "not a date", "issued": "2026-11-21T08:00:00Z"}, utc(2026, 11, 21, 8)),
    ({}, None),
], ids=["dateTime", "period-start", "period-end", "instant", "issued", "bad-dateTime", "none"])
def test_observation_time_precedence(times, expected):
    lab = read_lab(_timed_obs(**times))
    assert lab.when == expected
    if expected is None:
        assert not lab.usable
        assert lab.unreadable_reason == "no date"


@pytest.mark.parametrize("text, expected", [
    ("2026", utc(2026, 1, 1)),
    ("2026-11", utc(2026, 11, 1)),
    ("2026-11-20", utc(2026, 11, 20)),
    ("2026-11-20T08:30:00Z", utc(2026, 11, 20, 8, 30)),
    ("2026-11-20T08:30:00+02:00", utc(2026, 11, 20, 6, 30)),
    ("2026-11-20T08:30:00.123Z", datetime(2026, 11, 20, 8, 30, 0, 123000, tzinfo=timezone.utc)),
    ("", None),
    ("yesterday", None),
    ("2026-13", None),
    (20261120, None),
    (None, None),
])
def test_partial_and_full_fhir_dates_parse_to_utc(text, expected):
    assert facts.parse_datetime(text) == expected


# --------------------------------------------------------------------------------------------
# Section 1: tacrolimus, systemic or topical


def _med(resource: dict, medications: dict | None = None):
    return read_medication(resource, medications or {})


@pytest.mark.parametrize("resource", [
    f.tacrolimus(),                                                       # product code 198377
    f.medication(rxnorm="42316"),                                         # ingredient code, no text
    f.medication(rxnorm="1431971"),                                       # extended-release product
    f.medication("tacrolimus 1 mg capsule"),                              # text only
    f.medication(rxnorm="999999", display="Tacrolimus 0.75 MG Extended Release Oral Tablet"),
    f.medication("PROGRAF 1mg"),
    f.medication("Envarsus XR 0.75 mg"),
    f.medication("astagraf xl 5 mg"),
    f.medication("Advagraf 3mg"),
    f.medication("Hecoria 1 mg"),
    f.medication_with_contained("Prograf 0.5 mg capsule"),
], ids=["product-code", "ingredient-code", "xr-code", "text", "display", "Prograf", "Envarsus",
        "Astagraf", "Advagraf", "Hecoria", "contained"])
def test_systemic_tacrolimus_is_recognised(resource):
    use = _med(resource)
    assert use.is_tacrolimus and not use.is_topical
    assert use.is_systemic_tacrolimus
    assert use.active


@pytest.mark.parametrize("resource", [
    f.medication("cyclosporine 100 mg"),
    f.medication("tacrolimusX"),          # not the whole word
    f.medication(rxnorm="4603", display="furosemide"),
    f.medication("sirolimus 1 mg"),
])
def test_other_drugs_are_not_tacrolimus(resource):
    assert not _med(resource).is_tacrolimus


def test_medication_reference_to_a_medication_resource_in_the_data():
    medication = {"resourceType": "Medication", "id": "m-tac",
                  "code": {"coding": [{"system": f.RXNORM, "code": "198377"}]}}
    request = f.medication(None, medicationReference={"reference": "Medication/m-tac"})
    del request["medicationCodeableConcept"]
    assert _med(request, {"m-tac": medication}).is_systemic_tacrolimus
    # The same request without the Medication resource: nothing names a drug.
    assert _med(request, {}) is None
    # Through build_facts, a Medication anywhere in the data is found.
    found = build_facts([request, medication], patient_id=f.PATIENT_ID, encounter_id=None)
    assert [m.is_systemic_tacrolimus for m in found.medications] == [True]


def test_unresolvable_reference_falls_back_to_its_display():
    request = f.medication(None, medicationReference={"reference": "Medication/gone", "display": "Prograf 1 mg"})
    del request["medicationCodeableConcept"]
    assert _med(request).is_systemic_tacrolimus


def test_contained_reference_needs_the_matching_id():
    request = f.medication_with_contained("tacrolimus 1 mg")
    request["medicationReference"] = {"reference": "#other"}
    assert _med(request) is None


@pytest.mark.parametrize("resource", [
    f.medication("tacrolimus 0.1% ointment"),
    f.medication("Protopic 0.03%"),
    f.medication("tacrolimus 0.1 %", route="Topical"),
    f.medication("tacrolimus 0.1 %",
                 dosageInstruction=[{"route": {"coding": [{"system": f.SNOMED, "code": "6064005"}]}}]),
    f.medication("tacrolimus 0.1 %", route="cutaneous"),
    f.medication_with_contained("tacrolimus 0.1 %", form="Ointment"),
], ids=["ointment", "Protopic", "route-text", "route-snomed-6064005", "route-cutaneous", "contained-form"])
def test_topical_tacrolimus_is_not_systemic(resource):
    assert not _med(resource).is_systemic_tacrolimus


def test_topical_only_patient_is_not_on_tacrolimus():
    from cds_service.guideline.rules import on_tacrolimus
    patient = build_facts([f.medication("tacrolimus 0.1% ointment"), f.medication("Protopic")],
                          patient_id=f.PATIENT_ID, encounter_id=None)
    assert not on_tacrolimus(patient)


@pytest.mark.parametrize("status, active", [
    ("active", True),
    ("on-hold", True),
    ("stopped", False),
    ("completed", False),
    ("cancelled", False),
    ("entered-in-error", False),
    ("draft", False),
    ("unknown", False),
])
def test_medication_status(status, active):
    assert _med(f.tacrolimus(status=status)).active is active


def test_medication_statement_is_read_too():
    statement = f.tacrolimus(resource_type="MedicationStatement", authoredOn=None,
                             dateAsserted="2026-10-01")
    use = _med(statement)
    assert use.resource_type == "MedicationStatement"
    assert use.is_systemic_tacrolimus
    assert use.authored_on == utc(2026, 10, 1)


def test_authored_on_is_read():
    assert _med(f.tacrolimus(days=10)).authored_on == f.NOW.replace(day=15)


def test_resources_of_another_patient_are_ignored():
    other = f.tacrolimus(subject={"reference": "Patient/someone-else"})
    mg = f.magnesium(0.5, subject={"reference": "Patient/someone-else"})
    found = build_facts([other, mg], patient_id=f.PATIENT_ID, encounter_id=None)
    assert found.medications == () and found.labs == ()


def test_duplicate_resources_count_once():
    mg = f.magnesium(1.2, id="mg-dup")
    found = build_facts([mg, dict(mg)], patient_id=f.PATIENT_ID, encounter_id=None)
    assert len(found.labs) == 1


# --------------------------------------------------------------------------------------------
# Section 8: drug classes by code and by name (whole words, brands, case-insensitive)


@pytest.mark.parametrize("resource, wasting, ingredient", [
    (f.medication("furosemide 40 mg tablet"), "loop", "furosemide"),
    (f.medication("LASIX 20 MG"), "loop", "furosemide"),
    (f.medication(rxnorm="4603"), "loop", "furosemide"),
    (f.medication("Bumex 1 mg"), "loop", "bumetanide"),
    (f.medication("ethacrynic acid 25 mg"), "loop", "ethacrynic acid"),
    (f.medication("hydrochlorothiazide 25 mg"), "thiazide", "hydrochlorothiazide"),
    (f.medication("Metolazone 2.5 mg"), "thiazide", "metolazone"),
    (f.medication("omeprazole 20 mg"), "ppi", "omeprazole"),
    (f.medication("esomeprazole 40 mg"), "ppi", "esomeprazole"),
    (f.medication("dexlansoprazole 60 mg"), "ppi", "dexlansoprazole"),
    (f.medication("Nexium 40 mg"), "ppi", "esomeprazole"),
    (f.medication("protonix 40 mg"), "ppi", "pantoprazole"),
    (f.medication(rxnorm="40790"), "ppi", "pantoprazole"),
    (f.medication("gentamicin 80 mg IV"), "aminoglycoside", "gentamicin"),
    (f.medication("Amphotericin B liposomal"), "amphotericin", "amphotericin B"),
    (f.medication("AmBisome 50 mg"), "amphotericin", "amphotericin B"),
    (f.medication("cisplatin 50 mg/m2"), "platinum", "cisplatin"),
    (f.medication("Foscavir"), "foscarnet", "foscarnet"),
    (f.medication("pentamidine inhaled"), "pentamidine", "pentamidine"),
    (f.medication("cetuximab"), "egfr_antibody", "cetuximab"),
    (f.medication("Neoral 100 mg"), "cyclosporine", "cyclosporine"),
    # not section 8 drugs, or not whole words, or not systemic
    (f.medication("famotidine 20 mg"), None, None),
    (f.medication("senna 8.6 mg"), None, None),                 # stimulant laxative: not flagged
    (f.medication("furosemidexyz"), None, None),
    (f.medication("cyclosporine 0.05% ophthalmic emulsion"), None, None),
])
def test_magnesium_wasting_drugs(resource, wasting, ingredient):
    use = _med(resource)
    assert use.wasting_class == wasting
    if ingredient:
        assert use.ingredient == ingredient


@pytest.mark.parametrize("name, raises, lowers", [
    ("fluconazole 200 mg", "azole", None),
    ("Vfend 200 mg", "azole", None),
    ("posaconazole DR tablet", "azole", None),
    ("clarithromycin 500 mg", "macrolide", None),
    ("erythromycin 250 mg", "macrolide", None),
    ("azithromycin 250 mg", None, None),   # named as not raising
    ("diltiazem ER 120 mg", "ccb", None),
    ("Paxlovid", "protease_inhibitor", None),
    ("ritonavir 100 mg", "protease_inhibitor", None),
    ("letermovir", "letermovir", None),
    ("amiodarone 200 mg", "amiodarone", None),
    ("amlodipine 5 mg", None, None),       # a dihydropyridine: not listed
    ("rifampin 600 mg", None, "rifamycin"),
    ("Rifampicin 600 mg", None, "rifamycin"),
    ("phenytoin 100 mg", None, "anticonvulsant_inducer"),
    ("Tegretol 200 mg", None, "anticonvulsant_inducer"),
    ("St John's wort extract", None, "st_johns_wort"),
])
def test_drugs_that_change_tacrolimus_levels(name, raises, lowers):
    use = _med(f.medication(name))
    assert use.raises_tacrolimus_class == raises
    assert use.lowers_tacrolimus_class == lowers


@pytest.mark.parametrize("name, supplement", [
    ("magnesium oxide 400 mg tablet", True),
    ("Mag-Ox 400", True),
    ("Slow-Mag 64 mg", True),
    ("magnesium chloride SR", True),
    ("magnesium sulfate 2 g IV", True),
    ("magnesium hydroxide (milk of magnesia)", False),  # a laxative, not replacement
])
def test_magnesium_supplements(name, supplement):
    assert _med(f.medication(name)).is_magnesium_supplement is supplement


# --------------------------------------------------------------------------------------------
# Section 5: symptoms


@pytest.mark.parametrize("resource, recognised, urgent, major", [
    (f.condition(snomed="55300003"), True, False, False),
    (f.condition(snomed="26079004"), True, False, False),
    (f.condition(snomed="91175000"), True, True, True),
    (f.condition(snomed="698247007"), True, True, True),
    (f.condition(snomed="49436004"), True, True, True),
    (f.condition("Torsades de pointes"), True, True, True),
    (f.condition(snomed="111975006"), True, False, True),
    (f.condition("Muscle cramps in calves"), True, False, False),
    (f.condition("Fine tremor of hands"), True, False, False),
    (f.condition("Tetany"), True, False, True),
    (f.condition("Ventricular tachycardia"), True, True, True),
    (f.condition("Prolonged QT on ECG"), True, False, True),
    (f.condition("Atrial fibrillation"), True, True, True),
    (f.condition("Hypertension", snomed="38341003"), False, False, False),
    (f.condition("Headache"), False, False, False),
    # 4426000 is not tetany (docs/clinical-rules.md section 9): a coded record of it is no symptom.
    (f.condition(snomed="4426000"), False, False, False),
])
def test_symptom_by_code_then_text(resource, recognised, urgent, major):
    symptom = read_symptom(resource)
    assert (symptom is not None) is recognised
    if recognised:
        assert symptom.urgent is urgent
        assert symptom.major is major
        assert symptom.when is not None


@pytest.mark.parametrize("clinical_status, verification, counted", [
    ("active", None, True),
    ("recurrence", None, True),
    ("relapse", None, True),
    ("inactive", None, False),
    ("remission", None, False),
    ("resolved", None, False),
    ("active", "confirmed", True),
    ("active", "provisional", True),
    ("active", "refuted", False),
    ("active", "entered-in-error", False),
])
def test_symptom_status(clinical_status, verification, counted):
    resource = f.condition(snomed="26079004", clinical_status=clinical_status, verification=verification)
    assert (read_symptom(resource) is not None) is counted


def test_symptom_date_from_recorded_else_onset():
    resource = f.condition(snomed="26079004")
    del resource["recordedDate"]
    resource["onsetDateTime"] = "2026-11-20T10:00:00Z"
    assert read_symptom(resource).when == utc(2026, 11, 20, 10)
    del resource["onsetDateTime"]
    resource["onsetPeriod"] = {"start": "2026-11-19"}
    assert read_symptom(resource).when == utc(2026, 11, 19)


# --------------------------------------------------------------------------------------------
# Section 4: transplant procedures and hospitalisation


@pytest.mark.parametrize("resource, counted", [
    (f.transplant(10), True),                                           # kidney, 70536003
    (f.transplant(10, snomed="18027006"), True),                        # liver
    (f.transplant(10, snomed="32413006"), True),                        # heart
    (f.transplant(10, snomed="88039007"), True),                        # lung
    (f.transplant(10, snomed=None, text="Deceased donor kidney transplant"), True),
    (f.transplant(10, snomed=None, text="Pancreas transplantation"), True),
    (f.transplant(10, snomed=None, text="Bone marrow transplant"), False),   # not a solid organ
    (f.transplant(10, snomed="80146002", text="Appendectomy"), False),
    (f.transplant(10, status="in-progress"), False),
    (f.transplant(10, status="not-done"), False),
    (f.transplant(10, status="entered-in-error"), False),
])
def test_transplant_procedure(resource, counted):
    when = facts.read_transplant_date(resource)
    assert (when is not None) is counted
    if counted:
        assert when == f.NOW.replace(day=15)


def test_transplant_date_from_performed_period():
    resource = f.transplant(10)
    del resource["performedDateTime"]
    resource["performedPeriod"] = {"start": "2026-11-01T09:00:00Z", "end": "2026-11-01T14:00:00Z"}
    assert facts.read_transplant_date(resource) == utc(2026, 11, 1, 9)


@pytest.mark.parametrize("class_code, status, hospitalized", [
    ("IMP", "in-progress", True),
    ("ACUTE", "in-progress", True),
    ("NONAC", "in-progress", True),
    ("EMER", "in-progress", True),
    ("OBSENC", "in-progress", True),
    ("AMB", "in-progress", False),
    ("VR", "in-progress", False),
    ("HH", "in-progress", False),
    ("IMP", "finished", False),
    ("IMP", "planned", False),
    ("EMER", "cancelled", False),
])
def test_inpatient_encounter_classes(class_code, status, hospitalized):
    assert facts.is_hospitalized(f.encounter(class_code, status)) is hospitalized


def test_only_the_hook_encounter_counts_when_one_is_named():
    inpatient = f.encounter("IMP", id="enc-old")
    clinic = f.encounter("AMB", id="enc-1")
    assert not build_facts([inpatient, clinic], patient_id=f.PATIENT_ID, encounter_id="enc-1").hospitalized
    assert build_facts([inpatient, clinic], patient_id=f.PATIENT_ID, encounter_id="enc-old").hospitalized
