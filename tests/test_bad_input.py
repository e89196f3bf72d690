"""Bad input gets a clear error (exit 2, or exit 1 for the state store), never a traceback."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from amictl.cli import main as climain
from amictl.durations import parse_duration
from amictl.errors import InputError
from amictl.sandbox import builtin
from amictl.sandbox.fleet import TOTALS, parse_file, parse_text
from amictl.state.store import Store
from amictl.yamlpos import MAX_BYTES, load_file

POLICY = (
    "format: 1\n"
    "rules:\n"
    "  - name: r\n"
    "    select: {families: ['*'], older_than: 30d}\n"
    "    retire: {deregister: 0d}\n"
)


def run(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, **env: str
) -> tuple[int, str]:
    """Run the CLI in-process; return (exit code, stderr). Any traceback fails the test."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exc:
        climain.main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return int(exc.value.code or 0), err


def bomb(levels: int) -> str:
    """A "billion laughs" document: each level is 9 aliases to the one before."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- 1. policy and fleet files


@pytest.mark.parametrize(
    "content,line,needle",
    [
        (POLICY.encode() + b"name: a\x00b\n", 6, "NUL bytes"),
        (b"format: 1\n\x01\x02\x03\x7f binary\n", 2, "not a text file"),
        (b"format: 1\na: &x [*x]\n", 2, "recursive YAML alias"),
        (b"format: 1\nb:\n  - &y {c: [1, *y]}\n", 3, "recursive YAML alias"),
        # 9**6 = 531,441 values from a 400-byte file; the old loader built them all
        (bomb(6).encode(), None, "aliases (*name) expand to more than 100,000"),
        (b"format: 1\nwhen: 2024-13-45\n", 2, "cannot read the value"),
        (b"format: 1\nn: " + b"9" * 5000 + b"\n", 2, "cannot read the value"),
        (b"format: 1\nx: " + b"[" * 2000 + b"]" * 2000 + b"\n", None, "nested more than"),
    ],
    ids=["nul", "binary", "recursive", "recursive-nested", "bomb", "date", "bigint", "deep"],
)
def test_policy_file_with_bad_content_exits_2_naming_file_and_line(
    tmp_path, capsys, monkeypatch, content, line, needle
):
    path = tmp_path / "policy.yaml"
    path.write_bytes(content)
    code, err = run(["policy", "validate", str(path)], capsys, monkeypatch)
    assert code == 2, err
    assert needle in err
    assert f"{path}:{line}:" in err if line else str(path) in err


@pytest.mark.parametrize(
    "content,line,needle",
    [
        (b"images:\n  - alias: \xff\xfe\n", 2, "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1, "not UTF-8"),
        (b"images:\n  - {alias: a, name: \x00}\n", 2, "NUL bytes"),
        (b"images: &i\n  - {alias: a, tags: *i}\n", 2, "recursive YAML alias"),
        (bomb(7).encode(), None, "aliases (*name) expand to more than 100,000"),
    ],
    ids=["latin1", "png", "nul", "recursive", "bomb"],
)
def test_fleet_file_with_bad_content_is_input_error(tmp_path, content, line, needle):
    path = tmp_path / "fleet.yaml"
    path.write_bytes(content)
    with pytest.raises(InputError) as e:
        parse_file(str(path))
    assert e.value.file == str(path)
    assert needle in str(e.value)
    if line:
        assert e.value.line == line, str(e.value)


def test_files_over_the_size_limit_are_refused(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# " + b"x" * MAX_BYTES + b"\n")
    with pytest.raises(InputError, match="larger than the limit of 10 MiB"):
        load_file(str(path))
    with pytest.raises(InputError, match="larger than the limit of 10 MiB"):
        parse_text(path.read_text(), str(path))


# ---------------------------------------------------------------- 2. durations


def test_huge_durations_are_refused_not_overflowed(tmp_path, capsys, monkeypatch):
    assert parse_duration("36525d") == dt.timedelta(days=36525)
    for text in ("36526d", "876601h", "5218w", "99999999999999d", "9" * 5000 + "d"):
        with pytest.raises(ValueError, match="limit of 100 years"):
            parse_duration(text)

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace("older_than: 30d", "older_than: 99999999999999d"))
    code, err = run(["policy", "validate", str(policy)], capsys, monkeypatch)
    assert code == 2, err
    assert f"{policy}:4: rules[0].select.older_than:" in err and "100 years" in err

    code, err = run(
        ["ls", "--older-than", "99999999999999d", "--from-state"],
        capsys,
        monkeypatch,
        AMICTL_STATE=f"sqlite:///{tmp_path}/state.db",
    )
    assert code == 2, err
    assert "--older-than" in err and "100 years" in err


# ---------------------------------------------------------------- 3. fleet numbers and names

IMG = "images:\n  - alias: a\n"


@pytest.mark.parametrize(
    "text,line,key,needle",
    [
        (IMG + "    age_days: 99999999999\n", 3, "images[0].age_days", "from 0 to 36525"),
        (IMG + "    age_days: .nan\n", 3, "images[0].age_days", "from 0 to 36525"),
        (IMG + "    age_days: .inf\n", 3, "images[0].age_days", "from 0 to 36525"),
        (IMG + "    age_days: -1\n", 3, "images[0].age_days", "from 0 to 36525"),
        (IMG + "    deprecate_in_days: 1000000000000\n", 3, "images[0].deprecate_in_days", "36525"),
        (IMG + "    last_launched_days_ago: -.inf\n", 3, "images[0].last_launched_days_ago", ""),
        ("snapshots:\n  - {alias: s, age_days: .nan}\n", 2, "snapshots[0].age_days", "36525"),
        (
            IMG + "instances:\n  - {alias: i, image: a, count: 100000000}\n",
            4,
            "instances[0].count",
            "from 1 to 1000",
        ),
        (
            IMG + "    snapshots: [{size_gib: 1000000000}]\n",
            3,
            "images[0].snapshots[0].size_gib",
            "from 1 to 65536",
        ),
        (
            IMG + "launch_templates:\n  - {alias: t, versions: [{image: a}]}\n"
            "auto_scaling_groups:\n  - {alias: g, launch_template: t, desired: 100000000}\n",
            6,
            "auto_scaling_groups[0].desired",
            "from 0 to 1000",
        ),
        (
            IMG
            + "launch_templates:\n  - {alias: t, versions: ["
            + ", ".join(["{image: a}"] * 1001)
            + "]}\n",
            4,
            "launch_templates[0].versions",
            "at most 1000 versions",
        ),
        (
            IMG
            + "instances:\n"
            + "".join(f"  - {{alias: i{n}, image: a, count: 1000}}\n" for n in range(51)),
            3,
            "instances",
            "51,000 instances: the limit is 50,000",
        ),
        # things only seeding found out, after part of the fleet was made
        ("regions: [zz-mars-1]\n", 1, "regions[0]", "not a region name"),
        ("regions: [us-iso-east-1]\n", 1, "regions[0]", "cannot seed"),
        (
            IMG + "launch_templates:\n  - {alias: t, versions: [{image: a}]}\n"
            "auto_scaling_groups:\n  - {alias: g, launch_template: t, version: '7'}\n",
            6,
            "auto_scaling_groups[0].version",
            "has versions 1 to 1",
        ),
        (
            IMG + "launch_templates:\n  - {alias: t1, name: web, versions: [{image: a}]}\n"
            "  - {alias: t2, name: web, versions: [{image: a}]}\n",
            5,
            "launch_templates[1].name",
            "duplicate launch template name 'web'",
        ),
        (
            IMG + "ssm_parameters:\n  - {alias: p, name: aws-thing, image: a}\n",
            4,
            "ssm_parameters[0].name",
            "cannot begin with aws or ssm",
        ),
        (
            IMG + "instances:\n  - {alias: i, image: a, tags: {team: null}}\n",
            4,
            "instances[0].tags.team",
            "a tag value is a string",
        ),
    ],
    ids=[
        "age-huge",
        "age-nan",
        "age-inf",
        "age-negative",
        "deprecate-huge",
        "launched-minus-inf",
        "snapshot-age-nan",
        "count-huge",
        "size-huge",
        "desired-huge",
        "versions-too-many",
        "instances-total",
        "region-unknown",
        "region-not-served",
        "asg-version-missing",
        "lt-name-duplicate",
        "ssm-name-reserved",
        "tag-null",
    ],
)
def test_bad_fleet_numbers_and_names_name_file_line_and_key(text, line, key, needle):
    with pytest.raises(InputError) as e:
        parse_text(text, "fleet.yaml")
    assert e.value.file == "fleet.yaml"
    assert e.value.line == line, str(e.value)
    assert e.value.key == key, str(e.value)
    assert needle in str(e.value)


def test_bad_fleet_file_seeds_nothing(env, tmp_path, capsys, monkeypatch):
    """The bad line is after good images: the file is refused whole, nothing is created."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        f"account: '{env.account}'\n"
        "images:\n  - {alias: good-1}\n  - {alias: good-2}\n"
        "  - {alias: bad, age_days: 99999999999}\n"
    )
    code, err = run(
        ["sandbox", "load", str(fleet)],
        capsys,
        monkeypatch,
        AMICTL_SANDBOX_HOME=str(env.sandbox.home),
    )
    assert code == 2, err
    assert f"{fleet}:5: images[2].age_days:" in err
    assert env.client("ec2").describe_images(Owners=["self"])["Images"] == []


