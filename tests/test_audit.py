"""audit: every check has a fleet that triggers it and one that does not; --fail-on; registry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from amictl import audit, iam
from amictl.cli.main import cli
from cli_fleet import CliFleet

TRUSTED_ACCOUNT = "222233334444"
TRUSTED_ORG = "o-abcdefghij"

# Triggers every check.
BAD = """
image_block_public_access: false
images:
  - {alias: pub, name: web-1, tags: {family: web, version: "1"}, public: true,
     imds_support: v2.0, snapshots: [{encrypted: true}]}
  - {alias: shared-out, name: web-2, tags: {family: web, version: "2"},
     shared_with: ["999988887777", "arn:aws:organizations::999988887777:organization/o-zzzzzzzzzz"],
     imds_support: v2.0, snapshots: [{encrypted: true}]}
  - {alias: plain, name: app-1, tags: {family: app, version: "1"}, imds_support: v2.0,
     snapshots: [{encrypted: false, size_gib: 9}]}
  - {alias: untagged, name: misc, imds_support: v2.0, snapshots: [{encrypted: true}]}
  - {alias: stale, name: app-2, age_days: 400, tags: {family: app, version: "2"},
     imds_support: v2.0, snapshots: [{encrypted: true}]}
  - {alias: depr, name: app-3, tags: {family: app, version: "3"}, deprecated_days_ago: 10,
     last_launched_days_ago: 2, imds_support: v2.0, snapshots: [{encrypted: true}]}
  - {alias: v1, name: app-4, tags: {family: app, version: "4"}, snapshots: [{encrypted: true}]}
ssm_parameters:
  - {alias: ch, name: /amictl/channels/app/prod, image: stale}
"""

# The same kinds of images, each on the right side of its check.
GOOD = f"""
image_block_public_access: true
recycle_bin_rules:
  - {{resource_type: EC2_IMAGE, retention_days: 7}}
  - {{resource_type: EBS_SNAPSHOT, retention_days: 7}}
images:
  - {{alias: ok, name: web-1, age_days: 10, tags: {{family: web, version: "1"}},
     shared_with: ["{TRUSTED_ACCOUNT}",
                   "arn:aws:organizations::111111111111:ou/{TRUSTED_ORG}/ou-ab12-cdefgh34"],
     imds_support: v2.0, snapshots: [{{encrypted: true}}]}}
  - {{alias: old-dep, name: web-0, age_days: 400, tags: {{family: web, version: "0"}},
     deprecated_days_ago: 100, last_launched_days_ago: 90, imds_support: v2.0,
     snapshots: [{{encrypted: true}}]}}
  - {{alias: disabled-old, name: web-00, tags: {{family: web, version: "00"}}, disabled: true,
     snapshots: [{{encrypted: true}}]}}
ssm_parameters:
  - {{alias: ch, name: /amictl/channels/web/prod, image: ok}}
