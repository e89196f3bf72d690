"""Hypothesis end to end: generated fleet files -> sandbox -> inventory -> plan -> safety holds.

Fewer examples than the in-memory properties (each one seeds the sandbox), but every
layer is real: fleet seeding, the AWS-behaviour layer, the collectors over HTTP, the planner.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amictl.inventory import scan
from amictl.policy import parse_policy_text, plan
from amictl.policy.plan_model import DESTRUCTIVE

POLICY = parse_policy_text("""format: 1
holds:
  - tag: legal-hold
  - deregistration_protection: true
rules:
  - name: all
    select: {families: ["*"]}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
snapshots:
  orphaned: {only_from_images: true, older_than: 1d, action: delete}
""")


@st.composite
def fleets(draw):
    n = draw(st.integers(2, 9))
    lines = ["images:"]
    for i in range(n):
        extra = []
        if draw(st.integers(0, 5)) == 0:
            extra.append("shared_with: ['210987654321']")
        if draw(st.integers(0, 5)) == 0:
            extra.append("deregistration_protection: true")
        if i and draw(st.integers(0, 4)) == 0:
            extra.append(f"reuse_snapshot_of: i{draw(st.integers(0, i - 1))}")
        tags = f"{{family: {draw(st.sampled_from(['a', 'b']))}, version: '{i}'"
        tags += ", legal-hold: 'true'}" if draw(st.integers(0, 6)) == 0 else "}"
        lines.append(
            f"  - {{alias: i{i}, age_days: {draw(st.integers(1, 500))}, tags: {tags}"
            + "".join(", " + e for e in extra)
            + "}"
        )
    refs = []
    used = draw(st.lists(st.integers(0, n - 1), max_size=4, unique=True))
    kinds = ["instances", "launch_configurations", "ssm_parameters", "launch_templates"]
    sections: dict[str, list[str]] = {k: [] for k in kinds}
    for j, u in enumerate(used):
        kind = draw(st.sampled_from(kinds))
        if kind == "instances":
            sections[kind].append(
                f"  - {{alias: r{j}, image: i{u}, state: {draw(st.sampled_from(['running', 'stopped']))}}}"
            )
        elif kind == "launch_configurations":
            sections[kind].append(f"  - {{alias: r{j}, image: i{u}}}")
        elif kind == "ssm_parameters":
            sections[kind].append(f"  - {{alias: r{j}, name: /p/{j}, image: i{u}}}")
        else:
            sections[kind].append(
                f"  - {{alias: r{j}, versions: [{{image: i{u}}}, {{image: i0}}]}}"
            )
    for k, items in sections.items():
        if items:
            refs.append(f"{k}:")
            refs.extend(items)
    return "\n".join(lines + refs) + "\n", used


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(fleets())
def test_generated_fleets_end_to_end(sandbox, data):
    from conftest import Env, _accounts

    text, used = data
    env = Env(sandbox, str(next(_accounts)))
    ids = env.load(text)["aliases"]
    inv = scan(env.connector())
    assert inv.complete
    p = plan(inv, POLICY, dt.datetime.now(dt.UTC))
    dereg = {a.image_id for a in p.actions if a.type == "deregister"}
    for u in used:  # every referenced image stays, whatever kind references it
        assert ids[f"i{u}"] not in dereg
    for a in p.actions:
        if a.type in DESTRUCTIVE and a.image_id and a.type != "delete-snapshot":
            img = inv.by_id[a.image_id]
            assert not img.shared and not img.protected and "legal-hold" not in img.tags
        if a.type == "delete-snapshot" and a.image_id:
            assert all(u.image_id in dereg for u in inv.images_by_snapshot.get(a.snapshot_id, []))
