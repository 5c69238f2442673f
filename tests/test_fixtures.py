"""The synthetic patients of fhir_fixtures/ give the cards a clinician expects (scenarios.json),
through the endpoint of each scenario's hook (patient-view, order-select, order-sign), whichever
way the service gets the data: full prefetch, or no prefetch and the EHR's FHIR server (mocked
with `responses`), and through ``cds-service evaluate``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import responses
from fhir.resources.R4B.bundle import Bundle

from cds_service import cli
from fhir_fixtures import generate

from cds_service.testing import factories

FIXTURES = Path(__file__).resolve().parent.parent / "fhir_fixtures"
SCENARIOS = json.loads((FIXTURES / "scenarios.json").read_text("utf-8"))
BY_NAME = {s["name"]: s for s in SCENARIOS}
FHIR_BASE = generate.FHIR_BASE
TOKEN = "synthetic-access-token"
SERUM_MG_CODES = {"19123-9", "2601-3"}
ORDER_HOOKS = ("order-select", "order-sign")
ENDPOINTS = {"patient-view": "/cds-services/tacrolimus-magnesium-patient-view",
             "order-select": "/cds-services/tacrolimus-magnesium-order-select",
             "order-sign": "/cds-services/tacrolimus-magnesium-order-sign"}


def load_patient(name: str) -> dict:
    return json.loads((FIXTURES / "patients" / f"{name}.json").read_text("utf-8"))


def load_request(scenario: dict) -> dict:
    return json.loads((FIXTURES / "requests" / scenario["request"]).read_text("utf-8"))


def scenario_params(*hooks: str):
    return [pytest.param(s, id=f"{s['name']}.{s['hook']}") for s in SCENARIOS
            if not hooks or s["hook"] in hooks]


def drafts_of(request: dict) -> list[dict]:
    return [e["resource"] for e in request["context"].get("draftOrders", {}).get("entry", [])]


def assert_cards(cards: list[dict], expected: list[dict]) -> None:
    """Indicators and topics in order, then each card's summary (and detail) substrings, and the
    substrings its suggestion labels must (suggestions_contain) or must not (suggestions_exclude) hold."""
    got = [(c["indicator"], c["source"]["topic"]["code"]) for c in cards]
    assert got == [(e["indicator"], e["topic"]) for e in expected], [c["summary"] for c in cards]
    for card, want in zip(cards, expected, strict=True):
        for text in want["summary_contains"]:
            assert text in card["summary"], (text, card["summary"])
        for text in want.get("detail_contains", []):
            assert text in card.get("detail", ""), (text, card.get("detail"))
        labels = [s["label"] for s in card.get("suggestions", [])]
        for text in want.get("suggestions_contain", []):
            assert any(text in label for label in labels), (text, labels)
        for text in want.get("suggestions_exclude", []):
            assert not any(text in label for label in labels), (text, labels)


# --------------------------------------------------------------------------------------------
# The fixture files themselves


def test_scenarios_cover_the_brief():
    names = set(BY_NAME)
    assert len(names) == len(SCENARIOS)
    for unit in ("meq", "mmol", "mgdl"):
        assert sum(n.startswith(f"boundary-{unit}-") for n in names) == 6, unit
    for name in ("severe", "symptomatic", "mild-moderate", "below-target", "at-target",
                 "boundary-meq-1.00", "boundary-mmol-0.50", "boundary-mmol-0.70", "boundary-meq-1.50",
                 "routine-due", "early-phase-after-transplant", "inpatient-due", "never-measured",
                 "symptoms-normal-mg", "contributing-ppi-and-loop-diuretic",
                 "contributing-high-tacrolimus-level", "contributing-azole",
                 "persistent-despite-supplementation", "femg-renal-wasting", "renal-impairment-caution",
                 "topical-tacrolimus-only", "not-on-tacrolimus", "contained-medication",
                 "text-only-codes", "unknown-unit-only", "entered-in-error-ignored",
                 "preliminary-not-classified", "same-time-lowest-counts",
                 # section 6, order hooks
                 "order-start-never-measured", "order-start-recent-normal-mg", "order-start-plan-in-place",
                 "order-start-low-mg", "order-ppi-on-tacrolimus", "order-loop-diuretic", "order-fluconazole",
                 "order-rifampin", "order-magnesium-oxide-for-low-mg", "order-select-ppi-not-selected",
                 "order-sign-ppi-among-drafts", "order-sandbox-page-load", "order-sandbox-tacrolimus",
                 # section 6, revision 2: relevance, strengths, IV vs oral PPIs
                 "order-tacrolimus-renewal", "order-ppi-low-mg", "order-ppi-intravenous",
                 "order-loop-diuretic-mg-unmeasured", "order-clotrimazole-troche", "order-voriconazole",
                 "order-paxlovid", "order-topical-azoles", "order-magnesium-lab-draft",
                 "order-select-unrelated-severe", "order-sign-unrelated-severe", "order-sign-unrelated-mild",
                 "order-magnesium-oxide-with-high-mg", "order-ppi-with-high-mg-on-supplement",
                 # revision 2: patients as EHRs send them
                 "statement-only-tacrolimus", "statement-intended-envarsus", "envarsus-product-code-only",
                 "plan-intent-is-not-treatment", "oral-prograf-sunscreen-sig", "tacrolimus-stopped-recently",
                 "tacrolimus-stopped-15-days-ago", "tacrolimus-on-hold-no-trough",
                 "future-dated-normal-hides-nothing", "future-dated-mmol-only-change", "future-within-tolerance",
                 "future-beyond-tolerance", "corrected-supersedes-final", "amended-later-issued-wins",
                 "loinc-blood-mg-not-read-as-serum", "iv-given-since-result", "iv-order-completed-since-result",
                 "iv-given-before-result-does-not-count", "child-with-weight", "child-heavy-capped-at-2-g",
                 "child-without-weight", "adult-on-18th-birthday", "dialysis-esrd", "dialysis-procedure-recent",
                 "dialysis-procedure-old", "egfr-88294-4-renal-dose", "creatinine-only-renal-function",
                 "creatinine-umol-sex-unknown", "renal-function-unknown", "mg-high-on-supplement",
                 "mg-2.5-on-supplement-not-high", "mg-high-without-supplement", "bowel-prep-is-not-a-supplement",
                 "kidney-transplant-175902000", "trough-77348-1-high", "tacrolimus-start-from-stopped-order",
                 "symptomatic-minor-cramp", "symptomatic-minor-tremor-mmol", "chronic-af-rerecorded",
                 "missing-tacrolimus-level-late", "missing-tacrolimus-level-first-year"):
        assert name in names, name
    for s in SCENARIOS:
        assert s["now"] == "2026-11-25T12:00:00Z"
        assert s["description"]
        assert s["hook"] in ENDPOINTS
        assert s["request"] == f"{s['name']}.{s['hook']}.json"
        assert (FIXTURES / "requests" / s["request"]).is_file()
    assert {s["hook"] for s in SCENARIOS} == set(ENDPOINTS)
    # The two selection scenarios share their drafts; only the hook (and the selection) differ.
    select, sign = BY_NAME["order-select-ppi-not-selected"], BY_NAME["order-sign-ppi-among-drafts"]
    assert (select["hook"], sign["hook"]) == ORDER_HOOKS
    assert drafts_of(load_request(select)) == drafts_of(load_request(sign))
    assert not select["expected"] and sign["expected"]


def test_generator_reproduces_the_committed_files(tmp_path):
    generate.main(tmp_path)
    for path in sorted(FIXTURES.glob("**/*.json")):
        relative = path.relative_to(FIXTURES)
        assert (tmp_path / relative).read_text("utf-8") == path.read_text("utf-8"), relative
    assert len(list(tmp_path.glob("**/*.json"))) == len(list(FIXTURES.glob("**/*.json")))


@pytest.mark.parametrize("scenario", scenario_params())
def test_patient_bundle_is_valid_fhir_r4_collection(scenario):
    bundle = load_patient(scenario["name"])
    Bundle.model_validate(bundle)  # raises on invalid FHIR
    assert bundle["type"] == "collection"
    resources = [e["resource"] for e in bundle["entry"]]
    assert resources[0]["resourceType"] == "Patient"
    assert all(r.get("subject", {}).get("reference", "Patient/pat-1") == "Patient/pat-1" for r in resources)
    request = load_request(scenario)
    assert request["hook"] == scenario["hook"]
    sent = [r for key, value in request["prefetch"].items()
            for r in (value.get("entry", []) if value.get("resourceType") == "Bundle" else [{"resource": value}])]
    assert sorted(r["resource"]["id"] for r in sent) == sorted(r["id"] for r in resources)
    assert not any(r.get("status") == "draft" for r in resources)  # drafts are in context only


@pytest.mark.parametrize("scenario", scenario_params(*ORDER_HOOKS))
def test_order_request_carries_the_drafts(scenario):
    request = load_request(scenario)
    history = {r["resource"]["id"] for r in load_patient(scenario["name"])["entry"]}
    orders = request["prefetch"]["magnesiumOrders"]
    assert orders["resourceType"] == "Bundle"
    assert {r["resource"]["id"] for r in orders["entry"]} == {
        r["resource"]["id"] for r in load_patient(scenario["name"])["entry"]
        if r["resource"]["resourceType"] == "ServiceRequest"}
    draft_bundle = request["context"]["draftOrders"]
    drafts = drafts_of(request)
    assert draft_bundle["resourceType"] == "Bundle" and drafts
    assert all(d["status"] == "draft" and d["id"] not in history for d in drafts)
    if scenario["name"] != "order-sandbox-page-load":  # the sandbox's blank draft has no medication[x]
        Bundle.model_validate(draft_bundle)
    if scenario["hook"] == "order-select":
        refs = {f"{d['resourceType']}/{d['id']}" for d in drafts}
        assert request["context"]["selections"] and set(request["context"]["selections"]) <= refs
    else:
        assert "selections" not in request["context"]


# --------------------------------------------------------------------------------------------
# Mode (a): the request as it is, with full prefetch


@pytest.mark.parametrize("scenario", scenario_params())
def test_full_prefetch(call_hook, scenario):
    body = load_request(scenario)
    keys = {"patient", "medications", "magnesium", "labs", "tacrolimusLevels", "conditions", "procedures",
            "medicationStatements", "medicationAdministrations", "bodyWeight"}
    if scenario["hook"] in ORDER_HOOKS:
        keys.add("magnesiumOrders")
    assert set(body["prefetch"]) >= keys
    assert "fhirServer" not in body
    assert_cards(call_hook(body, ENDPOINTS[scenario["hook"]]), scenario["expected"])


# --------------------------------------------------------------------------------------------
# Mode (b): no prefetch; the service reads a (mocked) FHIR server


class MockFhirServer:
    """Answers the service's reads and searches from one patient Bundle, as a FHIR server would.

    Searches filter like a server: `patient`, Observation/Procedure/ServiceRequest `code` tokens,
    Condition `clinical-status`, ServiceRequest `status`; results come in pages of PAGE_SIZE with
    HAPI-style next links. Code-less
    Observations (text only) are answered to the serum magnesium query only, as
    tests.factories.prefetch_for files them (a real server would not return them to a token search).
    """

    PAGE_SIZE = 3

    def __init__(self, bundle: dict):
        self.resources = [e["resource"] for e in bundle["entry"]]
        self.patient_id = next(r["id"] for r in self.resources if r["resourceType"] == "Patient")
        self.authorizations: list[str | None] = []
        self.queries: list[str] = []  # "Patient/read", "Observation:magnesium", ...
        self.unexpected: list[str] = []
        self.pages_read = 0
        self._pages: dict[str, list[dict]] = {}

    def register(self, mock: responses.RequestsMock) -> None:
        mock.add_callback(responses.GET, re.compile(re.escape(FHIR_BASE) + r"(/.*)?(\?.*)?$"),
                          callback=self.answer)

    def answer(self, request):
        self.authorizations.append(request.headers.get("Authorization"))
        parts = urlsplit(request.url)
        query = parse_qs(parts.query)
        path = parts.path.removeprefix(urlsplit(FHIR_BASE).path).strip("/")
        if "_getpages" in query:
            self.pages_read += 1
            return self._page(query["_getpages"][0], int(query["_getpagesoffset"][0]))
        rtype, _, rid = path.partition("/")
        if rid:
            self.queries.append(f"{rtype}/read")
            found = [r for r in self.resources if r["resourceType"] == rtype and r["id"] == rid]
            return (200, {}, json.dumps(found[0])) if found else self._outcome(404, "not-found")
        if query.get("patient") != [self.patient_id]:
            self.unexpected.append(request.url)
            return self._outcome(400, "not patient-scoped")
        matches = self._search(rtype, query)
        if matches is None:
            self.unexpected.append(request.url)
            return self._outcome(400, "unsupported search")
        key = f"{rtype}-{len(self._pages)}"
        self._pages[key] = matches
        return self._page(key, 0)

    def _search(self, rtype: str, query: dict) -> list[dict] | None:
        of_type = [r for r in self.resources if r["resourceType"] == rtype]
        tokens = set(query.get("code", [""])[0].split(",")) - {""}

        def coded(r: dict) -> set[str]:
            return {f"{c.get('system')}|{c.get('code')}" for c in r.get("code", {}).get("coding", [])}

        if rtype in ("MedicationRequest", "MedicationStatement", "MedicationAdministration"):
            self.queries.append(rtype)
            return of_type
        if rtype == "Observation":
            magnesium = any(t.split("|")[-1] in SERUM_MG_CODES for t in tokens)
            tacrolimus = any(t.split("|")[-1] in factories.TACROLIMUS_LEVEL_CODES for t in tokens)
            weight = any(t.split("|")[-1] in factories.BODY_WEIGHT_CODES for t in tokens)
            self.queries.append("Observation:" + ("magnesium" if magnesium else
                                                  "tacrolimusLevels" if tacrolimus else
                                                  "bodyWeight" if weight else "labs"))
            return [r for r in of_type if coded(r) & tokens or (magnesium and not coded(r))]
        if rtype == "Procedure":
            self.queries.append("Procedure")
            return [r for r in of_type if coded(r) & tokens]
        if rtype == "Condition":
            self.queries.append("Condition")
            wanted = set(query.get("clinical-status", [""])[0].split(","))
            return [r for r in of_type if r["clinicalStatus"]["coding"][0]["code"] in wanted]
        if rtype == "ServiceRequest":
            self.queries.append("ServiceRequest")
            statuses = set(query.get("status", [""])[0].split(",")) - {""}
            return [r for r in of_type if coded(r) & tokens and (not statuses or r.get("status") in statuses)]
        return None

    def _page(self, key: str, offset: int):
        matches = self._pages[key]
        page = matches[offset:offset + self.PAGE_SIZE]
        bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(matches),
                  "entry": [{"fullUrl": f"{FHIR_BASE}/{r['resourceType']}/{r['id']}", "resource": r,
                             "search": {"mode": "match"}} for r in page]}
        if offset + self.PAGE_SIZE < len(matches):
            next_query = urlencode({"_getpages": key, "_getpagesoffset": offset + self.PAGE_SIZE})
            bundle["link"] = [{"relation": "next", "url": f"{FHIR_BASE}?{next_query}"}]
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(bundle)

    @staticmethod
    def _outcome(status: int, text: str):
        return status, {}, json.dumps({"resourceType": "OperationOutcome",
                                       "issue": [{"severity": "error", "code": "processing",
                                                  "diagnostics": text}]})


def fallback_request(scenario: dict, token: str | None = TOKEN) -> dict:
    """The scenario's request without prefetch (same hook and context, drafts included), pointing
    at the mocked FHIR server."""
    request = load_request(scenario)
    context = {k: v for k, v in request["context"].items() if k in ("draftOrders", "selections")}
    return factories.hook_request(hook=request["hook"], fhir_server=FHIR_BASE, token=token,
                                  encounter_id=request["context"].get("encounterId"), **context)


@pytest.mark.parametrize("scenario", scenario_params())
def test_fhir_server_fallback(call_hook, scenario):
    server = MockFhirServer(load_patient(scenario["name"]))
    body = fallback_request(scenario)
    assert "prefetch" not in body
    assert body["context"] == load_request(scenario)["context"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        server.register(mock)
        cards = call_hook(body, ENDPOINTS[scenario["hook"]])
    assert_cards(cards, scenario["expected"])
    assert not server.unexpected
    expected_queries = ["Condition", "MedicationAdministration", "MedicationRequest",
                        "MedicationStatement", "Observation:bodyWeight", "Observation:labs",
                        "Observation:magnesium", "Observation:tacrolimusLevels", "Patient/read",
                        "Procedure"]
    if "encounterId" in body["context"]:
        expected_queries.append("Encounter/read")
    if scenario["hook"] in ORDER_HOOKS:
        expected_queries.append("ServiceRequest")
    assert sorted(server.queries) == sorted(expected_queries)
    assert server.authorizations and set(server.authorizations) == {f"Bearer {TOKEN}"}


def test_fhir_server_fallback_without_authorization_sends_no_token(call_hook):
    scenario = BY_NAME["contributing-ppi-and-loop-diuretic"]
    server = MockFhirServer(load_patient(scenario["name"]))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        server.register(mock)
        cards = call_hook(fallback_request(scenario, token=None))
    assert_cards(cards, scenario["expected"])
    assert server.authorizations and set(server.authorizations) == {None}


def test_fhir_server_fallback_follows_pages(call_hook):
    """FEMg needs all five labs of the scenario, more than one page: the next links are read."""
    scenario = BY_NAME["femg-renal-wasting"]
    server = MockFhirServer(load_patient(scenario["name"]))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        server.register(mock)
        cards = call_hook(fallback_request(scenario))
    assert_cards(cards, scenario["expected"])
    assert server.pages_read >= 1


# --------------------------------------------------------------------------------------------
# cds-service evaluate


def evaluate(capsys, path: Path, *extra: str) -> str:
    assert cli.main(["evaluate", str(path), "--now", "2026-11-25T12:00:00Z", *extra]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", ["severe", "contributing-ppi-and-loop-diuretic", "unknown-unit-only",
                                  "boundary-mgdl-1.21", "order-start-low-mg", "order-ppi-on-tacrolimus",
                                  "order-rifampin", "order-sandbox-tacrolimus"])
def test_cli_prints_expected_summaries(capsys, name):
    out = evaluate(capsys, FIXTURES / "requests" / BY_NAME[name]["request"])
    expected = BY_NAME[name]["expected"]
    headers = [line for line in out.splitlines() if line.startswith("[")]
    assert [h.split("]")[0][1:] for h in headers] == [e["indicator"].upper() for e in expected]
    for header, want in zip(headers, expected, strict=True):
        for text in want["summary_contains"]:
            assert text in header
    for want in expected:
        assert f"topic: {want['topic']}" in out


@pytest.mark.parametrize("name", ["at-target", "topical-tacrolimus-only", "not-on-tacrolimus",
                                  "order-start-plan-in-place", "order-select-ppi-not-selected",
                                  "order-sandbox-page-load"])
def test_cli_prints_no_cards(capsys, name):
    assert evaluate(capsys, FIXTURES / "requests" / BY_NAME[name]["request"]).strip() == "No cards."


@pytest.mark.parametrize("scenario", scenario_params(*ORDER_HOOKS))
def test_cli_on_the_order_request_gives_the_same_cards(capsys, scenario):
    """`cds-service evaluate requests/<x>.<order hook>.json` picks the order service by the hook."""
    out = evaluate(capsys, FIXTURES / "requests" / scenario["request"], "--json")
    assert_cards(json.loads(out)["cards"], scenario["expected"])


@pytest.mark.parametrize("scenario", scenario_params("patient-view"))
def test_cli_on_the_patient_bundle_gives_the_same_cards(capsys, scenario):
    """`cds-service evaluate patients/<x>.json` (the whole Bundle as prefetch) agrees too. Only for
    patient-view: an order scenario's Bundle holds the history, not the drafts."""
    out = evaluate(capsys, FIXTURES / "patients" / f"{scenario['name']}.json", "--json")
    assert_cards(json.loads(out)["cards"], scenario["expected"])


@pytest.mark.parametrize("scenario", scenario_params("patient-view"))
def test_patient_view_summaries_fit_without_a_cut_and_end_with_the_action(call_hook, scenario):
    """Section 10: at most 140 characters, never cut mid-word, no '— patient on tacrolimus' filler."""
    for card in call_hook(load_request(scenario), ENDPOINTS["patient-view"]):
        summary = card["summary"]
        assert len(summary) <= 140 and not summary.endswith("…"), summary
        assert "—" not in summary and "patient on tacrolimus" not in summary, summary
