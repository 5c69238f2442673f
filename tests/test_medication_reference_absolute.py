"""Section 1: a medication named through an ABSOLUTE medicationReference.

GUIDELINE §1: tacrolimus is recognised "through `medicationReference` to a contained Medication
(`#id`) or a Medication in the prefetch/fetched data". FHIR R4 (References, 2.3.0.1): a literal
reference is relative ("Medication/123") or an absolute URL; an absolute URL whose base is the
server's own base names the same resource as the relative one ("<fhirServer>/Medication/123",
optionally "/_history/<version>"). Some EHR interfaces and FHIR facades write every reference
absolute. Without a prefetch the service reads such a Medication from the hook's fhirServer,
exactly as a relative one; a reference to ANY other server is never fetched (the service must not
call a URL that an EHR record names: SSRF), and the cards say the medication details are
unavailable instead. The facts resolve the same references the same way (both read them through
facts/values.py), so a Medication read or sent for the hook's server never stands in for another
server's Medication of the same id.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import responses

from cds_service.fhir.client import FhirClient
from cds_service.fhir.data import PatientData, _read_referenced_medications
from cds_service.guideline.facts import build_facts

from cds_service.testing import factories as f
from .fake_fhir import BASE, FakeFhirServer

TAC_MED = {"resourceType": "Medication", "id": "med-tac-abs",
           "code": {"coding": [{"system": f.RXNORM, "code": "198377", "display": "tacrolimus 1 MG Oral Capsule"}],
                    "text": "tacrolimus 1 mg capsule"}}


def order_naming(reference: str, id: str = "mr-abs") -> dict:
    """An active order whose drug is named only by a Medication reference (Epic/Cerner shape)."""
    order = f.medication(rxnorm=None, text=None, id=id)
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": reference}
    return order


NOT_READ = "medication details (1 orders name a Medication outside the EHR's FHIR server, not read)"


@pytest.fixture
def mock():
    # responses answers only what is registered; every call made is in mock.calls.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as m:
        yield m


@pytest.fixture
def executor():
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


def read(references: list[str], fhir_server: str | None, executor, *, sent: list[dict] = ()) -> PatientData:
    """_read_referenced_medications over orders naming `references`, reading from BASE."""
    data = PatientData(resources=[*sent, *(order_naming(r, id=f"mr-{i}") for i, r in enumerate(references))])
    client = FhirClient(BASE, "t", connect_timeout=1, read_timeout=1, max_pages=3) if fhir_server else None
    _read_referenced_medications(data, [], client, executor, time.monotonic() + 5, fhir_server)
    return data


def medications_read(data: PatientData) -> list[str]:
    return [r["id"] for r in data.resources if r.get("resourceType") == "Medication"]


# --------------------------------------------------------------------------------------------
# The data layer: which references are read, and from where


@pytest.mark.parametrize("reference, fhir_server", [
    (f"{BASE}/Medication/med-tac-abs", BASE),
    (f"{BASE}/Medication/med-tac-abs", BASE + "/"),  # fhirServer sent with a trailing slash
    ("HTTPS://EHR.Example.ORG:443/fhir/Medication/med-tac-abs", BASE),  # scheme/host case, default port
    (f"{BASE}/Medication/med-tac-abs/_history/3", BASE),  # a version of it
    ("Medication/med-tac-abs", BASE),  # relative, as before
    ("Medication/med-tac-abs/_history/3", BASE),
], ids=["absolute", "server-trailing-slash", "spelled-otherwise", "absolute-history", "relative", "relative-history"])
def test_reference_to_the_hook_server_is_read_from_it(reference, fhir_server, mock, executor):
    mock.add(responses.GET, f"{BASE}/Medication/med-tac-abs", json=TAC_MED)
    data = read([reference], fhir_server, executor)
    assert [c.request.url for c in mock.calls] == [f"{BASE}/Medication/med-tac-abs"]
    assert medications_read(data) == ["med-tac-abs"] and data.unavailable == []


@pytest.mark.parametrize("reference", [
    "https://other-hospital.example/fhir/Medication/med-tac-abs",  # another server
    "http://ehr.example.org/fhir/Medication/med-tac-abs",  # another scheme
    "https://ehr.example.org:8443/fhir/Medication/med-tac-abs",  # another port
    "https://ehr.example.org/other/Medication/med-tac-abs",  # another base path on the same host
    "https://ehr.example.org/fhirx/Medication/med-tac-abs",  # a base that only starts the same
    "https://ehr.example.org/fhir/x/Medication/med-tac-abs",  # a path below the base
    "https://ehr.example.org@169.254.169.254/fhir/Medication/med-tac-abs",  # user-info trick
    "http://169.254.169.254/latest/meta-data/Medication/x",  # cloud metadata
    "https://ehr.example.org/fhir/Medication/med-tac-abs?_format=json",  # not a plain resource URL
], ids=["other-server", "http", "port", "other-path", "prefix-path", "deeper-path", "userinfo", "metadata", "query"])
def test_reference_to_any_other_server_is_never_fetched(reference, mock, executor):
    """No request at all (responses records every call made), and the details are said missing."""
    mock.add(responses.GET, f"{BASE}/Medication/med-tac-abs", json=TAC_MED)
    data = read([reference], BASE, executor)
    assert len(mock.calls) == 0
    assert medications_read(data) == []
    assert data.unavailable == [NOT_READ]


def test_other_server_reference_is_not_satisfied_by_a_local_medication_of_the_same_id(mock, executor):
    """The hook's server sent Medication/med-tac-abs; an order naming another server's
    med-tac-abs is still not read, and still said unavailable: same id, other resource."""
    data = read(["https://other-hospital.example/fhir/Medication/med-tac-abs"], BASE, executor, sent=[TAC_MED])
    assert len(mock.calls) == 0
    assert data.unavailable and "outside the EHR's FHIR server" in data.unavailable[0]


def test_absolute_reference_with_no_fhir_server_is_not_read(executor):
    """Prefetch only, no fhirServer: an absolute reference cannot be told to be the EHR's own."""
    data = read([f"{BASE}/Medication/med-tac-abs"], None, executor)
    assert data.unavailable == [NOT_READ]


