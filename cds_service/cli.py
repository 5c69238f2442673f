"""``cds-service serve`` (local server) and ``cds-service evaluate FILE`` (cards without a server)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence


def _evaluate(path: Path, service_id: str | None, now: datetime, as_json: bool) -> int:
    from .app import create_app

    body = json.loads(path.read_text("utf-8"))
    if body.get("resourceType") == "Bundle":
        body = request_from_bundle(body)
    service_id = service_id or _service_for(body.get("hook"))
    if service_id is None:
        print(f"no service answers the hook {body.get('hook')!r}", file=sys.stderr)
        return 2
    try:
        app = create_app({"log_level": "WARNING"})
    except ValueError as error:  # a bad setting: say which, no trace
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    with app.test_request_context(f"/cds-services/{service_id}", method="POST",
                                  base_url="http://localhost:8080"):
        from .protocol.errors import ServiceError
        from .protocol.request import request_validator
        from .protocol.response import cards_response
        from .services import SERVICES_BY_ID, HookEnvironment
        from .web.hooks import docs_base_url

        runtime = app.extensions["cds"]
        service = SERVICES_BY_ID[service_id]
        try:
            hook_request = request_validator().parse(body, service.hook)
            env = HookEnvironment(runtime.settings, now, runtime.executor, docs_base_url(),
                                  runtime.fhir_client(hook_request))
            response = cards_response(service.handler(hook_request, env))
        except ServiceError as error:
            print(json.dumps(error.outcome(), indent=2))
            return 1
    if as_json:
        print(json.dumps(response, indent=2, ensure_ascii=False))
    else:
        print(render_cards(response["cards"]))
    return 0


def request_from_bundle(bundle: dict, hook: str = "patient-view") -> dict:
    """A hook request whose prefetch is a whole patient Bundle (every key counts as sent)."""
    from .services import PATIENT_DATA

    patient = next((e["resource"] for e in bundle.get("entry", [])
                    if e.get("resource", {}).get("resourceType") == "Patient"), {})
    encounter = next((e["resource"] for e in bundle.get("entry", [])
                      if e.get("resource", {}).get("resourceType") == "Encounter"), None)
    context = {"userId": "Practitioner/demo", "patientId": patient.get("id", "unknown")}
    if encounter is not None:
        context["encounterId"] = encounter["id"]
    prefetch: dict = {key.key: None for key in PATIENT_DATA}
    prefetch["medications"] = bundle
    return {"hook": hook, "hookInstance": "cli-evaluate", "context": context, "prefetch": prefetch}


def _service_for(hook: str | None) -> str | None:
    from .services import SERVICES

    return next((s.id for s in SERVICES if s.hook == hook), None)


def render_cards(cards: list[dict]) -> str:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cds-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the service locally (development server)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    evaluate = commands.add_parser("evaluate", help="print the cards for a fixture, no server")
    evaluate.add_argument("file", type=Path, help="a hook request, or a patient Bundle")
    evaluate.add_argument("--service", help="service id (default: the one for the request's hook)")
    evaluate.add_argument("--now", help="evaluation time, ISO 8601 (default: now)")
    evaluate.add_argument("--json", action="store_true", help="print the CDS Hooks response JSON")
    args = parser.parse_args(argv)

    if args.command == "serve":
        from werkzeug.serving import run_simple

        from .app import create_app

        run_simple(args.host, args.port, create_app(), threaded=True)
        return 0
    now = datetime.fromisoformat(args.now.replace("Z", "+00:00")) if args.now else datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return _evaluate(args.file, args.service, now, args.json)


if __name__ == "__main__":
    sys.exit(main())
