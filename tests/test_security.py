"""Trust boundary: JWT authentication of CDS clients, FHIR server allowlist, hostile input, logs."""

from __future__ import annotations

import io
import re
import json
import logging
import time
import uuid

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service import create_app
from cds_service.logs import LOGGER_NAME, JsonFormatter
from cds_service.security.jwt_auth import AuthFailure, JwksCache

from cds_service.testing import factories as f
from .conftest import PATIENT_VIEW

ISS = "https://ehr.example.org"
JWKS_URL = "https://ehr.example.org/.well-known/jwks.json"
ROTATED_JKU = "https://keys.example.org/jwks.json"
PATH_HOOK = PATIENT_VIEW
AUDIENCE = "http://localhost" + PATIENT_VIEW
FHIR = "https://fhir.example.org/r4"


def public_jwk(private_key, kid: str, alg: str) -> dict:
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(private_key.public_key()))
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = ec.generate_private_key(ec.SECP384R1())
JWKS = {"keys": [public_jwk(EC_KEY, "ec-1", "ES384"), public_jwk(RSA_KEY, "rsa-1", "RS384")]}


def token(*, key=EC_KEY, alg="ES384", kid="ec-1", headers=None, **claims) -> str:
    now = int(time.time())
    payload = {"iss": ISS, "aud": AUDIENCE, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4()),
               "sub": "client-1", "tenant": "t1"}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    headers = {**({"kid": kid} if kid else {}), **(headers or {})}
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def secure_config(tmp_path, **overrides) -> dict:
    config = {"auth_required": True, "public_base_url": "http://localhost",
              "trusted_issuers": json.dumps({ISS: {"jwks_url": JWKS_URL, "jku": [ROTATED_JKU]}}),
              "fhir_allowed_servers": FHIR, "state_db": str(tmp_path / "state.sqlite3"),
              "log_level": "INFO"}
    config.update(overrides)
    return config


@pytest.fixture
def secure_app(tmp_path):
    return create_app(secure_config(tmp_path))


@pytest.fixture
def jwks():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, JWKS_URL, json=JWKS)
        mock.add(responses.GET, ROTATED_JKU, json={"keys": [public_jwk(OTHER_KEY, "other-1", "ES384")]})
        yield mock


@pytest.fixture
def log_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def call(app, bearer: str | None, path: str = PATIENT_VIEW, body: dict | None = None):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    body = body or f.hook_request([f.tacrolimus(), f.magnesium(2.0)])
    return app.test_client().post(path, json=body, headers=headers)


# --- JWT ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: token(),
    lambda: token(key=RSA_KEY, alg="RS384", kid="rsa-1"),
    lambda: token(nbf=int(time.time()) - 10, extra_claim="ignored"),
    lambda: token(key=OTHER_KEY, kid="other-1", headers={"jku": ROTATED_JKU}),
], ids=["ES384", "RS384", "extra claims and nbf", "jku on the issuer's allowlist"])
def test_valid_tokens_are_accepted(secure_app, jwks, make):
    assert call(secure_app, make()).status_code == 200


def _hs256_with_public_key() -> str:
    pem = EC_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": "ec-1", "typ": "JWT"}).encode())
    now = int(time.time())
    body = jwt.utils.base64url_encode(json.dumps({"iss": ISS, "aud": AUDIENCE, "exp": now + 300, "iat": now,
                                                  "jti": "x"}).encode())
    import hmac, hashlib  # noqa: E401 - forging the classic key-confusion token by hand
    signature = hmac.new(pem, header + b"." + body, hashlib.sha256).digest()
    return (header + b"." + body + b"." + jwt.utils.base64url_encode(signature)).decode()


def _alg_none() -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISS, "aud": AUDIENCE, "exp": now + 300, "iat": now, "jti": "n"},
                      None, algorithm="none", headers={"kid": "ec-1"})


