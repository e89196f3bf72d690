"""Issue 27 on the sandbox: drift --strict on an incomplete read, stale after create
--bump from an instance of the same family, allowed-images set against every launcher
(R7), and the single-image commands reading the account's other regions (R8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_fleet import CliFleet

DRIFT = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 30, tags: {family: web, version: 1.0.0}}
  - {alias: w2, name: web-1.1.0, age_days: 20, tags: {family: web, version: 1.1.0}}
instances:
  - {alias: i1, image: w1, state: running}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w2, data_type: "aws:ec2:image"}
"""


def test_drift_strict_on_an_incomplete_read_exits_4_and_says_what(
    sandbox: Any, tmp_path: Path
) -> None:
    f = CliFleet(sandbox, DRIFT, tmp_path)
    ok = f.json("drift")
    assert ok["complete"] is True and ok["incomplete"] == [] and ok["behind"] == 1
    sandbox.set_faults(
        [{"service": "ssm", "action": "GetParameterHistory", "code": "AccessDenied", "status": 400}]
    )
    try:
        code, out, err = f.run("drift", "--strict", "5")
        jcode, jout, _ = f.run("drift", "-o", "json")
    finally:
        sandbox.clear_faults()
    assert code == 4, (out, err)
    assert "not read" in err and "could not be read" in err
    data = json.loads(jout)
    assert jcode == 0 and data["complete"] is False and data["incomplete"]
    assert all("not read" in x for x in data["incomplete"])


STALE = """
images:
  - {alias: w12, name: web-1.2.0, age_days: 5, tags: {family: web, version: 1.2.0}}
instances:
  - {alias: i1, image: w12, state: running}
"""


def test_stale_never_calls_an_image_its_own_newer_version(sandbox: Any, tmp_path: Path) -> None:
    f = CliFleet(sandbox, STALE, tmp_path)
    made = f.json("create", "from-instance", f.ids["i1"], "--family", "web", "--bump", "minor")
    ec2 = f.env.client("ec2")
    img = ec2.describe_images(ImageIds=[made["image_id"]])["Images"][0]
    assert img["Name"] == "web-1.3.0"
    code, out, err = f.run("stale", "--strict", "-o", "json")
    rows = json.loads(out)
    assert not [r for r in rows if r.get("newer_base") == made["image_id"]], rows
    assert code == 0, (out, err)


R7 = """
regions: [us-east-1, eu-west-1]
images:
  - {alias: w1, name: web-1.0.0, age_days: 3, tags: {family: web, version: 1.0.0}}
  - {alias: al2, name: al2023-ami-2023.6, owner: "137112412989", owner_alias: amazon, public: true}
  - {alias: gold, name: golden-base-7, owner: "210987654321", public: true}
  - {alias: gold-eu, name: golden-base-7, owner: "210987654321", public: true, region: eu-west-1}
launch_templates:
  - {alias: ltbase, name: on-amazon, versions: [{image: al2, instance_type: t3.micro}]}
  - {alias: ltgold, name: on-golden, versions: [{image: w1}, {image: gold}]}
  - {alias: lteu, name: eu-golden, region: eu-west-1, versions: [{image: gold-eu}]}
launch_configurations:
  - {alias: lc, name: lc-golden, image: gold}
auto_scaling_groups:
  - {alias: g, name: base-asg, launch_template: ltbase, version: "$Default", desired: 0}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w1, data_type: "aws:ec2:image"}
  - {alias: golden, name: /golden/base, image: gold, data_type: "aws:ec2:image"}
"""


def _state(f: CliFleet, region: str) -> str:
    ec2 = f.env.client("ec2", region)
    return str(ec2.get_allowed_images_settings().get("State", "disabled"))


def test_allowed_images_enabled_refuses_what_launchers_would_lose(
    sandbox: Any, tmp_path: Path
) -> None:
    """R7: no running instance, but templates, a launch configuration, a group and an SSM
    parameter launch an Amazon base image and another account's golden image, in two
    regions: `--mode enabled` is refused naming them, and the setting stays as it was."""
    f = CliFleet(sandbox, R7, tmp_path, regions="us-east-1,eu-west-1")
    code, out, err = f.run("allowed-images", "set", "--from-channels", "--mode", "enabled", "--yes")
    assert code == 3, (out, err)
    assert "launcher" in err and f.ids["al2"] in err and f.ids["gold"] in err, err
    for region in ("us-east-1", "eu-west-1"):
        assert _state(f, region) == "disabled"  # AWS's own state: nothing changed
    # audit mode reports every one of them, per region, and changes only the mode
    data = f.json("allowed-images", "set", "--from-channels", "--mode", "audit-mode", "--yes")
    rows = {
        (c["region"], r["kind"], r["image_id"]) for c in data["changes"] for r in c["would_break"]
    }
    ids = f.ids
    assert ("us-east-1", "launch-template-version", ids["al2"]) in rows
    assert ("us-east-1", "launch-template-version", ids["gold"]) in rows
    assert ("us-east-1", "launch-configuration", ids["gold"]) in rows
    assert ("us-east-1", "auto-scaling-group", ids["al2"]) in rows
    assert ("us-east-1", "ssm-parameter", ids["gold"]) in rows
    assert ("eu-west-1", "launch-template-version", ids["gold-eu"]) in rows
    assert not [r for r in rows if r[2] == ids["w1"]]  # owned: always allowed
    assert _state(f, "us-east-1") == "audit-mode"
    # allowing both providers: nothing would break, enabled goes through
    data = f.json(
        "allowed-images",
        "set",
        "--from-channels",
        "--also",
        "amazon,210987654321",
        "--mode",
        "enabled",
        "--yes",
    )
    assert all(c["would_break"] == [] for c in data["changes"])
    assert _state(f, "us-east-1") == _state(f, "eu-west-1") == "enabled"


