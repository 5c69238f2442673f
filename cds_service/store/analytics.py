"""Figures for the guideline owner: per card kind, cards issued and held back (silent), and how
clinicians answered them (accepted, overridden and why), over a period and week by week."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..guideline.cards import OVERRIDE_REASONS, RULES
from .schema import cards_issued, feedback

UNKNOWN_KIND = "unknown"  # feedback on a card uuid this service never issued (or not yet recorded)
NO_REASON = "(none given)"
FIGURES = ("issued", "silent", "accepted", "overridden")
_REASON_DISPLAY = {c.code: c.display for c in OVERRIDE_REASONS}


@dataclass(frozen=True)
class Period:
    """Whole UTC days, both ends included; None leaves that end open."""

    since: date | None = None
    until: date | None = None

    def bounds(self, column: sa.ColumnElement) -> list[sa.ColumnElement]:
        conditions = []
        if self.since is not None:
            conditions.append(column >= datetime.combine(self.since, time.min))
        if self.until is not None:
            conditions.append(column < datetime.combine(self.until + timedelta(days=1), time.min))
        return conditions


def parse_day(value: str | None, name: str) -> date | None:
    """A YYYY-MM-DD day, or ValueError saying which parameter is wrong."""
    if value is None or value.strip() == "":
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{name} must be a date as YYYY-MM-DD, not {value[:40]!r}") from None


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())  # ISO weeks start on Monday


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def summary(engine: Engine, period: Period = Period()) -> dict:
    """The figures as /analytics.json, the page and `cds-service report` show them."""
    kinds: dict[str, dict[str, Any]] = {}
    weekly: dict[tuple[str, date], dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))

    def kind_row(kind: str) -> dict[str, Any]:
        if kind not in kinds:
            rule = RULES.get(kind)
            kinds[kind] = {"kind": kind, "title": rule.title if rule else "Card not issued by this service",
                           **dict.fromkeys(FIGURES, 0), "acceptanceRate": None,
                           "overrideReasons": {}, "overrideReasonDisplays": {}, "comments": 0}
        return kinds[kind]

    for kind in RULES:  # every kind the guideline has, also those that have not fired yet
        kind_row(kind)

    day_issued = sa.func.date(cards_issued.c.issued_at)
    issued = (sa.select(cards_issued.c.kind, cards_issued.c.silent, day_issued, sa.func.count())
              .where(*period.bounds(cards_issued.c.issued_at))
              .group_by(cards_issued.c.kind, cards_issued.c.silent, day_issued))
    kind_of_feedback = sa.func.coalesce(cards_issued.c.kind, UNKNOWN_KIND)
    joined = feedback.outerjoin(cards_issued, feedback.c.card_uuid == cards_issued.c.card_uuid)
    day_outcome = sa.func.date(feedback.c.outcome_at)
    # Figures about cards: a card answered twice alike (an EHR's retry with a new timestamp, one
    # message per accepted suggestion) counts once (CDS Hooks 2.0: the card uuid identifies it).
    cards_answered = sa.func.count(sa.distinct(feedback.c.card_uuid))
    outcomes = (sa.select(kind_of_feedback, feedback.c.outcome, day_outcome, cards_answered,
                          sa.func.sum(sa.case((feedback.c.comment_given, 1), else_=0)))
                .select_from(joined).where(*period.bounds(feedback.c.outcome_at))
                .group_by(kind_of_feedback, feedback.c.outcome, day_outcome))
    reasons = (sa.select(kind_of_feedback, feedback.c.override_code,
                         sa.func.max(feedback.c.override_display), cards_answered)
               .select_from(joined)
               .where(feedback.c.outcome == "overridden", *period.bounds(feedback.c.outcome_at))
               .group_by(kind_of_feedback, feedback.c.override_code))

    with engine.connect() as db:
        for kind, silent, day, count in db.execute(issued):
            figure = "silent" if silent else "issued"
            kind_row(kind)[figure] += count
            weekly[(kind, week_of(_day(day)))][figure] += count
        for kind, outcome, day, count, comments in db.execute(outcomes):
            if outcome not in ("accepted", "overridden"):
                continue
            row = kind_row(kind)
            row[outcome] += count
            row["comments"] += int(comments or 0)
            weekly[(kind, week_of(_day(day)))][outcome] += count
        for kind, code, display, count in db.execute(reasons):
            row = kind_row(kind)
            code = code or NO_REASON
            row["overrideReasons"][code] = row["overrideReasons"].get(code, 0) + count
            row["overrideReasonDisplays"][code] = display or _REASON_DISPLAY.get(code, code)

    for row in kinds.values():
        answered = row["accepted"] + row["overridden"]
        row["acceptanceRate"] = round(row["accepted"] / answered, 4) if answered else None
    ordered = sorted(kinds.values(), key=lambda r: (r["kind"] == UNKNOWN_KIND,
                                                    -(r["issued"] + r["silent"]), r["kind"]))
    return {
        "period": {"since": period.since.isoformat() if period.since else None,
                   "until": period.until.isoformat() if period.until else None},
        "kinds": ordered,
        "weekly": [{"week": week.isoformat(), "kind": kind, **figures}
                   for (kind, week), figures in sorted(weekly.items(), key=lambda i: (i[0][1], i[0][0]))],
    }
