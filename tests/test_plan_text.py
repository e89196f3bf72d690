"""Issue 30.3: a plan item's canonical text and file line, made in one pass
(policy/plan_text.py), are exactly what the JSON encoders make of its ``to_dict()``, for
any strings (quotes, backslashes, control and non-ASCII characters) and optional fields;
an item with a value of an unusual type falls back to the encoders. The twin: with
strings escaped without ``ensure_ascii`` the property fails. Also: the frozen dataclasses
built through their slots (amictl.frozen) are the dataclasses they were."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from typing import Any

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from amictl.frozen import fast_init
from amictl.policy import plan_text
from amictl.policy.plan_model import Action, Decision

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
OPT = st.none() | st.just("") | TEXT
EXPECT = st.lists(
    st.tuples(
        st.sampled_from(["in_use", "protected", "shared", "state", "é"]),
        st.booleans() | TEXT | st.none() | st.integers(-5, 5),
    ),
    max_size=4,
).map(tuple)

ACTIONS = st.builds(
    Action,
    id=TEXT,
    type=st.sampled_from(["mark", "deregister", "delete-snapshot"]) | TEXT,
    account=TEXT,
    region=TEXT,
    rule=TEXT,
    reasons=st.lists(TEXT, max_size=3).map(tuple),
    image_id=OPT,
    snapshot_id=OPT,
    after=st.lists(TEXT, max_size=3).map(tuple),
    size_gib=st.integers(-3, 10**12) | st.sampled_from([True, 2.5]),
    unsafe=st.booleans(),
    family=OPT,
    expect=EXPECT,
)
DECISIONS = st.builds(
    Decision,
    image_id=TEXT,
    region=TEXT,
    account=TEXT,
    verdict=st.sampled_from(["keep", "mark", "deregister"]) | TEXT,
    rule=st.none() | TEXT | st.just(3),
    reasons=st.lists(TEXT | st.just(None), max_size=3).map(tuple),
    family=OPT,
    version=OPT,
)


def _encoders(x: Any) -> tuple[str, str]:
    d = x.to_dict()
    canon = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return canon, json.dumps(d)


def _same(x: Any) -> bool:
    return plan_text.item_texts(x) == _encoders(x)


@settings(max_examples=150, deadline=None)
@given(ACTIONS | DECISIONS)
def test_item_texts_are_the_encoders_texts(x: Any) -> None:
    assert _same(x)
    # the canonical text is also a chunk's piece: a list of it is the list's canonical JSON
    canon = plan_text.item_texts(x)[0]
    assert json.loads(canon) == json.loads(_encoders(x)[0])


def test_unusual_values_fall_back_to_the_encoders() -> None:
    a = Action("a1", "mark", "1", "r", "x", ("why",), size_gib=True)  # type: ignore[arg-type]
    assert plan_text.action_texts(a) is None and _same(a)
    d = Decision("ami-1", "r", "1", "keep", None, ("why", None))  # type: ignore[arg-type]
    assert plan_text.decision_texts(d) is None and _same(d)


def test_twin_without_ascii_escaping_the_property_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The strategy reaches what the escaping must get right: escaping strings without
    ``ensure_ascii`` (json's other string encoder) gives other texts, and one is found."""
    monkeypatch.setattr(plan_text, "_esc", json.encoder.py_encode_basestring)  # type: ignore[attr-defined]
    bad = find(ACTIONS | DECISIONS, lambda x: not _same(x), settings=settings(max_examples=500))
    assert not _same(bad)


def test_fast_init_builds_the_same_frozen_dataclass() -> None:
    a = Action("a1", "mark", "1", "r", "x", ("why",), image_id="ami-1", expect=(("k", 1),))
    b = Action(
        id="a1", type="mark", account="1", region="r", rule="x", reasons=("why",),
        image_id="ami-1", expect=(("k", 1),),
    )  # fmt: skip
    assert a == b and hash(a) == hash(b) and a.size_gib == 0 and a.after == ()
    assert dataclasses.replace(a, id="a2").id == "a2"
    assert type(a) is Action and pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.id = "a3"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Action("a1", "mark")  # type: ignore[call-arg]

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int = 0

    with pytest.raises(TypeError):
        fast_init(NoSlots)
