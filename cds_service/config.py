"""Settings from ``CDS_*`` environment variables, with defaults that serve out of the box."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from .guideline.thresholds import DEFAULT_THRESHOLDS, Thresholds

GUIDELINE_PREFIX = "CDS_GUIDELINE_"


@dataclass(frozen=True)
class Settings:
    """Service configuration. Each field is read from ``CDS_<FIELD NAME IN UPPER CASE>``."""

    # HTTP
    max_body_bytes: int = 5 * 1024 * 1024
    cors_origins: str = "*"  # comma-separated origins, or * for any (the sandbox is a browser app)
    public_base_url: str = ""  # e.g. https://cds.example.org; empty: taken from each request
    max_prefetch_entries: int = 10000  # Bundle entries across prefetch and draftOrders
    # Trust boundary: JWT authentication of CDS clients and the FHIR servers the service may call
    auth_required: bool = False
    trusted_issuers: str = ""  # JSON: {"<iss>": {"jwks_url", "jku": [...], "fhir_servers": [...]}}
    jwt_leeway_seconds: float = 60.0  # clock skew allowed on exp, iat and nbf
    jwt_max_lifetime_seconds: float = 600.0  # exp - iat above this is refused (spec: minutes)
    fhir_allowed_servers: str = "*"  # comma-separated FHIR base URLs; * allows any http(s) server
    state_db: str = "cds-state.sqlite3"  # SQLite file for state shared by workers (seen jti values)
    # FHIR server fallback
    fhir_connect_timeout: float = 0.5  # seconds
    fhir_read_timeout: float = 1.0  # seconds, per request
    fhir_deadline: float = 1.5  # seconds, all fetches of one hook call together
    fhir_max_pages: int = 5  # Bundle.link[next] pages followed per query
    fhir_max_workers: int = 32  # concurrent fetches per process (beyond: answered from prefetch)
    fhir_max_response_bytes: int = 4 * 1024 * 1024  # per FHIR response and per JWKS, decoded
    fhir_max_entries: int = 5000  # resources read from FHIR servers per hook call
    fhir_max_per_server: int = 16  # concurrent fetches per FHIR server per process
    allowed_hosts: str = "localhost,127.0.0.1,[::1]"  # Host headers accepted when public_base_url is unset
    # Guideline
    serum_mg_order_loinc: str = "19123-9"  # 19123-9 (mg/dL) or 2601-3 (mmol/L), for suggestions
    log_level: str = "INFO"
    thresholds: Thresholds = field(default=DEFAULT_THRESHOLDS)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "thresholds":
                continue
            raw = env.get(f"CDS_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _parse(raw, type(getattr(cls, f.name)))
        overrides = {key[len(GUIDELINE_PREFIX):].lower(): value for key, value in env.items()
                     if key.startswith(GUIDELINE_PREFIX)}
        try:
            thresholds = DEFAULT_THRESHOLDS.with_overrides(overrides)
        except KeyError as unknown:
            raise ValueError(f"unknown guideline setting {GUIDELINE_PREFIX}{str(unknown).strip(chr(39)).upper()}") from None
        return cls(**values, thresholds=thresholds)

    def merged(self, overrides: Mapping[str, Any] | None) -> "Settings":
        """A copy with overrides from a dict (as passed to ``create_app(config)``)."""
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        return replace(self, **overrides)


def _parse(raw: str, kind: type) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"invalid value for a true/false setting: {raw!r}")
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"invalid value for a {kind.__name__} setting: {raw!r}") from None
