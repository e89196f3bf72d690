"""Issue 13: what a newcomer trips over — output, messages, docs and packaging.

One seeded fleet in two accounts is shared by the end-to-end tests of this module.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from amictl.cli.common import GLOBAL_HELP_LINE
from amictl.cli.main import cli
from amictl.cli.output import fit_columns, fmt_time, normalize_times, table_width
from amictl.cli.plan_cmd import PLAN_CSV_COLUMNS
from amictl.cli.sandbox_cmd import seeded_summary
from amictl.durations import human_duration, parse_duration, plural
from amictl.errors import AmictlError, InputError, InputErrors
from amictl.policy import parse_policy_text
from amictl.sandbox.fleet import parse_text
from conftest import Env, _accounts

ROOT = Path(__file__).resolve().parents[1]
POLICY = """format: 1
name: newcomer
rules:
  - name: old
    select: {families: ['*']}
    keep: {latest: 1, in_use: true, shared: true}
    retire: {deregister: 0d}
"""
FLEET = """
images:
  - {alias: lonely, name: ci-runner-rebuild-1.0, age_days: 40, tags: {family: ci-runner-rebuild, version: "1.0"}}
  - {alias: newest, name: ci-runner-rebuild-2.0, age_days: 5, tags: {family: ci-runner-rebuild, version: "2.0"}}
  - {alias: public, name: base-1.0, age_days: 100, public: true}
  - {alias: shared, name: shared-1.0, age_days: 100, shared_with: ["210987654321"]}
  - {alias: used, name: web-1.0, age_days: 100, last_launched_days_ago: 2}
  - {alias: deprecated, name: old-1.0, age_days: 300, deprecated_days_ago: 10}
instances:
  - {alias: i1, image: used}
"""
OTHER_FLEET = """
images:
  - {alias: elsewhere, name: far-away-service-1.0, age_days: 10}
"""
ISO_OFFSET = re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?[+-]\d{2}:\d{2}\b")


class Run:
    """The CLI as a user runs it, in the module's two accounts, with its own state store."""

    def __init__(self, envs: list[Env], tmp: Path) -> None:
        self.envs = envs
        self.tmp = tmp
        self.environ = envs[0].cli_env(tmp)

    def __call__(self, *args: str, columns: int = 100, accounts: int = 1) -> tuple[int, str, str]:
        extra = ["--endpoint-url", self.envs[0].sandbox.endpoint]
        for e in self.envs[:accounts]:
            extra += ["--role-arn", e.role_arn]
        env = {**self.environ, "COLUMNS": str(columns)}
        res = CliRunner(env=env).invoke(cli, [*args, *extra])
        code, err = res.exit_code, res.stderr
        if isinstance(res.exception, AmictlError):
            code = res.exception.exit_code
            err += f"error: {res.exception.message}\nhint: {res.exception.hint}\n"
        elif res.exception and not isinstance(res.exception, SystemExit):
            raise res.exception
        return code, res.stdout, err

    def json(self, *args: str, accounts: int = 1) -> Any:
        code, out, err = self(*args, "-o", "json", accounts=accounts)
        assert code == 0, out + err
        return json.loads(out)


@pytest.fixture(scope="module")
def fleet(sandbox, tmp_path_factory):
    envs = [Env(sandbox, str(next(_accounts))), Env(sandbox, str(next(_accounts)))]
    ids = envs[0].load(FLEET)["aliases"]
    ids.update(envs[1].load(OTHER_FLEET)["aliases"])
    tmp = tmp_path_factory.mktemp("newcomer")
    run = Run(envs, tmp)
    code, out, err = run("inventory", accounts=2)
    assert code == 0, out + err
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY)
    return run, ids, policy, envs


# ---- Output: ls columns, fitting, --unused ---------------------------------------------