def _tampered() -> str:
    header, payload, signature = token().split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["sub"] = "someone-else"
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return ".".join([header, forged, signature])


@pytest.mark.parametrize("make, check", [
    (lambda: None, "no bearer token"),
    (lambda: "not-a-jwt", "malformed token"),
    (lambda: token(exp=int(time.time()) - 3600), "expired"),
    (lambda: token(aud="https://other.example.org/cds-services/x"), "wrong audience"),
    (lambda: token(iss="https://evil.example.org"), "untrusted issuer"),
    (lambda: token(kid="nope"), "unknown kid"),
    (lambda: token(kid=None), "no kid"),
    (_tampered, "bad signature"),
    (_alg_none, "algorithm not allowed"),
    (_hs256_with_public_key, "algorithm not allowed"),
    (lambda: token(key=RSA_KEY, alg="RS384", kid="ec-1"), "algorithm does not match key"),
    (lambda: token(headers={"jku": "https://evil.example.org/jwks.json"}), "jku not allowed for issuer"),
    (lambda: token(nbf=int(time.time()) + 3600), "not yet valid (iat/nbf)"),
    (lambda: token(iat=int(time.time()) + 3600), "not yet valid (iat/nbf)"),
    (lambda: token(jti=None), "missing claim jti"),
    (lambda: token(key=OTHER_KEY), "bad signature"),
])
def test_bad_tokens_get_a_plain_401_and_the_log_names_the_check(secure_app, jwks, log_lines, make, check):
    bearer = make()
    response = call(secure_app, bearer)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json()["issue"][0]["details"]["text"] == "authentication failed"
    failures = [line for line in log_lines() if line["event"] == "auth_failed"]
    assert [line["check"] for line in failures] == [check]
    if bearer:
        assert bearer not in json.dumps(log_lines())


def test_replayed_token_is_refused(secure_app, jwks):
    bearer = token()
    assert call(secure_app, bearer).status_code == 200
    assert call(secure_app, bearer).status_code == 401


def test_replay_is_refused_by_another_worker_sharing_the_database(tmp_path, jwks):
    config = secure_config(tmp_path, log_level="WARNING")
    first, second = create_app(config), create_app(config)
    bearer = token()
    assert call(first, bearer).status_code == 200
    assert call(second, bearer).status_code == 401


def test_discovery_is_open_but_a_signed_discovery_is_checked(secure_app, jwks):
    client = secure_app.test_client()
    assert client.get("/cds-services").status_code == 200
    good = token(aud="http://localhost/cds-services")
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    bad = token(aud=AUDIENCE)
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {bad}"}).status_code == 401


def test_feedback_audience_is_the_feedback_url(secure_app, jwks):
    body = {"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-25T00:00:00Z",
                          "acceptedSuggestions": [{"id": "s-1"}]}]}
    path = PATIENT_VIEW + "/feedback"
    assert call(secure_app, token(aud="http://localhost" + path), path, body).status_code == 200
    assert call(secure_app, token(), path, body).status_code == 401


