"""`cds-service` as a first-time user meets it: every mistake is one clear line and an exit code
(2 for a wrong command line, 1 for input that cannot be used), never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cds_service import cli

ROOT = Path(__file__).resolve().parent.parent
SEVERE_REQUEST = ROOT / "fhir_fixtures" / "requests" / "severe.patient-view.json"
SEVERE_BUNDLE = ROOT / "fhir_fixtures" / "patients" / "severe.json"
ORDER_REQUEST = ROOT / "fhir_fixtures" / "requests" / "order-rifampin.order-sign.json"
NOW = "2026-11-25T12:00:00Z"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def run_process(*argv: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The installed entry point as a shell runs it (a fresh interpreter, real exit code)."""
    return subprocess.run([sys.executable, "-m", "cds_service.cli", *argv], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def bundle(*resources: dict) -> str:
    return json.dumps({"resourceType": "Bundle", "type": "collection",
                       "entry": [{"resource": r} for r in resources]})


# --------------------------------------------------------------------------------------------
# Usage errors: exit 2, with the usage line


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "no-such-file.json"], "File 'no-such-file.json' does not exist"),
    (["evaluate", "tests"], "File 'tests' is a directory"),
    (["evaluate", str(SEVERE_REQUEST), "--now", "yesterday"],
     "'yesterday' is not an ISO 8601 date-time, e.g. 2026-11-25T12:00:00Z"),
    (["evaluate", str(SEVERE_REQUEST), "--now", "0001-01-01"], "not a plausible evaluation time"),
    (["evaluate", str(SEVERE_REQUEST), "--service", "magnesium"],
     "no service 'magnesium'; the services are: tacrolimus-magnesium-patient-view"),
    (["evaluate"], "Missing argument 'FILE'"),
    (["evaluate", str(SEVERE_REQUEST), "--verbose"], "--verbose"),
    (["serve", "--port", "http"], "'http' is not a valid integer"),
    (["serve", "--port", "70000"], "70000 is not in the range 1<=x<=65535"),
    (["nope"], "No such command 'nope'"),
])
def test_usage_errors_exit_2_with_the_usage_line(capsys, monkeypatch, argv, message):
    monkeypatch.chdir(ROOT)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and "Usage: cds-service" in err and out == ""


def test_no_command_shows_the_help_and_exits_2(capsys):
    code, out, err = run(capsys)
    assert code == 2 and "Commands:" in out + err


# --------------------------------------------------------------------------------------------
# Bad input: exit 1, one line naming the file and what was expected


