"""Settings from ``CDS_*`` environment variables, with defaults that serve out of the box."""

from __future__ import annotations

import difflib
import json
import math
import os
from dataclasses import dataclass, field, fields, replace
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .guideline.codes import Code, parse_local_codes
from .guideline.suggestions import parse_orderables
from .guideline.thresholds import DEFAULT_THRESHOLDS, THRESHOLD_UNITS, Thresholds

GUIDELINE_PREFIX = "CDS_GUIDELINE_"


try:  # gunicorn prints an AppImportError's message alone and stops ("App failed to load")
    from gunicorn.errors import AppImportError as _StartupError
except ImportError:  # pragma: no cover - gunicorn is a dependency, but not needed to run
    _StartupError = Exception  # type: ignore[misc,assignment]


class SettingsError(ValueError, _StartupError):
    """A CDS_* setting is malformed, out of range or inconsistent with another one.

    The message names the variable, the value and what was expected. Raised at start-up; the CLI
    prints it as one line (exit 1) and gunicorn, through its AppImportError, prints it without a
    traceback and stops instead of restarting workers that would fail the same way."""

    def __str__(self) -> str:
        return f"configuration error: {super().__str__()}"


@dataclass(frozen=True)
class Settings:
    """Service configuration. Each field is read from ``CDS_<FIELD NAME IN UPPER CASE>``."""

    # HTTP
    max_body_bytes: int = 5 * 1024 * 1024
    cors_origins: str = "*"  # comma-separated origins, or * for any (the sandbox is a browser app)
    public_base_url: str = ""  # e.g. https://cds.example.org; empty: taken from each request
    max_prefetch_entries: int = 10000  # Bundle entries across prefetch and draftOrders
    # Prefetched resources kept by content so that a resource sent again is not read again
    # (protocol/body.py); 0 turns it off. Patient data, in this process's memory only.
    resource_memo_size: int = 5000  # ~7 KB each for an EHR's decorated resources
    resource_memo_seconds: float = 600.0  # how long, at most, a remembered resource is kept
    # Trust boundary: JWT authentication of CDS clients and the FHIR servers the service may call
    auth_required: bool = False
    trusted_issuers: str = ""  # JSON: {"<iss>": {"jwks_url", "jku": [...], "fhir_servers": [...]}}
    jwt_leeway_seconds: float = 60.0  # clock skew allowed on exp, iat and nbf
    jwt_max_lifetime_seconds: float = 600.0  # exp - iat above this is refused (spec: minutes)
    fhir_allowed_servers: str = "*"  # comma-separated FHIR base URLs; * allows any http(s) server
    state_db: str = "cds-state.sqlite3"  # SQLite file for state shared by workers (seen jti values)
    # Learning from use: the state store, cards issued, feedback, silent mode, analytics access
    # SQLAlchemy URL; empty: SQLite file state_db. postgresql+psycopg://... for several instances
    database_url: str = ""
    record_cards: bool = True  # record every card issued (uuid, service, kind, indicator, time; no patient data)
    feedback_store_comments: bool = False  # keep feedback userComment text (may hold patient data)
    silent_kinds: str = ""  # comma-separated card kinds evaluated and recorded but not returned
    admin_token: str = ""  # bearer token for /analytics and /metrics; empty: loopback callers only
    # FHIR server fallback
    fhir_connect_timeout: float = 0.5  # seconds
    fhir_read_timeout: float = 1.0  # seconds, per request
    fhir_deadline: float = 1.5  # seconds, all fetches of one hook call together
    fhir_max_pages: int = 5  # Bundle.link[next] pages followed per query
    fhir_max_workers: int = 104  # concurrent fetches per process (beyond: answered from prefetch)
    fhir_max_response_bytes: int = 4 * 1024 * 1024  # per FHIR response and per JWKS, decoded
    fhir_max_entries: int = 5000  # resources read from FHIR servers per hook call
    fhir_max_per_server: int = 88  # concurrent fetches per FHIR server per process (8 threads x 11 queries)
    allowed_hosts: str = "localhost,127.0.0.1,[::1]"  # Host headers accepted when public_base_url is unset
    # Guideline
    serum_mg_order_loinc: str = "19123-9"  # 19123-9 (mg/dL) or 2601-3 (mmol/L), for suggestions
    orderables: str = ""  # JSON: suggestion product key -> the hospital's {system, code, display}
    # JSON {"mg_serum": ["system|code", ...], "mg_urine", "creatinine_serum", "creatinine_urine",
    # "egfr", "tacrolimus_level"}: hospital-local lab codes read like LOINC (docs/clinical-rules.md section 2)
    local_codes: str = ""
    log_level: str = "INFO"
    thresholds: Thresholds = field(default=DEFAULT_THRESHOLDS)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``CDS_*`` variables (empty means unset); SettingsError on a bad value."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "thresholds":
                continue
            raw = env.get(variable(f.name))
            if raw is not None and raw != "":
                values[f.name] = _parse(variable(f.name), raw, type(getattr(cls, f.name)))
        changes: dict[str, Any] = {}
        defaults = {f.name: getattr(DEFAULT_THRESHOLDS, f.name) for f in fields(Thresholds)}
        for key, raw in env.items():
            if not key.startswith(GUIDELINE_PREFIX):
                continue
            name = key[len(GUIDELINE_PREFIX):].lower()
            if name not in defaults:
                known = [threshold_variable(n) for n in defaults]
                close = difflib.get_close_matches(key, known, n=1)
                raise SettingsError(f"unknown guideline setting {key}: "
                                    + (f"did you mean {close[0]}?" if close else
                                       "expected one of " + ", ".join(known)))
            changes[name] = _parse(key, raw, type(defaults[name]), THRESHOLD_UNITS.get(name, ""))
        return cls(**values, thresholds=replace(DEFAULT_THRESHOLDS, **changes))

    def __post_init__(self) -> None:
        """Checks that need more than one value's type: ranges, formats, order, JSON schemas."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                minimum = _MINIMUM.get(f.name, 0)
                if not math.isfinite(value) or value < minimum:
                    raise SettingsError(f"{variable(f.name)}={value!r}: expected a number "
                                        f"{'>= 0' if minimum == 0 else f'>= {minimum}'}")
        for name, check in _FORMATS.items():
            check(name, getattr(self, name))
        for setting in JSON_SETTINGS.values():
            setting.parse(getattr(self, setting.name))
        check_thresholds(self.thresholds)
        # Hospital maps: a typo stops the start instead of dropping results or orders unmapped.
        for parse, value in ((parse_orderables, self.orderables), (parse_local_codes, self.local_codes)):
            try:
                parse(value)
            except SettingsError:
                raise
            except ValueError as error:
                raise SettingsError(str(error)) from None
        if self.auth_required:
            self._check_authentication()

    def _check_authentication(self) -> None:
        """With authentication on, settings that would undo it stop the start (security.md)."""
        if not self.trusted_issuers.strip() or not json.loads(self.trusted_issuers):
            raise SettingsError(
                "CDS_AUTH_REQUIRED=true but CDS_TRUSTED_ISSUERS names no issuer: expected a JSON "
                "object such as {\"https://ehr.example.org\": {\"jwks_url\": "
                "\"https://ehr.example.org/.well-known/jwks.json\"}}")
        if not self.public_base_url:
            # The JWT audience must be this service's own URL, not one taken from the Host
            # header the caller chose.
            raise SettingsError("CDS_AUTH_REQUIRED=true but CDS_PUBLIC_BASE_URL is not set: expected "
                                "this service's URL as clients call it (the JWT audience); set "
                                "CDS_PUBLIC_BASE_URL, e.g. https://cds.hospital.example")
        directory = os.path.dirname(os.path.abspath(self.state_db))
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            raise SettingsError(f"CDS_STATE_DB={self.state_db!r}: expected a file in an existing, writable "
                                "directory (authentication keeps the JWT ids it has seen there)")
        issuers = json.loads(self.trusted_issuers)
        if "*" in _split(self.fhir_allowed_servers) and not all(i.get("fhir_servers") for i in issuers.values()):
            raise SettingsError("CDS_AUTH_REQUIRED=true but CDS_FHIR_ALLOWED_SERVERS is *: list the "
                                "FHIR servers the service may call in CDS_FHIR_ALLOWED_SERVERS "
                                "(or fhir_servers for every issuer in CDS_TRUSTED_ISSUERS)")

    @property
    def orderable_codes(self) -> Mapping[str, Code]:
        """CDS_ORDERABLES, parsed (cached): what each suggested product is called locally."""
        return parse_orderables(self.orderables)

    def merged(self, overrides: Mapping[str, Any] | None) -> Settings:
        """A copy with overrides from a dict (as passed to ``create_app(config)``)."""
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        return replace(self, **overrides)


def variable(name: str) -> str:
    """The environment variable of a Settings field."""
    return f"CDS_{name.upper()}"


def threshold_variable(name: str) -> str:
    """The environment variable of a guideline threshold."""
    return f"{GUIDELINE_PREFIX}{name.upper()}"


# --------------------------------------------------------------------------------------------
# Values: numbers are finite and >= 0 unless a larger minimum is listed here.

_MINIMUM: dict[str, float] = {
    "max_body_bytes": 1, "max_prefetch_entries": 1, "fhir_max_pages": 1, "fhir_max_workers": 1,
    "fhir_connect_timeout": 0.001, "fhir_read_timeout": 0.001, "fhir_deadline": 0.001,
    "jwt_max_lifetime_seconds": 1, "resource_memo_seconds": 1,
    # Added by the security branch; listed ahead of the merge (a name that is no field is unused).
    "fhir_max_response_bytes": 1, "fhir_max_entries": 1, "fhir_max_per_server": 1,
}
_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _parse(name: str, raw: str, kind: type, unit: str = "") -> Any:
    text = raw.strip()
    if kind is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    elif kind is str:
        return raw
    else:
        try:
            value = kind(text)
        except ValueError:
            pass
        else:
            if math.isfinite(value):
                return value
    expected = _KINDS.get(kind, kind.__name__) + (f" ({unit})" if unit else "")
    if kind is bool:
        expected += " (or yes/no, on/off, 1/0)"
    raise SettingsError(f"{name}={raw!r}: expected {expected}")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _check_origins(name: str, value: str) -> None:
    for origin in _split(value):
        parts = urlsplit(origin)
        if origin != "*" and not (_url(origin) and parts.path == "" and not parts.query):
            # A browser's Origin never has a path: "https://ehr.example.org/" would match nothing.
            raise SettingsError(f"{variable(name)}: {origin!r} is not an origin: expected * or "
                                "comma-separated origins like https://ehr.example.org (scheme, "
                                "host and optional port; no path, no trailing slash)")


def _check_base_url(name: str, value: str) -> None:
    if value and (not _url(value) or urlsplit(value).query or urlsplit(value).fragment):
        raise SettingsError(f"{variable(name)}={value!r}: expected this service's base URL as "
                            "clients call it, e.g. https://cds.hospital.example")


def _check_servers(name: str, value: str) -> None:
    for server in _split(value):
        if server != "*" and not _url(server):
            raise SettingsError(f"{variable(name)}: {server!r} is not a URL: expected * or "
                                "comma-separated FHIR base URLs like https://ehr.example.org/fhir")


def _check_log_level(name: str, value: str) -> None:
    if value.strip().upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(f"{variable(name)}={value!r}: expected DEBUG, INFO, WARNING, ERROR "
                            "or CRITICAL")


def _check_serum_loinc(name: str, value: str) -> None:
    from .guideline.codes import MG_SERUM

    if value not in {c.code for c in MG_SERUM}:
        raise SettingsError(f"{variable(name)}={value!r}: expected one of "
                            + ", ".join(f"{c.code} ({c.display})" for c in MG_SERUM))


_FORMATS: dict[str, Callable[[str, Any], None]] = {
    "cors_origins": _check_origins,
    "public_base_url": _check_base_url,
    "fhir_allowed_servers": _check_servers,
    "log_level": _check_log_level,
    "serum_mg_order_loinc": _check_serum_loinc,
}


# --------------------------------------------------------------------------------------------
# JSON settings: a Settings field holding JSON text, checked against a JSON Schema at start-up.
# jsonschema already validates the CDS Hooks requests; it says where in the document the error
# is, and one schema per setting documents the format for the next reader.
#
# To add one: a `str` field with default "" in Settings (and a README row), then below
#     LOCAL_CODES = json_setting("local_codes", {"description": "...", "type": "object", ...})
# and read it where it is used with LOCAL_CODES.parse(settings.local_codes) (None when unset).


@dataclass(frozen=True)
class JsonSetting:
    """A Settings field holding JSON text and the JSON Schema it must match."""

    name: str
    schema: Mapping[str, Any]

    def parse(self, raw: str) -> Any:
        """The setting's value (None when empty), or SettingsError naming where it is wrong."""
        import jsonschema

        if not raw.strip():
            return None
        var = variable(self.name)
        try:
            value = json.loads(raw)
        except ValueError as error:
            raise SettingsError(f"{var} is not valid JSON ({error}); expected "
                                f"{self.schema.get('description', 'JSON')}") from None
        problem = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(self.schema).iter_errors(value))
        if problem is not None:
            where = "".join(f"[{json.dumps(p)}]" for p in problem.absolute_path)
            expected = problem.schema.get("description") if isinstance(problem.schema, dict) else None
            raise SettingsError(f"{var}{where}: {problem.message}"
                                + (f"; expected {expected}" if expected else ""))
        return value


