"""The property of issue 19: whatever reason to keep becomes true in the live account —
between plan and apply, or between two actions of the same apply (the executor's
``between_batches`` hook, not timing) — nothing kept is touched.

For every keep reason the planner knows, Hypothesis draws a fleet, a planned image and
the moment; the reason is made true for that image in the sandbox, the plan is applied,
and the image and its snapshot must still be there. ``test_the_property_fails_when_apply_says_go``
is its twin: with apply's decision replaced by "go", the same property fails.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from amictl.apply import executor as executor_mod
from amictl.apply.executor import ApplyOptions, execute, prepare
from amictl.apply.recheck import Verdict
from amictl.inventory import scan
from amictl.policy import parse_policy_text, plan
from amictl.policy.plan_model import Action
from amictl.state.store import Store
from conftest import Env, _accounts
from launcher_makers import MAKERS as LAUNCHERS
from launcher_makers import beanstalk_environment

REGIONS = ["us-east-1", "eu-west-1"]
POLICY = """format: 1
name: prop
rules:
  - name: old
    select: {families: ["*"]}
    keep: {latest: 1, launched_within: 30d, tags: {keep: "yes"}}
    retire: {deregister: 0d, snapshots: delete}
"""


def _fleet(n: int) -> str:
    return "regions: [us-east-1, eu-west-1]\nimages:\n" + "".join(
        f"  - {{alias: f{i}, name: f-{i}.0.0, age_days: {200 - i}, "
        f"tags: {{family: f, version: '{i}.0.0'}}, snapshots: [{{size_gib: 8}}]}}\n"
        for i in range(1, n + 1)
    )


def _snap(env: Env, image_id: str) -> str:
    img = env.client("ec2").describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"][0]
    return str(img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])


# Each makes one reason to keep true for ``image`` (the newest image is ``newest``).
Maker = Callable[[Env, str, str, list[str]], None]


def _instance(env: Env, image: str, newest: str, others: list[str]) -> None:
    env.client("ec2").run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")


def _template(env: Env, image: str, newest: str, others: list[str]) -> None:
    ec2 = env.client("ec2")
    lt = ec2.create_launch_template(LaunchTemplateName="t", LaunchTemplateData={"ImageId": newest})
    ec2.create_launch_template_version(  # an old, non-default version names it
        LaunchTemplateId=lt["LaunchTemplate"]["LaunchTemplateId"],
        LaunchTemplateData={"ImageId": image},
    )


def _launch_configuration(env: Env, image: str, newest: str, others: list[str]) -> None:
    env.client("autoscaling").create_launch_configuration(
        LaunchConfigurationName="lc", ImageId=image, InstanceType="t3.micro"
    )


def _asg(env: Env, image: str, newest: str, others: list[str]) -> None:
    ec2 = env.client("ec2")
    lt = ec2.create_launch_template(
        LaunchTemplateName="asg-t", LaunchTemplateData={"ImageId": image}
    )
    env.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="asg",
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplate"]["LaunchTemplateId"]},
        MinSize=0,
        MaxSize=0,
        AvailabilityZones=["us-east-1a"],
    )


def _ssm(env: Env, image: str, newest: str, others: list[str]) -> None:
    env.client("ssm").put_parameter(Name="/golden/f", Value=image, Type="String")


def _channel(env: Env, image: str, newest: str, others: list[str]) -> None:
    env.client("ssm").put_parameter(
        Name="/amictl/channels/f/prod", Value=image, Type="String", DataType="aws:ec2:image"
    )


def _channel_history(env: Env, image: str, newest: str, others: list[str]) -> None:
    ssm = env.client("ssm")
    for value in (image, newest):  # it was the channel's release before the current one
        ssm.put_parameter(
            Name="/amictl/channels/f/prod",
            Value=value,
            Type="String",
            DataType="aws:ec2:image",
            Overwrite=True,
        )


def _shared(env: Env, image: str, newest: str, others: list[str]) -> None:
    env.client("ec2").modify_image_attribute(
        ImageId=image, LaunchPermission={"Add": [{"UserId": "210987654321"}]}
    )


def _hold(env: Env, image: str, newest: str, others: list[str]) -> None:
    env.client("ec2").create_tags(Resources=[image], Tags=[{"Key": "legal-hold", "Value": "yes"}])


def _snapshot_hold(env: Env, image: str, newest: str, others: list[str]) -> None:
    env.client("ec2").create_tags(
        Resources=[_snap(env, image)], Tags=[{"Key": "legal-hold", "Value": "case-7"}]
    )


def _snapshot_lock(env: Env, image: str, newest: str, others: list[str]) -> None:
    # retention AWS enforces (issue 29): a compliance lock, still in its cooling-off period
    env.client("ec2").lock_snapshot(
        SnapshotId=_snap(env, image), LockMode="compliance", LockDuration=30, CoolOffPeriod=1
    )


def _protection(env: Env, image: str, newest: str, others: list[str]) -> None:
    env.client("ec2").enable_image_deregistration_protection(ImageId=image)


def _keep_tag(env: Env, image: str, newest: str, others: list[str]) -> None:
    env.client("ec2").create_tags(Resources=[image], Tags=[{"Key": "keep", "Value": "yes"}])


def _latest(env: Env, image: str, newest: str, others: list[str]) -> None:
    ec2 = env.client("ec2")
    for other in others:  # every newer version goes: it is the newest now
        try:
            ec2.deregister_image(ImageId=other)
        except ClientError as exc:  # already gone (this apply retired it)
            assert "InvalidAMIID" in str(exc)


def _copy(env: Env, image: str, newest: str, others: list[str]) -> None:
    ec2 = env.client("ec2", "eu-west-1")
    copy = ec2.copy_image(SourceImageId=image, SourceRegion="us-east-1", Name="f-copy")["ImageId"]
    ec2.create_tags(
        Resources=[copy],
        Tags=[{"Key": "family", "Value": "f"}, {"Key": "version", "Value": "9.0.0"}],
    )


def _launched(env: Env, image: str, newest: str, others: list[str]) -> None:
    # LastLaunchedTime is set by a launch; the instance is gone again at once
    ec2 = env.client("ec2")
    iid = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")[
        "Instances"
    ][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[iid])


# account -> the directory of infrastructure code the policy names (``iac:``)
IAC_DIRS: dict[str, Any] = {}


def _iac(env: Env, image: str, newest: str, others: list[str]) -> None:
    # the team's Terraform names it (issue 26): apply re-reads the code the plan carries
    (IAC_DIRS[env.account] / "main.tf").write_text(
        f'resource "aws_instance" "app" {{\n  ami = "{image}"\n}}\n'
    )


def _stack(env: Env, image: str, newest: str, others: list[str]) -> None:
    body = {
        "Parameters": {"Ami": {"Type": "AWS::EC2::Image::Id"}},
        "Resources": {"H": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
    }
    env.client("cloudformation").create_stack(
        StackName="web",
        TemplateBody=json.dumps(body),
        Parameters=[{"ParameterKey": "Ami", "ParameterValue": image}],
    )


def _beanstalk(env: Env, image: str, newest: str, others: list[str]) -> None:
    beanstalk_environment(env, image)


def _recipe(env: Env, image: str, newest: str, others: list[str]) -> None:
    env.client("imagebuilder").create_image_recipe(
        name="web",
        semanticVersion="1.0.0",
        parentImage=image,
        components=[{"componentArn": "arn:aws:imagebuilder:us-east-1:aws:component/x/x.x.x"}],
    )


def _managed(env: Env, image: str, newest: str, others: list[str]) -> None:
    env.client("ec2").create_tags(
        Resources=[image], Tags=[{"Key": "aws:dlm:lifecycle-policy-id", "Value": "policy-0abc"}]
    )


REASONS: dict[str, Maker] = {
    "instance": _instance,
    "launch-template-version": _template,
    "launch-configuration": _launch_configuration,
    "auto-scaling-group": _asg,
    "ssm-parameter": _ssm,
    "channel": _channel,
    "channel-history": _channel_history,
    "shared": _shared,
    "hold": _hold,
    "snapshot-hold": _snapshot_hold,
    "snapshot-lock": _snapshot_lock,
    "protection": _protection,
    "keep-tag": _keep_tag,
    "latest": _latest,
    "ancestor-copy": _copy,
    "launched-within": _launched,
    "iac": _iac,
    "cloudformation-stack": _stack,  # issue 26: the other services that launch an image
    "beanstalk-environment": _beanstalk,
    "imagebuilder-recipe": _recipe,
    "managed": _managed,
}


def _launcher(kind: str) -> Maker:
    """Issue 26's launchers (Spot, fleets, EMR, Batch): made through their AWS APIs."""

    def make(env: Env, image: str, newest: str, others: list[str]) -> None:
        LAUNCHERS[kind](env, image, newest)

    return make


