"""Pages parsed before (aws/pagememo.py): the same answer as a fresh parse (projected to
what the instance collector reads, which finds the same either way), a changed page parsed
afresh, and apply never trusting a kept page (a forged one fools only a plan)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from amictl.aws.session import Connector
from amictl.inventory.collectors import INSTANCE_PAGE, collect_instances
from cli_fleet import CliFleet
from conftest import Env

FLEET = """regions: [us-east-1]
images:
  - {alias: a, name: app-1, age_days: 90, tags: {family: app, version: "1"},
     deprecate_in_days: 30, snapshots: [{size_gib: 8}]}
  - {alias: b, name: app-2, age_days: 60, tags: {family: app, version: "2"}}
  - {alias: c, name: app-3, age_days: 2, tags: {family: app, version: "3"}}
instances:
  - {alias: i, image: a, count: 2, tags: {Name: web, team: x}}
  - {alias: j, image: b, state: stopped}
  - {alias: k, image: c, state: terminated}
"""

POLICY = """format: 1
name: unused
rules:
  - name: unused
    select: {families: ["*"]}
    keep: {in_use: true, latest: 1}
    retire: {deregister: 0d, snapshots: keep}
"""


def _pages(conn: Connector) -> dict[str, Any]:
    ec2 = conn.client("ec2", "us-east-1", conn.role_arns[0])
    out = {
        "images": ec2.describe_images(Owners=["self"]),
        "instances": ec2.describe_instances(),
        "snapshots": ec2.describe_snapshots(OwnerIds=["self"]),
    }
    for page in out.values():
        page.pop("ResponseMetadata")
    return out


def _projected(page: dict[str, Any]) -> dict[str, Any]:
    """A DescribeInstances page cut to INSTANCE_PAGE, written out by hand."""
    (members,) = INSTANCE_PAGE["Reservations"][0]["Instances"]
    return {
        **{k: v for k, v in page.items() if k != "Reservations"},
        "Reservations": [
            {"Instances": [{k: i[k] for k in members if k in i} for i in r["Instances"]]}
            for r in page["Reservations"]
        ],
    }


def test_a_kept_page_is_what_a_fresh_parse_gives_and_a_changed_one_is_parsed(
    env: Env, tmp_path: Path
) -> None:
    ids = env.load(FLEET)["aliases"]
    plain = _pages(env.connector())
    memo_conn = env.connector(page_memo=str(tmp_path / "pages"))
    cut = {**plain, "instances": _projected(plain["instances"])}
    assert len(str(cut["instances"])) < len(str(plain["instances"])) / 3
    assert _pages(memo_conn) == cut  # parsed (instances projected), kept
    memo = memo_conn.page_memo
    assert memo is not None and memo.hits == 0
    again = _pages(memo_conn)
    assert memo.hits == 3 and again == cut  # the kept pages, the same dicts
    assert again["images"]["Images"][0] is not plain["images"]["Images"][0]

    env.client("ec2").create_tags(Resources=[ids["b"]], Tags=[{"Key": "hold", "Value": "x"}])
    changed = _pages(memo_conn)
    assert memo.hits == 5  # instances and snapshots unchanged; the images page parsed again
    tags = {
        i["ImageId"]: {t["Key"]: t["Value"] for t in i.get("Tags", [])}
        for i in changed["images"]["Images"]
    }
    assert tags[ids["b"]]["hold"] == "x"
    snaps = changed["snapshots"]["Snapshots"]
    assert snaps and all(s["StartTime"].tzinfo is not None for s in snaps)  # times read back


def test_the_instance_collector_finds_the_same_on_projected_pages(env: Env, tmp_path: Path) -> None:
    """What INSTANCE_PAGE leaves out, collect_instances never reads: the same references
    from full pages and from projected ones, freshly parsed or kept."""
    env.load(FLEET)

    def found(conn: Connector) -> list[Any]:
        ec2 = conn.client("ec2", "us-east-1", conn.role_arns[0])
        data = collect_instances(ec2, env.account, "us-east-1")
        return [data.items, data.references]

    full = found(env.connector())
    assert full[0] == 4 and len(full[1]) == 3  # the terminated one is no reference
    assert any("(web)" in r.detail for r in full[1])
    memo_conn = env.connector(page_memo=str(tmp_path / "pages"))
    assert found(memo_conn) == full  # projected, freshly parsed
    assert found(memo_conn) == full  # projected, kept
    assert memo_conn.page_memo is not None and memo_conn.page_memo.hits == 1


def _deregistered(plan: Path) -> set[str]:
    return {
        a["image_id"] for a in json.loads(plan.read_text())["actions"] if a["type"] == "deregister"
    }


def test_a_forged_kept_page_fools_a_plan_but_never_apply(sandbox: Any, tmp_path: Path) -> None:
    """Someone who can write the state directory edits the kept DescribeImages page: app-3,
    the family's newest (kept by ``latest: 1``), now says version 0. The next plan believes
    it and proposes to retire app-3; apply parses every page it reads afresh, sees version 3
    and leaves app-3 registered."""
    f = CliFleet(sandbox, FLEET, tmp_path)
    (tmp_path / "policy.yml").write_text(POLICY)
    plan = ["plan", "-p", str(tmp_path / "policy.yml"), "--out", str(tmp_path / "plan.json")]
    code, out, err = f(*plan)
    assert code == 0, out + err
    assert f.ids["c"] not in _deregistered(tmp_path / "plan.json")
    (kept,) = (tmp_path / "amictl" / "pages").glob("DescribeImagesResult-*.json")
    page = json.loads(kept.read_text())
    for img in page["Images"]:
        if img["ImageId"] == f.ids["c"]:
            img["Tags"] = [{"Key": "family", "Value": "app"}, {"Key": "version", "Value": "0"}]
    kept.write_text(json.dumps(page))
    code, out, err = f(*plan)
    assert code == 0, out + err
    assert f.ids["c"] in _deregistered(tmp_path / "plan.json")  # the plan was fooled
    code, out, err = f("apply", str(tmp_path / "plan.json"), "--yes", "-o", "json")
    assert code == 0, out + err
    live = f.env.client("ec2").describe_images(Owners=["self"])["Images"]
    assert f.ids["c"] in {i["ImageId"] for i in live}  # apply's own reads: version 3, kept


def test_kept_shapes_have_no_float_member_and_odd_values_are_not_kept(tmp_path: Path) -> None:
    # orjson writes a float NaN as null (json: NaN): no kept shape may hold a float, so the
    # kept copy reads back as parsed; a value JSON carries differently is never kept
    import datetime as dt

    import botocore.session

    from amictl.aws.pagememo import KEPT_SHAPES, PageMemo

    model = botocore.session.get_session().get_service_model("ec2")
    shapes = {model.operation_model(op).output_shape for op in model.operation_names}
    kept = [s for s in shapes if s is not None and s.name in KEPT_SHAPES]
    assert len(kept) == len(KEPT_SHAPES)

    def floats(shape: Any, seen: frozenset[str]) -> list[str]:
        if shape.name in seen:
            return []
        seen |= {shape.name}
        if shape.type_name in ("double", "float"):
            return [shape.name]
        if shape.type_name == "structure":
            return [f for m in shape.members.values() for f in floats(m, seen)]
        if shape.type_name == "list":
            return floats(shape.member, seen)
        if shape.type_name == "map":
            return floats(shape.value, seen)
        return []

    assert [f for s in kept for f in floats(s, frozenset())] == []
    memo = PageMemo(tmp_path, dt.datetime.fromisoformat)
    images = next(s for s in kept if s.name == "DescribeImagesResult")
    for odd in (b"bytes", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)):
        memo.put("odd", {"Images": [{"ImageId": "ami-1", "Name": odd}]}, images)
        assert not (tmp_path / "odd.json").exists()
    memo.put("fine", {"Images": [{"ImageId": "ami-1", "Name": "x"}]}, images)
    assert memo.get("fine", images) == {"Images": [{"ImageId": "ami-1", "Name": "x"}]}