def test_ls_json_has_account_and_last_launch(fleet):
    run, ids, _, envs = fleet
    rows = run.json("ls", "--from-state", accounts=2)
    by_id = {r["image_id"]: r for r in rows}
    assert by_id[ids["elsewhere"]]["account"] == envs[1].account
    assert by_id[ids["lonely"]]["account"] == envs[0].account
    assert by_id[ids["used"]]["last_launched_time"].endswith("Z")
    for r in rows:
        assert {"account", "last_launched_time", "created_at"} <= set(r)


def test_ls_table_has_every_column_when_wide(fleet):
    run, _, _, _ = fleet
    code, out, err = run("ls", "--from-state", columns=400, accounts=2)
    assert code == 0, err
    header = next(line for line in out.splitlines() if "image" in line and "name" in line)
    for label in ("account", "region", "name", "last launch", "deprecation", "$/month", "refs"):
        assert label in header, (label, header)
    assert "left out" not in err


def test_ls_at_100_columns_never_wraps_ids_names_or_times(fleet):
    run, ids, _, envs = fleet
    rows = run.json("ls", "--from-state", accounts=2)
    code, out, err = run("ls", "--from-state", columns=100, accounts=2)
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100, out
    for r in rows:
        row = next((line for line in lines if r["image_id"] in line), None)
        assert row is not None, f"{r['image_id']} is not whole on one line:\n{out}"
        assert r["name"] in row, f"{r['name']} wrapped:\n{out}"
    # a two-account listing names the account of every row
    header = next(line for line in lines if "image" in line and "name" in line)
    assert "account" in header
    assert envs[1].account in next(line for line in lines if ids["elsewhere"] in line)
    # what did not fit is named, once, on stderr
    assert "left out to fit 100 columns:" in err and "last launch" in err


def test_one_account_listing_says_the_account_once(fleet):
    run, _, _, envs = fleet
    code, out, err = run("ls", "--from-state", "--family", "ci-runner-rebuild", columns=60)
    assert code == 0, err
    # the same account in every row: said once, in the title, instead of a column
    assert f"account {envs[0].account}" in out.splitlines()[0]
    assert out.count(envs[0].account) == 1


def test_unused_means_nothing_refers_to_it(fleet):
    run, ids, _, _ = fleet
    rows = run.json("ls", "--unused", "--from-state")
    got = {r["image_id"] for r in rows}
    assert ids["lonely"] in got and ids["deprecated"] in got
    # public, shared, or launched by an instance: referenced, so not listed as unused
    assert not got & {ids["public"], ids["shared"], ids["used"]}
    assert all(r["references"] == 0 for r in rows)
    _, help_out, _ = run("ls", "--help")
    assert "neither shared nor public" in " ".join(help_out.split())


# ---- Output: plan CSV, sandbox load, one time format ----------------------------------


def test_plan_csv_is_one_row_per_action_with_flat_columns(fleet):
    import csv
    import io

    run, _, policy, _ = fleet
    body = run.json("plan", "-p", str(policy), "--from-state")
    code, out, err = run("plan", "-p", str(policy), "--from-state", "-o", "csv")
    assert code == 0, err
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == PLAN_CSV_COLUMNS
    assert len(table) - 1 == len(body["actions"]) > 0
    assert [r[0] for r in table[1:]] == sorted(
        (a["id"] for a in body["actions"]), key=lambda x: int(x[1:])
    )
    for r in table[1:]:
        assert len(r) == len(PLAN_CSV_COLUMNS)
        assert not any(c.startswith(("{", "[")) for c in r), r


def test_sandbox_load_prints_a_readable_summary(fleet):
    _, _, _, envs = fleet
    result = envs[1].load("images:\n  - {alias: x, name: x-1.0}\n  - {alias: y, name: y-1.0}\n")
    text = seeded_summary(result)
    assert re.fullmatch(r"seeded 2 images, 2 snapshots in \d+\.\d\d s", text), text
    assert seeded_summary({"counts": {"images": 1, "instances": 0}, "seconds": 0.5}) == (
        "seeded 1 image in 0.50 s"
    )