REASONS.update({kind: _launcher(kind) for kind in LAUNCHERS})


def attack(sandbox: Any, tmp_path: Any, reason: str, when: str, n: int, pick: int) -> None:
    env = Env(sandbox, str(next(_accounts)))
    ids = env.load(_fleet(n))["aliases"]
    conn = env.connector(REGIONS)
    policy = POLICY
    if reason == "iac":
        IAC_DIRS[env.account] = tmp_path / f"iac-{env.account}"
        IAC_DIRS[env.account].mkdir()
        policy += f"iac: ['{IAC_DIRS[env.account]}']\n"
    p = plan(scan(conn), parse_policy_text(policy, "prop.yaml"), dt.datetime.now(dt.UTC))
    order = [ids[f"f{i}"] for i in range(1, n + 1)]
    doomed = [i for i in order if i in {a.image_id for a in p.actions if a.type == "deregister"}]
    assert len(doomed) == n - 1
    target = doomed[pick % len(doomed)]
    newest = order[-1]
    newer = order[order.index(target) + 1 :]
    snap = _snap(env, target)

    def make_true() -> None:
        REASONS[reason](env, target, newest, newer)

    if when == "before":
        make_true()
    fired: list[bool] = []

    def hook(batch: list[Action]) -> None:
        # between the target's mark and its deregister: two actions of the same apply
        if (
            when == "mid"
            and not fired
            and any(a.type == "mark" and a.image_id == target for a in batch)
        ):
            fired.append(True)
            make_true()

    store = Store(f"sqlite:///{tmp_path}/prop-{env.account}.db")
    opts = ApplyOptions(max_destroy=1000, max_share=1.0, allow_whole_family=True, workers=1)
    execute(conn, store, prepare(conn, p, opts, store), opts, between_batches=hook)
    assert when == "before" or fired
    ec2 = env.client("ec2")
    live = {
        i["ImageId"] for i in ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]
    }
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert target in live, f"{reason} ({when}): kept image {target} was deregistered"
    assert snap in left, f"{reason} ({when}): the snapshot of kept image {target} was deleted"


