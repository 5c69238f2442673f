"""The monitoring-due card (section 4)."""

from __future__ import annotations

from ...protocol.response import Card
from ..rules import Assessment, MonitoringDue
from .common import CardContext, _card, _detail, _repeat_mg, _symptom_names, _tacrolimus_line, mg_text


def monitoring_card(f: MonitoringDue, a: Assessment, ctx: CardContext) -> Card:
    if f.latest is None and a.preliminary:
        summary = (f"Serum magnesium due: latest result ({a.preliminary[0].day}) is still "
                   "preliminary: order a serum Mg")
        evidence = ["No final serum magnesium result on record."]
    elif f.latest is None and a.unreadable:
        # Section 2: a result exists but could not be read; "never measured" would be untrue.
        summary = (f"Serum magnesium due: latest result ({a.unreadable[0].day}) could not be read: "
                   "order a serum Mg")
        evidence = ["No usable serum magnesium result on record."]
    elif f.latest is None and a.future:
        # Section 2: a future-dated result is not a measurement; "never measured" would hide it.
        summary = (f"Serum magnesium due: the only result ({a.future[0].day}) is dated in the "
                   "future: order a serum Mg")
        evidence = ["No usable serum magnesium result."]
    elif f.latest is None and a.ionized is not None:
        summary = (f"Serum magnesium due: no serum Mg on record (ionized {a.ionized.shown} on "
                   f"{a.ionized.day}): order a serum Mg")
        evidence = ["No usable serum magnesium result on record."]
    elif f.latest is None:
        summary = "Serum magnesium due: never measured: order a serum Mg"
        evidence = ["No usable serum magnesium result on record."]
    else:
        summary = (f"Serum magnesium due: last {mg_text(f.latest)} on {f.latest.day} "
                   f"({f.interval.days}-day interval): order a serum Mg")
        evidence = [f"Last usable serum {mg_text(f.latest)} on {f.latest.day}."]
    evidence.append(f"Interval that applies: every {f.interval.days} days ({f.interval.reason}).")
    evidence.append(_tacrolimus_line(a))
    if f.symptoms:
        evidence.append(f"Recent symptoms: {_symptom_names(f.symptoms)}.")
    if a.ionized is not None:
        evidence.append(f"Ionized magnesium {a.ionized.shown} on {a.ionized.day} (not a serum level).")
    advice = ["Order a serum magnesium level now."]
    return _card(ctx, "mg-monitoring", "warning", summary,
                 _detail(evidence, advice, a, "mg-monitoring"),
                 # Due now: within a week, or within the interval when it is shorter (inpatient).
                 (_repeat_mg(ctx, 1 if f.symptoms else min(7, f.interval.days), "monitoring due"),))