def test_one_time_format_everywhere(fleet):
    run, ids, policy, _ = fleet
    outputs = [
        run("ls", "--from-state", "-o", "json")[1],
        run("ls", "--from-state", "-o", "yaml")[1],
        run("ls", "--from-state", "-o", "csv")[1],
        run("ls", "--from-state", columns=400)[1],
        run("show", ids["deprecated"], "--from-state", "-o", "json")[1],
        run("snapshots", "--from-state", "-o", "json")[1],
        run("plan", "-p", str(policy), "--from-state", "-o", "json")[1],
    ]
    for text in outputs:
        assert text.strip()
        assert not ISO_OFFSET.search(text), ISO_OFFSET.search(text)
    show = json.loads(outputs[4])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", show["deprecation_time"])
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", outputs[3])


def test_time_helpers():
    t = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert fmt_time(t) == "2026-11-26T08:00:00Z"
    assert fmt_time("2026-11-26T10:00:00.000+00:00") == "2026-11-26T10:00:00Z"
    assert fmt_time("not a time") == "not a time"
    data = {
        "created_at": "2026-11-26T10:00:00+00:00",
        "when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "tags": {"retain-until": "2026-11-26T10:00:00+00:00"},
        "name": "2026-11-26T10:00:00+00:00",
    }
    out = normalize_times(data)
    assert out["created_at"] == "2026-11-26T10:00:00Z"
    assert out["when"] == "2026-01-01T00:00:00Z"
    assert out["tags"]["retain-until"].endswith("+00:00")  # user data is left alone
    assert out["name"].endswith("+00:00")  # not a time field


# ---- Durations in words -----------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds,words",
    [
        (0, "0 s"),
        (45, "45 s"),
        (300, "5 min"),
        (330, "5 min 30 s"),
        (3600 * 3 + 60 * 20, "3 h 20 min"),
        (3600 * 24, "1 d"),
        (3600 * 28, "1 d 4 h"),
        (86400 * 26 + 3600 * 5, "26 d"),
        (-300, "-5 min"),
    ],
)
def test_human_duration(seconds, words):
    assert human_duration(dt.timedelta(seconds=seconds)) == words


def test_plural():
    assert plural(1, "version") == "1 version"
    assert plural(2, "version") == "2 versions"
    assert plural(0, "rule") == "0 rules"
    assert plural(1, "snapshot is", "snapshots are") == "1 snapshot is"


def test_a_bad_duration_says_what_to_write():
    with pytest.raises(ValueError) as e:
        parse_duration("1s")
    msg = str(e.value)
    assert "'1s'" in msg and "h (hours), d (days) or w (weeks)" in msg and "24h" in msg


def test_stale_plan_age_and_limit_in_words(fleet):
    run, _, policy, _ = fleet
    plan_file = run.tmp / "stale.json"
    code, _, err = run("plan", "-p", str(policy), "--from-state", "--out", str(plan_file))
    assert code == 0, err
    code, out, err = run("apply", str(plan_file), "--yes", "--max-age", "0h")
    assert code == 3
    msg = " ".join((out + err).split())
    assert re.search(r"the plan is \d+ (s|min) old \(the limit is 0 s, --max-age 0h\)", msg), msg
    assert "0:00:00" not in msg and " h old" not in msg


# ---- Global options shown once ----------------------------------------------------------


@pytest.mark.parametrize("args", [["ls"], ["plan"], ["sandbox", "up"], ["policy"]])
def test_subcommand_help_points_at_global_options(args):
    res = CliRunner().invoke(cli, [*args, "--help"])
    assert res.exit_code == 0
    assert GLOBAL_HELP_LINE in res.output
    for opt in ("--endpoint-url", "--role-arn", "--accounts-file", "--no-progress"):
        assert opt not in res.output, opt


