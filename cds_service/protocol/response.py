"""CDS Hooks 2.0 response types, serialised once with the spec's JSON rule.

The spec forbids `null` and empty values in responses (except `cards: []`); `to_json` drops
them, so builders can leave optional fields unset.
"""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any

INDICATOR_ORDER = {"critical": 0, "warning": 1, "info": 2}


_generator = random.Random()  # seeded from the OS


def _reseed() -> None:
    _generator.seed()  # a forked worker (gunicorn --preload) must not repeat its parent's ids


os.register_at_fork(after_in_child=_reseed)


def new_uuid() -> str:
    """A version-4 UUID for cards and suggestions. They identify a card in feedback, they are
    not secrets, so a seeded PRNG (no system call per id) is enough."""
    return str(uuid.UUID(int=_generator.getrandbits(128), version=4))


@dataclass(frozen=True)
class Coding:
    system: str
    code: str
    display: str | None = None


@dataclass(frozen=True)
class Source:
    label: str
    url: str | None = None
    topic: Coding | None = None


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    type: str = "absolute"  # absolute | smart


@dataclass(frozen=True)
class Action:
    type: str  # create | update | delete
    description: str
    resource: Mapping[str, Any] | None = None
    resourceId: str | None = None


@dataclass(frozen=True)
class Suggestion:
    label: str
    actions: tuple[Action, ...] = ()
    isRecommended: bool | None = None
    uuid: str = field(default_factory=new_uuid)


@dataclass(frozen=True)
class Card:
    summary: str
    indicator: str  # info | warning | critical
    source: Source
    detail: str | None = None
    suggestions: tuple[Suggestion, ...] = ()
    selectionBehavior: str | None = None
    overrideReasons: tuple[Coding, ...] = ()
    links: tuple[Link, ...] = ()
    uuid: str = field(default_factory=new_uuid)

    @property
    def topic(self) -> str | None:
        return self.source.topic.code if self.source.topic else None


_SCALARS = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _is_empty(value: Any) -> bool:
    """None, "", [] or {} (the values the spec forbids in a response)."""
    return value is None or (isinstance(value, (str, list, dict)) and not value)


def to_json(value: Any) -> Any:
    """Dataclasses, tuples and mappings -> JSON-ready values without null or empty members.

    Built for the hot path (a few thousand values per response): exact types are checked first,
    `typing.Mapping` (an ABC check, ~10x slower) only for what is left."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        items = value.items()
    elif hasattr(value, "__dataclass_fields__"):
        names = _FIELD_NAMES.get(kind)
        if names is None:
            names = _FIELD_NAMES[kind] = tuple(value.__dataclass_fields__)
        items = [(name, getattr(value, name)) for name in names]
    elif kind is list or kind is tuple or isinstance(value, (list, tuple)):
        return [c for c in map(to_json, value) if not _is_empty(c)]
    elif isinstance(value, Mapping):
        items = value.items()
    else:
        return value
    out = {}
    for key, item in items:
        if type(item) in _SCALARS:  # most members: no call (None and "" are left out)
            if item is not None and item != "":
                out[key] = item
            continue
        converted = to_json(item)
        if not _is_empty(converted):
            out[key] = converted
    return out


def cards_response(cards: list[Card]) -> dict:
    """The hook response: cards ordered critical, warning, info (stable within a level)."""
    ordered = sorted(cards, key=lambda c: INDICATOR_ORDER.get(c.indicator, 3))
    return {"cards": [to_json(card) for card in ordered]}
