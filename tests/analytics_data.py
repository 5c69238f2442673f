"""Stored history for analytics tests and the README screenshot: eight weeks of cards and
feedback as a hospital would accumulate them (a silent kind measured, then tuned)."""

from __future__ import annotations

import random
from datetime import timedelta

from cds_service.store import IssuedCard, Store

from cds_service.testing import factories as f

REASONS = [("already-addressed", "Already addressed"), ("patient-declined", "Patient declined"),
           ("not-relevant", "Not clinically relevant"), ("lab-elsewhere", "Lab ordered elsewhere")]
# kind: (indicator, cards a week, share accepted, share overridden, silent)
PLAN = {"mg-severity": ("critical", 9, 0.7, 0.2, False),
        "mg-monitoring": ("warning", 14, 0.45, 0.4, False),
        "mg-contributing": ("warning", 6, 0.3, 0.5, False),
        "mg-order-wasting": ("warning", 5, 0.0, 0.0, True)}


def populate(store: Store, weeks: int = 8, seed: int = 7) -> int:
    """Cards and feedback over `weeks` weeks up to factories.NOW; returns the cards written."""
    rng = random.Random(seed)
    cards, items = [], []
    for week in range(weeks):
        for kind, (indicator, per_week, accepted, overridden, silent) in PLAN.items():
            for n in range(per_week + rng.randint(-2, 3) + (week if kind == "mg-monitoring" else 0)):
                at = f.NOW - timedelta(weeks=weeks - 1 - week, hours=rng.randint(0, 150))
                uuid = f"{kind}-{week}-{n}-{rng.getrandbits(32):08x}"
                cards.append(IssuedCard(uuid, "tacrolimus-magnesium-patient-view", kind, indicator, at, silent))
                if silent:
                    continue
                draw = rng.random()
                answer = at + timedelta(minutes=rng.randint(1, 30))
                if draw < accepted:
                    items.append({"card": uuid, "outcome": "accepted", "outcome_at": answer,
                                  "acceptedSuggestions": [{"id": f"s-{uuid}"}]})
                elif draw < accepted + overridden:
                    code, display = rng.choice(REASONS[:3] if kind != "mg-monitoring" else REASONS)
                    items.append({"card": uuid, "outcome": "overridden", "outcome_at": answer,
                                  "overrideReason": {"reason": {
                                      "code": code, "display": display,
                                      "system": "urn:tacrolimus-magnesium-cds:override-reason"}}})
    store.add_cards(cards)
    store.add_feedback("tacrolimus-magnesium-patient-view", items, store_comments=False, now=f.NOW)
    return len(cards)
