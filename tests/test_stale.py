"""amictl stale: old families, bases that moved, channel images whose parent was retired."""

from __future__ import annotations

import json

import pytest

from cli_fleet import invoke

FLEET = """
images:
  - {alias: base1, name: base-al2023-1.0.0, tags: {family: base-al2023, version: "1.0.0"}, age_days: 60}
  - {alias: base2, name: base-al2023-1.1.0, tags: {family: base-al2023, version: "1.1.0"}, age_days: 1}
  - {alias: app1, name: app-1, tags: {family: app, version: "1"}, age_days: 50}
  - {alias: app2, name: app-2, tags: {family: app, version: "2"}, age_days: 40}
  - {alias: svc1, name: svc-1, tags: {family: svc, version: "1"}, age_days: 2, source: base1}
  - alias: web1
    name: web-1.0.0
    age_days: 3
    source: base1
    tags: {family: web, version: "1.0.0", "amictl:source": "base-al2023@prod"}
  - {alias: old-parent, name: parent-1, tags: {family: parent, version: "1"}, age_days: 5, deprecated_days_ago: 2}
  - {alias: api1, name: api-1, tags: {family: api, version: "1"}, age_days: 1, source: old-parent}
  - alias: gone1
    name: gone-1
    age_days: 1
    tags: {family: gone, version: "1", "amictl:source-image": ami-0123456789abcdef0}
  - {alias: ok1, name: ok-1, tags: {family: ok, version: "1"}, age_days: 1}
ssm_parameters:
  - {alias: base-prod, name: /amictl/channels/base-al2023/prod, image: base2, data_type: "aws:ec2:image"}
  - {alias: api-prod, name: /amictl/channels/api/prod, image: api1, data_type: "aws:ec2:image"}
  - {alias: gone-prod, name: /amictl/channels/gone/prod, image: gone1, data_type: "aws:ec2:image"}
"""


@pytest.fixture
def run(env, tmp_path, monkeypatch):
    for k, v in env.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)

    def call(*args: str) -> tuple[int, str]:
        code, out, _err = invoke([*args, *env.cli_args()])
        return code, out

    return call


def test_stale_findings_json_and_strict(env, run):
    ids = env.load(FLEET)["aliases"]
    code, out = run("stale", "--days", "30", "-o", "json")
    assert code == 0, out
    rows = json.loads(out)
    found = {(r["family"], r["kind"]): r for r in rows}
    assert set(found) == {
        ("app", "old"),
        ("svc", "base-moved"),
        ("web", "base-moved"),
        ("api", "parent-retired"),
        ("gone", "parent-retired"),
    }
    assert found[("app", "old")]["image_id"] == ids["app2"]  # the newest version counts
    assert found[("app", "old")]["age_days"] == 40
    svc = found[("svc", "base-moved")]
    assert svc["newer_base"] == ids["base2"] and "1.1.0" in svc["detail"]
    web = found[("web", "base-moved")]
    assert web["newer_base"] == ids["base2"] and "base-al2023@prod" in web["detail"]
    assert "deprecated" in found[("api", "parent-retired")]["detail"]
    assert found[("api", "parent-retired")]["channels"] == ["api@prod"]
    assert "gone" in found[("gone", "parent-retired")]["detail"]
    # the inventory stored by the first run serves the others
    code, out = run("stale", "--days", "30", "--strict", "--from-state", "-o", "json")
    assert code == 1 and len(json.loads(out)) == 5
    # one family, nothing due: exit 0 even with --strict
    code, out = run("stale", "ok", "--days", "30", "--strict", "--from-state", "-o", "json")
    assert code == 0 and json.loads(out) == []
    # a longer max age: app is no longer old
    code, out = run("stale", "app", "--days", "45", "--from-state", "-o", "json")
    assert code == 0 and json.loads(out) == []
