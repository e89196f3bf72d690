"""catalog list / find: named bases through public SSM parameters or DescribeImages; regions."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest

from amictl.catalog import BASES
from amictl.iam import permissions
from cli_fleet import invoke

AMAZON = "owner: '137112412989', owner_alias: amazon, public: true"
WINDOWS = "owner: '801119661308', owner_alias: amazon, public: true, platform: windows"
CANONICAL = "owner: '099720109477', public: true"
DEBIAN = "owner: '136693071363', public: true"
RED_HAT = "owner: '309956199498', public: true"

FLEET = f"""
regions: [us-east-1, eu-west-1]
images:
  - {{alias: al-old, name: al2023-ami-2023.5.20240701.0-kernel-6.1-x86_64, age_days: 90, {AMAZON}}}
  - {{alias: al-new, name: al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64, age_days: 10, {AMAZON}}}
  - {{alias: al-dep, name: al2023-ami-2023.6.20241020.0-kernel-6.1-x86_64, age_days: 2, deprecated_days_ago: 1, {AMAZON}}}
  - {{alias: al-arm, name: al2023-ami-2023.6.20241010.0-kernel-6.1-arm64, age_days: 10, architecture: arm64, {AMAZON}}}
  - {{alias: al-min, name: al2023-ami-minimal-2023.6.20241111.0-kernel-6.1-x86_64, age_days: 1, {AMAZON}}}
  - {{alias: al-eu, region: eu-west-1, name: al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64, age_days: 10, {AMAZON}}}
  - {{alias: jammy, name: ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20241002, age_days: 30, {CANONICAL}}}
  - {{alias: noble, name: ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20241004, age_days: 20, {CANONICAL}}}
  - {{alias: noble-arm, name: ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20241004, age_days: 20, architecture: arm64, {CANONICAL}}}
  - {{alias: bookworm, name: debian-12-amd64-20241004-1890, age_days: 25, {DEBIAN}}}
  - {{alias: win, name: Windows_Server-2022-English-Full-Base-2024.10.09, age_days: 15, {WINDOWS}}}
  - {{alias: rhel-old, name: RHEL-9.3.0_HVM-20240117-x86_64-49-Hourly2-GP3, age_days: 200, {RED_HAT}}}
  - {{alias: rhel, name: RHEL-9.4.0_HVM-20240605-x86_64-82-Hourly2-GP3, age_days: 100, {RED_HAT}}}
  - {{alias: fake, name: debian-12-amd64-29990101-1, age_days: 0}}