R8 = """
regions: [us-east-1, eu-west-1]
images:
  - {alias: w1, name: web-1.0.0, age_days: 90, tags: {family: web, version: 1.0.0}}
  - {alias: w2, name: web-2.0.0, age_days: 10, tags: {family: web, version: 2.0.0}}
  - {alias: copy, name: web-1.0.0, age_days: 80, region: eu-west-1, source: w1,
     tags: {family: web, version: 1.0.0}}
instances:
  - {alias: i1, image: copy, state: running, region: eu-west-1}
"""


def test_single_image_commands_read_the_account_s_other_regions(
    sandbox: Any, tmp_path: Path
) -> None:
    """R8: w1's copy in eu-west-1 runs an instance; `retire|disable|deprecate w1 --region
    us-east-1` read only us-east-1 and retired it. Now each is refused, and the image is
    still available in AWS."""
    f = CliFleet(sandbox, R8, tmp_path, regions="us-east-1")
    w1 = f.ids["w1"]
    ec2 = f.env.client("ec2")
    eu = f.env.client("ec2", "eu-west-1")
    (copy,) = eu.describe_images(ImageIds=[f.ids["copy"]])["Images"]
    assert copy.get("SourceImageId") == w1  # the fleet made it a copy of w1
    for cmd in (["retire", w1], ["disable", w1]):
        code, out, err = f.run(*cmd, "--yes")
        assert code == 3, (cmd, out, err)
        assert f.ids["copy"] in err or "eu-west-1" in err or "copy" in err, err
    img = ec2.describe_images(ImageIds=[w1], IncludeDeprecated=True, IncludeDisabled=True)
    (only,) = img["Images"]
    assert only["State"] == "available" and not only.get("DeprecationTime")
    # issue 31: deprecating is reversible, so the source of a kept copy may be deprecated;
    # the copy (what runs) is untouched
    code, out, err = f.run("deprecate", w1, "--yes")
    assert code == 0, (out, err)
    (after,) = eu.describe_images(ImageIds=[f.ids["copy"]])["Images"]
    assert after["State"] == "available" and not after.get("DeprecationTime")
    # w2 has no copy anywhere: it retires as before (the other region read, nothing there)
    code, out, err = f.run("deprecate", f.ids["w2"], "--yes")
    assert code == 0, (out, err)


def test_allow_noncompliant_waives_a_full_id_or_a_template_s_versions_only() -> None:
    """Round 5: a waiver names a launcher's whole id (or, for a template version, its
    template id); a part of an id (``arn``, ``arn:aws:batch``) waives nothing."""
    from amictl.governance.allowed import waived

    arn = "arn:aws:batch:us-east-1:123456789012:compute-environment/ce"
    lt = {"kind": "launch-template-version", "id": "lt-0abc:3"}
    ce = {"kind": "batch-compute-environment", "id": arn}
    assert waived(lt, {"lt-0abc"}) and waived(lt, {"lt-0abc:3"})
    assert not waived(lt, {"lt-0abc:2"}) and not waived(lt, {"lt-0ab"})
    assert waived(ce, {arn})
    assert not any(waived(ce, {n}) for n in ("arn", "arn:aws:batch", arn.rsplit(":", 1)[0]))


def test_launchers_of_an_amazon_image_they_do_not_name() -> None:
    """Round 5: a managed EC2 compute environment with no imageId (or an image type with no
    override) launches Amazon's default ECS AMI; a recipe's parent ARN owned by `aws` is
    an Amazon image. Fargate, unmanaged, explicit images and templates are not."""
    from amictl.inventory.launchers.batch import launches_amazon_default as dflt
    from amictl.inventory.launchers.imagebuilder import amazon_parent

    ec2 = {"type": "MANAGED", "computeResources": {"type": "EC2"}}
    assert dflt(ec2)
    assert dflt({**ec2, "computeResources": {"type": "SPOT", "ec2Configuration": [
        {"imageType": "ECS_AL2", "imageIdOverride": "ami-1"}, {"imageType": "ECS_AL2_NVIDIA"}]}})  # fmt: skip
    assert not dflt({**ec2, "computeResources": {"type": "EC2", "imageId": "ami-1"}})
    assert not dflt({**ec2, "computeResources": {"type": "EC2", "launchTemplate": {"x": 1}}})
    assert not dflt({"type": "MANAGED", "computeResources": {"type": "FARGATE"}})
    assert not dflt({"type": "UNMANAGED"})
    assert amazon_parent("arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2-x86/x.x.x")
    assert not amazon_parent("arn:aws:imagebuilder:us-east-1:123456789012:image/mine/1.0.0/1")
    assert not amazon_parent("ami-0123")
