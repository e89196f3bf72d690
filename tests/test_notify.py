"""Owners told before anything retires (issue 29): two owners notified (webhook and SES
email), the deregister stage waits for the notice period, an owner's opt-out keeps the
image and shows in `explain`, a failing webhook delays the stage and is reported, and the
audit names images retired without a notice."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from amictl.notify import notice_rows
from amictl.state.store import Store
from cli_fleet import CliFleet

FLEET = """
images:
  - {alias: a1, name: app-1.0.0, age_days: 100, tags: {family: app, version: 1.0.0, owner: web-team},
     snapshots: [{size_gib: 8}]}
  - {alias: a2, name: app-2.0.0, age_days: 10, tags: {family: app, version: 2.0.0, owner: web-team},
     snapshots: [{size_gib: 8}]}
  - {alias: d1, name: db-1.0.0, age_days: 100, tags: {family: db, version: 1.0.0},
     snapshots: [{size_gib: 8}]}
  - {alias: d2, name: db-2.0.0, age_days: 10, tags: {family: db, version: 2.0.0},
     snapshots: [{size_gib: 8}]}
"""
POLICY = """format: 1
name: tell
notify: {before: 7d}
rules:
  - name: old
    select: {families: ["*"]}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""
CONVENTIONS = """owners: {"db*": dba@example.com}
"""
NOTIFY = """from: amictl@example.com
default_contact: ops@example.com
contacts:
  web-team: {webhook: {url_env: WEB_HOOK}}
"""


