"""Issue 27: a property over rollouts. For any group kind ($Default, $Latest, a version
number, a template resolving the channel's SSM parameter), any refresh outcome (succeeds,
fails at 50%, hangs then Ctrl-C or SIGTERM, cancelled by someone else) and a second
rollout tried meanwhile, after amictl ends (resumed where it was interrupted) the group
either runs the channel's image on a template version that differs from its previous one
only in the image, or runs exactly what it ran before, and amictl's report says which.
Its twin removes a guard and watches the property break."""

from __future__ import annotations

import signal
import tempfile
import uuid
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amictl import interrupts, rollout
from amictl.errors import Interrupted, SafetyError
from amictl.rollout import run as run_mod
from amictl.state.store import Store
from conftest import Env, _accounts

KINDS = ("$Default", "$Latest", "1", "ssm")
OUTCOMES = ("succeed", "fail", "sigint", "sigterm", "cancelled")

TAGGED = """
images:
  - {{alias: w1, name: web-1.0.0, age_days: 30, tags: {{family: web}}}}
  - {{alias: w2, name: web-1.1.0, age_days: 20, tags: {{family: web}}}}
  - {{alias: w3, name: web-2.0.0, age_days: 1, tags: {{family: web}}}}
launch_templates:
  - {{alias: lt, name: lt-{name}, tags: {{"amictl:family": web}}, default_version: {default},
     versions: [{{image: w1, instance_type: t3.micro}}, {{image: w1, instance_type: c5.large}}]}}
auto_scaling_groups:
  - {{alias: g, name: {name}, launch_template: lt, version: "{version}", desired: 2}}
ssm_parameters:
  - {{alias: prod, name: /amictl/channels/web/prod, image: w2}}
  - {{alias: stg, name: /amictl/channels/web/staging, image: w3}}
"""
SSM = """
images:
  - {{alias: w1, name: web-1.0.0, age_days: 30, tags: {{family: web}}}}
  - {{alias: w2, name: web-1.1.0, age_days: 20, tags: {{family: web}}}}
  - {{alias: w3, name: web-2.0.0, age_days: 1, tags: {{family: web}}}}
launch_templates:
  - {{alias: lt, name: lt-{name}, versions: [{{image_id: "resolve:ssm:/amictl/channels/web/prod",
     instance_type: t3.micro}}]}}
auto_scaling_groups:
  - {{alias: g, name: {name}, launch_template: lt, version: "$Default", desired: 0}}
ssm_parameters:
  - {{alias: prod, name: /amictl/channels/web/prod, image: w1}}
  - {{alias: stg, name: /amictl/channels/web/staging, image: w3}}
"""


def _group(env: Env, name: str) -> tuple[Counter[tuple[str, str]], dict[str, Any]]:
    """What the group runs (image, type per instance) and the template data it launches."""
    g = env.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ][0]
    ec2 = env.client("ec2")
    ids = [i["InstanceId"] for i in g["Instances"]]
    res = ec2.describe_instances(InstanceIds=ids)["Reservations"] if ids else []
    spec = g["LaunchTemplate"]
    (v,) = ec2.describe_launch_template_versions(
        LaunchTemplateId=spec["LaunchTemplateId"], Versions=[spec["Version"]]
    )["LaunchTemplateVersions"]
    runs = Counter((i["ImageId"], i["InstanceType"]) for r in res for i in r["Instances"])
    return runs, dict(v["LaunchTemplateData"])


