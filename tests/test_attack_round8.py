"""Round 8 attacks (hostile4): this session's speed work (issue 30) against the old code
(commit 368d2c7). Each xfail(strict) test is an attack that got through: the lead fixes
the code and removes the mark."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from amictl.keep import decide as keep_decide
from amictl.model import Image
from amictl.policy.model import Rule, Select

LONDON = ZoneInfo("Europe/London")


@pytest.mark.xfail(
    strict=True,
    reason="keep/decide.py Selector.__init__: cutoff = now - older_than is wall-clock "
    "arithmetic in now's zone; across a DST change it is an hour off the old "
    "now - created >= older_than (a library caller's zone-aware now selects a younger image)",
)
def test_older_than_across_dst_is_the_old_verdict() -> None:
    """now in BST (+1), 30 days back is GMT (+0): the old code measured elapsed time."""
    now = dt.datetime(2026, 3, 30, 12, 0, tzinfo=LONDON)  # 11:00Z
    older = dt.timedelta(days=30)
    created = dt.datetime(2026, 2, 28, 11, 30, tzinfo=dt.UTC)  # 29 days 23.5 hours old
    rule = Rule("r", select=Select(families=("*",), older_than=older))
    img = Image("ami-1", "1", "r", owner_id="1", created_at=created, family="web")
    old = not (now - created < older)  # 368d2c7's selects()
    assert old is False
    assert keep_decide.selects(rule, img, now) is old
