"""The README's "try it in the CDS Hooks sandbox with authentication" holds: its settings start
the service, a token shaped like the sandbox's is accepted, and the two traps it describes (the
token's jku wins over jwks_url; localhost is not 127.0.0.1 as an audience) fail as it says.

The token is made here with a key of our own, shaped like the sandbox's (cds-hooks/sandbox,
src/retrieve-data-helpers/jwt-generator.js: ES256, iss and jku of sandbox.cds-hooks.org, aud the
URL called)."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service import create_app
from cds_service.config import Settings
from cds_service.logs import LOGGER_NAME
from cds_service.testing import factories as f

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = f"{SANDBOX}/.well-known/jwks.json"
SERVICE_PATH = "/cds-services/tacrolimus-magnesium-patient-view"
KEY = ec.generate_private_key(ec.SECP256R1())
KID = "sandbox-like-1"


def readme_environment() -> dict[str, str]:
    """The `export` lines of the README's sandbox section, as the shell would set them."""
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Try it in the CDS Hooks sandbox with authentication", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    env = {}
    for name, value in re.findall(r"^export (\w+)=('(?:[^']*)'|\S+)", block, re.M):
        env[name] = value.strip("'")
    return env


def sandbox_token(aud: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": SANDBOX, "sub": "sandbox-client", "aud": aud, "exp": now + 300,
                       "iat": now, "jti": str(uuid.uuid4())},
                      KEY, algorithm="ES256", headers={"kid": KID, "jku": SANDBOX_JKU})


@pytest.fixture
def sandbox_keys():
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(KEY.public_key()))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, SANDBOX_JKU, json={"keys": [{**jwk, "kid": KID, "alg": "ES256", "use": "sig"}]})
        yield mock


def app_with(tmp_path, monkeypatch, **changes: str):
    for name, value in {**readme_environment(), **changes}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CDS_STATE_DB", str(tmp_path / "state.sqlite3"))
    return create_app({"log_level": "INFO"})


def call(app, token: str):
    body = f.hook_request([f.tacrolimus(), f.magnesium(2.0)])
    return app.test_client().post(SERVICE_PATH, json=body, headers={"Authorization": f"Bearer {token}"})


def test_the_readme_settings_are_valid():
    env = readme_environment()
    assert set(env) == {"CDS_AUTH_REQUIRED", "CDS_PUBLIC_BASE_URL", "CDS_FHIR_ALLOWED_SERVERS",
                        "CDS_TRUSTED_ISSUERS"}
    assert Settings.from_env(env).auth_required


def test_a_sandbox_token_for_the_registered_url_is_accepted(tmp_path, monkeypatch, sandbox_keys):
    app = app_with(tmp_path, monkeypatch)
    assert call(app, sandbox_token("http://localhost:8080" + SERVICE_PATH)).status_code == 200


def failed_check(caplog) -> list[str]:
    return [r.fields.get("check") for r in caplog.records
            if r.name == LOGGER_NAME and getattr(r, "fields", {}).get("check")]


def test_the_tokens_jku_wins_over_jwks_url(tmp_path, monkeypatch, sandbox_keys, caplog):
    issuers = json.dumps({SANDBOX: {"jwks_url": SANDBOX_JKU}})  # same URL, but not listed as jku
    app = app_with(tmp_path, monkeypatch, CDS_TRUSTED_ISSUERS=issuers)
    caplog.set_level("INFO", logger=LOGGER_NAME)
    assert call(app, sandbox_token("http://localhost:8080" + SERVICE_PATH)).status_code == 401
    assert failed_check(caplog) == ["jku not allowed for issuer"]


def test_localhost_and_127_0_0_1_are_different_audiences(tmp_path, monkeypatch, sandbox_keys, caplog):
    app = app_with(tmp_path, monkeypatch)
    caplog.set_level("INFO", logger=LOGGER_NAME)
    assert call(app, sandbox_token("http://127.0.0.1:8080" + SERVICE_PATH)).status_code == 401
    assert failed_check(caplog) == ["wrong audience"]