@pytest.mark.parametrize("content, message", [
    ("", "empty.json is empty; expected a CDS Hooks request or a FHIR Bundle"),
    ("  \n", "empty.json is empty"),
    ('{"hook": "patient-view",', "empty.json is not valid JSON: unexpected end of data (line 1, column 25)"),
    ("{'hook': 'patient-view'}", "empty.json is not valid JSON"),
    ('{"hook": NaN}', "empty.json is not valid JSON"),
    ("[" * 2000 + "]" * 2000, "empty.json nests JSON too deeply"),
    (b"\xff\xfe{\x00}\x00", "empty.json is not UTF-8 text"),
    ("[]", "empty.json holds a JSON array; expected a JSON object: a CDS Hooks request or a FHIR Bundle"),
    ('"patient-view"', "holds a JSON string; expected a JSON object"),
    ("42", "holds a JSON number"),
    ("null", "holds JSON null"),
    ('{"resourceType": "Patient", "id": "p1"}',
     "empty.json is a FHIR Patient resource; expected a CDS Hooks request"),
    ('{"context": {}}', "is neither a CDS Hooks request (no \"hook\") nor a FHIR Bundle"),
    ('{"hook": "encounter-discharge", "hookInstance": "x", "context": {}}',
     "empty.json; the hooks answered are: order-select, order-sign, patient-view"),
    ('{"hook": "patient-view", "hookInstance": "x", "context": {}}',
     "empty.json cannot be evaluated by tacrolimus-magnesium-patient-view:"),
])
def test_unusable_files_exit_1_naming_the_file(capsys, tmp_path, content, message):
    path = write(tmp_path, "empty.json", content)
    code, out, err = run(capsys, "evaluate", str(path), "--now", NOW)
    assert code == 1
    assert err.startswith("cds-service: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and out == ""


def test_a_utf8_byte_order_mark_is_accepted(capsys, tmp_path):
    path = write(tmp_path, "bom.json", b"\xef\xbb\xbf" + SEVERE_REQUEST.read_bytes())
    code, out, _ = run(capsys, "evaluate", str(path), "--now", NOW)
    assert code == 0 and "[CRITICAL]" in out


@pytest.mark.parametrize("resources, message", [
    ([], "has no Patient resource; a patient Bundle must hold the Patient"),
    ([{"resourceType": "MedicationRequest", "id": "m1", "status": "active",
       "subject": {"reference": "Patient/pat-1"}}], "has no Patient resource"),
    ([{"resourceType": "Patient"}], "record.json has no id; its resources refer to it by id"),
    ([{"resourceType": "Patient", "id": "a"}, {"resourceType": "Patient", "id": "b"}],
     "holds 2 Patient resources; give one patient's record"),
])
def test_a_bundle_without_one_identified_patient_is_refused(capsys, tmp_path, resources, message):
    """Before, the patient id became "unknown", every resource was dropped as someone else's,
    and "No cards." with exit 0 read as a clean bill of health."""
    path = write(tmp_path, "record.json", bundle(*resources))
    code, out, err = run(capsys, "evaluate", str(path), "--now", NOW)
    assert code == 1 and message in err and "No cards" not in out


def test_a_bundle_with_no_entry_list_is_refused(capsys, tmp_path):
    path = write(tmp_path, "record.json", '{"resourceType": "Bundle", "entry": {"resource": 1}}')
    code, _, err = run(capsys, "evaluate", str(path), "--now", NOW)
    assert code == 1 and "has no Patient resource" in err


def test_a_bundle_is_not_evaluated_as_an_order_hook(capsys):
    code, _, err = run(capsys, "evaluate", str(SEVERE_BUNDLE), "--now", NOW,
                       "--service", "tacrolimus-magnesium-order-sign")
    assert code == 1 and "is a patient Bundle, which is evaluated as patient-view" in err


def test_a_request_for_another_hook_than_the_service_is_refused(capsys):
    code, _, err = run(capsys, "evaluate", str(ORDER_REQUEST), "--now", NOW,
                       "--service", "tacrolimus-magnesium-patient-view")
    assert code == 1 and "cannot be evaluated by tacrolimus-magnesium-patient-view" in err


def test_a_bad_setting_is_a_configuration_error(capsys, monkeypatch):
    monkeypatch.setenv("CDS_GUIDELINE_SEVERE_BELOW", "low")
    code, out, err = run(capsys, "evaluate", str(SEVERE_REQUEST), "--now", NOW)
    assert code == 1 and out == ""
    assert err == "cds-service: configuration error: CDS_GUIDELINE_SEVERE_BELOW='low': expected a number (mEq/L)\n"


# --------------------------------------------------------------------------------------------
# What works


def test_offline_evaluate_prints_no_server_security_warnings(capsys):
    """Authentication and the FHIR server list protect a server; a file on the command line
    has neither, so their production warnings would only alarm."""
    code, out, err = run(capsys, "evaluate", str(SEVERE_REQUEST), "--now", NOW)
    assert code == 0 and out.startswith("[CRITICAL] Severe low magnesium: Mg 0.9 mEq/L")
    assert err == ""


def test_offline_evaluate_ignores_authentication_settings(capsys, monkeypatch, tmp_path):
    """With CDS_AUTH_REQUIRED the server needs issuers; a local evaluation is not a client call
    (and creates no state file)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CDS_AUTH_REQUIRED", "true")
    monkeypatch.setenv("CDS_TRUSTED_ISSUERS", '{"https://ehr.example": {"jwks_url": "https://ehr.example/jwks"}}')
    monkeypatch.setenv("CDS_PUBLIC_BASE_URL", "https://cds.example")
    monkeypatch.setenv("CDS_FHIR_ALLOWED_SERVERS", "https://ehr.example/fhir")
    code, out, err = run(capsys, "evaluate", str(SEVERE_REQUEST), "--now", NOW, "--json")
    assert code == 0 and err == "" and list(tmp_path.iterdir()) == []
    assert json.loads(out)["cards"][0]["source"]["url"].startswith("https://cds.example/docs/rules/")


def test_now_without_offset_is_utc_and_a_date_is_accepted(capsys):
    assert run(capsys, "evaluate", str(SEVERE_REQUEST), "--now", "2026-11-25T12:00:00")[0] == 0
    assert run(capsys, "evaluate", str(SEVERE_REQUEST), "--now", "2026-11-25")[0] == 0


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["evaluate", "--help"], ["serve", "--help"]])
def test_help_has_examples(capsys, argv):
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "Examples:" in out and "cds-service " in out.split("Examples:")[1]


# --------------------------------------------------------------------------------------------
# As a shell runs it: real exit codes, nothing but the one line on stderr


def test_process_missing_file():
    result = run_process("evaluate", "missing.json")
    assert result.returncode == 2 and "File 'missing.json' does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_process_invalid_json_from_stdin():
    result = run_process("evaluate", "-", stdin="{not json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("cds-service: error: stdin is not valid JSON")


def test_process_request_from_stdin():
    result = run_process("evaluate", "-", "--now", NOW, stdin=SEVERE_REQUEST.read_text())
    assert result.returncode == 0 and result.stdout.startswith("[CRITICAL]") and result.stderr == ""


def test_process_bad_now():
    result = run_process("evaluate", str(SEVERE_REQUEST), "--now", "yesterday")
    assert result.returncode == 2 and "'yesterday' is not an ISO 8601 date-time" in result.stderr
    assert "Traceback" not in result.stderr


def test_process_serve_with_a_bad_setting_does_not_start():
    result = run_process("serve", "--port", "1", env={"CDS_GUIDELINE_SEVERE_BELOW": "low"})
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("cds-service: configuration error: CDS_GUIDELINE_SEVERE_BELOW='low': "
                             "expected a number (mEq/L)\n")


def test_process_serve_on_a_port_in_use():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_process("serve", "--port", str(port), env={"CDS_LOG_LEVEL": "ERROR"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert str(port) in result.stderr and "in use" in result.stderr  # werkzeug's own message