class Receiver:
    """A webhook receiver on the loopback interface only; ``status`` is what it answers."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                outer.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/SECRET-TOKEN"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def hook():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fleet(sandbox, tmp_path, hook, monkeypatch):
    f = CliFleet(sandbox, FLEET, tmp_path)
    for name, text in (("p.yaml", POLICY), ("c.yaml", CONVENTIONS), ("n.yaml", NOTIFY)):
        (tmp_path / name).write_text(text)
    monkeypatch.setenv("WEB_HOOK", hook.url)
    f.env.client("ses").verify_email_identity(EmailAddress="amictl@example.com")
    f.plan = tmp_path / "plan.json"  # type: ignore[attr-defined]
    return f


def opts(f: CliFleet) -> list[str]:
    return ["--notify-config", str(f.tmp / "n.yaml"), "--conventions", str(f.tmp / "c.yaml")]


def plan(f: CliFleet, *extra: str) -> dict[str, Any]:
    code, out, err = f.run("plan", "--policy", str(f.tmp / "p.yaml"), "--out", str(f.plan), *extra)
    assert code == 0, out + err
    return dict(json.loads(f.plan.read_text()))


def deregistered(body: dict[str, Any]) -> set[str]:
    return {a["image_id"] for a in body["actions"] if a["type"] == "deregister"}


def later(days: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_two_owners_told_the_stage_waits_and_an_opt_out_keeps_the_image(fleet, hook):
    a1, d1 = fleet.ids["a1"], fleet.ids["d1"]
    body = plan(fleet)
    assert deregistered(body) == set()  # nobody was told: nothing is deregistered
    code, out, err = fleet.run("notify", str(fleet.plan), "--dry-run", *opts(fleet))
    assert code == 0, out + err
    assert hook.bodies == [] and fleet.env.sandbox.sent(fleet.env.account)["emails"] == []
    code, out, err = fleet.run("notify", str(fleet.plan), *opts(fleet), "-o", "json")
    assert code == 0, out + err
    assert "SECRET-TOKEN" not in out + err + fleet.plan.read_text()  # the hook URL is a secret
    digests = {d["owner"]: d for d in json.loads(out)["digests"]}
    assert set(digests) == {"web-team", "dba@example.com"}
    assert {d["result"] for d in digests.values()} == {"delivered"}
    # the webhook got one JSON digest with a Slack-compatible text and the opt-out command
    assert len(hook.bodies) == 1 and hook.bodies[0]["images"] == [a1]
    assert f"amictl tag {a1} retain-until=" in hook.bodies[0]["text"]
    mails = fleet.env.sandbox.sent(fleet.env.account)["emails"]
    assert [m["to"] for m in mails] == [["dba@example.com"]] and d1 in mails[0]["body"]
    rows = notice_rows(Store(fleet.vars["AMICTL_STATE"]))
    assert {(r["image_id"], r["channel"], r["result"]) for r in rows} == {
        (a1, "webhook", "delivered"),
        (d1, "email", "delivered"),
    }
    # the notice period: not due now, due a week later
    assert deregistered(plan(fleet)) == set()
    code, out, err = fleet.run("explain", a1, "--policy", str(fleet.tmp / "p.yaml"))
    assert "waits for its notice period" in " ".join(out.split()), out + err
    # the db owner opts out: a hold with an expiry and a reason, visible in explain
    until = (dt.date.today() + dt.timedelta(days=90)).isoformat()
    code, out, err = fleet.run("tag", d1, f"retain-until={until}", "hold-reason=audit")
    assert code == 0, out + err
    code, out, err = fleet.run("explain", d1, "--policy", str(fleet.tmp / "p.yaml"))
    assert "retain-until" in out, out + err
    assert deregistered(plan(fleet, "--now", later(8))) == {a1}


def test_a_failing_webhook_delays_the_stage_and_is_reported(fleet, hook):
    a1 = fleet.ids["a1"]
    hook.status = 500
    plan(fleet)
    code, out, err = fleet.run("notify", str(fleet.plan), *opts(fleet))
    assert code == 4, out + err
    assert "not delivered" in err and "web-team" in err and "SECRET-TOKEN" not in out + err
    assert len(hook.bodies) == 4  # the first try and 3 retries
    tags = fleet.env.client("ec2").describe_images(ImageIds=[a1])["Images"][0].get("Tags", [])
    assert "amictl:notified" not in {t["Key"] for t in tags}
    assert a1 not in deregistered(plan(fleet, "--now", later(30)))  # still waiting
    code, out, err = fleet.run("explain", a1, "--policy", str(fleet.tmp / "p.yaml"))
    assert "no notice delivered to its owner yet" in " ".join(out.split())
    rows = notice_rows(Store(fleet.vars["AMICTL_STATE"]), a1)
    assert [r["result"] for r in rows] == ["failed"]


def test_audit_names_an_image_retired_without_a_notice(fleet):
    quiet = fleet.tmp / "q.yaml"
    quiet.write_text(POLICY.replace("notify: {before: 7d}\n", ""))
    code, out, err = fleet.run("plan", "--policy", str(quiet), "--out", str(fleet.plan))
    assert code == 0, out + err
    code, out, err = fleet.run("apply", str(fleet.plan), "--yes")
    assert code == 0, out + err
    found = fleet.json("audit")["findings"]
    retired = sorted(f["resource"] for f in found if f["check"] == "retired-without-notice")
    assert retired == sorted([fleet.ids["a1"], fleet.ids["d1"]])
    html = fleet.tmp / "report.html"
    code, out, err = fleet.run("report", "--html", str(html))
    assert code in (0, 4), out + err
    assert "retired-without-notice" in html.read_text()


def test_plan_notify_and_the_owner_column(fleet, hook, monkeypatch):
    a1, d1 = fleet.ids["a1"], fleet.ids["d1"]
    monkeypatch.chdir(fleet.tmp)
    (fleet.tmp / "amictl-conventions.yaml").write_text(CONVENTIONS)
    rows = {r["image_id"]: r for r in fleet.json("ls")}
    assert rows[a1]["owner"] == "web-team" and rows[d1]["owner"] == "dba@example.com"
    assert fleet.json("show", a1)["owner"] == "web-team"
    code, out, err = fleet.run("plan", "--policy", str(fleet.tmp / "p.yaml"))
    assert code == 0 and "owner web-team" in out and "owner dba@example.com" in out, out + err
    code, out, err = fleet.run(
        "plan",
        "--policy",
        str(fleet.tmp / "p.yaml"),
        "--out",
        str(fleet.plan),
        "--notify",
        "--notify-config",
        str(fleet.tmp / "n.yaml"),
        "-o",
        "json",
    )
    assert code == 0, out + err
    assert json.loads(out)["checksum"]  # stdout: the plan's JSON only
    assert "notice to web-team via webhook: delivered" in err
    assert len(hook.bodies) == 1


def test_an_sns_topic_owner_gets_the_digest(sandbox, tmp_path, monkeypatch):
    f = CliFleet(sandbox, FLEET, tmp_path)
    topic = f.env.client("sns").create_topic(Name="web-team")["TopicArn"]
    (tmp_path / "p.yaml").write_text(POLICY)
    (tmp_path / "n.yaml").write_text(
        f"default_contact: web-team\ncontacts:\n  web-team: {{sns: {topic}}}\n"
    )
    plan = tmp_path / "plan.json"
    code, out, err = f.run("plan", "--policy", str(tmp_path / "p.yaml"), "--out", str(plan))
    assert code == 0, out + err
    got = f.json("notify", str(plan), "--notify-config", str(tmp_path / "n.yaml"))
    assert [(d["owner"], d["channel"], d["result"]) for d in got["digests"]] == [
        ("web-team", "sns", "delivered")
    ]
    sent = f.env.sandbox.sent(f.env.account)["sns"]
    assert [m["topic"] for m in sent] == [topic]
    assert f.ids["a1"] in sent[0]["message"] and f.ids["d1"] in sent[0]["message"]
