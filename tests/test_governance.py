"""Issue 20 end to end: allowed-images from the channels (on the demo fleet), provenance
watermarks on create, lineage, usage reports of shared images, AWS's reference check."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from amictl.aws.session import Target
from amictl.governance import allowed, references, usage
from amictl.governance.watermarks import attach_family_watermark
from amictl.model import Reference
from amictl.sandbox import builtin
from cli_fleet import CliFleet, invoke
from conftest import Env, _accounts

SMALL = """
regions: [us-east-1, eu-west-1]
images:
  - {alias: base, name: base-1, tags: {family: base, version: "1"}}
  - {alias: web1, name: web-1, tags: {family: web, version: "1"}}
  - {alias: web2, name: web-2, tags: {family: web, version: "2"}}
"""


def target(env: Env, region: str = "us-east-1") -> Target:
    return Target(env.account, region, env.role_arn)


# ---------------------------------------------------------------- Allowed AMIs


class DemoFleet(CliFleet):
    """The built-in demo fleet, in a fresh account of the shared sandbox."""

    def __init__(self, sandbox, tmp):
        self.env = Env(sandbox, str(next(_accounts)))
        fleet = builtin.demo()
        fleet["account"] = self.env.account
        self.ids = sandbox.load_text(yaml.safe_dump(fleet), "<demo>")["aliases"]
        self.vars = self.env.cli_env(tmp)
        self.tmp = tmp
        self.regions = []


def test_allowed_images_from_channels_on_the_demo_fleet(sandbox, tmp_path):
    demo = DemoFleet(sandbox, tmp_path)
    ids, ec2 = demo.ids, demo.env.client("ec2")
    # the web-server family carries its watermark; batch-worker does not
    attach_family_watermark(ec2, ids["web-server-v8"], "web-server")
    six = ec2.describe_images(ImageIds=[ids["batch-worker-v6"]])["Images"][0]
    version = {t["Key"]: t["Value"] for t in six["Tags"]}["version"]  # 6.0.x: as its name says
    demo.json("promote", "batch-worker", version, "--channel", "prod")
    # the demo fleet has the channel web-server/prod, and an instance launched from the
    # public Amazon Linux image: not what the channels point at
    stray_id = ids["stray-1"]

    out = demo.json("allowed-images", "set", "--from-channels", "--mode", "audit-mode", "--yes")
    (change,) = out["changes"]
    acct = demo.env.account
    assert change["criteria"] == [
        {"ImageWatermarks": [{"WatermarkKey": f"{acct}:amictl/web-server"}]},
        {"ImageProviders": [acct], "ImageNames": ["base-al2023-*", "batch-worker-*", "web-*"]},
    ]
    assert [r["instance_id"] for r in change["would_be_noncompliant"]] == [stray_id]

    (st,) = demo.json("allowed-images", "status")
    assert st["state"] == "audit-mode" and st["criteria"] == change["criteria"]
    assert [i["instance_id"] for i in st["noncompliant_instances"]] == [stray_id]
    assert st["noncompliant_instances"][0]["image_owner"] == "amazon"
    # the owned demo instances stay compliant: AWS never restricts owned images
    assert st["running_instances"] > 1

    journal = demo.json("journal", "--plan", out["journal"])
    assert journal, journal

    # enabled is refused while the stray instance would be non-compliant ...
    code, _out, err = demo("allowed-images", "set", "--from-channels", "--mode", "enabled", "--yes")
    assert code == 3 and stray_id in err
    assert demo.json("allowed-images", "status")[0]["state"] == "audit-mode"
    # naming another instance does not do
    code, _out, err = demo(
        "allowed-images",
        "set",
        "--from-channels",
        "--mode",
        "enabled",
        "--yes",
        "--allow-noncompliant",
        "i-0123456789abcdef0",
    )
    assert code == 3 and stray_id in err
    # ... unless it is named; --also amazon would have allowed it
    out = demo.json(
        "allowed-images",
        "set",
        "--from-channels",
        "--mode",
        "enabled",
        "--allow-noncompliant",
        stray_id,
        "--yes",
    )
    assert demo.json("allowed-images", "status")[0]["state"] == "enabled"
    out = demo.json(
        "allowed-images", "set", "--from-channels", "--also", "amazon", "--mode", "enabled", "--yes"
    )
    assert out["changes"][0]["would_be_noncompliant"] == []
    assert out["changes"][0]["criteria"][-1] == {"ImageProviders": ["amazon"]}


def test_done_means_audit_mode_then_status_on_the_demo_sandbox(sandbox, tmp_path):
    """Issue 20's "done": on the demo fleet as it is seeded, set --from-channels
    --mode audit-mode, then status -o json shows the criteria and the non-compliant
    instance."""
    demo = DemoFleet(sandbox, tmp_path)
    demo.json("allowed-images", "set", "--from-channels", "--mode", "audit-mode", "--yes")
    (st,) = demo.json("allowed-images", "status")
    assert st["state"] == "audit-mode"
    assert st["criteria"] == [
        {
            "ImageProviders": [demo.env.account],
            "ImageNames": ["base-al2023-*", "web-*", "web-server-*"],
        }
    ]
    assert [i["instance_id"] for i in st["noncompliant_instances"]] == [demo.ids["stray-1"]]


def test_allowed_images_bad_input_and_no_channels(sandbox, tmp_path):
    run = CliFleet(sandbox, SMALL, tmp_path)
    code, _o, err = run("allowed-images", "set", "--from-channels", "--mode", "audit-mode", "--yes")
    assert code == 2 and "no release channel" in err
    code, _o, err = run(
        "allowed-images", "set", "--from-channels", "--also", "amazn", "--mode", "enabled"
    )
    assert code == 2 and "amazn" in err
    # without --yes and no terminal: nothing is changed
    code, _o, err = run(
        "allowed-images", "set", "--from-channels", "--also", "amazon", "--mode", "audit-mode"
    )
    assert code == 2 and "confirmation" in err
    assert run.json("allowed-images", "status")[0]["state"] == "disabled"


def test_local_evaluation_matches_the_sandbox(env):
    """amictl's own evaluation of criteria (used before they are set) agrees with what the
    sandbox answers once they are set, on the same images."""
    ids = env.load(
        SMALL
        + """
  - {alias: al, name: al2023-ami-1, owner: "137112412989", owner_alias: amazon, public: true,
     age_days: 100}
  - {alias: old, name: vendor-old, owner: "444455556666", public: true, age_days: 500,
     deprecated_days_ago: 10}
