"""Drift invariants over generated families (Hypothesis, in memory): what is behind is
exactly what runs an older version than the channel, by as many versions as lie between."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from amictl.model import Image, Inventory, Reference, version_key
from amictl.rollout.drift import drift

A, R = "111122223333", "us-east-1"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

versions = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 12), st.integers(0, 12)).map(
        lambda t: f"{t[0]}.{t[1]}.{t[2]}"
    ),
    min_size=1,
    max_size=8,
    unique=True,
)


@settings(max_examples=150, deadline=None)
@given(vs=versions, data=st.data())
def test_versions_behind_counts_the_versions_in_between(vs: list[str], data: st.DataObject) -> None:
    ordered = sorted(vs, key=version_key)
    images = [
        Image(
            f"ami-{i:08x}",
            A,
            R,
            name=f"web-{v}",
            owner_id=A,
            created_at=T0 + dt.timedelta(days=i),
            tags={"family": "web", "version": v},
        )
        for i, v in enumerate(ordered)
    ]
    chan = data.draw(st.integers(0, len(ordered) - 1))
    runs = data.draw(st.lists(st.integers(0, len(ordered) - 1), max_size=10))
    refs = [Reference("channel", "/amictl/channels/web/prod", "c", images[chan].image_id, A, R)]
    refs += [
        Reference("instance", f"i-{n:08x}", "running", images[i].image_id, A, R)
        for n, i in enumerate(runs)
    ]
    inv = Inventory(images=images, references=refs, accounts=[A], regions=[R])
    (group,) = drift(inv, "web")
    got = {b["id"]: b["versions_behind"] for b in group["behind"]}
    want = {f"i-{n:08x}": chan - i for n, i in enumerate(runs) if i < chan}
    assert got == want
    for b in group["behind"]:
        assert b["days_behind"] == chan - ordered.index(b["version"])  # one version a day
    assert group["max_versions_behind"] == max(want.values(), default=0)
