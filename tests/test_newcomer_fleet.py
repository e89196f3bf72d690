"""Issue 31, items 1 and 2: the README's rollout, drift and Allowed AMIs lines, run as written
on the built-in demo fleet (a fresh account of the shared sandbox), with the outcome read in
AWS's own state; the example recipes bake on it and never move a prod channel.

The module's demo fleet is seeded once; the tests run in file order (drift, rollout, drift,
Allowed AMIs), as a newcomer would type the README's lines.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from amictl.cli import confirm
from amictl.creation.recipe import load_recipe
from amictl.sandbox import builtin
from cli_fleet import invoke
from conftest import Env, _accounts

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "examples" / "recipes").glob("*.recipe.yaml"))
CHANNEL = "/amictl/channels/web/prod"


def readme_lines(word: str) -> list[list[str]]:
    """The README's `.venv/bin/amictl ...` lines naming ``word``, as argv (comments cut);
    not its `--sandbox` block, which tests/test_docs_commands.py runs."""
    out = []
    for line in (ROOT / "README.md").read_text().splitlines():
        sandbox = "--sandbox" in line.split()
        if line.startswith(".venv/bin/amictl ") and f" {word} " in f"{line} " and not sandbox:
            out.append(shlex.split(line, comments=True)[1:])
    assert out, f"README has no `amictl {word}` line"
    return out


class Demo:
    def __init__(self, sandbox: Any, tmp: Path) -> None:
        self.env = Env(sandbox, str(next(_accounts)))
        fleet = builtin.demo()
        fleet["account"] = self.env.account
        self.ids = sandbox.load_text(yaml.safe_dump(fleet), "<demo fleet>")["aliases"]
        self.vars = {**self.env.cli_env(tmp), "COLUMNS": "100", "AMICTL_BAKE_POLL": "0.05"}

    def __call__(self, argv: list[str], answer: str | None = None) -> tuple[int, str, str]:
        """The CLI as typed; ``answer``: what the user types at a confirmation prompt."""
        args = [*argv, *self.env.cli_args()]
        if answer is None:
            return invoke(args, self.vars)
        from click.testing import CliRunner

        from amictl.cli.main import cli

        tty = SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(confirm, "sys", tty)  # the one place a command asks
            res = CliRunner().invoke(cli, args, env=self.vars, input=answer)
        if res.exception and not isinstance(res.exception, SystemExit):
            code = getattr(res.exception, "exit_code", None)
            if code is None:
                raise res.exception
            return code, res.stdout, res.stderr + str(res.exception)
        return res.exit_code, res.stdout, res.stderr

    def ssm(self, name: str) -> str | None:
        try:
            return str(self.env.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])
        except self.env.client("ssm").exceptions.ParameterNotFound:
            return None

    def asg_images(self, name: str) -> Counter[str]:
        g = self.env.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[name]
        )["AutoScalingGroups"][0]
        ids = [i["InstanceId"] for i in g["Instances"]]
        if not ids:  # DescribeInstances without ids lists every instance
            return Counter()
        res = self.env.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
        return Counter(i["ImageId"] for r in res for i in r["Instances"])

    def default_image(self, template: str) -> str:
        v = self.env.client("ec2").describe_launch_template_versions(
            LaunchTemplateName=template, Versions=["$Default"]
        )["LaunchTemplateVersions"][0]
        return str(v["LaunchTemplateData"]["ImageId"])


@pytest.fixture(scope="module")
def demo(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return Demo(sandbox, tmp_path_factory.mktemp("demo-fleet"))


def _drift_json(demo: Demo, argv: list[str]) -> list[dict[str, Any]]:
    code, out, err = demo([*argv, "-o", "json"])
    assert code == 0, out + err
    body = json.loads(out)
    assert body["complete"], body
    return [b for g in body["groups"] if g["family"] == "web" for b in g["behind"]]


def test_drift_as_written_shows_the_group_behind_prod(demo: Demo) -> None:
    (argv,) = readme_lines("drift")
    code, out, err = demo(argv)
    assert code == 0, out + err
    assert "web-app" in out
    rows = _drift_json(demo, [*argv, "--from-state"])  # the inventory the line stored
    behind = Counter(r["kind"] for r in rows)
    assert behind["auto-scaling-group"] == 1 and behind["instance"] == 10, rows
    assert behind["launch-template-version"] == 1
    assert {r["image_id"] for r in rows} == {demo.ids["web-v1"]}


def test_rollout_as_written_moves_the_group_to_the_channel(demo: Demo) -> None:
    (argv,) = readme_lines("rollout")
    assert argv[:4] == ["rollout", "web", "--channel", "prod"] and "--wait" in argv
    new = demo.ssm(CHANNEL)
    assert new == demo.ids["web-v2"]
    assert demo.asg_images("web-app") == Counter({demo.ids["web-v1"]: 10})
    others = {g: demo.asg_images(g) for g in ("batch-asg", "win-asg", "web-asg")}
    web_server = demo.default_image("web-lt")
    started = time.monotonic()
    code, out, err = demo(argv, answer="y\n")
    took = time.monotonic() - started
    assert code == 0, out + err
    assert "succeeded" in out
    # AWS's state: every instance of the group runs the channel's image, the template's
    # default version holds it, the channel did not move
    assert demo.asg_images("web-app") == Counter({new: 10})
    assert demo.default_image("web-app") == new
    assert demo.ssm(CHANNEL) == new
    (refresh,) = demo.env.client("autoscaling").describe_instance_refreshes(
        AutoScalingGroupName="web-app"
    )["InstanceRefreshes"]
    assert refresh["Status"] == "Successful"
    assert refresh["Preferences"]["CheckpointPercentages"] == [10, 100]
    # the sandbox's 1000x clock: a 600 s canary wait and 10 batches, in seconds not an hour
    assert took < 20, took
    # the other families' groups were not touched
    assert {g: demo.asg_images(g) for g in others} == others
    assert demo.default_image("web-lt") == web_server


def test_drift_after_the_rollout_is_empty(demo: Demo) -> None:
    (argv,) = readme_lines("drift")
    assert _drift_json(demo, argv) == []
    code, out, err = demo(argv)
    assert code == 0, out + err


def test_allowed_images_as_written_audit_then_enabled(demo: Demo) -> None:
    audit, status, enabled = readme_lines("allowed-images")
    assert "audit-mode" in audit and status == ["allowed-images", "status"]
    code, out, err = demo(audit, answer="y\n")
    assert code == 0, out + err
    ec2 = demo.env.client("ec2")
    settings = ec2.get_allowed_images_settings()
    assert settings["State"] == "audit-mode"
    criteria = settings["ImageCriteria"]
    assert any(c.get("ImageProviders") == ["amazon"] for c in criteria), criteria
    assert any("web-*" in (c.get("ImageNames") or []) for c in criteria), criteria
    code, out, err = demo(status)
    assert code == 0, out + err
    assert "audit-mode" in out
    # the rolled-out group runs an image the channels allow
    meta = ec2.describe_instance_image_metadata()["InstanceImageMetadata"]
    on_web = [m for m in meta if m["ImageMetadata"]["ImageId"] == demo.ids["web-v2"]]
    assert on_web and all(m["ImageMetadata"].get("ImageAllowed") for m in on_web)
    # enabled as written: the demo fleet runs only its own images and Amazon's, so nothing
    # would lose its image and AWS's setting is enabled
    code, out, err = demo(enabled, answer="y\n")
    assert code == 0, out + err
    assert ec2.get_allowed_images_settings()["State"] == "enabled"


# ---- item 1: the example recipes tell one story ---------------------------------------------

HEADER_PROMOTES = re.compile(r"promoted to the channel (\w+)|promoted to (\w+)")


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_no_example_recipe_promotes_to_prod(path: Path) -> None:
    recipe = load_recipe(str(path))
    assert recipe.promote not in ("prod", "production"), path.name
    header = "".join(line for line in path.read_text().splitlines(True) if line.startswith("#"))
    said = {a or b for a, b in HEADER_PROMOTES.findall(" ".join(header.split()))}
    assert said == {recipe.promote}, (path.name, said)


def test_example_recipes_bake_as_their_header_says_and_prod_never_moves(demo: Demo) -> None:
    def prods() -> dict[str, str]:
        pages = demo.env.client("ssm").get_paginator("get_parameters_by_path")
        found = {}
        for page in pages.paginate(Path="/amictl/channels", Recursive=True):
            found.update({p["Name"]: p["Value"] for p in page["Parameters"]})
        return {k: v for k, v in found.items() if k.endswith("/prod")}

    before = prods()
    assert "/amictl/channels/base-al2023/prod" in before
    for path in RECIPES:
        recipe = load_recipe(str(path))
        code, out, err = demo(["bake", str(path), "--region", "us-east-1", "-o", "json"])
        assert code == 0, (path.name, out + err)
        rec = json.loads(out)
        assert rec["status"] == "succeeded", rec
        chan = f"/amictl/channels/{recipe.family}/{recipe.promote}"
        assert demo.ssm(chan) == rec["image_id"], (path.name, chan)  # the header's channel
        (image,) = demo.env.client("ec2").describe_images(ImageIds=[rec["image_id"]])["Images"]
        tags = {t["Key"]: t["Value"] for t in image["Tags"]}
        assert tags["amictl:bake-status"] == "tested"
        if recipe.source_ref == "base-al2023@prod":  # the demo fleet's base channel
            assert rec["source"]["image_id"] == before["/amictl/channels/base-al2023/prod"]
    assert prods() == before  # no prod channel moved, the source's included
    # and `bake setup` on the demo account has nothing to do: the demo fleet has it
    code, out, err = demo(["bake", "setup", "-o", "json"])
    assert code == 0, out + err
    data = json.loads(out)
    assert {r["status"] for r in data["planned"]} == {"ok"} and data["result"] is None
