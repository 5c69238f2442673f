"""A synthetic two-year record of a kidney recipient on tacrolimus (no real patient data).

Only the prefetch routing is imported (from cds_service.testing), nothing of the service's logic:
the benchmark sends what an EHR would send for the service's prefetch templates, so the record
is built the way an EHR's FHIR API returns it (searchset Bundles with fullUrl, search.mode, meta,
identifiers, categories, reference ranges and interpretations), not the minimal resources the
unit tests use.

What is in it (dates relative to `now`, transplant `days` ago, default 730):

- Patient; an ambulatory Encounter (the clinic visit the chart is opened in);
- Procedure: kidney transplant (SNOMED 70536003);
- magnesium (serum, LOINC 19123-9, mg/dL): weekly since the transplant (~104 results), low
  during the last months despite supplementation;
- labs: tacrolimus trough monthly (weekly in the first month), creatinine and eGFR every
  two weeks for three months then monthly, two urine Mg / urine creatinine pairs (FEMg);
- ~25 MedicationRequests: tacrolimus dose changes (stopped and active), mycophenolate,
  prednisone taper, prophylaxis (stopped), a PPI, a loop diuretic course, magnesium oxide,
  antihypertensives, insulin, statin and others;
- Conditions: kidney transplant status, hypertension, type 2 diabetes, hypomagnesemia and a
  recent muscle cramp.

`prefetch_for` splits it into the service's prefetch keys (Observations by LOINC code), newest
first, in EHR-shaped Bundles. `plain_record` strips the EHR decoration (meta, identifiers,
displays, texts, reference ranges, interpretations...) from the same resources: what the rules
read costs the same, the body is about a third. `sized_record(n)` gives n resources for the
cost-per-resource curve. The module imports nothing from tests/ or the service.
"""

from __future__ import annotations

import json

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from cds_service.testing.factories import PREFETCH_KEYS, prefetch_key

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

PATIENT_ID = "bench-kidney-1"
ENCOUNTER_ID = "bench-enc-1"
BASE = "https://ehr.example.org/fhir/r4"



def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class _Builder:
    def __init__(self, now: datetime, seed: int):
        self.now = now
        self.rng = random.Random(seed)
        self.n = 0

    def id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n:05d}"

    def at(self, days_ago: float, hour: int = 8) -> datetime:
        day = (self.now - timedelta(days=days_ago)).replace(hour=hour, minute=0, second=0,
                                                            microsecond=0)
        return min(day, self.now - timedelta(hours=1))

    def observation(self, code: str, display: str, value: float, unit: str, when: datetime,
                    low: float | None = None, high: float | None = None) -> dict:
        rid = self.id("obs")
        obs: dict[str, Any] = {
            "resourceType": "Observation", "id": rid,
            "meta": {"versionId": "1", "lastUpdated": _iso(when + timedelta(hours=3))},
            "identifier": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.798268",
                            "value": f"LAB{rid[4:]}"}],
            "status": "final",
            "category": [{"coding": [{"system": OBS_CATEGORY, "code": "laboratory",
                                      "display": "Laboratory"}], "text": "Laboratory"}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}],
                     "text": display},
            "subject": {"reference": f"Patient/{PATIENT_ID}", "display": "Bench, Kidney"},
            "effectiveDateTime": _iso(when),
            "issued": _iso(when + timedelta(hours=3)),
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        }
        if low is not None or high is not None:
            rng: dict[str, Any] = {
                "text": f"{low if low is not None else ''}-{high if high is not None else ''} {unit}"}
            if low is not None:
                rng["low"] = {"value": low, "unit": unit, "system": UCUM, "code": unit}
            if high is not None:
                rng["high"] = {"value": high, "unit": unit, "system": UCUM, "code": unit}
            obs["referenceRange"] = [rng]
            flag = "L" if low is not None and value < low else "H" if high is not None and value > high else "N"
            obs["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": flag}]}]
        return obs

    def medication(self, rxnorm: str | None, text: str, days_ago: float, *,
                   status: str = "active", route: str = "oral", dose: str = "",
                   ended_days_ago: float | None = None) -> dict:
        concept: dict[str, Any] = {"text": text}
        if rxnorm:
            concept["coding"] = [{"system": RXNORM, "code": rxnorm, "display": text}]
        route_code = {"oral": ("26643006", "Oral route"),
                      "iv": ("47625008", "Intravenous route"),
                      "subcutaneous": ("34206005", "Subcutaneous route")}[route]
        request: dict[str, Any] = {
            "resourceType": "MedicationRequest", "id": self.id("medrx"),
            "meta": {"versionId": "1", "lastUpdated": _iso(self.at(days_ago))},
            "identifier": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.798268",
                            "value": f"ORD{self.n:06d}"}],
            "status": status, "intent": "order",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                                      "code": "outpatient"}]}],
            "medicationCodeableConcept": concept,
            "subject": {"reference": f"Patient/{PATIENT_ID}", "display": "Bench, Kidney"},
            "authoredOn": _iso(self.at(days_ago, hour=10)),
            "requester": {"reference": "Practitioner/prac-neph-1", "display": "Nephrologist, A"},
            "dosageInstruction": [{"text": dose or text,
                                   "route": {"coding": [{"system": SNOMED, "code": route_code[0],
                                                         "display": route_code[1]}],
                                             "text": route}}],
        }
        if ended_days_ago is not None:
            request["dispenseRequest"] = {"validityPeriod": {
                "start": _iso(self.at(days_ago)), "end": _iso(self.at(ended_days_ago))}}
        return request


