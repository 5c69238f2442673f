"""Configuration from CDS_* environment variables, including guideline thresholds."""

from __future__ import annotations

import pytest

from cds_service import create_app
from cds_service.config import Settings

from cds_service.testing import factories as f
from .conftest import PATIENT_VIEW


def test_defaults_serve_out_of_the_box():
    settings = Settings.from_env({})
    assert settings.max_body_bytes == 5 * 1024 * 1024
    assert settings.thresholds.severe_below == 1.0 and settings.thresholds.routine_interval_days == 42


def test_settings_and_thresholds_from_environment():
    settings = Settings.from_env({"CDS_FHIR_DEADLINE": "0.8", "CDS_MAX_BODY_BYTES": "1000",
                                  "CDS_GUIDELINE_SEVERE_BELOW": "0.9",
                                  "CDS_GUIDELINE_ROUTINE_INTERVAL_DAYS": "28"})
    assert settings.fhir_deadline == 0.8 and settings.max_body_bytes == 1000
    assert settings.thresholds.severe_below == 0.9
    assert settings.thresholds.routine_interval_days == 28
    assert isinstance(settings.thresholds.routine_interval_days, int)


@pytest.mark.parametrize("env, message", [
    ({"CDS_GUIDELINE_SEVER_BELOW": "1"}, "unknown guideline setting CDS_GUIDELINE_SEVER_BELOW"),
    ({"CDS_FHIR_DEADLINE": "soon"}, "CDS_FHIR_DEADLINE='soon': expected a number"),
    ({"CDS_GUIDELINE_SEVERE_BELOW": "low"}, r"CDS_GUIDELINE_SEVERE_BELOW='low': expected a number \(mEq/L\)"),
])
def test_bad_configuration_fails_at_start_with_a_clear_message(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_unknown_config_key_is_refused():
    with pytest.raises(ValueError, match="unknown settings: nope"):
        create_app({"nope": 1})


def test_hospital_threshold_changes_the_card(monkeypatch):
    monkeypatch.setenv("CDS_GUIDELINE_SEVERE_BELOW", "1.3")
    app = create_app({"log_level": "WARNING"})
    body = f.hook_request([f.tacrolimus(), f.magnesium(1.2, days=1)])
    cards = app.test_client().post(PATIENT_VIEW, json=body).get_json()["cards"]
    assert cards[0]["indicator"] == "critical"  # 1.2 is severe under this hospital's threshold
