"""cost: figures equal hand-computed ones for a fleet of known sizes and tiers; --by, --prices,
--since; the plan's savings use the same prices."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from amictl import pricing
from amictl.errors import InputError
from amictl.model import Inventory
from amictl.state.store import Store
from cli_fleet import CliFleet

# us-east-1: standard $0.05, archive $0.0125; us-west-1: standard $0.06, archive $0.015
FLEET = """
regions: [us-east-1, us-west-1]
images:
  - {alias: web-1, name: web-1, age_days: 300, tags: {family: web, version: "1"},
     snapshots: [{size_gib: 10}, {size_gib: 20, device: /dev/sdf}]}
  - {alias: web-2, name: web-2, age_days: 200, tags: {family: web, version: "2"},
     snapshots: [{size_gib: 12}, {size_gib: 20, device: /dev/sdf}]}
  - {alias: web-3, name: web-3, age_days: 100, tags: {family: web, version: "3"},
     reuse_snapshot_of: web-2}
  - {alias: old-1, name: old-1, age_days: 400, tags: {family: old, version: "1"}, disabled: true,
     snapshots: [{size_gib: 40, storage_tier: archive}]}
  - {alias: west-1, name: west-1, region: us-west-1, tags: {family: west, version: "1"},
     snapshots: [{size_gib: 100}]}
instances:
  - {alias: i1, image: web-2}
snapshots:
  - {alias: orphan, size_gib: 50, made_for_deleted_image: true}
  - {alias: backup, size_gib: 30, storage_tier: archive}
"""

POLICY = """format: 1
rules:
  - name: old-web
    select: {families: [web], older_than: 30d}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""


@pytest.fixture(scope="module")
def fleet(sandbox, tmp_path_factory):
    run = CliFleet(sandbox, FLEET, tmp_path_factory.mktemp("cost"), "us-east-1,us-west-1")
    return run, run.ids, run.json("cost")


def by_key(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["key"]: g for g in data["groups"]}


def test_family_figures_equal_hand_computed(fleet):
    _run, ids, data = fleet
    g = by_key(data)
    # web: 10+20 (web-1) + 12+20 (web-2; web-3 reuses web-2's root) = 62 GiB standard
    assert g["web"]["standard_gib"] == 62 and g["web"]["archive_gib"] == 0
    assert g["web"]["full_size_usd"] == pytest.approx(62 * 0.05)
    # shared blocks: root lineage 12 + 10*0.1, /dev/sdf lineage 20 + 20*0.1 = 35 GiB
    assert g["web"]["estimate_usd"] == pytest.approx(35 * 0.05)
    assert g["web"]["images"] == 3 and g["web"]["snapshots"] == 4
    # an archived snapshot is billed in full at the archive rate: estimate == full size
    assert g["old"]["archive_gib"] == 40
    assert g["old"]["full_size_usd"] == pytest.approx(40 * 0.0125)
    assert g["old"]["estimate_usd"] == pytest.approx(40 * 0.0125)
    # us-west-1 rates
    assert g["west"]["full_size_usd"] == pytest.approx(100 * 0.06)
    assert g["west"]["estimate_usd"] == pytest.approx(100 * 0.06)
    orphaned = data["orphaned"]
    assert orphaned["snapshots"] == 2
    assert orphaned["full_size_usd"] == pytest.approx(50 * 0.05 + 30 * 0.0125)
    assert g["(orphaned snapshots)"]["full_size_usd"] == orphaned["full_size_usd"]
    t = data["totals"]
    assert t["full_size_usd"] == pytest.approx(3.10 + 0.50 + 6.00 + 2.875)
    assert t["estimate_usd"] == pytest.approx(1.75 + 0.50 + 6.00 + 2.875)
    assert (t["standard_gib"], t["archive_gib"], t["images"]) == (212, 70, 5)
    assert sum(x["full_size_usd"] for x in data["groups"]) == pytest.approx(t["full_size_usd"])
    # images nothing uses: everything but web-2 (an instance runs it)
    unused = data["unused_images"]
    assert set(unused["image_ids"]) == {ids[a] for a in ("web-1", "web-3", "old-1", "west-1")}
    assert unused["full_size_usd"] == pytest.approx(30 * 0.05 + 40 * 0.0125 + 100 * 0.06)
    assert "upper bound" in data["labels"]["full_size_usd"]
    assert "shared-block estimate" in data["labels"]["estimate_usd"]
    assert data["prices"]["rates"]["us-west-1"] == {"standard": 0.06, "archive": 0.015}


