"""Issue 27, R11-R13 and SemVer: bad --at values, a tag that releases a hold, an accounts
file with a malformed ARN, and pre-release versions written by create (on the sandbox)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli_fleet import CliFleet, invoke

FLEET = """
images:
  - {alias: held, name: web-1.0.0, age_days: 30, tags: {family: web, version: 1.0.0, legal-hold: "true"}}
  - {alias: kept, name: web-1.1.0, age_days: 20, tags: {family: web, version: 1.1.0, retain-until: "2999-01-01"}}
instances:
  - {alias: i1, image: kept, state: running}
"""


@pytest.mark.parametrize(
    "at", ["0001-01-01T00:00:00+14:00", "", "  ", "9999-12-31T23:59:59-14:00", "99999999999d"]
)
def test_deprecate_at_bad_values_exit_2_without_a_traceback(at: str) -> None:
    code, _out, err = invoke(
        ["deprecate", "ami-0123456789abcdef0", "--at", at, "--endpoint-url", "http://127.0.0.1:9"]
    )
    assert code == 2 and "--at" in err and "Traceback" not in err


def _tags(f: CliFleet, image: str) -> dict[str, str]:
    img = f.env.client("ec2").describe_images(ImageIds=[image])["Images"][0]
    return {t["Key"]: t["Value"] for t in img.get("Tags", [])}


def test_tag_that_releases_a_hold_is_refused(sandbox: Any, tmp_path: Path) -> None:
    f = CliFleet(sandbox, FLEET, tmp_path)
    held, kept = f.ids["held"], f.ids["kept"]
    for image, pair in (
        (held, "legal-hold=false"),
        (held, "legal-hold=FALSE"),
        (kept, "retain-until=2001-01-01"),
        (kept, "retain-until=later"),  # not a date keeps it: no release, allowed
    ):
        code, _out, err = f.run("tag", image, pair)
        if pair.endswith("later"):
            assert code == 0, err
            continue
        assert code == 3 and "would release its hold" in err, err
    assert _tags(f, held)["legal-hold"] == "true"  # AWS's own state: unchanged
    assert _tags(f, kept)["retain-until"] == "later"
    code, _out, err = f.run("tag", held, "legal-hold=false", "--release-hold")
    assert code == 0 and "released" in err
    assert _tags(f, held)["legal-hold"] == "false"
    code, _out, err = f.run("tag", held, "owner=team-a")  # nothing held now: no question
    assert code == 0, err


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::12345:role/amictl",
        "arn:aws:iam::1234567890123:role/amictl",
        "arn:aws:iam::123456789012:user/amictl",
        "arn:aws:s3:::bucket",
    ],
)
def test_accounts_file_with_a_bad_arn_exits_2_naming_file_and_line(
    tmp_path: Path, arn: str
) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(
        f"accounts:\n  - role_arn: arn:aws:iam::123456789012:role/amictl\n  - role_arn: {arn}\n"
    )
    code, _out, err = invoke(
        ["--accounts-file", str(path), "--endpoint-url", "http://127.0.0.1:9", "inventory"]
    )
    assert code == 2 and f"{path}:3" in err and "accounts[1].role_arn" in err, err


def test_create_writes_a_semver_pre_release(sandbox: Any, tmp_path: Path) -> None:
    f = CliFleet(sandbox, FLEET, tmp_path)
    data = f.json(
        "create", "from-instance", f.ids["i1"], "--family", "web", "--version", "2.0.0-rc.1"
    )
    ec2 = f.env.client("ec2")
    img = ec2.describe_images(ImageIds=[data["image_id"]])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in img["Tags"]}
    assert img["Name"] == "web-2.0.0-rc.1" and tags["version"] == "2.0.0-rc.1"
    versions = f.json("versions", "web")
    rows = versions if isinstance(versions, list) else versions.get("versions", [])
    order = [r["version"] for r in rows]
    assert order.index("2.0.0-rc.1") != -1
    for bad, why in (("2.0.0+b.7", "build metadata"), ("1.2-rc.1", "not a version")):
        code, _out, err = f.run(
            "create", "from-instance", f.ids["i1"], "--family", "web", "--version", bad
        )
        assert code == 2 and why in err, err