def two_year_record(now: datetime | None = None, *, days: int = 730, seed: int = 5) -> list[dict]:
    """All resources of the record (Patient and Encounter included)."""
    now = now or datetime.now(timezone.utc)
    b = _Builder(now, seed)
    rng = b.rng
    out: list[dict] = []

    out.append({"resourceType": "Patient", "id": PATIENT_ID,
                "meta": {"versionId": "3", "lastUpdated": _iso(b.at(days))},
                "identifier": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.0",
                                "value": "E1234567"}],
                "active": True, "name": [{"use": "official", "family": "Bench",
                                          "given": ["Kidney"]}],
                "gender": "female", "birthDate": "1968-04-12",
                "address": [{"city": "Springfield", "state": "IL", "postalCode": "62701"}]})
    out.append({"resourceType": "Encounter", "id": ENCOUNTER_ID, "status": "in-progress",
                "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
                "type": [{"text": "Transplant nephrology follow-up"}],
                "subject": {"reference": f"Patient/{PATIENT_ID}"},
                "period": {"start": _iso(now - timedelta(minutes=20))}})
    out.append({"resourceType": "Procedure", "id": b.id("proc"), "status": "completed",
                "code": {"coding": [{"system": SNOMED, "code": "70536003",
                                     "display": "Transplantation of kidney"}],
                         "text": "Deceased donor kidney transplant"},
                "subject": {"reference": f"Patient/{PATIENT_ID}"},
                "performedDateTime": _iso(b.at(days, hour=7))})

    # Serum magnesium, weekly; low over the last ~10 weeks despite magnesium oxide.
    for week in range(days // 7 + 1):
        d = days - 7 * week
        if d < 2:
            break
        base = 1.45 if d < 70 else 1.85
        value = round(max(0.9, rng.gauss(base, 0.12)), 1)
        out.append(b.observation("19123-9", "Magnesium [Mass/volume] in Serum or Plasma",
                                 value, "mg/dL", b.at(d), 1.6, 2.6))
    # The latest level, 2 days ago: mildly low (1.3 mg/dL ≈ 1.07 mEq/L).
    out.append(b.observation("19123-9", "Magnesium [Mass/volume] in Serum or Plasma", 1.3,
                             "mg/dL", b.at(2), 1.6, 2.6))

    # Tacrolimus trough: weekly the first month, then monthly.
    tac_days = [days - 7 * i for i in range(5)] + list(range(days - 60, 1, -30))
    for d in tac_days:
        out.append(b.observation("11253-2", "Tacrolimus [Mass/volume] in Blood",
                                 round(rng.uniform(5.5, 11.0), 1), "ng/mL", b.at(d, 7), 5.0, 15.0))
    # Creatinine and eGFR: every two weeks for three months, then monthly.
    renal_days = [days - 14 * i for i in range(7)] + list(range(days - 110, 1, -30)) + [2]
    for d in renal_days:
        creat = round(rng.uniform(1.1, 1.5), 2)
        out.append(b.observation("2160-0", "Creatinine [Mass/volume] in Serum or Plasma",
                                 creat, "mg/dL", b.at(d), 0.6, 1.1))
        out.append(b.observation("98979-8", "Glomerular filtration rate/1.73 sq M.predicted by CKD-EPI 2021",
                                 round(rng.uniform(42, 58)), "mL/min/{1.73_m2}", b.at(d), 60, None))
    # Two FEMg work-ups (urine magnesium + urine creatinine, same day as a serum pair).
    for d in (60, 2):
        out.append(b.observation("19124-7", "Magnesium [Mass/volume] in Urine",
                                 round(rng.uniform(4.0, 7.0), 1), "mg/dL", b.at(d, 9)))
        out.append(b.observation("2161-8", "Creatinine [Mass/volume] in Urine",
                                 round(rng.uniform(60, 120)), "mg/dL", b.at(d, 9)))

    # Medication requests (~25), newest first is the EHR's order; built oldest first here.
    m = b.medication
    meds = [
        m("198378", "tacrolimus 5 MG Oral Capsule", days, status="stopped", dose="5 mg twice daily",
          ended_days_ago=days - 30),
        m("198377", "tacrolimus 1 MG Oral Capsule", days - 30, status="stopped",
          dose="4 mg twice daily", ended_days_ago=days - 120),
        m("198377", "tacrolimus 1 MG Oral Capsule", days - 120, status="stopped",
          dose="3 mg twice daily", ended_days_ago=180),
        m("198377", "tacrolimus 1 MG Oral Capsule", 180, dose="2 mg twice daily"),
        m("313190", "tacrolimus 0.5 MG Oral Capsule", 180, dose="0.5 mg twice daily with 2 mg"),
        m(None, "mycophenolate mofetil 500 MG Oral Tablet", days, status="stopped",
          dose="1000 mg twice daily", ended_days_ago=300),
        m(None, "mycophenolate mofetil 500 MG Oral Tablet", 300, dose="500 mg twice daily"),
        m(None, "prednisone 20 MG Oral Tablet", days, status="stopped", ended_days_ago=days - 30),
        m(None, "prednisone 10 MG Oral Tablet", days - 30, status="stopped",
          ended_days_ago=days - 90),
        m(None, "prednisone 5 MG Oral Tablet", days - 90, dose="5 mg daily"),
        m(None, "valganciclovir 450 MG Oral Tablet", days, status="completed",
          ended_days_ago=days - 180),
        m(None, "sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet", days,
          status="completed", ended_days_ago=days - 180),
        m(None, "nystatin 100000 UNT/ML Oral Suspension", days, status="completed",
          ended_days_ago=days - 90),
        m(None, "omeprazole 20 MG Delayed Release Oral Capsule", days, dose="20 mg daily"),
        m(None, "famotidine 20 MG Oral Tablet", days - 200, status="stopped",
          ended_days_ago=days - 260),
        m(None, "furosemide 40 MG Oral Tablet", 120, status="stopped", ended_days_ago=90),
        m(None, "fluconazole 200 MG Oral Tablet", 400, status="completed", ended_days_ago=386),
        m(None, "magnesium oxide 400 MG Oral Tablet", 70, dose="400 mg twice daily"),
        m(None, "amlodipine 10 MG Oral Tablet", days - 20, dose="10 mg daily"),
        m(None, "metoprolol succinate 50 MG Extended Release Oral Tablet", days,
          dose="50 mg daily"),
        m(None, "atorvastatin 20 MG Oral Tablet", days - 60, dose="20 mg nightly"),
        m(None, "insulin glargine 100 UNT/ML Injectable Solution", days, route="subcutaneous",
          dose="18 units nightly"),
        m(None, "aspirin 81 MG Delayed Release Oral Tablet", days, dose="81 mg daily"),
        m(None, "calcium carbonate 500 MG / cholecalciferol 400 UNT Oral Tablet", days - 10),
        m(None, "sodium bicarbonate 650 MG Oral Tablet", 250, dose="650 mg three times daily"),
    ]
    out.extend(meds)

    def condition(snomed: str, text: str, days_ago: float) -> dict:
        return {"resourceType": "Condition", "id": b.id("cond"),
                "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
                "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION,
                                                   "code": "confirmed"}]},
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                          "code": "problem-list-item"}]}],
                "code": {"coding": [{"system": SNOMED, "code": snomed, "display": text}],
                         "text": text},
                "subject": {"reference": f"Patient/{PATIENT_ID}"},
                "onsetDateTime": _iso(b.at(days_ago)), "recordedDate": _iso(b.at(days_ago))}

    out += [condition("737295003", "Kidney transplant recipient", days),
            condition("38341003", "Hypertension", days + 2000),
            condition("44054006", "Type 2 diabetes mellitus", days + 1500),
            condition("190855004", "Hypomagnesemia", 70),
            condition("55300003", "Muscle cramp", 4)]
    return out