"""


class Cli:
    def __init__(self, env, tmp_path, monkeypatch):
        self.env = env
        for k, v in env.cli_env(tmp_path).items():
            monkeypatch.setenv(k, v)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        return invoke([*args, *self.env.cli_args()])

    def json(self, *args: str):
        code, out, err = self(*args, "-o", "json")
        assert code == 0, out + err
        return json.loads(out)


@pytest.fixture
def run(env, tmp_path, monkeypatch):
    return Cli(env, tmp_path, monkeypatch)


@pytest.mark.parametrize(
    "query,arch,alias,param",
    [
        (
            "al2023",
            None,
            "al-new",
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        ),
        (
            "al2023",
            "arm64",
            "al-arm",
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
        ),
        (
            "ubuntu-22.04",
            None,
            "jammy",
            "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id",
        ),
        (
            "ubuntu-24.04",
            "arm64",
            "noble-arm",
            "/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id",
        ),
        ("debian-12", None, "bookworm", "/aws/service/debian/release/12/latest/amd64"),
        (
            "windows-2022",
            None,
            "win",
            "/aws/service/ami-windows-latest/Windows_Server-2022-English-Full-Base",
        ),
    ],
)
def test_find_resolves_public_ssm_parameters(env, run, query, arch, alias, param):
    ids = env.load(FLEET)["aliases"]
    args = ["catalog", "find", query, "--region", "us-east-1"]
    rows = run.json(*args, *(["--arch", arch] if arch else []))
    assert [r["image_id"] for r in rows] == [ids[alias]]
    r = rows[0]
    assert r["source"] == f"ssm:{param}" and r["region"] == "us-east-1"
    assert r["architecture"] == (arch or "x86_64") and r["deprecation_time"] is None
    assert set(r) == {
        "name", "image_id", "region", "owner", "architecture", "creation_date",
        "deprecation_time", "source",
    }  # fmt: skip


def test_public_parameter_follows_newest_seeded_image(env):
    ids = env.load(FLEET)["aliases"]
    ssm = env.client("ssm")
    name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    first = ssm.get_parameter(Name=name)["Parameter"]
    assert first["Value"] == ids["al-new"]  # not the deprecated, the minimal nor arm64
    got = ssm.get_parameters(Names=[name])["Parameters"]
    assert [p["Value"] for p in got] == [ids["al-new"]]
    newer = env.load(
        f"images:\n  - {{alias: n, name: al2023-ami-2023.7.20250101.0-kernel-6.1-x86_64, "
        f"age_days: 0, {AMAZON}}}\n"
    )["aliases"]
    second = ssm.get_parameter(Name=name)["Parameter"]
    assert second["Value"] == newer["n"] and second["Version"] == first["Version"] + 1
    # each region has its own images
    eu = env.client("ssm", "eu-west-1").get_parameter(Name=name)["Parameter"]
    assert eu["Value"] == ids["al-eu"]
    # an account may not write there
    with pytest.raises(botocore.exceptions.ClientError):
        ssm.put_parameter(Name=name, Value=ids["al-old"], Type="String", Overwrite=True)


def test_find_without_parameter_uses_describe_images(env, run):
    ids = env.load(FLEET)["aliases"]
    rows = run.json("catalog", "find", "rhel-9", "--region", "us-east-1")
    assert [(r["image_id"], r["source"]) for r in rows] == [(ids["rhel"], "describe-images")]


def test_find_all_lists_every_match_non_deprecated_first_newest_first(env, run):
    ids = env.load(FLEET)["aliases"]
    rows = run.json("catalog", "find", "al2023", "--all", "--region", "us-east-1")
    assert [r["image_id"] for r in rows] == [ids["al-new"], ids["al-old"], ids["al-dep"]]
    assert {r["source"] for r in rows} == {"describe-images"}
    assert rows[-1]["deprecation_time"]


def test_find_in_several_regions(env, run):
    ids = env.load(FLEET)["aliases"]
    rows = run.json("catalog", "find", "al2023", "--region", "us-east-1,eu-west-1")
    assert {r["region"]: r["image_id"] for r in rows} == {
        "us-east-1": ids["al-new"],
        "eu-west-1": ids["al-eu"],
    }
    # debian is only in us-east-1: eu-west-1 is named in a warning
    code, out, err = run("catalog", "find", "debian-12", "--region", "us-east-1,eu-west-1")
    assert code == 0 and ids["bookworm"] in out and "eu-west-1" in err


def test_glob_searches_names_of_the_publishers_only(env, run):
    ids = env.load(FLEET)["aliases"]
    rows = run.json("catalog", "find", "debian-12-*", "--all", "--region", "us-east-1")
    assert [r["image_id"] for r in rows] == [ids["bookworm"]]  # not the account's own "fake"
    rows = run.json("catalog", "find", "noble", "--all", "--region", "us-east-1")
    assert {r["image_id"] for r in rows} == {ids["noble"], ids["noble-arm"]}
    rows = run.json("catalog", "find", "noble", "--arch", "arm64", "--region", "us-east-1")
    assert [r["image_id"] for r in rows] == [ids["noble-arm"]]


def test_parameter_naming_nothing_falls_back_and_nothing_found_exits_1(env, run):
    env.load(FLEET)
    # moto's al2 parameter names a real AWS image the sandbox does not have
    code, out, err = run("catalog", "find", "al2", "--region", "us-east-1")
    assert code == 1 and "no image of al2" in err
    assert "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2" in err


def test_bad_input_exits_2(env, run):
    code, _, err = run("catalog", "find", "windows-2022", "--arch", "arm64")
    assert code == 2 and "x86_64 only" in err
    code, _, _ = run("catalog", "find", "al2023", "--arch", "sparc")
    assert code == 2


def test_catalog_list_and_iam_policy(run):
    rows = run.json("catalog", "list")
    names = {r["name"] for r in rows}
    assert {
        "al2023",
        "al2",
        "ubuntu-22.04",
        "ubuntu-24.04",
        "debian-12",
        "windows-2022",
        "rhel-9",
    } <= names
    assert names == set(BASES)
    assert {"ec2:DescribeImages", "ssm:GetParameter"} <= permissions("catalog")


def test_describe_regions_commercial_partition_only(env):
    ec2 = env.client("ec2")
    names = {r["RegionName"] for r in ec2.describe_regions()["Regions"]}
    assert "us-east-1" in names and "eu-west-1" in names
    assert not {n for n in names if n.startswith(("cn-", "us-gov-"))}
    every = ec2.describe_regions(AllRegions=True)["Regions"]
    assert {r["OptInStatus"] for r in every} >= {"not-opted-in", "opt-in-not-required"}
    assert not {r["RegionName"] for r in every if r["RegionName"].startswith(("cn-", "us-gov-"))}
    assert {r["RegionName"] for r in every} > names
    one = ec2.describe_regions(RegionNames=["eu-west-1"])["Regions"]
    assert [r["RegionName"] for r in one] == ["eu-west-1"]
    filtered = ec2.describe_regions(
        AllRegions=True, Filters=[{"Name": "opt-in-status", "Values": ["not-opted-in"]}]
    )["Regions"]
    assert filtered and {r["OptInStatus"] for r in filtered} == {"not-opted-in"}
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.describe_regions(RegionNames=["cn-north-1"])
