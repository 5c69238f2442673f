"""Parse and validate a CDS Hooks 2.0 hook request against the JSON Schemas kept in the package."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .errors import InvalidRequest, PayloadTooLarge


def load_schema(name: str) -> dict:
    return json.loads(schema_text(name))


def schema_text(name: str) -> str:
    return resources.files(__package__).joinpath("schemas", name).read_text("utf-8")


# ------------------------------------------------------------------------------------------
# Fast acceptance. jsonschema costs ~0.15 ms per hook call even on a valid request; these
# checks accept only what the schemas surely accept (a subset) and leave everything else, and
# every error message, to jsonschema. They are written for the schema files whose sha256 is
# below: when a schema changes, the fast path turns itself off until it is reviewed
# (tests/test_protocol_fast.py says so).

FAST_PATH_SCHEMAS = {
    "hook-request.json": "61fe7641ca3edd76bee9e233da7a78b30af22cd94232b4bd244dd529a4d5beb5",
    "hook-contexts.json": "ba77897a5ede3e47545cde67a45332807c30c00e01b495942ec6719530252f0a",
}
_FHIR_SERVER = re.compile(r"^https?://[^\s]+$")
_BEARER = re.compile(r"^[Bb]earer$")


def _short_str(value: Any, most: int) -> bool:
    return type(value) is str and 1 <= len(value) <= most


def fast_valid_request(body: dict) -> bool:
    """True only when hook-request.json accepts `body` (a dict)."""
    if not (_short_str(body.get("hook"), 200) and _short_str(body.get("hookInstance"), 200)
            and type(body.get("context")) is dict):
        return False
    if "fhirServer" in body:
        server = body["fhirServer"]
        if not (type(server) is str and len(server) <= 2000 and _FHIR_SERVER.search(server)):
            return False
    if "fhirAuthorization" in body:
        auth = body["fhirAuthorization"]
        if "fhirServer" not in body or type(auth) is not dict:
            return False
        token, kind = auth.get("access_token"), auth.get("token_type")
        if not (type(token) is str and token and type(kind) is str and _BEARER.search(kind)):
            return False
        if "expires_in" in auth and type(auth["expires_in"]) not in (int, float):
            return False
        if any(k in auth and type(auth[k]) is not str for k in ("scope", "subject", "patient")):
            return False
    if "prefetch" in body:
        prefetch = body["prefetch"]
        if type(prefetch) is not dict:
            return False
        for item in prefetch.values():
            # isinstance, as jsonschema's "object": a resource from the memo is a dict subclass.
            if item is not None and not (isinstance(item, dict)
                                         and type(item.get("resourceType")) is str):
                return False
    return True


def fast_valid_context(hook: str, context: dict) -> bool:
    """True only when hook-contexts.json accepts `context` for `hook`."""
    if hook not in ("patient-view", "order-select", "order-sign"):
        return False
    if not (_short_str(context.get("userId"), 200) and _short_str(context.get("patientId"), 200)):
        return False
    if "encounterId" in context and not _short_str(context["encounterId"], 200):
        return False
    if hook == "patient-view":
        return True
    orders = context.get("draftOrders")
    if not (type(orders) is dict and orders.get("resourceType") == "Bundle"
            and type(orders["resourceType"]) is str
            and ("entry" not in orders or type(orders["entry"]) is list)):
        return False
    if hook == "order-select":
        selections = context.get("selections")
        return type(selections) is list and all(type(s) is str for s in selections)
    return True


def _fast_path_current() -> bool:
    return all(hashlib.sha256(schema_text(name).encode()).hexdigest() == digest
               for name, digest in FAST_PATH_SCHEMAS.items())


@dataclass(frozen=True)
class HookRequest:
    """The parts of a hook call the service uses; `context` and `prefetch` as sent."""

    hook: str
    hook_instance: str
    context: Mapping[str, Any]
    fhir_server: str | None
    access_token: str | None
    prefetch: Mapping[str, Any] | None

    @property
    def patient_id(self) -> str:
        return self.context["patientId"]

    @property
    def encounter_id(self) -> str | None:
        value = self.context.get("encounterId")
        return value if isinstance(value, str) and value else None


def _describe(error: ValidationError) -> str:
    """A message that names the place and the rule, never the value the client sent."""
    where = "/".join(str(p) for p in error.absolute_path) or "request body"
    if error.validator == "required":
        return f"{where}: {error.message}"  # "'patientId' is a required property"
    if error.validator == "dependentRequired":
        return f"{where}: fhirAuthorization requires fhirServer"
    if error.validator == "type":
        return f"{where}: must be of type {error.validator_value}"
    if error.validator in ("maxLength", "minLength", "pattern", "const", "enum"):
        return f"{where}: value not allowed ({error.validator})"
    return f"{where}: invalid ({error.validator})"


class RequestValidator:
    """Compiled once per process: the base request schema and one context schema per hook."""

    def __init__(self) -> None:
        self._request = Draft202012Validator(load_schema("hook-request.json"))
        contexts = load_schema("hook-contexts.json")
        self._contexts = {
            hook: Draft202012Validator({"$defs": contexts["$defs"], **definition})
            for hook, definition in contexts["$defs"].items()
            if hook not in ("id", "bundle")
        }
        self._feedback = Draft202012Validator(load_schema("feedback.json"))
        self.fast_path = _fast_path_current()

    def _check(self, validator: Draft202012Validator, body: Any) -> None:
        error = next(iter(sorted(validator.iter_errors(body), key=lambda e: e.path)), None)
        if error is not None:
            raise InvalidRequest(_describe(error))

    def parse(self, body: Any, expected_hook: str, max_entries: int | None = None) -> HookRequest:
        """Validate `body` for a service of `expected_hook` and return the HookRequest."""
        if not isinstance(body, dict):
            raise InvalidRequest("request body must be a JSON object")
        if not (self.fast_path and fast_valid_request(body)):
            self._check(self._request, body)
        if body["hook"] != expected_hook:
            raise InvalidRequest(f"this service answers the '{expected_hook}' hook, not another")
        context_validator = self._contexts.get(expected_hook)
        if context_validator is not None and not (
                self.fast_path and fast_valid_context(expected_hook, body["context"])):
            self._check(context_validator, body["context"])
        if max_entries is not None and _entry_count(body) > max_entries:
            raise PayloadTooLarge(f"more than {max_entries} Bundle entries in prefetch and draftOrders")
        auth = body.get("fhirAuthorization") or {}
        return HookRequest(
            hook=body["hook"],
            hook_instance=body["hookInstance"],
            context=body["context"],
            fhir_server=body.get("fhirServer"),
            access_token=auth.get("access_token"),
            prefetch=body.get("prefetch"),
        )

    def check_feedback(self, body: Any) -> list[dict]:
        if not isinstance(body, dict):
            raise InvalidRequest("request body must be a JSON object")
        self._check(self._feedback, body)
        if _holds_nul(body["feedback"]):  # no database stores it alike (PostgreSQL refuses it)
            raise InvalidRequest("feedback: a text holds a NUL character")
        return body["feedback"]


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(_holds_nul(v) for v in value)


def _entry_count(body: Mapping[str, Any]) -> int:
    bundles = list((body.get("prefetch") or {}).values()) + [body["context"].get("draftOrders")]
    return sum(len(b["entry"]) for b in bundles
               if isinstance(b, dict) and isinstance(b.get("entry"), list))


@lru_cache(maxsize=1)
def request_validator() -> RequestValidator:
    return RequestValidator()
