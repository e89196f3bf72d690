"""Incremental re-scan (issue 22): launch-template versions kept in the state store.

A warm scan reads versions only of templates whose latest version moved, from the first
unread one; a cached version only ever keeps an image; `plan --refresh` reads them all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_fleet import CliFleet

FLEET = """images:
  - {alias: a1, age_days: 300, tags: {family: app, version: '1'}}
  - {alias: a2, age_days: 200, tags: {family: app, version: '2'}}
  - {alias: a3, age_days: 100, tags: {family: app, version: '3'}}
  - {alias: a4, age_days: 50, tags: {family: app, version: '4'}}
launch_templates:
  - {alias: lt1, name: lt1, versions: [{image: a2}, {image: a2}], default_version: 2}
  - {alias: lt2, name: lt2, versions: [{image: a2}]}
  - {alias: lt3, name: lt3, versions: [{image: a3}]}
"""
POLICY = """format: 1
rules:
  - name: old
    select: {families: ["*"], older_than: 30d}
    keep: {latest: 1, in_use: true}
    retire: {deregister: 0d, snapshots: keep}
"""


class Run(CliFleet):
    def scan(self, *extra: str) -> tuple[dict[str, Any], dict[str, int]]:
        """inventory -v: the summary and the API calls per operation."""
        self.env.sandbox.reset_call_counts()
        code, out, err = self.run("inventory", "-o", "json", "-v", *extra)
        assert code == 0, out + err
        return json.loads(out), self.env.sandbox.aws_model_state()["calls"]

    def plan(self, *extra: str) -> dict[str, Any]:
        (self.tmp / "p.yaml").write_text(POLICY)
        code, out, err = self.run("plan", "-p", str(self.tmp / "p.yaml"), "-o", "json", *extra)
        assert code == 0, out + err
        return dict(json.loads(out))


def lt_id(run: Run, name: str) -> str:
    ec2 = run.env.client("ec2")
    lts = ec2.describe_launch_templates(LaunchTemplateNames=[name])["LaunchTemplates"]
    return str(lts[0]["LaunchTemplateId"])


def retired(plan: dict[str, Any]) -> set[str]:
    return {a["image_id"] for a in plan["actions"] if a["type"] == "deregister"}


def versions_calls(calls: dict[str, int]) -> int:
    return calls.get("ec2.DescribeLaunchTemplateVersions", 0)


def test_warm_scan_reads_only_moved_templates(sandbox: Any, tmp_path: Path) -> None:
    run = Run(sandbox, FLEET, tmp_path)
    cold, calls = run.scan()
    assert versions_calls(calls) == 3  # one per template
    warm, calls = run.scan()
    assert versions_calls(calls) == 0  # no latest version moved: nothing read
    assert calls["ec2.DescribeLaunchTemplates"] == 1  # the listing is read live
    assert warm["per_region"][0]["references"] == cold["per_region"][0]["references"]
    # a new version of lt3: that template alone is read, from its first unread version
    ec2 = run.env.client("ec2")
    ec2.create_launch_template_version(
        LaunchTemplateId=lt_id(run, "lt3"), LaunchTemplateData={"ImageId": run.ids["a1"]}
    )
    new, calls = run.scan()
    assert versions_calls(calls) == 1
    assert new["per_region"][0]["references"] == cold["per_region"][0]["references"] + 1
    # the same decisions as a plan that reads every version live: a1, unused before, is now
    # used by lt3's new version
    plan_cached = run.plan()
    plan_live = run.plan("--refresh")
    assert retired(plan_cached) == retired(plan_live)
    assert run.ids["a1"] not in retired(plan_live)


def test_a_cached_version_only_keeps(sandbox: Any, tmp_path: Path) -> None:
    """A cached version that is not there live (one deleted since it was read: the sandbox,
    like moto, has no DeleteLaunchTemplateVersions, so the store is given one) still keeps
    its image, never retires one; --refresh reads live; a deleted template keeps nothing."""
    import sqlalchemy as sa

    from amictl.state.store import Store, lt_templates, lt_versions

    run = Run(sandbox, FLEET, tmp_path)
    assert run.ids["a1"] in retired(run.plan())  # nothing uses a1
    lt2 = lt_id(run, "lt2")
    store = Store(run.vars["AMICTL_STATE"])
    with store.engine.begin() as c:
        where = (lt_templates.c.template_id == lt2,)
        c.execute(sa.update(lt_templates).where(*where).values(read_through=2))
        c.execute(
            lt_versions.insert().values(
                account=run.env.account, region="us-east-1", template_id=lt2, version=2,
                image_id=run.ids["a1"],
            )
        )  # fmt: skip
    # cached: lt2 "v2" counted; a1 kept (a stale keep, one run longer)
    assert run.ids["a1"] not in retired(run.plan())
    # live: nothing uses a1
    assert run.ids["a1"] in retired(run.plan("--refresh"))
    # a template that is gone is not in the (live) listing: its cached versions keep nothing
    run.env.client("ec2").delete_launch_template(LaunchTemplateId=lt_id(run, "lt3"))
    assert run.ids["a3"] in retired(run.plan())


def test_cache_survives_in_the_state_store_and_per_account(sandbox: Any, tmp_path: Path) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    a = Run(sandbox, FLEET, tmp_path / "a")
    b = Run(sandbox, FLEET, tmp_path / "b")
    b.vars["AMICTL_STATE"] = a.vars["AMICTL_STATE"]  # one store, two accounts
    a.scan()
    _summary, calls = b.scan()
    assert versions_calls(calls) == 3  # another account's versions are not this one's
    _summary, calls = b.scan()
    assert versions_calls(calls) == 0