def test_absolute_reference_sent_in_the_prefetch_is_not_read_again(mock, executor):
    data = read([f"{BASE}/Medication/med-tac-abs"], BASE, executor, sent=[TAC_MED])
    assert len(mock.calls) == 0 and data.unavailable == []


def test_same_medication_referenced_both_ways_is_read_once(mock, executor):
    mock.add(responses.GET, f"{BASE}/Medication/med-tac-abs", json=TAC_MED)
    read([f"{BASE}/Medication/med-tac-abs", "Medication/med-tac-abs"], BASE, executor)
    assert len(mock.calls) == 1


# --------------------------------------------------------------------------------------------
# The facts agree: what the data layer reads is what they resolve, and nothing else


def facts_for(reference: str, fhir_server: str | None):
    return build_facts([f.patient(), order_naming(reference), TAC_MED], patient_id=f.PATIENT_ID,
                       encounter_id=None, fhir_server=fhir_server)


@pytest.mark.parametrize("reference, fhir_server, tacrolimus", [
    (f"{BASE}/Medication/med-tac-abs", BASE, True),
    ("https://EHR.example.org/fhir/Medication/med-tac-abs/_history/2", BASE + "/", True),
    ("Medication/med-tac-abs", BASE, True),
    ("Medication/med-tac-abs", None, True),
    ("https://other-hospital.example/fhir/Medication/med-tac-abs", BASE, False),
    ("https://ehr.example.org/other/Medication/med-tac-abs", BASE, False),
    (f"{BASE}/Medication/med-tac-abs", None, False),
], ids=["absolute", "absolute-other-spelling", "relative", "relative-no-server", "other-server", "other-path",
        "absolute-no-server"])
def test_facts_resolve_exactly_the_references_the_data_layer_reads(reference, fhir_server, tacrolimus):
    # Unresolved and with no display, the order names no drug at all (no MedicationUse).
    uses = facts_for(reference, fhir_server).medications
    assert any(u.is_tacrolimus for u in uses) is tacrolimus and len(uses) == int(tacrolimus)


# --------------------------------------------------------------------------------------------
# Through the hook (no prefetch: everything read from the mocked fhirServer)


def test_hook_reads_the_absolute_reference_and_answers_severe(mock, call_hook):
    """§1/§3: a tacrolimus order naming <fhirServer>/Medication/med-tac-abs, Mg 0.8 mEq/L: critical."""
    server = FakeFhirServer([order_naming(f"{BASE}/Medication/med-tac-abs"), f.magnesium(0.8, days=1), TAC_MED])
    server.install(mock)
    cards = call_hook(f.hook_request(prefetch={}, fhir_server=BASE, token="t"))
    assert cards and cards[0]["indicator"] == "critical", [c["summary"] for c in cards]
    assert any(c.path_url.endswith("/Medication/med-tac-abs") for c in server.calls)


def test_hook_never_calls_another_server_and_says_the_details_are_unavailable(mock, call_hook):
    """A patient on tacrolimus (a coded order) with a second order naming another server's
    Medication: the service answers from what it has, calls nothing but the hook's server, and
    the card says the medication details are not available."""
    other = order_naming("https://other-hospital.example/fhir/Medication/med-x")
    server = FakeFhirServer([f.tacrolimus(), other, f.magnesium(1.2, days=1)])
    server.install(mock)  # responses answers only BASE: a call elsewhere would fail loudly below
    cards = call_hook(f.hook_request(prefetch={}, fhir_server=BASE, token="t"))
    assert all(c.request.url.startswith(BASE + "/") for c in mock.calls), [c.request.url for c in mock.calls]
    assert not any("/Medication/" in c.url for c in server.calls)
    assert cards and "outside the EHR's FHIR server" in cards[0]["detail"]