def test_cors_preflight_needs_no_token(secure_app):
    response = secure_app.test_client().options(PATIENT_VIEW, headers={
        "Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 200


@pytest.mark.parametrize("overrides, message", [
    ({"trusted_issuers": ""}, "names no issuer"),
    ({"public_base_url": ""}, "set CDS_PUBLIC_BASE_URL"),
    ({"fhir_allowed_servers": "*"}, "list the FHIR servers"),
])
def test_auth_on_refuses_to_start_on_settings_that_undo_it(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        create_app(secure_config(tmp_path, **overrides))


def test_any_fhir_server_is_fine_with_auth_when_every_issuer_lists_its_own(tmp_path):
    issuers = json.dumps({ISS: {"jwks_url": JWKS_URL, "fhir_servers": [FHIR]}})
    create_app(secure_config(tmp_path, fhir_allowed_servers="*", trusted_issuers=issuers))


def test_audience_comes_from_the_configured_url_not_the_host_header(secure_app, jwks):
    other = token(aud="http://staging.example.org" + PATH_HOOK)
    response = secure_app.test_client().post(PATH_HOOK, json=f.hook_request([f.tacrolimus(), f.magnesium(2.0)]),
                                             headers={"Authorization": f"Bearer {other}",
                                                      "Host": "staging.example.org"})
    assert response.status_code == 401


def test_long_lived_tokens_are_refused(secure_app, jwks, log_lines):
    now = int(time.time())
    assert call(secure_app, token(iat=now, exp=now + 10 * 365 * 86400)).status_code == 401
    assert [line["check"] for line in log_lines() if line["event"] == "auth_failed"] == ["lifetime too long"]


def test_issuer_that_is_not_a_string_is_a_401_not_a_crash(secure_app, jwks):
    now = int(time.time())
    claims = {"iss": [ISS], "aud": AUDIENCE, "exp": now + 300, "iat": now, "jti": "list-iss"}
    signed = jwt.api_jws.PyJWS().encode(json.dumps(claims).encode(), EC_KEY, algorithm="ES384",
                                        headers={"kid": "ec-1"})
    assert call(secure_app, signed).status_code == 401


def test_unknown_kid_refreshes_the_jwks_once_keys_rotate():
    clock = [0.0]
    documents = [{"keys": [public_jwk(EC_KEY, "old", "ES384")]},
                 {"keys": [public_jwk(EC_KEY, "old", "ES384"), public_jwk(OTHER_KEY, "new", "ES384")]}]
    fetched = []

    def fetch(url):
        fetched.append(url)
        return documents[min(len(fetched) - 1, 1)]

    cache = JwksCache(fetch, ttl=3600, min_refresh=30, clock=lambda: clock[0])
    assert cache.key(JWKS_URL, "old")["kid"] == "old"
    with pytest.raises(AuthFailure, match="unknown kid"):
        cache.key(JWKS_URL, "new")  # too soon after the last fetch: no refetch storm
    assert len(fetched) == 1
    clock[0] = 31
    assert cache.key(JWKS_URL, "new")["kid"] == "new"
    assert len(fetched) == 2
    clock[0] = 4000
    cache.key(JWKS_URL, "old")  # expired: fetched again
    assert len(fetched) == 3


# --- FHIR server allowlist ----------------------------------------------------------------------


def test_fhir_server_not_on_the_allowlist_is_never_called(log_lines):
    app = create_app({"fhir_allowed_servers": FHIR, "log_level": "INFO"})
    body = f.hook_request(prefetch={}, fhir_server="http://169.254.169.254/latest", token="secret")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        response = app.test_client().post(PATIENT_VIEW, json=body)
        assert len(mock.calls) == 0
    assert response.status_code == 412
    assert any(line["event"] == "fhir_server_refused" for line in log_lines())


def test_refused_fhir_server_still_answers_from_prefetch():
    app = create_app({"fhir_allowed_servers": FHIR, "log_level": "WARNING"})
    body = f.hook_request([f.tacrolimus(), f.magnesium(0.8)], fhir_server="https://elsewhere.example.com/fhir",
                          token="secret")
    del body["prefetch"]["conditions"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        response = app.test_client().post(PATIENT_VIEW, json=body)
        assert len(mock.calls) == 0
    assert response.status_code == 200
    assert response.get_json()["cards"][0]["indicator"] == "critical"


def test_allowed_fhir_server_path_prefix_is_exact():
    from cds_service.security.issuers import url_allowed

    assert url_allowed(FHIR + "/", [FHIR]) and url_allowed(FHIR, [FHIR + "/"])
    assert not url_allowed("https://fhir.example.org/r4-evil", [FHIR])
    assert not url_allowed("https://fhir.example.org.evil.com/r4", [FHIR])
    assert not url_allowed("http://fhir.example.org/r4", [FHIR])  # scheme matters
    assert not url_allowed("file:///etc/passwd", ["*"])
    assert not url_allowed("http://169.254.169.254/latest/meta-data", ["*"])  # cloud metadata
    assert url_allowed("http://169.254.169.254/fhir", ["http://169.254.169.254/fhir"])  # listed on purpose
    assert url_allowed("http://127.0.0.1:8081/fhir", ["*"])  # a local FHIR server in development


def test_issuer_fhir_servers_replace_the_global_list(tmp_path, jwks):
    issuers = json.dumps({ISS: {"jwks_url": JWKS_URL, "fhir_servers": [FHIR]}})
    app = create_app(secure_config(tmp_path, trusted_issuers=issuers, fhir_allowed_servers="*",
                                   log_level="WARNING"))
    jwks.add(responses.GET, f"{FHIR}/Patient/pat-1", json=f.patient())
    body = f.hook_request(prefetch={"patient": None}, fhir_server="https://other.example.org/fhir", token="t")
    response = call(app, token(), body=body)
    assert response.status_code == 412  # the other server was refused, nothing else to read
    assert not [c for c in jwks.calls if "other.example.org" in c.request.url]


# --- Hostile input ------------------------------------------------------------------------------


def test_too_many_prefetch_entries_is_413():
    app = create_app({"max_prefetch_entries": 10, "log_level": "WARNING"})
    body = f.hook_request([f.tacrolimus()] + [f.magnesium(2.0, days=d) for d in range(1, 12)])
    response = app.test_client().post(PATIENT_VIEW, json=body)
    assert response.status_code == 413
    assert "Bundle entries" in response.get_json()["issue"][0]["details"]["text"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30)
hook_shaped = st.fixed_dictionaries({
    "hook": st.sampled_from(["patient-view", "order-select", "x"]) | json_values,
    "hookInstance": st.text(max_size=5) | json_values,
    "context": st.fixed_dictionaries({"userId": st.text(max_size=5), "patientId": st.text(max_size=5)})
    | json_values,
}, optional={"prefetch": st.dictionaries(
    st.sampled_from(["medications", "magnesium", "labs", "x"]),
    json_values | st.fixed_dictionaries({
        "resourceType": st.sampled_from(["Bundle", "Observation", "OperationOutcome"]),
        "entry": json_values}), max_size=3),
             "fhirServer": st.text(max_size=10) | json_values})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values | hook_shaped)
def test_fuzz_any_json_gets_a_json_2xx_or_4xx(client, body):
    for path in (PATIENT_VIEW, "/cds-services/tacrolimus-magnesium-order-select"):
        response = client.post(path, data=json.dumps(body), content_type="application/json")
        assert 200 <= response.status_code < 500, response.get_data(as_text=True)
        assert isinstance(response.get_json(), dict)


def test_server_still_answers_after_hostile_bodies(client):
    for raw in (b"\xff\xfe\x00garbage", b"[" * 50000, b'{"hook": "' + b"a" * 100000 + b'"}', b"{}" * 1000):
        assert client.post(PATIENT_VIEW, data=raw, content_type="application/json").status_code == 400
    assert client.post(PATIENT_VIEW, json=f.hook_request([f.tacrolimus(), f.magnesium(2.0)])).status_code == 200


# --- Logs -------------------------------------------------------------------------------------


def test_logs_never_carry_patient_ids_values_or_tokens(log_lines):
    app = create_app({"log_level": "DEBUG"})
    patient_id = "PATIENT-7731-SECRET"
    body = f.hook_request([f.tacrolimus(), f.medication("omeprazole 20 mg"), f.magnesium(0.437, days=1)],
                          fhir_server="https://fhir.example.org/r4", token="TOKEN-SECRET-991")
    body["context"]["patientId"] = patient_id
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, f"{FHIR}/Encounter/none", status=500)
        response = app.test_client().post(PATIENT_VIEW, json=body)
        app.test_client().post(PATIENT_VIEW, json={**body, "hook": "bad"})
    assert response.status_code == 200
    text = json.dumps(log_lines())
    assert any(line.get("event") == "request" and line.get("status") == 200 for line in log_lines())
    for secret in (patient_id, "TOKEN-SECRET-991", "0.437", "omeprazole", "1970-01-01"):
        assert secret not in text


def test_hostile_jwks_document_is_a_401_not_a_crash(secure_app):
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, JWKS_URL, body="[" * 100000 + "]" * 100000, content_type="application/json")
        assert call(secure_app, token()).status_code == 401


# --- JWKS under attack (issue 11, finding 4) ----------------------------------------------------


def test_unknown_kid_flood_causes_one_fetch_not_one_each():
    fetched = []
    cache = JwksCache(lambda url: fetched.append(url) or JWKS)
    for _ in range(50):
        with pytest.raises(AuthFailure, match="unknown kid"):
            cache.key(JWKS_URL, str(uuid.uuid4()))
    assert len(fetched) == 1


def test_failing_jwks_is_remembered_and_retried_with_back_off():
    clock, fetched = [0.0], []

    def failing(url):
        fetched.append(url)
        raise AuthFailure("jwks unavailable (http)")

    cache = JwksCache(failing, clock=lambda: clock[0], backoff=5, max_backoff=60)
    for _ in range(50):
        with pytest.raises(AuthFailure, match="jwks unavailable"):
            cache.key(JWKS_URL, "ec-1")
    assert len(fetched) == 1
    clock[0] = 6  # past the first back-off (5 s): one retry, then 10 s
    with pytest.raises(AuthFailure):
        cache.key(JWKS_URL, "ec-1")
    clock[0] = 12
    with pytest.raises(AuthFailure):
        cache.key(JWKS_URL, "ec-1")
    assert len(fetched) == 2


def test_last_good_keys_are_served_while_a_refresh_fails():
    clock, documents = [0.0], [JWKS]

    def fetch(url):
        if not documents:
            raise AuthFailure("jwks unavailable (timeout)")
        return documents.pop()

    cache = JwksCache(fetch, ttl=3600, clock=lambda: clock[0])
    assert cache.key(JWKS_URL, "ec-1")["kid"] == "ec-1"
    clock[0] = 4000  # expired, and the JWKS server is down
    assert cache.key(JWKS_URL, "ec-1")["kid"] == "ec-1"


def test_a_slow_jwks_server_stalls_only_its_own_url():
    import threading

    release = threading.Event()

    def fetch(url):
        if url == "https://slow.example/jwks":
            release.wait(30)
            raise AuthFailure("jwks unavailable (timeout)")
        return JWKS

    cache = JwksCache(fetch, wait=30)
    slow = threading.Thread(target=lambda: pytest.raises(AuthFailure, cache.key, "https://slow.example/jwks", "k"))
    slow.start()
    try:
        answered = []
        other = threading.Thread(target=lambda: answered.append(cache.key(JWKS_URL, "ec-1")))
        other.start()
        other.join(timeout=20)  # a hang detector, not a timing assertion
        assert answered and answered[0]["kid"] == "ec-1"
        assert slow.is_alive()  # the slow fetch was still holding its own lock meanwhile
    finally:
        release.set()
        slow.join()


def test_jwks_larger_than_the_cap_is_refused(secure_app):
    big = {"keys": JWKS["keys"] + [{"kid": f"pad-{n}", "kty": "EC", "x": "A" * 1000} for n in range(6000)]}
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, JWKS_URL, json=big)
        assert call(secure_app, token()).status_code == 401