def _plain_concept(concept: dict, keep_text: bool = False) -> dict:
    out: dict[str, Any] = {}
    if concept.get("coding"):
        out["coding"] = [{"system": c["system"], "code": c["code"]} for c in concept["coding"]]
    if keep_text or not out:
        out["text"] = concept.get("text")
    return out


def plain(resource: dict) -> dict:
    """The resource without EHR decoration: what a minimal FHIR server would send for it (ids,
    status, codes, values, dates, references), with medication names kept where there is no code
    (the rules read the name then)."""
    r = resource
    t = r["resourceType"]
    out: dict[str, Any] = {"resourceType": t, "id": r["id"]}
    if "status" in r:
        out["status"] = r["status"]
    if t == "Observation":
        out["code"] = _plain_concept(r["code"])
        out["subject"] = {"reference": r["subject"]["reference"]}
        out["effectiveDateTime"] = r["effectiveDateTime"]
        q = r["valueQuantity"]
        out["valueQuantity"] = {"value": q["value"], "system": q["system"], "code": q["code"]}
        if r.get("referenceRange"):
            out["referenceRange"] = [{k: {"value": v["value"]} for k, v in rr.items()
                                      if k in ("low", "high")} for rr in r["referenceRange"]]
    elif t == "MedicationRequest":
        out["intent"] = r["intent"]
        out["medicationCodeableConcept"] = _plain_concept(r["medicationCodeableConcept"],
                                                          keep_text=True)
        out["subject"] = {"reference": r["subject"]["reference"]}
        out["authoredOn"] = r["authoredOn"]
        out["dosageInstruction"] = [{"route": _plain_concept(d["route"])}
                                    for d in r.get("dosageInstruction", [])]
        if "dispenseRequest" in r:
            out["dispenseRequest"] = r["dispenseRequest"]
    elif t == "Condition":
        for k in ("clinicalStatus", "verificationStatus", "code"):
            out[k] = _plain_concept(r[k])
        out["subject"] = {"reference": r["subject"]["reference"]}
        out["onsetDateTime"] = r["onsetDateTime"]
    elif t == "Procedure":
        out["code"] = _plain_concept(r["code"])
        out["subject"] = {"reference": r["subject"]["reference"]}
        out["performedDateTime"] = r["performedDateTime"]
    elif t == "Encounter":
        out["class"] = {"system": r["class"]["system"], "code": r["class"]["code"]}
        out["subject"] = r["subject"]
        out["period"] = r["period"]
    elif t == "Patient":
        out["gender"] = r["gender"]
        out["birthDate"] = r["birthDate"]
    return out


