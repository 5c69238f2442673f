"""The service's error values, each with its HTTP status, rendered as a FHIR OperationOutcome.

CDS Hooks 3.0 recommends OperationOutcome bodies for errors; messages say what was wrong with
the request, never echo patient data, and never carry a stack trace.
"""

from __future__ import annotations


class ServiceError(Exception):
    status = 500
    code = "exception"  # FHIR issue-type

    def __init__(self, message: str, *, expression: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.expression = expression or []

    def outcome(self) -> dict:
        issue = {"severity": "error", "code": self.code, "details": {"text": self.message}}
        if self.expression:
            issue["expression"] = self.expression
        return {"resourceType": "OperationOutcome", "issue": [issue]}


class InvalidRequest(ServiceError):
    status = 400
    code = "invalid"


class Unauthorized(ServiceError):
    status = 401
    code = "login"


class Forbidden(ServiceError):
    """The caller may not see this (analytics and metrics without the admin token)."""

    status = 403
    code = "forbidden"


class UnknownService(ServiceError):
    status = 404
    code = "not-found"


class DataUnobtainable(ServiceError):
    """Data the rules cannot do without is neither prefetched nor fetchable (CDS Hooks: 412)."""

    status = 412
    code = "processing"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "too-costly"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "not-supported"


class StoreUnavailable(ServiceError):
    """The state database cannot be reached; the client may retry."""

    status = 503
    code = "transient"


def outcome(status: int, message: str, code: str = "exception") -> dict:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "details": {"text": message}}]}
