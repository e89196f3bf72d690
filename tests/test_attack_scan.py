"""Attacks on "fewer calls, same truth": sharing read only where needed, cached, unread."""

from __future__ import annotations

import json

import pytest

from cli_fleet import invoke

POLICY = """format: 1
rules:
  - name: old
    select: {families: ["*"], older_than: 30d}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""

# d1 is a copy of a1 in eu-west-1, shared with another account: kept (shared), so a1, the
# image it was built from, is kept too (keep.ancestors).
FLEET = """regions: [us-east-1, eu-west-1]
images:
  - {alias: a1, age_days: 300, tags: {family: a, version: '1'}}
  - {alias: a2, age_days: 50, tags: {family: a, version: '2'}}
  - {alias: d1, age_days: 250, region: eu-west-1, source: a1, tags: {family: d, version: '1'},
     shared_with: ['210987654321']}
  - {alias: d2, age_days: 100, region: eu-west-1, tags: {family: d, version: '2'}}
"""


def _run(env, tmp_path, *args: str) -> tuple[int, str, str]:
    return invoke(
        [*args, *env.cli_args(), "--region", "us-east-1,eu-west-1"], env.cli_env(tmp_path)
    )


def _verdicts(plan: dict, ids: dict[str, str]) -> dict[str, str]:
    by_id = {v: k for k, v in ids.items()}
    return {by_id[d["image_id"]]: d["verdict"] for d in plan["decisions"] if d["image_id"] in by_id}


@pytest.fixture
def faults(sandbox):
    yield sandbox
    sandbox.clear_faults()


def _plan(env, tmp_path, *extra: str):
    """`plan -p policy.yaml --out plan.json -o json EXTRA...`, which must succeed: the file."""
    out = tmp_path / "plan.json"
    code, _o, err = _run(
        env,
        tmp_path,
        "plan",
        "-p",
        str(tmp_path / "policy.yaml"),
        "--out",
        str(out),
        "-o",
        "json",
        *extra,
    )
    assert code == 0, err
    return out


def test_unreadable_descendant_keeps_its_ancestor(env, tmp_path, faults):
    """A descendant whose launch permissions could not be read may be shared (kept), so
    the image it was built from must not be retired on the assumption that it is not."""
    ids = env.load(FLEET)["aliases"]
    (tmp_path / "policy.yaml").write_text(POLICY)
    out = _plan(env, tmp_path, "--refresh")
    readable = _verdicts(json.loads(out.read_text()), ids)
    assert readable["d1"] == "keep" and readable["a1"] == "keep", readable
    faults.set_faults(
        [
            {
                "action": "DescribeImageAttribute",
                "region": "eu-west-1",
                "code": "UnauthorizedOperation",
                "status": 403,
            }
        ]
    )
    out = _plan(env, tmp_path, "--refresh")
    faults.clear_faults()
    plan = json.loads(out.read_text())
    blind = _verdicts(plan, ids)
    assert blind["a1"] == "mark" and blind["d1"] == "mark", blind
    (a1,) = [d for d in plan["decisions"] if d["image_id"] == ids["a1"]]
    assert any(ids["d1"] in r and "could not be read" in r for r in a1["reasons"]), a1
    assert not [a for a in plan["actions"] if a["type"] == "deregister"]


PRIVATE = FLEET.replace(",\n     shared_with: ['210987654321']}", "}")


def test_descendant_shared_after_a_cached_read_keeps_its_ancestor(env, tmp_path):
    """Apply re-reads an image's own sharing, not its descendants': a descendant's sharing,
    which keeps its ancestor, must be read live, not taken from the cache."""
    assert PRIVATE != FLEET
    ids = env.load(PRIVATE)["aliases"]
    (tmp_path / "policy.yaml").write_text(POLICY)
    out = _plan(env, tmp_path)
    assert _verdicts(json.loads(out.read_text()), ids)["a1"] == "deregister"
    env.client("ec2", "eu-west-1").modify_image_attribute(
        ImageId=ids["d1"], LaunchPermission={"Add": [{"UserId": "210987654321"}]}
    )
    _plan(env, tmp_path)  # the cache is fresh
    verdicts = _verdicts(json.loads(out.read_text()), ids)
    assert verdicts["d1"] == "keep" and verdicts["a1"] == "keep", verdicts


def test_refs_and_show_still_see_a_copy_and_a_parameter_in_another_region(env, tmp_path):
    """show/refs scan the image's own region in full; a copy built from it (SourceImageId)
    and a text SSM parameter naming it live in other regions, and must still show."""
    ids = env.load(PRIVATE)["aliases"]
    env.client("ssm", "eu-west-1").put_parameter(
        Name="/golden/us-east-1", Value=ids["a1"], Type="String"
    )
    code, out, err = _run(env, tmp_path, "refs", ids["a1"], "-o", "json")
    assert code == 0, err
    found = {(r["kind"], r["id"]) for r in json.loads(out)}
    assert ("child-image", ids["d1"]) in found, found
    assert ("ssm-parameter", "/golden/us-east-1") in found, found
    code, out, err = _run(env, tmp_path, "show", ids["a1"], "-o", "json")
    assert code == 0, err
    assert ids["d1"] in json.loads(out)["children"]


def test_plan_from_state_does_not_trust_the_stored_sharing_of_a_descendant(env, tmp_path):
    """--from-state plans on a stored inventory, whose launch permissions may be days old:
    a descendant shared since must still keep the image it was built from."""
    ids = env.load(PRIVATE)["aliases"]
    (tmp_path / "policy.yaml").write_text(POLICY)
    assert _run(env, tmp_path, "inventory", "-o", "json")[0] == 0
    env.client("ec2", "eu-west-1").modify_image_attribute(
        ImageId=ids["d1"], LaunchPermission={"Add": [{"UserId": "210987654321"}]}
    )
    out = _plan(env, tmp_path, "--from-state")
    verdicts = _verdicts(json.loads(out.read_text()), ids)
    assert verdicts["a1"] == "keep", verdicts