JSON_SETTINGS: dict[str, JsonSetting] = {}


def json_setting(name: str, schema: Mapping[str, Any]) -> JsonSetting:
    """Declare that the Settings field `name` holds JSON matching `schema` (checked at start-up).

    Give the schema and its parts a ``description``: it ends the error message ("expected ...").
    """
    if name not in {f.name for f in fields(Settings)}:
        raise KeyError(f"no Settings field {name!r}")
    JSON_SETTINGS[name] = setting = JsonSetting(name, schema)
    return setting


_HTTP_URL = {"type": "string", "pattern": "^https?://[^/?#]+", "description": "an http(s) URL"}
_URL_LIST = {"type": "array", "items": _HTTP_URL, "description": "a list of http(s) URLs"}

TRUSTED_ISSUERS = json_setting("trusted_issuers", {
    "description": 'a JSON object keyed by issuer: {"<iss>": {"jwks_url": "...", "jku": [...], '
                   '"fhir_servers": [...]}}',
    "type": "object",
    "additionalProperties": {
        "description": 'an issuer object with "jwks_url" or a non-empty "jku" list, and optional '
                       '"fhir_servers"',
        "type": "object",
        "properties": {
            "jwks_url": {**_HTTP_URL, "description": "the URL of the issuer's JWKS"},
            "jku": {**_URL_LIST, "description": "a list of JWKS URLs a token's jku may name"},
            "fhir_servers": {**_URL_LIST, "description": "a list of FHIR base URLs"},
        },
        "additionalProperties": False,
        "anyOf": [{"required": ["jwks_url"]}, {"required": ["jku"], "properties": {"jku": {"minItems": 1}}}],
    },
})


