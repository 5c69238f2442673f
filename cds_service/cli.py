"""The ``cds-service`` command: ``serve`` runs the service, ``evaluate`` prints cards offline,
``report`` prints the card analytics from the state store.

Exit codes: 0 done; 1 bad input (a file, or a CDS_* setting, that cannot be used); 2 usage
(a wrong command line). Every error is one line on stderr, never a traceback.

Adding a subcommand: write a function decorated with ``@cli.command()`` (see ``evaluate``);
raise ``BadInput`` for input that cannot be used and let click report usage errors (its
``click.Path``, ``click.Choice``, ``click.BadParameter`` exit with 2). ``main`` does the rest.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import click

from .config import SettingsError

PROG = "cds-service"


class BadInput(click.ClickException):
    """Input that cannot be used (a file's content, a setting): exit code 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"{PROG}: error: {self.format_message()}", err=True)


class IsoDateTime(click.ParamType):
    """An ISO 8601 date-time; without an offset it is taken as UTC."""

    name = "ISO-8601"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date-time, e.g. 2026-11-25T12:00:00Z "
                      "or 2026-11-25", param, ctx)
        # Outside this range the rules' interval arithmetic means nothing (and may overflow).
        if not 1900 <= parsed.year <= 2200:
            self.fail(f"{value!r} is not a plausible evaluation time (years 1900 to 2200)", param, ctx)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


EPILOG = """\b
Examples:
  cds-service serve --port 8080
  cds-service evaluate fhir_fixtures/requests/severe.patient-view.json
  cds-service evaluate fhir_fixtures/patients/severe.json --now 2026-11-25T12:00:00Z --json
  cds-service docs

\b
Exit codes: 0 done, 1 bad input (file or CDS_* setting), 2 usage error.
Settings come from CDS_* environment variables (see README.md, Configuration)."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
def cli() -> None:
    """HL7 CDS Hooks service: magnesium monitoring for patients on tacrolimus."""


@cli.command(epilog="""\b
Examples:
  cds-service serve
  cds-service serve --host 0.0.0.0 --port 9000

\b
This is the development server; production runs the Procfile's gunicorn line.""")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="port to listen on")
def serve(host: str, port: int) -> int:
    """Run the service locally (development server)."""
    from werkzeug.serving import run_simple

    from .app import create_app

    app = create_app()
    try:
        run_simple(host, port, app, threaded=True)
    except OSError as error:  # address in use, permission denied, unknown host
        raise BadInput(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return 0


@cli.command(epilog="""\b
Examples:
  cds-service docs
  cds-service docs --check""")
@click.option("--check", is_flag=True, help="only check that the file matches the rules (exit 1 if not)")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("docs/clinical-rules.md"),
              show_default=True, help="the document to write or check")
def docs(check: bool, output: Path) -> int:
    """Write docs/clinical-rules.md from the rule definitions."""
    from .ruledocs import markdown

    text = markdown()
    if check:
        if not output.is_file() or output.read_text("utf-8") != text:
            raise BadInput(f"{output} is out of date with the rules: run cds-service docs")
        click.echo(f"{output} is up to date")
        return 0
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, "utf-8")
    except OSError as error:
        raise BadInput(f"cannot write {output}: {error.strerror or error}") from None
    click.echo(f"wrote {output}")
    return 0


@cli.command(epilog="""\b
Examples:
  cds-service evaluate fhir_fixtures/requests/severe.patient-view.json
  cds-service evaluate fhir_fixtures/requests/order-rifampin.order-sign.json --json
  cds-service evaluate fhir_fixtures/patients/severe.json --now 2026-11-25T12:00:00Z
  cat request.json | cds-service evaluate -

\b
FILE is a CDS Hooks request (JSON with "hook", "context" and usually "prefetch"),
or a FHIR Bundle of one patient's record (it must hold the Patient), evaluated as
patient-view with the whole Bundle as prefetch.""")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--service", "service_id", metavar="ID",
              help="service id (default: the service answering the request's hook); "
                   "see GET /cds-services")
@click.option("--now", type=IsoDateTime(), help="evaluation time, ISO 8601 (default: now; "
                                                "no offset means UTC)")