"""
    )["aliases"]
    ec2 = env.client("ec2")
    cases = [
        [{"ImageProviders": ["amazon"]}],
        [
            {
                "ImageNames": ["vendor-*"],
                "DeprecationTimeCondition": {"MaximumDaysSinceDeprecated": 30},
            }
        ],
        [
            {
                "ImageNames": ["vendor-*"],
                "DeprecationTimeCondition": {"MaximumDaysSinceDeprecated": 5},
            }
        ],
        [
            {
                "ImageProviders": ["444455556666"],
                "CreationDateCondition": {"MaximumDaysSinceCreated": 90},
            }
        ],
    ]
    now = dt.datetime.now(dt.UTC)
    ec2.enable_allowed_images_settings(AllowedImagesSettingsState="audit-mode")
    for crit in cases:
        ec2.replace_image_criteria_in_allowed_images_settings(ImageCriteria=crit)
        imgs = ec2.describe_images(ImageIds=[ids["al"], ids["old"], ids["web1"]])["Images"]
        for img in imgs:
            assert allowed.allows(img, crit, env.account, now) is img["ImageAllowed"], (crit, img)


# ---------------------------------------------------------------- provenance


def test_create_attaches_the_family_watermark_and_lineage_follows_it(sandbox, env, tmp_path):
    run = CliFleet(sandbox, SMALL, tmp_path)
    ec2 = run.env.client("ec2")
    inst = ec2.run_instances(ImageId=run.ids["base"], MinCount=1, MaxCount=1)["Instances"][0]
    made = run.json(
        "create", "from-instance", inst["InstanceId"], "--family", "app", "--bump", "minor"
    )
    key = f"{run.env.account}:amictl/app"
    assert made["watermark"] == key and made["warnings"] == []
    img = ec2.describe_images(ImageIds=[made["image_id"]])["Images"][0]
    assert [w["WatermarkKey"] for w in img["ImageWatermarks"]] == [key]
    copies = run.json("copy", made["image_id"], "--to-region", "eu-west-1")
    copy_id = copies[0]["image_id"]
    eu = run.env.client("ec2", "eu-west-1")
    marks = eu.describe_images(ImageIds=[copy_id])["Images"][0]["ImageWatermarks"]
    assert [w["WatermarkKey"] for w in marks] == [key]  # provenance survives the copy

    out = run.json("lineage", copy_id, "--region", "us-east-1,eu-west-1")
    assert out["source"] == "GetImageAncestry"
    chain = out["ancestry"]
    assert [r["image_id"] for r in chain] == [copy_id, made["image_id"], run.ids["base"]]
    assert [r["region"] for r in chain] == ["eu-west-1", "us-east-1", "us-east-1"]
    assert all(r["state"] == "available" for r in chain)
    ec2.deregister_image(ImageId=run.ids["base"])
    chain = run.json("lineage", copy_id, "--region", "us-east-1,eu-west-1")["ancestry"]
    assert chain[-1]["state"] == "gone"

    # without GetImageAncestry (no permission): the lineage tags, said once
    sandbox.set_faults(
        [{"action": "GetImageAncestry", "code": "UnauthorizedOperation", "status": 403}]
    )
    try:
        code, out_text, err = run(
            "lineage", copy_id, "--region", "us-east-1,eu-west-1", "-o", "json"
        )
    finally:
        sandbox.clear_faults()
    assert code == 0 and "GetImageAncestry not used" in err
    got = json.loads(out_text)
    assert got["source"] == "lineage tags"
    assert [r["image_id"] for r in got["ancestry"]][:2] == [copy_id, made["image_id"]]

    # --no-watermark attaches none; a bad template is refused before any AWS call
    other = run.json(
        "create",
        "from-instance",
        inst["InstanceId"],
        "--family",
        "app",
        "--bump",
        "minor",
        "--no-watermark",
    )
    assert other["watermark"] is None
    code, _o, err = run(
        "create",
        "from-instance",
        inst["InstanceId"],
        "--family",
        "app",
        "--bump",
        "minor",
        "--watermark",
        "{nope}",
    )
    assert code == 2


def test_a_watermark_failure_is_a_warning_not_an_error(sandbox, tmp_path):
    run = CliFleet(sandbox, SMALL, tmp_path)
    ec2 = run.env.client("ec2")
    inst = ec2.run_instances(ImageId=run.ids["base"], MinCount=1, MaxCount=1)["Instances"][0]
    sandbox.set_faults(
        [{"action": "AttachImageWatermark", "code": "UnauthorizedOperation", "status": 403}]
    )
    try:
        code, out, err = run(
            "create",
            "from-instance",
            inst["InstanceId"],
            "--family",
            "app",
            "--version",
            "1",
            "-o",
            "json",
        )
    finally:
        sandbox.clear_faults()
    assert code == 0, err
    made = json.loads(out)
    assert made["watermark"] is None and "UnauthorizedOperation" in made["warnings"][0]
    assert "warning: no provenance watermark" in err


# ---------------------------------------------------------------- usage reports


def test_usage_and_shared_image_consumers(sandbox, tmp_path):
    run = CliFleet(sandbox, SMALL, tmp_path)
    ec2 = run.env.client("ec2")
    consumer = Env(sandbox, str(next(_accounts)))
    idle = Env(sandbox, str(next(_accounts)))
    image = run.ids["web2"]
    for acct in (consumer.account, idle.account):
        ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": acct}]})
    cc = consumer.client("ec2")
    cc.run_instances(ImageId=image, MinCount=1, MaxCount=1)
    cc.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": image})

    reports = run.json("usage", image, "--poll", "1")
    (rep,) = reports
    assert rep["reused"] is False
    assert rep["consumers"] == {consumer.account: {"ec2:Instance": 1, "ec2:LaunchTemplate": 1}}

    conn = run.env.connector()
    got = usage.shared_image_consumers(
        conn, target(run.env), image, [consumer.account, idle.account], wait_delay=1
    )
    assert got == {consumer.account: ["1 instance", "1 launch template"]}
    # the report made by `usage` (every account) was reused: no new report
    assert conn.counter.snapshot().get("ec2.CreateImageUsageReport", 0) == 0
    assert usage.shared_image_consumers(conn, target(run.env), image, []) == {}
    # an older report is not reused
    got = usage.usage_report(
        conn, target(run.env), image, [idle.account], max_age=dt.timedelta(0), wait_delay=1
    )
    assert got["reused"] is False and got["consumers"] == {}
    assert conn.counter.snapshot()["ec2.CreateImageUsageReport"] == 1

    # unshare: refused while the consumer still uses it, the account named
    code, _o, err = run("unshare", image, "--account", consumer.account, "--poll", "1")
    assert code == 3 and consumer.account in err and "1 instance" in err
    perms = ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")
    assert {"UserId": consumer.account} in perms["LaunchPermissions"]
    code, _o, err = run("unshare", image, "--account", idle.account, "--poll", "1")
    assert code == 0, err  # nobody there uses it
    code, _o, err = run(
        "unshare", image, "--account", consumer.account, "--poll", "1", "--force-unsafe"
    )
    assert code == 0 and "still used by" in err
    perms = ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")
    assert perms["LaunchPermissions"] == []


# ---------------------------------------------------------------- AWS's reference check


def test_aws_image_references_batches_and_disagreements(sandbox, tmp_path):
    text = "images:\n" + "".join(
        f"  - {{alias: i{n}, name: img-{n}, tags: {{family: f, version: '{n}'}}}}\n"
        for n in range(12)
    )
    run = CliFleet(sandbox, text, tmp_path)
    ids = [run.ids[f"i{n}"] for n in range(12)]
    ec2, ssm = run.env.client("ec2"), run.env.client("ssm")
    inst = ec2.run_instances(ImageId=ids[11], MinCount=1, MaxCount=1)["Instances"][0]
    ssm.put_parameter(Name="/golden/f", Value=ids[0], Type="String", DataType="aws:ec2:image")
    ssm.put_parameter(Name="/text/f", Value=ids[1], Type="String")  # AWS does not check text
    conn = run.env.connector()
    refs, problem = references.aws_image_references(conn, target(run.env), ids)
    assert problem is None
    assert conn.counter.snapshot()["ec2.DescribeImageReferences"] == 2  # 12 ids: 10 + 2
    got = {(r.kind, r.id, r.image_id) for r in refs}
    assert got == {
        ("aws-reference", inst["InstanceId"], ids[11]),
        ("aws-reference", "/golden/f", ids[0]),
    }
    # amictl's graph: the text parameter, the parameter; not the instance (launched after
    # the inventory was taken)
    acct = run.env.account
    ours = [
        Reference(
            "ssm-parameter", "/golden/f", "SSM parameter /golden/f", ids[0], acct, "us-east-1"
        ),
        Reference(
            "ssm-parameter", "/text/f", "SSM parameter /text/f (text)", ids[1], acct, "us-east-1"
        ),
    ]
    dis = references.reference_disagreements(ours, refs)
    assert len(dis) == 2
    assert dis[0].startswith(f"{ids[11]}: AWS reports instance {inst['InstanceId']}")
    assert dis[1].startswith(f"{ids[1]}: amictl found SSM parameter /text/f")
    golden = [r for r in refs if r.id == "/golden/f"]
    assert references.reference_disagreements(ours[:1], golden) == []  # they agree

    # a missing permission: said once, nothing raised, no further call
    conn = run.env.connector()
    sandbox.set_faults(
        [{"action": "DescribeImageReferences", "code": "UnauthorizedOperation", "status": 403}]
    )
    try:
        refs, problem = references.aws_image_references(conn, target(run.env), ids)
    finally:
        sandbox.clear_faults()
    assert refs == [] and "no permission" in (problem or "")
    assert conn.counter.snapshot()["ec2.DescribeImageReferences"] == 1

    # refs --aws shows both and the disagreements
    code, out, err = run("refs", ids[1], "--aws", "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    assert {r["kind"] for r in data["references"]} == {"ssm-parameter"}
    assert data["aws_references"] == [] and data["aws_error"] is None
    assert any("/text/f" in d for d in data["disagreements"])


@pytest.mark.parametrize(
    "arn,rtype,want",
    [
        ("arn:aws:ec2:us-east-1:111122223333:instance/i-0abc", "ec2:Instance", "i-0abc"),
        (
            "arn:aws:ec2:us-east-1:111122223333:launch-template/lt-0abc",
            "ec2:LaunchTemplate",
            "lt-0abc",
        ),
        ("arn:aws:ssm:us-east-1:111122223333:parameter/golden/web", "ssm:Parameter", "/golden/web"),
    ],
)
def test_resource_ids_from_arns(arn, rtype, want):
    assert references.resource_id(rtype, arn) == want


def test_usage_of_a_missing_image(sandbox, tmp_path):
    """`usage` of an image that is not there: exit 2 (bad input), no traceback."""
    run = CliFleet(sandbox, SMALL, tmp_path)
    code, _o, err = run("usage", "ami-0123456789abcdef0", "--poll", "1")
    assert code != 0 and "Traceback" not in err
    code, _o, _e = invoke(["usage", "nope"])
    assert code == 2


def test_second_opinion_on_a_scanned_inventory(env):
    """What the planner hook gets for the images it would retire: AWS's references per
    image (an instance launched after the scan: only AWS knows it), the disagreements,
    and no problem."""
    from amictl.inventory.scan import scan

    ids = env.load(SMALL)["aliases"]
    ec2 = env.client("ec2")
    ec2.run_instances(ImageId=ids["web1"], MinCount=1, MaxCount=1)
    conn = env.connector()
    targets = conn.targets()
    inv = scan(conn, targets)
    late = ec2.run_instances(ImageId=ids["web2"], MinCount=1, MaxCount=1)["Instances"][0]
    by_image, disagree, problems = references.second_opinion(
        conn, targets, inv, [ids["web1"], ids["web2"], ids["base"], "ami-0123456789abcdef0"]
    )
    assert problems == []
    assert set(by_image) == {ids["web1"], ids["web2"]}
    assert [r.id for r in by_image[ids["web2"]]] == [late["InstanceId"]]
    assert len(disagree) == 1 and late["InstanceId"] in disagree[0]
