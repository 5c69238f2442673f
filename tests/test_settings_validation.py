"""Settings are checked at start-up: each message names the variable, the value and what was
expected, and the server stops without a traceback (CLI and gunicorn alike)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cds_service import create_app
from cds_service.config import (JSON_SETTINGS, Settings, SettingsError, json_setting,
                                threshold_variable)
from cds_service.guideline.thresholds import DEFAULT_THRESHOLDS, THRESHOLD_UNITS

ROOT = Path(__file__).resolve().parent.parent
ISSUER = "https://ehr.example.org"
JWKS = "https://ehr.example.org/.well-known/jwks.json"
SECURE = {"CDS_AUTH_REQUIRED": "true", "CDS_PUBLIC_BASE_URL": "https://cds.example.org",
          "CDS_FHIR_ALLOWED_SERVERS": "https://ehr.example.org/fhir",
          "CDS_TRUSTED_ISSUERS": json.dumps({ISSUER: {"jwks_url": JWKS}})}


def error_of(env: dict) -> str:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    return str(raised.value)


@pytest.mark.parametrize("env, message", [
    # Types: named variable, the value as given, what was expected (with the unit)
    ({"CDS_GUIDELINE_SEVERE_BELOW": "low"}, "CDS_GUIDELINE_SEVERE_BELOW='low': expected a number (mEq/L)"),
    ({"CDS_GUIDELINE_ROUTINE_INTERVAL_DAYS": "6 weeks"},
     "CDS_GUIDELINE_ROUTINE_INTERVAL_DAYS='6 weeks': expected a whole number (days)"),
    ({"CDS_GUIDELINE_ROUTINE_INTERVAL_DAYS": "42.5"}, "expected a whole number (days)"),
    ({"CDS_GUIDELINE_TACROLIMUS_HIGH_ABOVE": "nan"}, "'nan': expected a number (ng/mL)"),
    ({"CDS_GUIDELINE_TACROLIMUS_HIGH_ABOVE": "inf"}, "'inf': expected a number (ng/mL)"),
    ({"CDS_FHIR_DEADLINE": "soon"}, "CDS_FHIR_DEADLINE='soon': expected a number"),
    ({"CDS_MAX_BODY_BYTES": "5MB"}, "CDS_MAX_BODY_BYTES='5MB': expected a whole number"),
    ({"CDS_AUTH_REQUIRED": "maybe"}, "CDS_AUTH_REQUIRED='maybe': expected true or false"),
    ({"CDS_GUIDELINE_SEVER_BELOW": "1"},
     "unknown guideline setting CDS_GUIDELINE_SEVER_BELOW: did you mean CDS_GUIDELINE_SEVERE_BELOW?"),
    # Ranges
    ({"CDS_MAX_BODY_BYTES": "0"}, "CDS_MAX_BODY_BYTES=0: expected a number >= 1"),
    ({"CDS_FHIR_DEADLINE": "-1"}, "CDS_FHIR_DEADLINE=-1.0: expected a number >= 0.001"),
    ({"CDS_JWT_LEEWAY_SECONDS": "-5"}, "CDS_JWT_LEEWAY_SECONDS=-5.0: expected a number >= 0"),
    ({"CDS_GUIDELINE_SEVERE_BELOW": "0"}, "CDS_GUIDELINE_SEVERE_BELOW=0.0 mEq/L: expected a value above 0"),
    ({"CDS_GUIDELINE_ROUTINE_INTERVAL_DAYS": "0"},
     "CDS_GUIDELINE_ROUTINE_INTERVAL_DAYS=0 days: expected a value of at least 1"),
    ({"CDS_GUIDELINE_PERSISTENT_MIN_RESULTS": "1"},
     "CDS_GUIDELINE_PERSISTENT_MIN_RESULTS=1 results: expected a value of at least 2"),
    ({"CDS_GUIDELINE_EGFR_RISE_FRACTION": "20"},
     "CDS_GUIDELINE_EGFR_RISE_FRACTION=20.0 fraction of the earlier eGFR: expected at most 1.0"),
    ({"CDS_GUIDELINE_FEMG_RENAL_WASTING_ABOVE": "0"}, "expected a value above 0"),
    # Order of the bands (section 3) and of the intervals (section 4)
    ({"CDS_GUIDELINE_SEVERE_BELOW": "1.45"},
     "CDS_GUIDELINE_SEVERE_BELOW=1.45 mEq/L and CDS_GUIDELINE_LOW_AT_OR_BELOW=1.4 mEq/L: expected "
     "CDS_GUIDELINE_SEVERE_BELOW < CDS_GUIDELINE_LOW_AT_OR_BELOW"),
    ({"CDS_GUIDELINE_SEVERE_BELOW": "1.4"}, "expected CDS_GUIDELINE_SEVERE_BELOW < CDS_GUIDELINE_LOW_AT_OR_BELOW"),
    ({"CDS_GUIDELINE_TARGET_ABOVE": "1.4"},
     "CDS_GUIDELINE_LOW_AT_OR_BELOW=1.4 mEq/L and CDS_GUIDELINE_TARGET_ABOVE=1.4 mEq/L: expected "
     "CDS_GUIDELINE_LOW_AT_OR_BELOW < CDS_GUIDELINE_TARGET_ABOVE"),
    ({"CDS_GUIDELINE_EARLY_INTERVAL_DAYS": "60"},
     "expected CDS_GUIDELINE_EARLY_INTERVAL_DAYS <= CDS_GUIDELINE_ROUTINE_INTERVAL_DAYS"),
    ({"CDS_GUIDELINE_INPATIENT_INTERVAL_DAYS": "43"},
     "expected CDS_GUIDELINE_INPATIENT_INTERVAL_DAYS <= CDS_GUIDELINE_ROUTINE_INTERVAL_DAYS"),
    # Formats
    ({"CDS_CORS_ORIGINS": "https://sandbox.cds-hooks.org/"},
     "CDS_CORS_ORIGINS: 'https://sandbox.cds-hooks.org/' is not an origin: expected * or comma-separated origins"),
    ({"CDS_CORS_ORIGINS": "sandbox.cds-hooks.org"}, "'sandbox.cds-hooks.org' is not an origin"),
    ({"CDS_PUBLIC_BASE_URL": "cds.example.org"},
     "CDS_PUBLIC_BASE_URL='cds.example.org': expected this service's base URL as clients call it"),
    ({"CDS_FHIR_ALLOWED_SERVERS": "https://ehr.example.org/fhir, ehr2/fhir"},
     "CDS_FHIR_ALLOWED_SERVERS: 'ehr2/fhir' is not a URL: expected * or comma-separated FHIR base URLs"),
    ({"CDS_LOG_LEVEL": "verbose"}, "CDS_LOG_LEVEL='verbose': expected DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    ({"CDS_SERUM_MG_ORDER_LOINC": "2601"}, "CDS_SERUM_MG_ORDER_LOINC='2601': expected one of 19123-9"),
])
def test_a_bad_setting_names_variable_value_and_expectation(env, message):
    error = error_of(env)
    assert error.startswith("configuration error: ") and message in error


@pytest.mark.parametrize("issuers, message", [
    ("{", "CDS_TRUSTED_ISSUERS is not valid JSON"),
    ("[]", "CDS_TRUSTED_ISSUERS: [] is not of type 'object'; expected a JSON object keyed by issuer"),
    # A string where a list is expected is an error, never split into characters.
    (json.dumps({ISSUER: {"jku": JWKS}}),
     f'CDS_TRUSTED_ISSUERS["{ISSUER}"]["jku"]: \'{JWKS}\' is not of type \'array\'; expected a list of JWKS URLs'),
    (json.dumps({ISSUER: {"jwks_url": JWKS, "fhir_servers": "https://ehr.example.org/fhir"}}),
     f'CDS_TRUSTED_ISSUERS["{ISSUER}"]["fhir_servers"]: \'https://ehr.example.org/fhir\' is not of type \'array\''),
    (json.dumps({ISSUER: {"jwks_uri": JWKS}}), "('jwks_uri' was unexpected)"),
    (json.dumps({ISSUER: {}}), f'CDS_TRUSTED_ISSUERS["{ISSUER}"]: {{}} is not valid under any of the given schemas; '
                               'expected an issuer object with "jwks_url" or a non-empty "jku" list'),
    (json.dumps({ISSUER: {"jku": []}}), f'CDS_TRUSTED_ISSUERS["{ISSUER}"]["jku"]: [] should be non-empty'),
    (json.dumps({ISSUER: {"jwks_url": "ehr.example.org/jwks"}}), "does not match"),
    (json.dumps({ISSUER: "https://ehr.example.org/jwks"}), "is not of type 'object'"),
])
def test_trusted_issuers_are_checked_against_their_schema(issuers, message):
    assert message in error_of({"CDS_TRUSTED_ISSUERS": issuers})


@pytest.mark.parametrize("missing, message", [
    ("CDS_TRUSTED_ISSUERS", "CDS_AUTH_REQUIRED=true but CDS_TRUSTED_ISSUERS names no issuer: expected a JSON object"),
    ("CDS_PUBLIC_BASE_URL", "CDS_AUTH_REQUIRED=true but CDS_PUBLIC_BASE_URL is not set"),
    ("CDS_FHIR_ALLOWED_SERVERS", "CDS_AUTH_REQUIRED=true but CDS_FHIR_ALLOWED_SERVERS is *"),
])
def test_authentication_without_what_it_needs_is_a_clear_error(missing, message):
    env = {k: v for k, v in SECURE.items() if k != missing}
    assert message in error_of(env)
    assert Settings.from_env(SECURE).auth_required


def test_authentication_needs_a_writable_state_file_directory(tmp_path):
    env = {**SECURE, "CDS_STATE_DB": str(tmp_path / "missing" / "state.sqlite3")}
    assert f"CDS_STATE_DB='{tmp_path}/missing/state.sqlite3': expected a file in an existing, writable directory" \
        in error_of(env)
    assert Settings.from_env({**SECURE, "CDS_STATE_DB": str(tmp_path / "state.sqlite3")}).auth_required


def test_empty_issuer_object_with_auth_is_the_same_error():
    assert "names no issuer" in error_of({**SECURE, "CDS_TRUSTED_ISSUERS": "{}"})


def test_the_app_factory_checks_overrides_too():
    with pytest.raises(SettingsError, match="CDS_MAX_BODY_BYTES=-1: expected a number >= 1"):
        create_app({"max_body_bytes": -1})
    with pytest.raises(SettingsError, match="expected CDS_GUIDELINE_SEVERE_BELOW < CDS_GUIDELINE_LOW_AT_OR_BELOW"):
        create_app({"thresholds": DEFAULT_THRESHOLDS.__class__(severe_below=2.0)})


def test_valid_settings_are_accepted():
    settings = Settings.from_env({"CDS_GUIDELINE_SEVERE_BELOW": " 0.9 ", "CDS_AUTH_REQUIRED": "yes",
                                  "CDS_CORS_ORIGINS": "https://sandbox.cds-hooks.org, http://localhost:3000",
                                  **{k: v for k, v in SECURE.items() if k != "CDS_AUTH_REQUIRED"}})
    assert settings.thresholds.severe_below == 0.9 and settings.auth_required


def test_every_threshold_has_a_unit():
    """The unit appears in error messages and on the rule pages; a new threshold needs one."""
    names = set(DEFAULT_THRESHOLDS.__dataclass_fields__)
    assert names <= set(THRESHOLD_UNITS), names - set(THRESHOLD_UNITS)


def test_json_setting_is_a_reusable_mechanism():
    """How another JSON setting is declared: one call next to its Settings field."""
    setting = json_setting("cors_origins", {"description": "a list of origins", "type": "array",
                                            "items": {"type": "string"}})
    try:
        assert setting.parse('["https://a.example"]') == ["https://a.example"]
        assert setting.parse("") is None
        with pytest.raises(SettingsError, match=r'CDS_CORS_ORIGINS\[1\]: 2 is not of type'):
            setting.parse('["https://a.example", 2]')
        with pytest.raises(SettingsError, match="CDS_CORS_ORIGINS: 'https://a.example' is not of type "
                                                "'array'; expected a list of origins"):
            setting.parse('"https://a.example"')
        with pytest.raises(KeyError):
            json_setting("no_such_setting", {})
    finally:
        del JSON_SETTINGS["cors_origins"]


def test_threshold_variable_names():
    assert threshold_variable("severe_below") == "CDS_GUIDELINE_SEVERE_BELOW"


def test_gunicorn_stops_on_a_bad_setting_with_one_line_and_no_traceback():
    """The Procfile's app factory path: gunicorn prints the message once per worker and halts
    (exit 4, "App failed to load") instead of restarting workers that fail the same way."""
    env = {**os.environ, "CDS_GUIDELINE_SEVERE_BELOW": "low",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(["gunicorn", "--bind", "127.0.0.1:0", "--workers", "1",
                             "cds_service:create_app()"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert ("configuration error: CDS_GUIDELINE_SEVERE_BELOW='low': expected a number (mEq/L)\n"
            in result.stderr)
