"""Structured logs (one JSON object per line) that never carry patient data or tokens.

Only what operations need is logged: hookInstance, service id, status, card kinds, which
prefetch keys were fetched, timings and error classes. Request bodies, patient ids, values and
tokens are never passed to the logger.
"""

from __future__ import annotations

import json
import logging
import sys
import time

LOGGER_NAME = "cds_service"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
                 "level": record.levelname.lower(), "event": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update((k, v) for k, v in fields.items() if v is not None)
        return json.dumps(entry, separators=(",", ":"), default=str)


def configure(level: str) -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    if not any(getattr(h, "_cds_json", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._cds_json = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())
    return logger


def event(name: str, level: int = logging.INFO, **fields: object) -> None:
    logging.getLogger(LOGGER_NAME).log(level, name, extra={"fields": fields})