@click.option("--json", "as_json", is_flag=True, help="print the CDS Hooks response JSON")
def evaluate(file: Path, service_id: str | None, now: datetime | None, as_json: bool) -> int:
    """Print the cards the service gives for FILE, without a server."""
    from .services import SERVICES_BY_ID

    if service_id is not None and service_id not in SERVICES_BY_ID:
        raise click.BadParameter(f"no service {service_id!r}; the services are: "
                                 f"{', '.join(SERVICES_BY_ID)}", param_hint="'--service'")
    name = "stdin" if str(file) == "-" else str(file)
    body = _read_json_object(file, name)
    if body.get("resourceType") == "Bundle":
        if service_id is not None and SERVICES_BY_ID[service_id].hook != "patient-view":
            raise BadInput(f"{name} is a patient Bundle, which is evaluated as patient-view; "
                           "for an order hook give a hook request with context.draftOrders")
        body = request_from_bundle(body, name=name)
    elif "resourceType" in body:
        raise BadInput(f"{name} is a FHIR {_clip(body['resourceType'])} resource; expected a "
                       "CDS Hooks request (an object with \"hook\") or a patient Bundle")
    elif "hook" not in body:
        raise BadInput(f"{name} is neither a CDS Hooks request (no \"hook\") nor a FHIR Bundle "
                       "(no \"resourceType\": \"Bundle\")")
    if service_id is None:
        service_id = _service_for(body.get("hook"))
        if service_id is None:
            hooks = sorted({s.hook for s in SERVICES_BY_ID.values()})
            raise BadInput(f"no service answers the hook {_clip(body.get('hook'))!r} of {name}; "
                           f"the hooks answered are: {', '.join(hooks)}")
    response = evaluate_request(body, service_id, now or datetime.now(timezone.utc), name)
    if as_json:
        click.echo(json.dumps(response, indent=2, ensure_ascii=False))
    else:
        click.echo(render_cards(response["cards"]))
    return 0


def evaluate_request(body: dict, service_id: str, now: datetime, name: str = "the request") -> dict:
    """The CDS Hooks response of one service to a hook request, as the route computes it.

    No Flask app: nothing of the server (authentication, its start-up warnings, its state
    file) applies to a file on the command line. A request naming a FHIR server is still
    subject to CDS_FHIR_ALLOWED_SERVERS."""
    from . import logs
    from .config import Settings
    from .protocol.errors import ServiceError
    from .protocol.request import request_validator
    from .protocol.response import cards_response
    from .runtime import Runtime
    from .services import SERVICES_BY_ID, HookEnvironment

    settings = Settings.from_env()
    logs.configure("WARNING")
    runtime = Runtime(replace(settings, auth_required=False))
    service = SERVICES_BY_ID[service_id]
    base = (settings.public_base_url or "http://localhost:8080").rstrip("/")
    try:
        hook_request = request_validator().parse(body, service.hook,
                                                 max_entries=settings.max_prefetch_entries)
        env = HookEnvironment(settings, now, runtime.executor, base + "/docs/rules",
                              runtime.fhir_client(hook_request))
        return cards_response(service.handler(hook_request, env))
    except ServiceError as error:
        raise BadInput(f"{name} cannot be evaluated by {service_id}: {error.message}") from None


def request_from_bundle(bundle: dict, hook: str = "patient-view", name: str = "the Bundle") -> dict:
    """A hook request whose prefetch is a whole patient Bundle (every key counts as sent)."""
    from .services import PATIENT_DATA

    entries = bundle.get("entry")
    resources = [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)] \
        if isinstance(entries, list) else []
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if not patients:
        # Without the Patient there is no patient id: every resource would be dropped as
        # belonging to someone else and "No cards." would look like a clean bill of health.
        raise BadInput(f"{name} has no Patient resource; a patient Bundle must hold the Patient "
                       "its resources refer to")
    if len(patients) > 1:
        raise BadInput(f"{name} holds {len(patients)} Patient resources; give one patient's record")
    patient_id = patients[0].get("id")
    if not isinstance(patient_id, str) or not patient_id:
        raise BadInput(f"the Patient in {name} has no id; its resources refer to it by id")
    encounter = next((r for r in resources if r.get("resourceType") == "Encounter"), None)
    context = {"userId": "Practitioner/demo", "patientId": patient_id}
    if encounter is not None and isinstance(encounter.get("id"), str):
        context["encounterId"] = encounter["id"]
    prefetch: dict = {key.key: None for key in PATIENT_DATA}
    prefetch["medications"] = bundle
    return {"hook": hook, "hookInstance": "cli-evaluate", "context": context, "prefetch": prefetch}