def test_names_that_already_exist_in_the_sandbox_are_refused_before_seeding(env):
    text = "images:\n  - {alias: a}\nlaunch_templates:\n  - {alias: t, name: web-lt, versions: [{image: a}]}\n"
    env.load(text)
    with pytest.raises(InputError) as e:
        env.load(text)
    assert "launch_templates[0].name" in str(e.value) and "already exists" in str(e.value)
    assert len(env.client("ec2").describe_images(Owners=["self"])["Images"]) == 1


def test_large_fleet_options_are_capped_before_generating():
    with pytest.raises(InputError, match="--images: must be from 0 to 100,000"):
        builtin.large(images=TOTALS["images"] + 1)
    with pytest.raises(InputError, match="--lt-versions"):
        builtin.large(lt_versions=0)
    with pytest.raises(InputError, match="--images: must be at least --regions-count"):
        builtin.large(images=2, regions=4, instances=10)


# ---------------------------------------------------------------- 4. regions


@pytest.mark.parametrize(
    "region,hint",
    [
        ("mars-1", "describe-regions"),
        ("US-EAST-1", "did you mean us-east-1?"),
        ("us-east-1,eu_west_1", "did you mean eu-west-1?"),
    ],
)
def test_unknown_region_exits_2_with_a_hint(env, tmp_path, capsys, monkeypatch, region, hint):
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    code, err = run(
        [*env.cli_args(), "--region", region, "ls"], capsys, monkeypatch, **env.cli_env(tmp_path)
    )
    assert code == 2, err
    assert "--region: unknown region" in err and hint in err