"""

EXPECTED = {  # check -> the aliases (or "region") it names in BAD
    "public-image": {"pub"},
    "untrusted-share": {"shared-out"},
    "unencrypted-snapshot": {"plain"},
    "missing-required-tags": {"untagged"},
    "stale-channel-image": {"stale"},
    "deprecated-still-launched": {"depr"},
    "imdsv1-allowed": {"v1"},
    "no-recycle-bin-rule": {"region"},
    "image-block-public-access-off": {"region"},
}


class Fleet(CliFleet):
    def audit(self, *args: str) -> dict[str, Any]:
        return dict(self.json("audit", *args))


@pytest.fixture(scope="module")
def bad(sandbox, tmp_path_factory):
    f = Fleet(sandbox, BAD, tmp_path_factory.mktemp("bad"))
    f.data = f.audit()
    return f


@pytest.fixture(scope="module")
def good(sandbox, tmp_path_factory):
    f = Fleet(sandbox, GOOD, tmp_path_factory.mktemp("good"))
    f.data = f.audit("--trust", f"{TRUSTED_ACCOUNT},{TRUSTED_ORG}")
    return f


def named(fleet: Fleet, check: str) -> set[str]:
    by_id = {v: k for k, v in fleet.ids.items()}
    snap_owner = {}
    for f in fleet.data["findings"]:
        if f["check"] == "unencrypted-snapshot":
            snap_owner[f["resource"]] = f["detail"].split("used by ")[-1]
    out = set()
    for f in fleet.data["findings"]:
        if f["check"] != check:
            continue
        res = snap_owner.get(f["resource"], f["resource"])
        out.add("region" if "/" in res else by_id.get(res, res))
    return out


@pytest.mark.parametrize("check", sorted(EXPECTED))
def test_each_check_triggers_on_bad_and_not_on_good(bad, good, check):
    assert check in audit.CHECKS
    assert named(bad, check) == EXPECTED[check]
    assert named(good, check) == set(), good.data["findings"]


TESTED_ELSEWHERE = {
    "role-exceeds-persona",  # tests/test_personas.py (sandbox IAM roles)
    "managed-overlap",  # tests/test_launchers_services.py (audit --policy)
    "retention-gap",  # tests/test_retention.py (audit --policy with retain rules)
    "recycle-bin-rule-unlocked",  # tests/test_retention.py
    "retired-without-notice",  # tests/test_notify.py (apply's and the notices' journals)
}


def test_every_registered_check_is_tested():
    assert set(audit.CHECKS) == set(EXPECTED) | TESTED_ELSEWHERE


def test_findings_carry_severity_fix_and_region_state(bad, good):
    f = next(x for x in bad.data["findings"] if x["check"] == "untrusted-share")
    assert f["severity"] == "high" and "amictl unshare" in f["fix"]
    assert any("--account 999988887777" in x["fix"] for x in bad.data["findings"])
    assert any("--org arn:aws:organizations" in x["fix"] for x in bad.data["findings"])
    assert bad.data["summary"]["critical"] == 1
    assert [r["image_block_public_access"] for r in good.data["regions"]] == ["block-new-sharing"]
    assert "recoverable for 7 days" in good.data["regions"][0]["recycle_bin"]
    assert good.data["incomplete"] == [] and bad.data["incomplete"] == []
    sev = [audit.rank(x["severity"]) for x in bad.data["findings"]]
    assert sev == sorted(sev, reverse=True)


def test_fail_on_exit_codes(bad, good):
    code, out, err = bad.run("audit", "--fail-on", "high", "--from-state")
    assert code == 1 and "--fail-on high" in err and "public-image" in out
    code, _out, _err = good.run(
        "audit", "--fail-on", "low", "--from-state", "--trust", "222233334444,o-abcdefghij"
    )
    assert code == 0


def test_conventions_file_sets_the_required_tags(good):
    conv = good.tmp / "conv.yaml"
    conv.write_text("required_tags:\n  owner: '[a-z]+'\n")
    data = good.audit(
        "--from-state", "--conventions", str(conv), "--trust", "222233334444,o-abcdefghij"
    )
    missing = [x for x in data["findings"] if x["check"] == "missing-required-tags"]
    assert {x["resource"] for x in missing} == {
        good.ids[a] for a in ("ok", "old-dep", "disabled-old")
    }
    assert all("owner" in x["detail"] for x in missing)


def test_registry_and_iam_policy():
    state_only = {"retired-without-notice"}  # reads amictl's journals, makes no AWS call
    for c in audit.CHECKS.values():
        assert c.severity in audit.SEVERITIES and c.fix and c.title
        assert bool(c.permissions) != (c.id in state_only), c.id
    perms = iam.permissions("audit")
    assert {
        "ec2:GetImageBlockPublicAccessState",
        "rbin:ListRules",
        "ec2:DescribeSnapshots",
    } <= perms
    assert "ec2:DeregisterImage" not in perms
    code = CliRunner().invoke(cli, ["audit", "--list-checks", "-o", "json"])
    assert {c["id"] for c in json.loads(code.stdout)} == set(audit.CHECKS)


@pytest.mark.parametrize(
    "text, where",
    [
        ("images: [{alias: a, snapshots: [{storage_tier: archive}]}]", "storage_tier"),
        ("snapshots: [{alias: s, storage_tier: glacier}]", "snapshots[0].storage_tier"),
        ("recycle_bin_rules: [{resource_type: X}]", "resource_type"),
        ("recycle_bin_rules: [{retention_days: 0}]", "retention_days"),
        ("recycle_bin_rules: [{region: eu-west-1}]", "region"),
        ("image_block_public_access: maybe", "image_block_public_access"),
    ],
)
def test_fleet_settings_are_validated(text, where):
    from amictl.errors import InputError
    from amictl.sandbox import fleet

    with pytest.raises(InputError) as exc:
        fleet.parse_text(text, "f.yaml")
    assert "f.yaml:1" in exc.value.message and where in exc.value.message
    ok = fleet.parse_text("image_block_public_access: true\nrecycle_bin_rules: [{}]\n")
    assert ok.recycle_bin_rules == [
        {"resource_type": "EC2_IMAGE", "retention_days": 7, "region": "us-east-1"}
    ]