def _read_json_object(file: Path, name: str) -> dict:
    import orjson

    try:
        raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as error:
        raise BadInput(f"cannot read {name}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some Windows editors write, is fine
    except UnicodeDecodeError:
        raise BadInput(f"{name} is not UTF-8 text; expected a JSON file") from None
    if not text.strip():
        raise BadInput(f"{name} is empty; expected a CDS Hooks request or a FHIR Bundle (JSON)")
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        if "recursion" in error.msg.lower() or "depth" in error.msg.lower():
            raise BadInput(f"{name} nests JSON too deeply") from None
        raise BadInput(f"{name} is not valid JSON: {error.msg} (line {error.lineno}, "
                       f"column {error.colno})") from None
    if not isinstance(body, dict):
        kind = {list: "a JSON array", str: "a JSON string", bool: "a JSON true/false",
                int: "a JSON number", float: "a JSON number", type(None): "JSON null"}[type(body)]
        raise BadInput(f"{name} holds {kind}; expected a JSON object: a CDS Hooks request "
                       "or a FHIR Bundle")
    return body


def _clip(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _service_for(hook: Any) -> str | None:
    from .services import SERVICES

    return next((s.id for s in SERVICES if s.hook == hook), None)


def render_cards(cards: list[dict]) -> str:
    """Cards as plain text: indicator and summary, topic, detail, suggestion labels."""
    if not cards:
        return "No cards."
    blocks = []
    for card in cards:
        lines = [f"[{card['indicator'].upper()}] {card['summary']}",
                 f"  topic: {card['source'].get('topic', {}).get('code', '-')}"]
        lines += ["  " + line for line in card.get("detail", "").splitlines()]
        for suggestion in card.get("suggestions", []):
            lines.append(f"  → suggestion: {suggestion['label']}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


class Day(click.ParamType):
    """A UTC day as YYYY-MM-DD."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from .store.analytics import parse_day

        try:
            return parse_day(str(value), "date")
        except ValueError:
            self.fail(f"not a date as YYYY-MM-DD: {str(value)[:40]!r}", param, ctx)


REPORT_COLUMNS = ("kind", "issued", "silent", "accepted", "overridden", "acceptanceRate", "overrideReasons")


@cli.command(epilog="""\b
Examples:
  cds-service report
  cds-service report --since 2026-11-01 --format csv > cards.csv
  CDS_DATABASE_URL=postgresql+psycopg://cds@db/cds cds-service report --format json""")
@click.option("--since", type=Day(), help="first day, YYYY-MM-DD (UTC)")
@click.option("--until", type=Day(), help="last day, YYYY-MM-DD (UTC), included")
@click.option("--format", "output", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)
def report(since: Any, until: Any, output: str) -> int:
    """Print the card analytics (issued, silent, accepted, overridden, reasons) from the state
    store named by CDS_DATABASE_URL (or CDS_STATE_DB)."""
    if since and until and since > until:
        raise click.UsageError("--since is after --until")
    return _report(since, until, output)


def _report(since: date | None, until: date | None, output: str) -> int:
    import sqlalchemy.exc

    from .config import Settings
    from .store import Store, StoreConfigurationError, database_url
    from .store.analytics import Period, summary

    try:
        settings = Settings.from_env()
        store = Store(database_url(settings.database_url, settings.state_db))
        store.migrate()
        figures = summary(store.engine, Period(since, until))
    except (ValueError, StoreConfigurationError) as error:
        print(f"cds-service report: {error}", file=sys.stderr)
        return 1
    except sqlalchemy.exc.SQLAlchemyError as error:
        print(f"cds-service report: cannot read the state database ({type(error).__name__})", file=sys.stderr)
        return 1
    if output == "json":
        print(json.dumps(figures, indent=2, ensure_ascii=False))
        return 0
    rows = [[row["kind"], row["issued"], row["silent"], row["accepted"], row["overridden"],
             "" if row["acceptanceRate"] is None else f"{row['acceptanceRate']:.2f}",
             "; ".join(f"{code}={n}" for code, n in sorted(row["overrideReasons"].items(),
                                                          key=lambda i: (-i[1], i[0])))]
            for row in figures["kinds"]]
    if output == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(REPORT_COLUMNS)
        writer.writerows(rows)
        return 0
    header = ["kind", "issued", "silent", "accepted", "overridden", "accept rate", "override reasons"]
    table = [header] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    period = figures["period"]
    print(f"Cards from {period['since'] or 'the start'} to {period['until'] or 'now'} (UTC days)")
    for number, row in enumerate(table):
        print("  ".join(cell.rjust(w) if 0 < i < 6 else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if number == 0:
            print("  ".join("-" * w for w in widths))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (errors are one line on stderr)."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name=PROG,
                          standalone_mode=False)
    except click.ClickException as error:  # usage errors (2) and BadInput (1)
        error.show()
        return error.exit_code
    except click.Abort:  # Ctrl-C
        return 130
    except SettingsError as error:
        click.echo(f"{PROG}: {error}", err=True)
        return 1
    except Exception as error:  # a defect: say where, without a traceback or any data
        import traceback

        frame = traceback.extract_tb(error.__traceback__)[-1]
        click.echo(f"{PROG}: internal error ({type(error).__name__} at "
                   f"{Path(frame.filename).name}:{frame.lineno}); please report it", err=True)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