# --------------------------------------------------------------------------------------------
# Guideline thresholds: each lower band ends where the next begins. A pair whose names are not
# (or no longer) thresholds is skipped, so adding a threshold never breaks this list.

THRESHOLD_ORDER: tuple[tuple[str, str, str], ...] = (
    ("severe_below", "<", "low_at_or_below"),
    ("low_at_or_below", "<", "target_above"),
    ("target_above", "<", "high_above"),
    ("early_interval_days", "<=", "routine_interval_days"),
    ("inpatient_interval_days", "<=", "routine_interval_days"),
    ("tacrolimus_level_recent_days", "<=", "tacrolimus_level_recent_days_late"),
)
THRESHOLD_MINIMUM: dict[str, float] = {
    "routine_interval_days": 1, "early_interval_days": 1, "early_phase_days": 1,
    "inpatient_interval_days": 1, "symptom_window_days": 1, "order_recent_mg_days": 1,
    "tacrolimus_level_recent_days": 1, "egfr_rise_window_days": 1, "femg_window_hours": 1,
    "persistent_min_results": 2,  # persistence needs more than one result (section 7)
    "persistent_min_span_days": 1,
    "renal_function_recent_days": 1, "body_weight_recent_days": 1, "dialysis_recent_days": 1,
    "tacrolimus_level_recent_days_late": 1,
}
THRESHOLD_ABOVE_ZERO = ("severe_below", "egfr_caution_below", "tacrolimus_high_above",
                        "egfr_rise_fraction", "femg_renal_wasting_above", "high_above")
