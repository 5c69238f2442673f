"""A FHIR server mocked with `responses`: answers the service's reads and searches from a
list of resources, with per-type failures (status and body, or an exception) on demand."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import requests
import responses

from cds_service.testing import factories as f

BASE = "https://ehr.example.org/fhir"


class FakeFhirServer:
    """Answers the service's queries from a list of resources, the way a FHIR server would."""

    def __init__(self, resources: list[dict], base: str = BASE):
        self.resources = resources
        self.base = base
        self.calls: list[requests.PreparedRequest] = []
        self.overrides: dict[str, tuple[int, object]] = {}  # resource type -> (status, body)

    def install(self, mock: responses.RequestsMock) -> None:
        mock.add_callback(responses.GET, re.compile(re.escape(self.base) + r"/.*"),
                          callback=self.answer)

    def answer(self, request):
        self.calls.append(request)
        parts = urlsplit(request.url)
        path = parts.path[len(urlsplit(self.base).path):].strip("/")
        rtype = path.split("/")[0]
        if rtype in self.overrides:
            status, body = self.overrides[rtype]
            if isinstance(body, Exception):
                raise body
            return status, {}, body if isinstance(body, str) else json.dumps(body)
        if "/" in path:  # read
            _, rid = path.split("/", 1)
            found = [r for r in self.resources if r["resourceType"] == rtype and r["id"] == rid]
            if rtype == "Patient" and not found:
                found = [f.patient(rid)]
            if not found:
                return 404, {}, '{"resourceType": "OperationOutcome", "issue": []}'
            return 200, {}, json.dumps(found[0])
        query = parse_qs(parts.query)
        matches = [r for r in self.resources if r["resourceType"] == rtype]
        if rtype == "Observation":
            wanted = set(query["code"][0].split(","))
            matches = [r for r in matches
                       if {f"{c['system']}|{c['code']}" for c in r["code"].get("coding", [])} & wanted]
        return 200, {}, json.dumps(f.bundle(*matches))

    def types_called(self) -> list[str]:
        return sorted(urlsplit(c.url).path.split("/")[2] for c in self.calls)
