"""Issue 27 on the sandbox: drift --strict on an incomplete read, stale after create
--bump from an instance of the same family, allowed-images set against every launcher
(R7), and the single-image commands reading the account's other regions (R8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_fleet import CliFleet

DRIFT = """
images:
  - {alias: w1, name: web-1.0.0, age_days: 30, tags: {family: web, version: 1.0.0}}
  - {alias: w2, name: web-1.1.0, age_days: 20, tags: {family: web, version: 1.1.0}}
instances:
  - {alias: i1, image: w1, state: running}
ssm_parameters:
  - {alias: prod, name: /amictl/channels/web/prod, image: w2, data_type: "aws:ec2:image"}
"""


def test_drift_strict_on_an_incomplete_read_exits_4_and_says_what(
    sandbox: Any, tmp_path: Path
) -> None:
    f = CliFleet(sandbox, DRIFT, tmp_path)
    ok = f.json("drift")
    assert ok["complete"] is True and ok["incomplete"] == [] and ok["behind"] == 1
    sandbox.set_faults(
        [{"service": "ssm", "action": "GetParameterHistory", "code": "AccessDenied", "status": 400}]
    )
    try:
        code, out, err = f.run("drift", "--strict", "5")
        jcode, jout, _ = f.run("drift", "-o", "json")
    finally:
        sandbox.clear_faults()
    assert code == 4, (out, err)
    assert "not read" in err and "could not be read" in err
    data = json.loads(jout)
    assert jcode == 0 and data["complete"] is False and data["incomplete"]
    assert all("not read" in x for x in data["incomplete"])


STALE = """
images:
  - {alias: w12, name: web-1.2.0, age_days: 5, tags: {family: web, version: 1.2.0}}
instances:
  - {alias: i1, image: w12, state: running}
"""


def test_stale_never_calls_an_image_its_own_newer_version(sandbox: Any, tmp_path: Path) -> None:
    f = CliFleet(sandbox, STALE, tmp_path)
    made = f.json("create", "from-instance", f.ids["i1"], "--family", "web", "--bump", "minor")
    ec2 = f.env.client("ec2")
    img = ec2.describe_images(ImageIds=[made["image_id"]])["Images"][0]
    assert img["Name"] == "web-1.3.0"
    code, out, err = f.run("stale", "--strict", "-o", "json")
    rows = json.loads(out)
    assert not [r for r in rows if r.get("newer_base") == made["image_id"]], rows
    assert code == 0, (out, err)