def plain_record(now: datetime | None = None, *, days: int = 730) -> list[dict]:
    """The two-year record's resources without EHR decoration (same count, same clinical data)."""
    return [plain(r) for r in two_year_record(now, days=days)]


def sized_record(n: int, now: datetime | None = None, *, decorated: bool = False) -> list[dict]:
    """About `n` resources: the two-year record, cut to its newest results or extended back in
    time with older weekly magnesium, creatinine and eGFR results (the history grows, the
    present the rules act on stays the same). Plain unless `decorated`."""
    now = now or datetime.now(timezone.utc)
    base = two_year_record(now)
    observations = [r for r in base if r["resourceType"] == "Observation"]
    others = [r for r in base if r["resourceType"] != "Observation"]
    observations.sort(key=lambda r: r["effectiveDateTime"], reverse=True)
    if n <= len(base):
        # Keep the patient, encounter, transplant, tacrolimus orders and newest results.
        essentials = [r for r in others if r["resourceType"] != "MedicationRequest"
                      or "tacrolimus" in r["medicationCodeableConcept"]["text"]]
        room = max(1, n - len(essentials))
        chosen = essentials + observations[:room]
    else:
        b = _Builder(now, seed=7)
        b.n = 90000
        extra = []
        week = 730 // 7 + 1
        kinds = (("19123-9", "Magnesium [Mass/volume] in Serum or Plasma", 1.9, "mg/dL", 1.6, 2.6),
                 ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", 1.3, "mg/dL", 0.6, 1.1),
                 ("98979-8", "Glomerular filtration rate/1.73 sq M.predicted by CKD-EPI 2021", 50,
                  "mL/min/{1.73_m2}", 60, None))
        while len(base) + len(extra) < n:
            for code, display, value, unit, low, high in kinds:
                if len(base) + len(extra) >= n:
                    break
                extra.append(b.observation(code, display, value, unit, b.at(7 * week), low, high))
            week += 1
        chosen = base + extra
    return chosen if decorated else [plain(r) for r in chosen]


