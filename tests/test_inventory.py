"""Inventory end to end: every reference kind found, every page read, failures loud."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from amictl.aws.session import AwsConfig, Connector
from amictl.cli.main import cli
from amictl.inventory import registry, scan, views

FLEET = """
regions: [us-east-1, eu-west-1]
images:
  - {alias: by-instance, tags: {family: f, version: "1"}}
  - {alias: by-stopped, tags: {family: f, version: "2"}}
  - {alias: by-terminated, tags: {family: f, version: "3"}}
  - {alias: by-lt-old-version, tags: {family: f, version: "4"}}
  - {alias: by-lt-default, tags: {family: f, version: "5"}}
  - {alias: by-unattached-lc, tags: {family: f, version: "6"}}
  - {alias: by-asg-lc, tags: {family: f, version: "7"}}
  - {alias: by-mixed-override, tags: {family: f, version: "8"}}
  - {alias: by-ssm-image, tags: {family: f, version: "9"}}
  - {alias: by-ssm-text, tags: {family: f, version: "10"}}
  - {alias: shared, tags: {family: f, version: "11"}, shared_with: ["210987654321"]}
  - {alias: public, tags: {family: f, version: "12"}, public: true}
  - {alias: child, tags: {family: g, version: "1"}, source: by-instance}
  - {alias: launched, tags: {family: f, version: "13"}, last_launched_days_ago: 2}
  - {alias: unused, name: h-1.2}
  - {alias: eu-img, region: eu-west-1, tags: {family: f, version: "1"}}
instances:
  - {alias: i1, image: by-instance}
  - {alias: i2, image: by-stopped, state: stopped}
  - {alias: i3, image: by-terminated, state: terminated}
launch_templates:
  - {alias: lt, versions: [{image: by-lt-old-version}, {image: by-lt-default}], default_version: 2}
  - {alias: lt2, versions: [{image: by-mixed-override}]}
  - {alias: lt3, versions: [{image: by-lt-default}]}
launch_configurations:
  - {alias: lc-free, image: by-unattached-lc}
  - {alias: lc-used, image: by-asg-lc}
auto_scaling_groups:
  - {alias: asg-lc, launch_configuration: lc-used}
  - {alias: asg-mixed, mixed: {launch_template: lt3, overrides: [{launch_template: lt2}]}}
ssm_parameters:
  - {alias: p1, name: /golden/one, image: by-ssm-image}
  - {alias: p2, name: /golden/two, image: by-ssm-text, data_type: text}
snapshots:
  - {alias: orphan, size_gib: 5, made_for_deleted_image: true}