SETTINGS: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "derandomize": True,
    "suppress_health_check": list(HealthCheck),
}
case = {
    "reason": st.sampled_from(sorted(REASONS)),
    "when": st.sampled_from(["before", "mid"]),
    "n": st.integers(3, 4),
    "pick": st.integers(0, 3),
}


def _with_every_reason(fn: Any) -> Any:
    for i, reason in enumerate(sorted(REASONS)):
        fn = example(reason=reason, when=("mid", "before")[i % 2], n=3, pick=i)(fn)
    return fn


def test_nothing_kept_is_touched_whatever_becomes_true_and_when(sandbox, tmp_path):
    @settings(max_examples=6, **SETTINGS)
    @given(**case)
    @_with_every_reason
    def prop(reason: str, when: str, n: int, pick: int) -> None:
        attack(sandbox, tmp_path, reason, when, n, pick)

    prop()


@pytest.mark.parametrize(
    "reason",
    [
        "channel-history",
        "latest",
        "ancestor-copy",
        "shared",
        "iac",
        "cloudformation-stack",
        "spot-request",
        "emr-cluster",
        "snapshot-lock",
    ],
)
def test_the_property_fails_when_apply_says_go(sandbox, tmp_path, monkeypatch, reason):
    """The twin: apply's decision replaced by "go" lets the same attacks through."""
    monkeypatch.setattr(executor_mod, "decide_image", lambda *a, **k: Verdict("go"))
    monkeypatch.setattr(executor_mod, "decide_snapshot", lambda *a, **k: Verdict("go"))

    @settings(max_examples=1, phases=[Phase.explicit], **SETTINGS)
    @given(**case)
    @example(reason=reason, when="mid", n=3, pick=0)
    def weakened(reason: str, when: str, n: int, pick: int) -> None:
        attack(sandbox, tmp_path, reason, when, n, pick)

    with pytest.raises((AssertionError, BaseExceptionGroup)):
        weakened()