def test_by_region_tier_and_image(fleet):
    run, ids, _ = fleet
    region = by_key(run.json("cost", "--by", "region", "--from-state"))
    assert region["us-east-1"]["full_size_usd"] == pytest.approx(3.10 + 0.50 + 2.875)
    assert region["us-west-1"]["full_size_usd"] == pytest.approx(6.00)
    tier = by_key(run.json("cost", "--by", "tier", "--from-state"))
    assert tier["standard"]["full_size_usd"] == pytest.approx(3.10 + 6.00 + 2.50)
    assert tier["archive"]["full_size_usd"] == pytest.approx(0.50 + 0.375)
    image = by_key(run.json("cost", "--by", "image", "--from-state"))
    assert image[f"{ids['web-1']} web-1"]["full_size_usd"] == pytest.approx(1.50)
    assert image[f"{ids['web-3']} web-3"]["full_size_usd"] == 0  # its root is web-2's
    code, out, _ = run("cost", "--from-state")
    assert code == 0 and "upper bound" in out and "shared-block estimate" in out


def test_prices_file_overrides_and_plan_savings_use_the_same_prices(fleet, tmp_path):
    run, _ids, _ = fleet
    prices = tmp_path / "prices.yaml"
    prices.write_text("us-east-1: {standard: 0.10}\n")
    web = by_key(run.json("cost", "--prices", str(prices), "--from-state"))["web"]
    assert web["full_size_usd"] == pytest.approx(62 * 0.10)
    # the plan retires web-1 and deletes its 10 + 20 GiB: savings at the same rate
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    plan = run.json("plan", "-p", str(policy), "--from-state", AMICTL_PRICES=str(prices))
    assert plan["summary"]["monthly_savings_usd"] == pytest.approx(30 * 0.10)
    plan = run.json("plan", "-p", str(policy), "--from-state")
    assert plan["summary"]["monthly_savings_usd"] == pytest.approx(30 * 0.05)
    bad = tmp_path / "bad.yaml"
    bad.write_text("us-east-1:\n  standard: cheap\n")
    code, _out, err = run("cost", "--prices", str(bad), "--from-state")
    assert code == 2 and "bad.yaml:2" in err and "standard" in err
    code, _out, err = run("cost", "--from-state", AMICTL_PRICES=str(bad))
    assert code == 2 and "bad.yaml:2" in err


def test_since_costs_saved_inventories_in_the_window(fleet):
    run, _ids, first = fleet
    store = Store(run.vars["AMICTL_STATE"])
    latest = store.latest_inventory()
    assert latest is not None
    old = Inventory.from_dict(latest[1].to_dict())
    old.scanned_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=120)
    store.save_inventory(old)
    data = run.json("cost", "--since", "90d")  # scans (saves) once more
    points = data["history"]
    assert len(points) >= 2
    assert all(
        p["full_size_usd"] == pytest.approx(first["totals"]["full_size_usd"]) for p in points
    )
    assert points[-1]["by_family"]["web"] == pytest.approx(3.10)
    assert [p["scanned_at"] for p in points] == sorted(p["scanned_at"] for p in points)
    wider = run.json("cost", "--since", "200d", "--from-state")["history"]
    assert len(wider) == len(points) + 1
    code, _out, err = run("cost", "--since", "soon", "--from-state")
    assert code == 2 and "--since" in err


def test_price_table_is_package_data_with_source_and_date():
    t = pricing.table()
    assert t["date"] and "snapshot-archive-pricing" in t["source"]
    assert pricing.price("us-east-1") == 0.05 and pricing.price("us-east-1", "archive") == 0.0125
    assert pricing.price("xx-nowhere-1") == t["default"]["standard"]
    with pytest.raises(InputError):
        pricing.parse_prices({"us-east-1": {"glacier": 1}}, pricing.Positions("<t>"))
