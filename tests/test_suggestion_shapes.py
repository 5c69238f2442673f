"""Every FHIR resource a suggestion can carry is valid FHIR R4 (fhir.resources R4B), and is exactly
what the models would serialise: suggestions.py builds them as plain data at run time (issue 13),
so this test is where they are validated.

The resources come from (1) every fixture scenario, with the standard codes and with the
hospital's orderables map (CDS_ORDERABLES), and (2) a grid over every argument of the builders
(renal caution or none, doses per day, the severe threshold, eGFR bands and comparators, no
encounter, every lab the service orders, orderables full/partial/none, the mmol/L serum order).
For each: the model accepts it, and its `model_dump(mode="json", exclude_none=True)` is the same
JSON text, key order included (the bytes the service sends). The shapes (nested key structure)
seen in the fixtures must all be in the grid, so a new shape gets its case here.
"""

from __future__ import annotations

import copy
import itertools
import json
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.guideline import codes, suggestions
from cds_service.guideline.suggestions import (MEDICATION_PRODUCTS, OrderContext, famotidine_instead,
                                               intravenous_magnesium, lab_order, oral_magnesium)
from cds_service.guideline.thresholds import FAMOTIDINE_FULL_DOSE_EGFR, FAMOTIDINE_REDUCED_DOSE_EGFR

from .fixture_replay import all_cards, replay

MODELS = {"MedicationRequest": MedicationRequest, "ServiceRequest": ServiceRequest}
NOW = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)
HOSPITAL = "http://hospital.example.org/orderables"
ORDERABLES = {key: codes.Code(HOSPITAL, f"LOCAL-{key.upper()}", f"Local {key}")
              for key in suggestions.PRODUCT_KEYS}
CAUTION = "renal impairment (eGFR 25 mL/min/1.73m2): reduce the dose and monitor closely"


def created(cards) -> list[dict]:
    return [a["resource"] for _, card in cards for s in card.get("suggestions", [])
            for a in s["actions"] if a["type"] == "create"]


def shape(value):
    """The nested key structure, in order, without the values."""
    if isinstance(value, dict):
        return tuple((k, shape(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(sorted({shape(v) for v in value}, key=repr))
    return type(value).__name__


def assert_valid_and_canonical(resource: dict) -> None:
    model = MODELS[resource["resourceType"]].model_validate(copy.deepcopy(resource))
    canonical = model.model_dump(mode="json", exclude_none=True)
    assert json.dumps(resource) == json.dumps(canonical), (
        "the plain resource is not what fhir.resources would emit (field order or value type)")


def egfr(value, comparator=None):
    return SimpleNamespace(normalised=value, comparator=comparator, shown=f"{value} mL/min/1.73m2")


def contexts():
    orderable_maps = ({}, ORDERABLES, {"famotidine_20_tablet": ORDERABLES["famotidine_20_tablet"],
                                       "serum_mg": ORDERABLES["serum_mg"]})
    for encounter, orderables, serum in itertools.product(("enc-1", None), orderable_maps, codes.MG_SERUM):
        yield OrderContext(patient_id="pat-1", encounter_id=encounter, now=NOW, serum_mg_order=serum,
                           orderables=orderables)


def grid() -> list[dict]:
    out = []
    egfrs = (None, egfr(None), egfr(FAMOTIDINE_REDUCED_DOSE_EGFR - 5), egfr(FAMOTIDINE_FULL_DOSE_EGFR - 5),
             egfr(FAMOTIDINE_FULL_DOSE_EGFR + 30), egfr(90, ">"), egfr(15, "<"))
    labs = tuple(codes.LAB_ORDER_KEYS.values()) + codes.MG_SERUM
    for ctx in contexts():
        for caution in (None, CAUTION):
            for per_day in (1, 2, 3):
                out.append(oral_magnesium(ctx, caution, per_day=per_day))
            for severe in (None, 0.8, 1.0):
                out.append(intravenous_magnesium(ctx, caution, severe))
        for value in egfrs:
            out.append(famotidine_instead(ctx, value))
        for test, reason, start in itertools.product(labs, (True, False), (0, 3)):
            out.append(lab_order(ctx, test, within_days=start + 7, note="why", reason_low_mg=reason,
                                 starting_in_days=start))
    return out


@pytest.fixture(scope="module")
def grid_resources():
    return grid()


@pytest.fixture(scope="module")
def fixture_resources():
    orderables = json.dumps({k: {"system": c.system, "code": c.code, "display": c.display}
                             for k, c in ORDERABLES.items()})
    with pytest.MonkeyPatch.context() as monkeypatch:
        found = created(all_cards(replay(monkeypatch)))
        found += created(all_cards(replay(monkeypatch, {"orderables": orderables})))
        found += created(all_cards(replay(monkeypatch, {"serum_mg_order_loinc": "2601-3"})))
    return found


def test_every_resource_of_the_argument_grid_is_valid_fhir_and_canonical(grid_resources):
    assert {r["resourceType"] for r in grid_resources} == set(MODELS)
    for resource in grid_resources:
        assert_valid_and_canonical(resource)


def test_every_resource_the_fixtures_produce_is_valid_fhir_and_canonical(fixture_resources):
    assert len(fixture_resources) > 50
    products = {r["medicationCodeableConcept"]["text"] for r in fixture_resources
                if r["resourceType"] == "MedicationRequest"}
    # every drug the service orders, the halved IV dose named without its 2 g premix (section 3)
    assert products == {p.text for p in MEDICATION_PRODUCTS.values()} | {codes.MAGNESIUM_SULFATE_IV_HALVED.text}
    for resource in fixture_resources:
        assert_valid_and_canonical(resource)


def test_the_grid_covers_every_shape_the_fixtures_produce(fixture_resources, grid_resources):
    missing = {shape(r) for r in fixture_resources} - {shape(r) for r in grid_resources}
    assert not missing, f"a suggestion shape the grid does not build: add its case to grid(): {missing}"


@pytest.mark.parametrize("spoil", ["unknown field", "field order", "bad code type"])
def test_the_check_fails_on_a_spoilt_resource(grid_resources, spoil):
    """The check can fail: on an element FHIR does not have, keys out of FHIR's order, a wrong type."""
    resource = copy.deepcopy(next(r for r in grid_resources if r["resourceType"] == "MedicationRequest"))
    if spoil == "unknown field":
        resource["dosage"] = "twice"
    elif spoil == "field order":
        resource = {"status": resource.pop("status"), **resource}
    else:
        resource["medicationCodeableConcept"]["coding"] = "198741"
    with pytest.raises(Exception):  # noqa: B017 - a validation error or the canonical-bytes assertion
        assert_valid_and_canonical(resource)
