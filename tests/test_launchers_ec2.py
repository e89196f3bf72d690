"""Issue 26, the EC2-side launchers: Spot requests, Spot Fleets, EC2 Fleets, EMR clusters
and Batch compute environments keep the images they can still launch, in `plan` and in
`apply` (also when the reference appears after the plan, or between two actions of one
apply), with the resource named; the image is retired once the reference is gone; a kind
that cannot be read leaves its region incomplete and retires nothing there."""

from __future__ import annotations

import json

import pytest

from amictl.inventory import scan
from amictl.inventory.kinds import COLLECTORS
from amictl.model import IN_USE_KINDS
from amictl.policy import parse_policy_text, plan
from cli_fleet import invoke
from launcher_makers import DENY, MAKERS
from test_keep_property import attack

POLICY = """format: 1
rules:
  - name: old
    select: {families: ["*"], older_than: 30d}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""
FLEET = """images:
  - {alias: target, age_days: 200, tags: {family: f, version: '1'}}
  - {alias: newest, age_days: 100, tags: {family: f, version: '2'}}
"""
KINDS = sorted(MAKERS)
COLLECTOR_OF = {
    "spot-request": "spot-requests",
    "spot-fleet": "spot-fleets",
    "ec2-fleet": "ec2-fleets",
    "emr-cluster": "emr-clusters",
    "batch-compute-environment": "batch-compute-environments",
}


class Run:
    def __init__(self, env, tmp_path, monkeypatch):
        self.env, self.tmp = env, tmp_path
        for k, v in env.cli_env(tmp_path).items():
            monkeypatch.setenv(k, v)
        (tmp_path / "policy.yaml").write_text(POLICY)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        return invoke([*args, *self.env.cli_args()])

    def plan(self, name: str) -> dict:
        out = self.tmp / f"{name}.json"
        code, _o, err = self("plan", "-p", str(self.tmp / "policy.yaml"), "--out", str(out))
        assert code == 0, err
        return json.loads(out.read_text())

    def apply(self, name: str) -> None:
        code, _o, err = self("apply", str(self.tmp / f"{name}.json"), "--yes", "-o", "json")
        assert code in (0, 3), err  # 3: an action was skipped (kept on the live read)

    def alive(self, image: str) -> bool:
        ec2 = self.env.client("ec2")
        images = ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]
        return image in {i["ImageId"] for i in images}


def deregistered(p: dict) -> set[str]:
    return {a["image_id"] for a in p["actions"] if a["type"] == "deregister"}


@pytest.mark.parametrize("kind", KINDS)
def test_the_launcher_alone_keeps_the_image_until_it_is_gone(env, tmp_path, monkeypatch, kind):
    run = Run(env, tmp_path, monkeypatch)
    ids = env.load(FLEET)["aliases"]
    target = ids["target"]
    stale = run.plan("stale")  # made before the launcher exists
    assert deregistered(stale) == {target}

    resource, undo = MAKERS[kind](env, target, ids["newest"])
    p = run.plan("kept")
    assert target not in deregistered(p)
    reasons = " ".join(next(d for d in p["decisions"] if d["image_id"] == target)["reasons"])
    assert resource in reasons, reasons
    code, out, err = run("refs", target, "-o", "json")
    assert code == 0, err
    refs = json.loads(out)
    use = [r for r in refs if r["kind"] in IN_USE_KINDS]
    assert [r["kind"] for r in use] == [kind] and resource in use[0]["detail"]

    code, out, err = run("ls", "--unused", "-o", "json")
    assert code == 0, err
    assert target not in out  # counted as in use

    run.apply("stale")  # the reference appeared between plan and apply
    assert run.alive(target), f"{kind} {resource}: apply retired an image it can launch"

    undo()
    p = run.plan("gone")
    assert deregistered(p) == {target}
    run.apply("gone")
    assert not run.alive(target)


@pytest.mark.parametrize("kind", KINDS)
def test_the_launcher_made_between_two_actions_of_one_apply_keeps_the_image(
    sandbox, tmp_path, kind
):
    attack(sandbox, tmp_path, kind, "mid", 3, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_access_denied_on_the_kind_leaves_the_region_incomplete(env, sandbox, kind):
    ids = env.load(FLEET)["aliases"]
    sandbox.set_faults([{**DENY[kind], "code": "AccessDenied", "status": 403}])
    try:
        inv = scan(env.connector())
    finally:
        sandbox.clear_faults()
    bad = {(s.kind, s.error_code) for s in inv.incomplete_slices()}
    collector = COLLECTOR_OF[kind]
    assert collector in COLLECTORS
    assert bad == {(collector, "AccessDenied")}
    p = plan(inv, parse_policy_text(POLICY, "p.yaml"), inv.scanned_at)
    assert p.actions == ()
    reasons = " ".join(next(d for d in p.decisions if d.image_id == ids["target"]).reasons)
    assert "incomplete" in reasons and f"{collector}: AccessDenied" in reasons


def test_every_call_of_the_scan_is_covered_by_a_registered_permission(env):
    from amictl.iam import iam_action, permissions

    env.load(
        FLEET + "launch_templates: [{alias: lt, versions: [{image: newest}]}]\n"
        "spot_requests: [{alias: s, image: target}]\n"
        "spot_fleets: [{alias: sf, image: target}]\n"
        "ec2_fleets: [{alias: ef, image: target, launch_template: lt}]\n"
        "emr_clusters: [{alias: c, image: target, group_images: [newest]}]\n"
        "batch_compute_environments: [{alias: ce, image: target, launch_template: lt}]\n"
    )
    conn = env.connector()
    inv = scan(conn)
    assert not inv.incomplete_slices()
    calls = {iam_action(c) for c in inv.api_calls} - {
        "sts:AssumeRole"
    }  # the connector's own, to reach the account
    for kind in ("ec2:DescribeSpotInstanceRequests", "elasticmapreduce:ListInstanceGroups"):
        assert kind in calls
    for command in ("inventory", "plan", "apply"):
        assert calls <= permissions(command), calls - permissions(command)
    found = {r.kind for r in inv.references}
    assert set(MAKERS) <= found <= set(IN_USE_KINDS)


def test_the_sandbox_answers_these_services_as_aws_does(env):
    ids = env.load(FLEET)["aliases"]
    image = ids["target"]
    ec2 = env.client("ec2")

    def spot(kind: str) -> dict:
        return ec2.request_spot_instances(
            Type=kind, LaunchSpecification={"ImageId": image, "InstanceType": "t3.micro"}
        )["SpotInstanceRequests"][0]

    persistent, once = spot("persistent"), spot("one-time")
    ec2.terminate_instances(InstanceIds=[persistent["InstanceId"], once["InstanceId"]])
    ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=[once["SpotInstanceRequestId"]])
    got = {
        r["SpotInstanceRequestId"]: (r["State"], r["Status"]["Code"])
        for r in ec2.describe_spot_instance_requests()["SpotInstanceRequests"]
    }
    assert got[persistent["SpotInstanceRequestId"]] == ("open", "instance-terminated-by-user")
    assert got[once["SpotInstanceRequestId"]][0] == "cancelled"  # still listed

    fid = ec2.request_spot_fleet(
        SpotFleetRequestConfig={
            "IamFleetRole": f"arn:aws:iam::{env.account}:role/fleet",
            "TargetCapacity": 0,
            "Type": "request",
            "LaunchSpecifications": [{"ImageId": image, "InstanceType": "t3.micro"}],
        }
    )["SpotFleetRequestId"]
    (sfr,) = ec2.describe_spot_fleet_requests(SpotFleetRequestIds=[fid])["SpotFleetRequestConfigs"]
    assert sfr["SpotFleetRequestConfig"]["Type"] == "request"

    emr = env.client("emr")
    common = {
        "ReleaseLabel": "emr-6.15.0",
        "JobFlowRole": "EMR_EC2_DefaultRole",
        "ServiceRole": "EMR_DefaultRole",
    }
    groups = emr.run_job_flow(
        Name="g",
        Instances={
            "InstanceGroups": [
                {
                    "InstanceRole": "MASTER",
                    "InstanceType": "m5.xlarge",
                    "InstanceCount": 1,
                    "CustomAmiId": image,
                }
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        **common,
    )["JobFlowId"]
    fleets = emr.run_job_flow(
        Name="f",
        Instances={
            "InstanceFleets": [
                {
                    "InstanceFleetType": "MASTER",
                    "TargetOnDemandCapacity": 1,
                    "InstanceTypeConfigs": [{"InstanceType": "m5.xlarge", "CustomAmiId": image}],
                }
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        **common,
    )["JobFlowId"]
    assert emr.describe_cluster(ClusterId=fleets)["Cluster"]["InstanceCollectionType"] == (
        "INSTANCE_FLEET"
    )
    (f,) = emr.list_instance_fleets(ClusterId=fleets)["InstanceFleets"]
    assert f["InstanceTypeSpecifications"][0]["CustomAmiId"] == image
    (g,) = emr.list_instance_groups(ClusterId=groups)["InstanceGroups"]
    assert g["CustomAmiId"] == image

    def running() -> set[str]:
        res = ec2.describe_instances(
            Filters=[{"Name": "instance-state-name", "Values": ["running"]}]
        )["Reservations"]
        return {i["ImageId"] for r in res for i in r["Instances"]}

    assert image in running()  # the group's instance launched from its CustomAmiId
    emr.terminate_job_flows(JobFlowIds=[groups])
    assert image not in running()  # and terminated with the cluster

    env.client("iam").create_instance_profile(InstanceProfileName="p")
    batch = env.client("batch")
    batch.create_compute_environment(  # no serviceRole: Batch's service-linked role
        computeEnvironmentName="ce",
        type="MANAGED",
        computeResources={
            "type": "EC2",
            "minvCpus": 0,
            "maxvCpus": 4,
            "instanceTypes": ["optimal"],
            "imageId": image,
            "subnets": [ec2.describe_subnets()["Subnets"][0]["SubnetId"]],
            "securityGroupIds": [
                ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
            ],
            "instanceRole": "p",
        },
    )
    (ce,) = batch.describe_compute_environments()["computeEnvironments"]
    assert ce["serviceRole"].endswith(
        "role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch"
    )
    assert ce["computeResources"]["imageId"] == image