def _bundle(resources: list[dict], query: str, decorated: bool = True) -> dict:
    if not decorated:
        return {"resourceType": "Bundle", "type": "searchset",
                "entry": [{"resource": r} for r in resources]}
    return {"resourceType": "Bundle", "id": f"search-{abs(hash(query)) % 10**8}",
            "meta": {"lastUpdated": _iso(datetime.now(timezone.utc))},
            "type": "searchset", "total": len(resources),
            "link": [{"relation": "self", "url": f"{BASE}/{query}"}],
            "entry": [{"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r,
                       "search": {"mode": "match"}} for r in resources]}


def prefetch_for(resources: list[dict], *, decorated: bool = True) -> dict:
    """Split resources into the services' prefetch keys, as an EHR would fill them.

    Searches are sorted newest first (the templates' _sort). Every matching resource is sent
    in one Bundle (no paging), so the ~104 magnesium results all arrive although the template
    asks for _count=50: the heavier case for the service. Without `decorated`, the Bundles carry
    only their entries' resources (no fullUrl, search, link, meta or total).
    """
    by_key: dict[str, list[dict]] = {k: [] for k in PREFETCH_KEYS}
    single: dict[str, dict] = {}
    for r in resources:
        t = r["resourceType"]
        if t in ("Patient", "Encounter"):
            single[t.lower()] = r
        elif (key := prefetch_key(r)) is not None:
            by_key[key].append(r)

    def newest_first(items: list[dict]) -> list[dict]:
        def when(r: dict) -> str:
            return (r.get("effectiveDateTime") or r.get("authoredOn") or r.get("recordedDate")
                    or r.get("performedDateTime") or "")
        return sorted(items, key=when, reverse=True)

    prefetch: dict[str, Any] = {"patient": single["patient"]}
    for key, query in (("medications", "MedicationRequest"), ("magnesium", "Observation"),
                       ("labs", "Observation"), ("tacrolimusLevels", "Observation"),
                       ("conditions", "Condition"),
                       ("procedures", "Procedure")):
        prefetch[key] = _bundle(newest_first(by_key[key]), f"{query}?patient={PATIENT_ID}",
                                decorated)
    if "encounter" in single:
        prefetch["encounter"] = single["encounter"]
    return prefetch


def new_patients(prefetch: dict, n: int) -> list[dict]:
    """`n` hook requests, each for another patient (the patient id changed everywhere) with this
    prefetch's clinical content, every resource with other bytes (its subject, and a
    `meta.source` naming the copy): patients the service has not seen, for measuring calls that
    find nothing in its resource memo (protocol/body.py)."""
    out = []
    for k in range(n):
        copy = json.loads(json.dumps(prefetch))
        for value in copy.values():
            for entry in (value or {}).get("entry", []) if (value or {}).get("resourceType") == "Bundle" else []:
                resource = entry["resource"]
                resource["meta"] = {**resource.get("meta", {}), "source": f"#bench-copy-{k}"}
        text = json.dumps(hook_request(prefetch=copy)).replace(PATIENT_ID, f"{PATIENT_ID}-copy-{k}")
        out.append(json.loads(text))
    return out


def hook_request(*, prefetch: dict | None = None, fhir_server: str | None = None,
                 hook: str = "patient-view") -> dict:
    body: dict[str, Any] = {
        "hook": hook, "hookInstance": "3f1c0f3e-8a1e-4c55-9f0e-bench00000001",
        "context": {"userId": "Practitioner/prac-neph-1", "patientId": PATIENT_ID,
                    "encounterId": ENCOUNTER_ID}}
    if prefetch is not None:
        body["prefetch"] = prefetch
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {"access_token": "bench-token", "token_type": "Bearer",
                                     "expires_in": 300, "scope": "patient/*.read",
                                     "subject": "cds-service"}
    return body


def counts(prefetch: dict) -> dict[str, int]:
    """Entries per prefetch key (1 for a single resource)."""
    return {k: (len(v.get("entry", [])) if v.get("resourceType") == "Bundle" else 1)
            for k, v in prefetch.items() if v is not None}