def check_rollout(sandbox: Any, kind: str, outcome: str, second: bool) -> None:
    """One rollout on a fresh account; AssertionError when the property does not hold."""
    env = Env(sandbox, str(next(_accounts)))
    name = f"p-{uuid.uuid4().hex[:10]}"
    if kind == "ssm":
        ids = env.load(SSM.format(name=name))["aliases"]
        env.client("autoscaling").update_auto_scaling_group(
            AutoScalingGroupName=name, MaxSize=2, DesiredCapacity=2
        )
        env.client("ssm").put_parameter(  # promoted after the instances launched
            Name="/amictl/channels/web/prod", Value=ids["w2"], Type="String", Overwrite=True
        )
    else:
        default = 2 if kind == "1" else 1
        ids = env.load(TAGGED.format(name=name, default=default, version=kind))["aliases"]
    before = _group(env, name)
    store = Store(f"sqlite:///{tempfile.mkdtemp()}/state.db")
    conn = env.connector()
    plan = rollout.make_plan(conn, conn.targets(), "web", "prod", [name], 50, 90, 0)
    rollout.save_plan(store, plan)
    if outcome != "succeed":
        kind_ = "fail" if outcome == "fail" else "hang"
        sandbox.set_instance_refresh(asg=name, outcome=kind_, at=50, count=1)
    asg = env.client("autoscaling")
    acted: list[bool] = []

    def on_progress(e: dict[str, Any]) -> None:
        if acted or e["phase"] != "rollout" or e["status"] != "InProgress" or e["percent"] < 50:
            return
        acted.append(True)
        if outcome == "cancelled":  # someone else, in the console
            asg.cancel_instance_refresh(AutoScalingGroupName=name)
        elif outcome in ("sigint", "sigterm"):
            interrupts.request_stop(signal.SIGINT if outcome == "sigint" else signal.SIGTERM)

    opts = rollout.Options(poll=0, timeout=1.0)
    try:
        out = rollout.execute(conn, store, plan, opts, on_progress)
    except Interrupted:
        interrupts.reset()
        if second:  # another rollout of the group while this one is unfinished: refused
            # (a template that resolves prod follows no other channel: R4 refuses staging)
            channel = "prod" if kind == "ssm" else "staging"
            try:
                other = rollout.make_plan(conn, conn.targets(), "web", channel, [name], 50, 90, 0)
                rollout.execute(conn, store, other, opts)
                raise AssertionError("a second rollout ran over an unfinished one")
            except SafetyError:
                pass
        resumed = rollout.resumable(store, plan.rollout_id)
        assert resumed is not None
        out = rollout.execute(conn, store, resumed, opts)
    finally:
        interrupts.reset()
        sandbox.set_instance_refresh(reset=True)
    (row,) = out.rows()
    after = _group(env, name)
    runs, data = after
    if row["status"] == "succeeded":
        assert out.status == "succeeded"
        assert set(runs) == {(ids["w2"], t) for _i, t in before[0]}, (runs, before)
        want = before[1] if kind == "ssm" else {**before[1], "ImageId": ids["w2"]}
        assert data == want, (data, want)
    elif row["status"] in ("rolled back", "not started"):
        assert out.status == "rolled-back"
        assert after == before, (after, before)
    else:  # only a template that resolves the channel cannot go back: said so
        assert kind == "ssm" and row["status"] == "not rolled back", row
        assert out.status == "rollback-failed"


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(KINDS),
    outcome=st.sampled_from(OUTCOMES),
    second=st.booleans(),
)
def test_every_group_ends_on_the_new_image_or_on_what_it_ran(
    sandbox: Any, kind: str, outcome: str, second: bool
) -> None:
    check_rollout(sandbox, kind, outcome, second)


@pytest.mark.parametrize(
    ("guard", "kind", "outcome", "second"),
    [
        ("latest-restored", "$Latest", "fail", False),
        ("source-version", "$Latest", "succeed", False),
        ("takeover", "1", "sigint", True),
    ],
)
def test_twin_the_property_breaks_without_a_guard(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch, guard: str, kind: str, outcome: str, second: bool
) -> None:
    if guard == "latest-restored":  # rollback restores the default only, as before issue 27
        monkeypatch.setattr(
            run_mod.TemplateChange,
            "latest_followed",
            property(lambda _s: False, lambda _s, _v: None),
        )
    elif guard == "source-version":  # every new version built on the default, as before

        def on_default(self: Any, tc: Any, source: int, desc: str, data: dict[str, Any]) -> int:
            return orig(self, tc, tc.old_default, desc, data)

        orig = run_mod.Runner._version_on
        monkeypatch.setattr(run_mod.Runner, "_version_on", on_default)
    else:  # no conflict check, and any active refresh taken over, as before issue 27

        def any_active(self: Any, g: Any, _version: Any, _aid: str) -> str | None:
            active = [r for r in self._refreshes(g) if r.get("Status") in run_mod.ACTIVE]
            return str(active[0]["InstanceRefreshId"]) if active else None

        monkeypatch.setattr(run_mod, "check_conflicts", lambda *_a: None)
        monkeypatch.setattr(run_mod.Runner, "_mine", any_active)
    with pytest.raises(AssertionError):
        check_rollout(sandbox, kind, outcome, second)