"""

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def loaded(env):
    ids = env.load(FLEET)["aliases"]
    inv = scan(env.connector(["us-east-1", "eu-west-1"]))
    return env, ids, inv


def kinds(inv, ami):
    return {r["kind"] for r in views.refs_rows(inv, ami, NOW, dt.timedelta(days=30))}


@pytest.mark.parametrize(
    "alias,kind",
    [
        ("by-instance", "instance"),
        ("by-stopped", "instance"),
        ("by-lt-old-version", "launch-template-version"),
        ("by-unattached-lc", "launch-configuration"),
        ("by-ssm-image", "ssm-parameter"),
        ("by-ssm-text", "ssm-parameter"),
        ("shared", "shared-account"),
        ("public", "shared-account"),
        ("by-instance", "child-image"),
        ("launched", "recent-launch"),
    ],
)
def test_each_reference_kind_is_found(loaded, alias, kind):
    _env, ids, inv = loaded
    assert kind in kinds(inv, ids[alias])


def test_only_references_that_exist(loaded):
    _env, ids, inv = loaded
    assert kinds(inv, ids["by-terminated"]) == set()
    assert kinds(inv, ids["unused"]) == set()
    assert kinds(inv, ids["by-asg-lc"]) == {"launch-configuration", "auto-scaling-group"}
    assert "auto-scaling-group" in kinds(inv, ids["by-mixed-override"])
    assert "auto-scaling-group" in kinds(inv, ids["by-lt-default"])
    assert inv.complete
    assert {i.region for i in inv.images} == {"us-east-1", "eu-west-1"}


def test_family_from_tags_and_name_pattern(loaded):
    _env, ids, inv = loaded
    img = inv.by_id[ids["unused"]]
    assert (img.family, img.version) == ("h", "1.2")
    fam = inv.families[(img.account, "us-east-1", "f")]
    assert [i.version for i in fam][:3] == ["13", "12", "11"]  # numeric: 13 > 12 > 11 > 10 > 9


def test_orphaned_snapshots(loaded):
    _env, ids, inv = loaded
    rows = views.snapshot_rows(inv, NOW, orphaned=True)
    assert [r["snapshot_id"] for r in rows] == [ids["orphan"]]


def test_tiny_pages_read_everything(env, monkeypatch):
    env.load(
        "images:\n"
        + "".join(f"  - {{alias: t{i}}}\n" for i in range(13))
        + "snapshots:\n"
        + "".join(f"  - {{alias: s{i}}}\n" for i in range(7))
    )
    monkeypatch.setitem(registry.PAGE_SIZES, "describe_images", 5)
    monkeypatch.setitem(registry.PAGE_SIZES, "describe_snapshots", 5)
    conn = env.connector()
    inv = scan(conn)
    assert len(inv.images) == 13 and len(inv.snapshots) == 13 + 7
    assert inv.api_calls["ec2.DescribeImages"] == 3
    assert inv.api_calls["ec2.DescribeSnapshots"] == 4


def test_access_denied_region_is_incomplete_others_load(env, sandbox):
    env.load(FLEET)
    sandbox.set_faults(
        [
            {
                "region": "eu-west-1",
                "action": "DescribeLaunchTemplates",
                "code": "UnauthorizedOperation",
                "status": 403,
            }
        ]
    )
    try:
        inv = scan(env.connector(["us-east-1", "eu-west-1"]))
    finally:
        sandbox.clear_faults()
    assert not inv.complete
    bad = inv.incomplete_slices()
    assert {(s.region, s.kind) for s in bad} == {
        ("eu-west-1", "launch-templates"),
        ("eu-west-1", "auto-scaling-groups"),
    }
    assert bad[0].error_code in ("UnauthorizedOperation", "DependencyIncomplete")
    assert inv.slice_complete(env.account, "us-east-1")
    assert any(i.region == "us-east-1" for i in inv.images)


def test_unreachable_endpoint_is_incomplete(env):
    conn = Connector(
        AwsConfig(
            endpoint_url="http://127.0.0.1:9",
            access_key="x",
            secret_key="y",
            regions=["us-east-1"],
            max_attempts=1,
            connect_timeout=1,
        )
    )
    from amictl.aws.session import Target

    inv = scan(conn, [Target(env.account, "us-east-1")])
    assert not inv.complete
    assert all(s.error_code == "EndpointUnreachable" for s in inv.slices)


def test_cli_inventory_ls_refs_show_snapshots(env, tmp_path, monkeypatch):
    ids = env.load(FLEET)["aliases"]
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    r = CliRunner()
    base = env.cli_args() + ["--region", "us-east-1,eu-west-1"]
    res = r.invoke(cli, ["inventory", "-o", "json", *base])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["complete"] and len(summary["per_region"]) == 2
    res = r.invoke(cli, ["ls", "-o", "json", "--from-state", *base])
    rows = json.loads(res.stdout)
    need = {
        "image_id",
        "region",
        "account",
        "name",
        "family",
        "version",
        "state",
        "created_at",
        "size_gib",
        "monthly_cost_usd",
        "references",
        "public",
        "shared_with",
        "deprecation_time",
        "last_launched_time",
    }
    assert need <= set(rows[0])
    res = r.invoke(cli, ["ls", "-o", "json", "--unused", "--from-state", *base])
    unused = {x["image_id"] for x in json.loads(res.stdout)}
    assert ids["unused"] in unused and ids["by-instance"] not in unused
    res = r.invoke(cli, ["refs", ids["by-lt-old-version"], "-o", "json", *base])
    assert json.loads(res.stdout)[0]["kind"] == "launch-template-version"
    res = r.invoke(cli, ["show", ids["child"], "-o", "json", "--from-state", *base])
    assert json.loads(res.stdout)["lineage"][0]["image_id"] == ids["by-instance"]
    res = r.invoke(cli, ["snapshots", "--orphaned", "-o", "csv", "--from-state", *base])
    assert ids["orphan"] in res.output
    res = r.invoke(cli, ["refs", "ami-0000000000", "--from-state", *base])
    assert res.exit_code != 0
