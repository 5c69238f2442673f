"""FHIR literal references and server bases, read the same way by the data layer (what to
fetch, fhir/data.py) and by the fact readers (what a reference names, guideline/facts/):
pure functions, no I/O."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


_DEFAULT_PORTS = {"http": 80, "https": 443}


def server_base(url: Any) -> str | None:
    """A FHIR server's base URL in one canonical spelling: scheme and host lower-case, the port
    always written (443 for https), the path as sent without a trailing slash. None when it is
    not a plain http(s) URL (user info, a query or a fragment never name a server's base)."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if (scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc or parts.query
            or parts.fragment or "?" in url or "#" in url):
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS[scheme]}{parts.path.rstrip('/')}"


def literal_reference(reference: Any, resource_type: str) -> tuple[str | None, str] | None:
    """What a literal reference names: (None, id) for a relative 'Type/id' and (base, id) for
    an absolute '<base>/Type/id', either optionally ending '/_history/<version>'; the base in
    `server_base`'s spelling, so that it can be compared with the hook's fhirServer. None for a
    contained ('#id'), conditional ('Type?...') or urn reference, or another type."""
    if isinstance(reference, dict):
        reference = reference.get("reference")
    if not isinstance(reference, str) or not reference or len(reference) > 2048:
        return None
    absolute = "://" in reference
    if absolute and ("?" in reference or "#" in reference):
        return None
    try:
        split = urlsplit(reference) if absolute else None
    except ValueError:
        return None
    parts = (split.path if split else reference).rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]  # a version of the resource: the resource
    if len(parts) < 2 or parts[-2] != resource_type or not parts[-1]:
        return None
    if split is None:
        return (None, parts[-1]) if len(parts) == 2 else None
    base = server_base(f"{split.scheme}://{split.netloc}{'/'.join(parts[:-2])}")
    return (base, parts[-1]) if base is not None else None