THRESHOLD_MAXIMUM: dict[str, float] = {"egfr_rise_fraction": 1.0, "femg_renal_wasting_above": 100.0}


def check_thresholds(thresholds: Thresholds) -> None:
    """SettingsError when a threshold is out of range or out of order with its neighbour."""
    values = {f.name: getattr(thresholds, f.name) for f in fields(thresholds)}

    def shown(name: str) -> str:
        unit = THRESHOLD_UNITS.get(name, "")
        return f"{threshold_variable(name)}={values[name]!r}" + (f" {unit}" if unit else "")

    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SettingsError(f"{shown(name)}: expected a number")
        low = THRESHOLD_MINIMUM.get(name, 0)
        if value < low or (name in THRESHOLD_ABOVE_ZERO and value <= 0):
            raise SettingsError(f"{shown(name)}: expected a value "
                                f"{'above 0' if name in THRESHOLD_ABOVE_ZERO else f'of at least {low}'}")
        if name in THRESHOLD_MAXIMUM and value > THRESHOLD_MAXIMUM[name]:
            raise SettingsError(f"{shown(name)}: expected at most {THRESHOLD_MAXIMUM[name]}")
    for lower, relation, upper in THRESHOLD_ORDER:
        if lower in values and upper in values:
            ok = values[lower] < values[upper] if relation == "<" else values[lower] <= values[upper]
            if not ok:
                raise SettingsError(f"{shown(lower)} and {shown(upper)}: expected "
                                    f"{threshold_variable(lower)} {relation} {threshold_variable(upper)}")
