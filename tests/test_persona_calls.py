"""Personas are derived from the commands they are for (issue 27): every call each of
those commands registers is granted by the persona's policy, every call the commands make
on the sandbox too (recorded as the call counter counts them), and the persona table in
docs/cli.md lists the commands."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from amictl.aws.session import CallCounter
from amictl.iam import iam_action, permissions
from amictl.personas import ALLOWED, Request, evaluate, grants
from amictl.personas.policies import COMMANDS, LEFT_OUT, PERSONAS, READS_ONLY, is_read, policy
from cli_fleet import CliFleet

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "cli.md"


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_every_registered_call_of_its_commands_is_granted(persona: str) -> None:
    doc = [policy(persona)]
    left = LEFT_OUT.get(persona, {})
    for command in COMMANDS[persona]:
        for action in sorted(permissions(command)):
            if persona in READS_ONLY and not is_read(action):
                assert not grants(doc, action), (persona, command, action)
                continue
            if action in left:
                assert not grants(doc, action), (persona, command, action, "left out")
                continue
            assert grants(doc, action), (persona, command, action)


def test_the_issue_s_missing_calls_are_granted() -> None:
    for persona, actions in {
        "auditor": [
            "ssm:GetParameterHistory",
            "ec2:GetAllowedImagesSettings",
            "ec2:DescribeInstanceImageMetadata",
            "ec2:GetImageAncestry",
        ],
        "retirer": [
            "ssm:GetParameterHistory",
            "ec2:DescribeImageReferences",
            "ec2:DescribeSnapshotAttribute",
            "ec2:CreateImageUsageReport",
            "ec2:DescribeImageUsageReports",
            "ec2:DescribeImageUsageReportEntries",
        ],
        "builder": ["iam:PassRole", "ec2:AttachImageWatermark"],
    }.items():
        for a in actions:
            assert grants([policy(persona)], a), (persona, a)
    # and the auditor still gets no write
    assert not grants([policy("auditor")], "ec2:EnableAllowedImagesSettings")
    assert evaluate([policy("auditor")], Request("ec2:CreateImageUsageReport")) != ALLOWED


def test_the_persona_table_lists_each_persona_s_commands() -> None:
    text = DOCS.read_text()
    for persona, commands in COMMANDS.items():
        row = next(ln for ln in text.splitlines() if ln.startswith(f"| {persona} |"))
        listed = set(re.findall(r"`([a-z-]+)`", row.split("|")[2]))
        assert set(commands) <= listed, (persona, set(commands) - listed)


FLEET = """
regions: [us-east-1, eu-west-1]
images:
  - {alias: w1, name: web-1.0.0, age_days: 30, tags: {family: web, version: 1.0.0}}
  - {alias: w2, name: web-1.1.0, age_days: 20, tags: {family: web, version: 1.1.0}}
  - {alias: old, name: ci-1, age_days: 90, tags: {family: ci-x, version: "1"}}
  - {alias: new, name: ci-2, age_days: 60, tags: {family: ci-x, version: "2"}}
instances:
  - {alias: i1, image: w1, state: running}
launch_templates:
  - {alias: lt, name: web-lt, tags: {"amictl:family": web}, versions: [{image: w1}]}
auto_scaling_groups:
  - {alias: g, name: web-asg, launch_template: lt, version: "$Default", desired: 0}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w1, data_type: "aws:ec2:image"}
"""
POLICY = """format: 1
rules:
  - name: ci
    select: {families: ["ci-*"], older_than: 7d}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""


class Recorder:
    def __init__(self) -> None:
        self.calls: set[str] = set()
        self.request_tags: dict[str, dict[str, str]] = {}  # EC2 action -> the request's tags

    def on_call(self, counter: CallCounter, model: Any = None, **kw: Any) -> None:
        if model is not None:
            svc = model.service_model.service_name
            self.calls.add(iam_action(f"{svc}.{model.name}"))
            body = (kw.get("params") or {}).get("body")
            if svc == "ec2" and isinstance(body, dict):  # the query protocol's flat keys
                keys = {k[: -len(".Key")]: v for k, v in body.items() if k.endswith(".Key")}
                tags = {v: body.get(f"{k}.Value", "") for k, v in keys.items()}
                self.request_tags[f"ec2:{model.name}"] = tags


def _runs(f: CliFleet, tmp: Path) -> dict[str, list[list[str]]]:
    ids = f.ids
    pol = tmp / "policy.yaml"
    pol.write_text(POLICY)
    return {
        "auditor": [
            ["inventory"],
            ["ls"],
            ["show", ids["w1"]],
            ["refs", ids["w1"]],
            ["snapshots"],
            ["plan", "-p", str(pol)],
            ["explain", ids["old"], "-p", str(pol)],
            ["versions", "web"],
            ["channels"],
            ["sharing"],
            ["drift"],
            ["stale"],
            ["cost"],
            ["audit"],
            ["lineage", ids["w2"]],
            ["allowed-images", "status"],
            ["recycle-bin", "status"],
            ["lint", "--conventions", str(ROOT / "examples" / "conventions.yml")],
        ],
        "retirer": [
            ["inventory"],
            ["plan", "-p", str(pol), "--out", str(tmp / "plan.json")],
            ["apply", str(tmp / "plan.json"), "--yes"],
            ["deprecate", ids["new"], "--yes"],  # not w2: the releaser promotes it after
            ["recycle-bin", "status"],
        ],
        "releaser": [
            ["promote", "web", "1.1.0", "--channel", "prod"],
            ["rollback", "web", "--channel", "prod"],
            ["channels"],
            ["versions", "web"],
            ["share", ids["w2"], "--account", "444455556666", "--allow-copy"],
            ["unshare", ids["w2"], "--account", "444455556666"],
            ["sharing"],
            ["copy", ids["w2"], "--to-region", "eu-west-1"],
            ["drift"],
        ],
        "consumer": [["launch", "web@prod", "--type", "t3.micro"], ["catalog", "find", "al2023"]],
        "builder": [
            ["create", "from-instance", ids["i1"], "--family", "web", "--bump", "minor"],
            ["versions", "web"],
            ["stale"],
            ["lineage", ids["w1"]],
        ],
    }


def test_every_call_each_command_makes_is_granted_to_its_persona(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = CliFleet(sandbox, FLEET, tmp_path)
    rec = Recorder()
    original = CallCounter.on_call

    def on_call(self: CallCounter, model: Any = None, **kw: Any) -> None:
        rec.on_call(self, model, **kw)
        original(self, model, **kw)

    monkeypatch.setattr(CallCounter, "on_call", on_call)
    failures = []
    for persona, runs in _runs(f, tmp_path).items():
        doc = [policy(persona)]
        for args in runs:
            assert args[0] in COMMANDS[persona], (persona, args[0])
            rec.calls.clear()
            code, out, err = f.run(*args)
            assert code == 0 or args[:2] == ["catalog", "find"], (persona, args, out, err)
            calls = {c for c in rec.calls if not c.startswith("sts:AssumeRole")}
            assert calls, (persona, args)
            failures += [(persona, args[0], c) for c in sorted(calls) if not grants(doc, c)]
            if persona == "releaser" and args[0] == "copy":
                # the releaser may copy only with the family in the request's tags
                tags = rec.request_tags["ec2:CopyImage"]
                context: dict[str, Any] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
                context["aws:TagKeys"] = sorted(tags)
                image = "arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef0"
                request = Request("ec2:CopyImage", image, context)
                assert evaluate(doc, request) == ALLOWED, (tags, evaluate(doc, request))
    assert failures == []
