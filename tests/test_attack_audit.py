"""Attacks on `amictl audit`: shares it must not trust."""

from __future__ import annotations

import pytest

from amictl.audit.checks import trusted
from cli_fleet import CliFleet

TRUSTED_ORG_ARN = "arn:aws:organizations::111111111111:organization/o-abcdefghijkl"
# another organization whose id is a prefix of the trusted one's
PREFIX_ORG_ARN = "arn:aws:organizations::999988887777:organization/o-abcdefghij"
PREFIX_OU_ARN = "arn:aws:organizations::999988887777:ou/o-abcdefghij/ou-ab12-cdefgh34"

FLEET = f"""
images:
  - {{alias: s, name: web-1, tags: {{family: web, version: "1"}}, imds_support: v2.0,
     shared_with: ["{PREFIX_ORG_ARN}", "{PREFIX_OU_ARN}"], snapshots: [{{encrypted: true}}]}}
"""


@pytest.mark.parametrize(
    "target",
    [
        PREFIX_ORG_ARN,
        PREFIX_OU_ARN,
        "arn:aws:organizations::999988887777:organization/o-bcdefghijk",
    ],
)
def test_an_org_whose_id_is_part_of_a_trusted_one_is_not_trusted(target):
    assert not trusted(target, {TRUSTED_ORG_ARN}, {"123456789012"})
    assert not trusted(target, {"o-abcdefghijkl"}, {"123456789012"})


def test_trusted_org_and_its_ous_stay_trusted():
    ou = "arn:aws:organizations::111111111111:ou/o-abcdefghijkl/ou-ab12-cdefgh34"
    for allowed in ({TRUSTED_ORG_ARN}, {"o-abcdefghijkl"}):
        assert trusted(TRUSTED_ORG_ARN, allowed, set())
        assert trusted(ou, allowed, set())


def test_audit_flags_a_share_with_a_prefix_org(sandbox, tmp_path):
    f = CliFleet(sandbox, FLEET, tmp_path)
    data = f.json("audit", "--trust", TRUSTED_ORG_ARN)
    flagged = {x["detail"] for x in data["findings"] if x["check"] == "untrusted-share"}
    assert flagged == {
        f"launch permission: {PREFIX_ORG_ARN}",
        f"launch permission: {PREFIX_OU_ARN}",
    }
