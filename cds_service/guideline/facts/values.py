"""Reading FHIR values: dates, numbers, codings, references, statuses (docs/clinical-rules.md section 2).

Lenient readers shared by every resource kind: what cannot be read is None, never an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

Resource = Mapping[str, Any]


PLAUSIBLE_YEARS = (1900, 2200)


def number(value: float) -> str:
    """A value as a clinician writes it: '1.0', '0.45', '8', never '1' for 1.0 or '1e+02'."""
    if value == int(value) and abs(value) >= 10:
        return str(int(value))
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def clip(text: str, limit: int) -> str:
    """Text from the EHR, cut to what a card may echo (hostile input must not bloat cards)."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


# FHIR date, dateTime and instant: YYYY, YYYY-MM, YYYY-MM-DD, or a full time with any number of
# fractional-second digits and a zone. Parsed here rather than with datetime.fromisoformat,
# which before Python 3.11 refuses fractions other than 3 or 6 digits (section 2).
_FHIR_DATETIME = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?)?)?)?$")


def parse_datetime(value: Any) -> datetime | None:
    """FHIR date/dateTime/instant (possibly partial) -> aware UTC datetime, or None.

    The regex decides what is accepted. The common forms are built the cheap way (a lab record
    has two dates per Observation): the canonical instants EHRs send (`_is_canonical_instant`)
    without the regex, and after it, a full time with seconds through
    ``datetime.fromisoformat`` (C code; any refusal falls back to the general path, so it only
    ever gives the same answer faster), a date alone directly in UTC. tests/test_facts_fast.py
    compares this with the general path over the fixtures' dates and generated edge cases.
    """
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    if _is_canonical_instant(value):  # how EHRs send most times: no regex needed
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not timezone.utc:
                parsed = parsed.astimezone(timezone.utc)
            return parsed if PLAUSIBLE_YEARS[0] <= parsed.year <= PLAUSIBLE_YEARS[1] else None
        except (ValueError, OverflowError):
            pass  # the general path below gives the answer
    text = value.strip()
    found = _FHIR_DATETIME.match(text)
    if found is None:
        return None
    year, month, day_, hour, minute, second, fraction, zone = found.groups()
    if second is not None and text.isascii():
        try:
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is not None:
                if parsed.tzinfo is not timezone.utc:
                    parsed = parsed.astimezone(timezone.utc)
                return parsed if PLAUSIBLE_YEARS[0] <= parsed.year <= PLAUSIBLE_YEARS[1] else None
        except (ValueError, OverflowError):
            pass  # the general path gives the answer (None, or a form fromisoformat refuses)
    elif hour is None and day_ is not None and text.isascii():
        try:
            parsed = datetime(int(year), int(month), int(day_), tzinfo=timezone.utc)
        except ValueError:
            return None
        return parsed if PLAUSIBLE_YEARS[0] <= parsed.year <= PLAUSIBLE_YEARS[1] else None
    return _parse_matched(year, month, day_, hour, minute, second, fraction, zone)


def _is_canonical_instant(text: str) -> bool:
    """YYYY-MM-DDTHH:MM:SS followed by Z, .fffZ or ±HH:MM, in ASCII: forms the regex accepts
    whenever the digit places hold digits, which datetime.fromisoformat checks itself."""
    size = len(text)
    if size == 20:
        tail = text[19] == "Z"
    elif size == 24:
        tail = text[19] == "." and text[23] == "Z"
    elif size == 25:
        tail = text[19] in "+-" and text[22] == ":"
    else:
        return False
    return (tail and text[10] == "T" and text[4] == "-" and text[7] == "-" and text[13] == ":"
            and text[16] == ":" and text.isascii())


def _parse_matched(year, month, day_, hour, minute, second, fraction, zone) -> datetime | None:  # type: ignore[no-untyped-def]
    """The general path: the regex's groups -> aware UTC datetime, or None."""
    try:
        tz = timezone.utc
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        parsed = datetime(int(year), int(month or 1), int(day_ or 1), int(hour or 0),
                          int(minute or 0), int(second or 0), micro, tzinfo=tz)
        parsed = parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    # A date outside any clinical record (year 1, year 9999) is a data error, not a date:
    # it would also overflow the interval arithmetic of the rules.
    return parsed if PLAUSIBLE_YEARS[0] <= parsed.year <= PLAUSIBLE_YEARS[1] else None


def codings(concept: Any) -> list[Mapping[str, Any]]:
    if not isinstance(concept, dict):
        return []
    found = concept.get("coding")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def coding_keys(concept: Any) -> set[tuple[str, str]]:
    return {(str(c.get("system", "")), str(c.get("code", ""))) for c in codings(concept)
            if c.get("code") is not None}


def concept_text(concept: Any) -> str:
    """All human-readable text of a CodeableConcept: its text and every coding display."""
    if not isinstance(concept, dict):
        return ""
    parts = [concept.get("text")] + [c.get("display") for c in codings(concept)]
    return " ".join(p for p in parts if isinstance(p, str) and p)


def first_code(concept: Any, system: str | None = None) -> str | None:
    for c in codings(concept):
        if system is None or c.get("system") == system:
            code = c.get("code")
            if isinstance(code, str):
                return code
    return None


def reference_id(reference: Any, resource_type: str) -> str | None:
    """'Patient/123' (or a full URL ending so) -> '123' when it names that type."""
    if not isinstance(reference, dict):
        return None
    ref = reference.get("reference")
    if not isinstance(ref, str):
        return None
    parts = ref.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type:
        return parts[-1]
    if len(parts) >= 4 and parts[-4] == resource_type and parts[-2] == "_history":
        return parts[-3]
    return None


def medication_key(base: str, medication_id: str) -> str:
    """How a Medication of the server at `base` (``server_base``'s spelling) is found by an
    absolute reference among the Medications read (an id alone cannot hold a '/')."""
    return f"{base}/Medication/{medication_id}"


def status_code(value: Any) -> str | None:
    """Condition-style status: a CodeableConcept (R4) or a plain string (STU3)."""
    if isinstance(value, str):
        return value
    return first_code(value)