def test_real_region_names_are_accepted(env):
    from amictl.aws.session import check_regions

    check_regions(["us-east-1", "eu-west-1", "af-south-1", "me-central-1", "cn-north-1", "all"])
    check_regions(builtin.REGIONS)
    conn = env.connector(["all", "eu-west-1"])
    assert conn.home_region() == "eu-west-1"


# ---------------------------------------------------------------- 5. the state store


@pytest.mark.parametrize("damage", ["random", "truncated"])
def test_corrupt_state_store_is_a_state_error_naming_path_and_fix(
    tmp_path, capsys, monkeypatch, damage
):
    db = tmp_path / "state.db"
    if damage == "random":
        db.write_bytes(os.urandom(8192))
    else:
        Store(f"sqlite:///{db}").engine.dispose()
        for extra in ("-wal", "-shm"):
            Path(f"{db}{extra}").unlink(missing_ok=True)
        with open(db, "r+b") as fh:
            fh.truncate(4096)
    code, err = run(["ls", "--from-state"], capsys, monkeypatch, AMICTL_STATE=f"sqlite:///{db}")
    assert code == 1, err
    assert f"{db} is not a readable SQLite database" in err
    assert f"mv {db} {db}.bad" in err


def test_state_dir_that_cannot_be_created_is_a_state_error(tmp_path, capsys, monkeypatch):
    # running as root, permissions would not stop mkdir: put a regular file in the way
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.delenv("AMICTL_STATE", raising=False)
    code, err = run(["ls", "--from-state"], capsys, monkeypatch, XDG_STATE_HOME=str(blocker))
    assert code == 1, err
    assert f"cannot create the state directory {blocker}/amictl" in err
    assert "--state" in err
