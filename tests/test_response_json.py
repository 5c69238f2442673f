"""to_json (the response serialiser's hot path) keeps the spec's rule: same output as the plain
recursive definition for any mix of dataclasses, mappings, tuples, lists and scalars."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from collections.abc import Mapping

from hypothesis import given, strategies as st

from cds_service.protocol.response import Action, Card, Coding, Source, Suggestion, to_json


def reference(value: Any) -> Any:
    """The definition: dataclass fields, mappings and sequences without null or empty members."""
    if hasattr(value, "__dataclass_fields__"):
        value = {name: getattr(value, name) for name in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            converted = reference(item)
            if converted is None or converted == "" or converted == [] or converted == {}:
                continue
            out[key] = converted
        return out
    if isinstance(value, (list, tuple)):
        return [c for c in (reference(item) for item in value)
                if c is not None and c != "" and c != [] and c != {}]
    return value


@dataclass(frozen=True)
class Other:
    a: Any = None
    b: Any = ()


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.sampled_from(["", "x", "critical"]), st.text(max_size=3))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=3), children, max_size=4),
        st.dictionaries(st.text(max_size=3), children, max_size=3).map(MappingProxyType),
        st.builds(Other, children, children),
        st.builds(Coding, st.text(max_size=3), st.text(max_size=3), children),
    ),
    max_leaves=25,
)


@given(values)
def test_to_json_matches_the_definition(value):
    assert to_json(value) == reference(value)


def test_a_card_serialises_as_the_definition_says():
    card = Card(summary="s", indicator="warning", source=Source("label", topic=Coding("u", "c")),
                suggestions=(Suggestion("do", actions=(Action("create", "d", {"resourceType": "X",
                                                                              "note": [], "a": ""}),)),),
                uuid="u-1")
    assert to_json(card) == reference(card)
    assert "note" not in to_json(card)["suggestions"][0]["actions"][0]["resource"]