# --- issue 11, low findings -----------------------------------------------------------------------


def _signed_claims(claims: dict) -> str:
    return jwt.api_jws.PyJWS().encode(json.dumps(claims).encode(), EC_KEY, algorithm="ES384",
                                      headers={"kid": "ec-1"})


@pytest.mark.parametrize("claim", ["iat", "exp"])
def test_numeric_string_iat_or_exp_is_a_401_not_a_500(secure_app, jwks, log_lines, claim):
    now = int(time.time())
    claims = {"iss": ISS, "aud": AUDIENCE, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    claims[claim] = str(claims[claim])
    assert call(secure_app, _signed_claims(claims)).status_code == 401
    assert [line["check"] for line in log_lines() if line["event"] == "auth_failed"] == [f"{claim} is not a number"]


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_bearer_scheme_is_case_insensitive(secure_app, jwks, scheme):
    response = secure_app.test_client().post(PATIENT_VIEW, json=f.hook_request([f.tacrolimus(), f.magnesium(2.0)]),
                                             headers={"Authorization": f"{scheme} {token()}"})
    assert response.status_code == 200


def test_the_issuer_of_an_authenticated_call_is_logged_and_no_token(secure_app, jwks, log_lines):
    bearer = token()
    assert call(secure_app, bearer).status_code == 200
    requests_logged = [line for line in log_lines() if line["event"] == "request"]
    assert requests_logged[-1]["issuer"] == ISS
    assert bearer not in json.dumps(log_lines())


@pytest.mark.parametrize("host, status", [
    ("localhost", 200), ("localhost:8080", 200), ("127.0.0.1:8080", 200), ("[::1]:8080", 200),
    ("evil.example.org", 400), ("evil.example.org:80", 400), ("localhost.evil.example", 400),
])
def test_host_header_must_be_allowed_when_no_public_base_url_is_set(host, status):
    app = create_app({"log_level": "WARNING"})
    response = app.test_client().post(PATIENT_VIEW, json=f.hook_request([f.tacrolimus(), f.magnesium(0.4)]),
                                      headers={"Host": host})
    assert response.status_code == status
    assert response.is_json
    if status == 200:  # the links point at the allowed host, never at one the caller chose
        assert all(c["source"]["url"].startswith(f"http://{host}/") for c in response.get_json()["cards"])
    else:
        assert response.get_json()["resourceType"] == "OperationOutcome"
    assert app.test_client().get("/healthz", headers={"Host": host}).status_code == 200


def test_configured_hosts_replace_the_loopback_default():
    app = create_app({"log_level": "WARNING", "allowed_hosts": "cds.hospital.example"})
    assert app.test_client().get("/cds-services", headers={"Host": "cds.hospital.example"}).status_code == 200
    assert app.test_client().get("/cds-services", headers={"Host": "localhost"}).status_code == 400


def test_fhir_failure_class_is_logged_without_path_or_token(log_lines):
    app = create_app({"fhir_allowed_servers": FHIR, "log_level": "INFO"})
    body = f.hook_request([f.tacrolimus(), f.magnesium(0.8)], fhir_server=FHIR, token="TOKEN-XYZ")
    del body["prefetch"]["conditions"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, re.compile(re.escape(FHIR) + "/Condition.*"), status=503)
        assert app.test_client().post(PATIENT_VIEW, json=body).status_code == 200
    failures = [line for line in log_lines() if line["event"] == "fhir_fetch_failed"]
    assert failures and failures[0]["failure"] == "http" and failures[0]["status"] == 503
    assert failures[0]["resource_type"] == "Condition"
    text = json.dumps(log_lines())
    assert "TOKEN-XYZ" not in text and "pat-1" not in text and "patient=" not in text


def test_sqlite_side_files_are_git_ignored():
    from fnmatch import fnmatch
    from pathlib import Path

    gitignore = Path(__file__).resolve().parent.parent / ".gitignore"
    patterns = [line.strip() for line in gitignore.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for name in ("cds-state.sqlite3", "cds-state.sqlite3-wal", "cds-state.sqlite3-shm"):
        assert any(fnmatch(name, pattern) for pattern in patterns), name