def test_root_help_lists_global_options_once():
    res = CliRunner().invoke(cli, ["--help"])
    for opt in ("--endpoint-url", "--role-arn", "--accounts-file", "--no-progress", "--output"):
        assert res.output.count(opt) == 1, opt
    assert GLOBAL_HELP_LINE not in res.output


def test_global_options_still_work_after_a_subcommand(tmp_path):
    res = CliRunner().invoke(cli, ["iam-policy", "plan", "-o", "json", "-v", "--profile", "x"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["Statement"]


# ---- apply with a plan file and -p -------------------------------------------------------


def test_apply_refuses_a_plan_file_with_a_policy(fleet):
    run, ids, policy, envs = fleet
    plan_file = run.tmp / "both.json"
    code, _, err = run("plan", "-p", str(policy), "--from-state", "--out", str(plan_file))
    assert code == 0, err
    code, out, err = run("apply", str(plan_file), "-p", str(policy), "--yes")
    assert code == 2
    msg = " ".join((out + err).split())
    assert "not both" in msg and f"amictl apply {plan_file}" in msg
    # nothing was applied
    img = envs[0].client("ec2").describe_images(ImageIds=[ids["lonely"]])["Images"]
    assert img and img[0]["State"] == "available"


# ---- All errors of a file at once --------------------------------------------------------

BAD_POLICY = """format: 1
rules:
  - name: r
    select: {families: ['*'], regions: ['US_EAST']}
    keep: {latest: two, colour: red}
    retire: {deprecate: 10d, deregister: 5d}
  - name: r
    select: {families: ['*']}
    retire: {deregister: 1s}
holds:
  - {tag: x, deregistration_protection: true}
"""


def test_policy_validate_reports_every_error(tmp_path):
    with pytest.raises(InputErrors) as e:
        parse_policy_text(BAD_POLICY, "bad.yaml")
    got = [(x.line, x.key) for x in e.value.errors]
    assert got == [
        (4, "rules[0].select.regions[0]"),
        (5, "rules[0].keep.colour"),
        (5, "rules[0].keep.latest"),
        (6, "rules[0].retire.deregister"),
        (7, "rules[1].name"),
        (9, "rules[1].retire.deregister"),
        (11, "holds[0]"),
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_POLICY)
    from amictl.cli import main as climain

    res = CliRunner().invoke(cli, ["policy", "validate", str(bad)])
    assert isinstance(res.exception, InputError) and res.exception.exit_code == 2
    text = str(res.exception)
    for line, key in got:
        assert f"{bad}:{line}: {key}: " in text, (line, key, text)
    with pytest.raises(SystemExit) as ex:
        climain.main(["policy", "validate", str(bad)])
    assert ex.value.code == 2


def test_one_error_is_still_one_error():
    with pytest.raises(InputError) as e:
        parse_policy_text(POLICY.replace("0d}", "0d}\n    colour: red"), "p.yaml")
    assert not isinstance(e.value, InputErrors)
    assert (e.value.line, e.value.key) == (8, "rules[0].colour")


def test_fleet_reports_every_bad_item():
    text = (
        "images:\n"
        "  - {alias: a, colour: red}\n"
        "  - {alias: b, age_days: -4}\n"
        "snapshots:\n"
        "  - {alias: s, size: 3}\n"
    )
    with pytest.raises(InputErrors) as e:
        parse_text(text, "f.yaml")
    assert [x.line for x in e.value.errors] == [2, 3, 5]


# ---- Demo wording: tests/test_newcomer_cli.py (one demo run checks width and wording)


# ---- Table fitting (no sandbox) ------------------------------------------------------------


def _cells(rows: list[dict[str, str]], cols: list[str]) -> dict[str, list[str]]:
    return {c: [r[c] for r in rows] for c in cols}


def test_fit_drops_low_value_columns_first_and_keeps_ids():
    cols = ["image_id", "name", "note_a", "note_b", "wide"]
    rows = [
        {
            "image_id": f"ami-{i:017x}",
            "name": f"n{i}",
            "note_a": "a" * i,
            "note_b": "b" * i,
            "wide": "w" * (30 + i),
        }
        for i in range(1, 4)
    ]
    cells = _cells(rows, cols)
    full = table_width([max(len(c), *(len(v) for v in cells[c])) for c in cols])
    assert fit_columns(cols, cells, full).columns == cols
    fit = fit_columns(cols, cells, full - 1, drop=["wide", "note_a"])
    assert fit.dropped == ["wide"] and fit.width <= full - 1
    fit = fit_columns(cols, cells, 10, drop=["image_id", "name", "wide", "note_a", "note_b"])
    assert {"image_id", "name"} <= set(fit.columns)  # never dropped, even when asked


def test_fit_says_a_constant_column_once_and_takes_back_what_fits():
    cols = ["image_id", "account", "big", "small"]
    rows = [
        {
            "image_id": f"ami-{i:017x}",
            "account": "123456789012",
            "big": "x" * (40 + i),
            "small": f"s{i}",
        }
        for i in range(3)
    ]
    cells = _cells(rows, cols)
    fit = fit_columns(cols, cells, 60, drop=["small", "big"])
    assert fit.folded == {"account": "123456789012"}
    # "small" went first, but fits again once "big" is gone
    assert fit.dropped == ["big"] and fit.columns == ["image_id", "small"]


# ---- Docs and packaging ----------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_resolves_inside_the_repository():
    checked = 0
    for doc in _docs():
        text = doc.read_text()
        assert "shared/spec" not in text and "/work/" not in text, doc
        for target in LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL or an anchor in the same page
            path = target.split("#")[0]
            assert not path.startswith("/"), f"{doc.name}: absolute path {target}"
            resolved = (doc.parent / path).resolve()
            assert resolved.is_relative_to(ROOT), f"{doc.name}: {target} leaves the repository"
            assert resolved.exists(), f"{doc.name}: {target} does not exist"
            checked += 1
    assert checked >= 5  # the README's documentation list at least


def test_fleet_format_is_documented_in_the_repository():
    text = (ROOT / "docs" / "fleet.md").read_text()
    for key in ("reuse_snapshot_of", "launch_templates", "auto_scaling_groups", "## Limits"):
        assert key in text
    assert "[fleet.md](fleet.md)" in (ROOT / "docs" / "sandbox.md").read_text()


def test_license_is_apache_2_and_declared():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]


def test_readme_iam_policy_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### The minimal IAM policy") :]
    block = section[section.index("```json") + len("```json") : section.index("```\n", 8)]
    res = CliRunner().invoke(cli, ["iam-policy", "inventory", "plan"])
    assert json.loads(block) == json.loads(res.output), (
        "regenerate it: amictl iam-policy inventory plan"
    )


def test_readme_walkthrough_shows_real_commands():
    readme = (ROOT / "README.md").read_text()
    walk = readme[readme.index("### A first run") : readme.index("## The sandbox")]
    for cmd in ("inventory", "ls --unused", "plan -p examples/ci-cleanup.yaml"):
        assert f"$ amictl --profile prod --region us-east-1,eu-west-1 {cmd}" in walk
    assert (ROOT / "examples" / "ci-cleanup.yaml").exists()
    assert "images selected" in walk and "API calls" in walk


def test_yaml_output_uses_the_time_format():
    # yaml.safe_dump would write a datetime as "2026-11-26 10:00:00+00:00"
    from amictl.cli.common import emit, settings

    @cli.command("_yaml_probe", hidden=True)
    def probe() -> None:
        settings().output = "yaml"
        emit({"created_at": dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)})

    try:
        res = CliRunner().invoke(cli, ["_yaml_probe"])
    finally:
        cli.commands.pop("_yaml_probe")
    assert yaml.safe_load(res.output) == {"created_at": "2026-11-26T10:00:00Z"}
