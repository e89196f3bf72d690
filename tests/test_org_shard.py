"""An organization on a job runner: --org, inventory --shard, plan --from-state (issue 22).

The sandbox's organization (POST /_amictl/org) lives in a fresh management account per test;
the CLI runs in-process with that account's credentials, as a CI job's OIDC role would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from amictl.aws.org import Shard, parse_shard, role_arn_for
from amictl.errors import InputError
from cli_fleet import invoke
from conftest import Env, _accounts

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "org"
NOW = "2030-01-01T00:00:00Z"
POLICY = """format: 1
rules:
  - name: old
    select: {families: ["*"], older_than: 30d}
    keep: {latest: 1, in_use: true}
    retire: {deregister: 0d, snapshots: delete}
"""


def fleet(in_use: bool) -> str:
    text = "images:\n" + "".join(
        f"  - {{alias: v{v}, age_days: {400 - 100 * v}, tags: {{family: web, version: '{v}'}}}}\n"
        for v in (1, 2, 3)
    )
    if in_use:  # an instance keeps v1 in this account
        text += "instances:\n  - {alias: i1, image: v1, state: running}\n"
    return text


# ---------------------------------------------------------------- shards (no sandbox)


def test_parse_shard_forms_and_runner_indexes() -> None:
    assert parse_shard("2/4", {}) == Shard(2, 4)
    # Kubernetes and AWS Batch count from 0; AMICTL_SHARD from 1
    assert parse_shard("auto/4", {"JOB_COMPLETION_INDEX": "0"}) == Shard(1, 4)
    assert parse_shard("auto", {"AWS_BATCH_JOB_ARRAY_INDEX": "3", "AMICTL_SHARDS": "4"}) == Shard(
        4, 4
    )
    assert parse_shard("auto", {"AMICTL_SHARD": "2/3"}) == Shard(2, 3)
    for bad, env in [
        ("0/4", {}),
        ("5/4", {}),
        ("2", {}),
        ("x/4", {}),
        ("auto", {}),  # no index anywhere
        ("auto", {"JOB_COMPLETION_INDEX": "1"}),  # no count
        ("auto/4", {"JOB_COMPLETION_INDEX": "4"}),  # index 4 = shard 5 of 4
    ]:
        with pytest.raises(InputError):
            parse_shard(bad, env)


@given(
    accounts=st.sets(st.from_regex(r"\A\d{12}\Z", fullmatch=True), min_size=0, max_size=60),
    n=st.integers(1, 9),
)
def test_shards_partition_the_accounts_evenly(accounts: set[str], n: int) -> None:
    """Every account in exactly one shard, sizes differ by at most one, and the split
    depends only on the set (any order, duplicates)."""
    parts = [Shard(k, n).accounts(accounts) for k in range(1, n + 1)]
    flat = [a for p in parts for a in p]
    assert sorted(flat) == sorted(accounts)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    shuffled = list(reversed(sorted(accounts))) * 2
    assert [Shard(k, n).accounts(shuffled) for k in range(1, n + 1)] == parts
    arns = [role_arn_for("r", a) for a in shuffled]
    assert [len(Shard(k, n).role_arns(arns)) for k in range(1, n + 1)] == list(map(len, parts))


def test_role_templates() -> None:
    assert (
        role_arn_for("amictl-scan", "111122223333") == "arn:aws:iam::111122223333:role/amictl-scan"
    )
    assert (
        role_arn_for("arn:aws-us-gov:iam::{account}:role/ops/x", "111122223333")
        == "arn:aws-us-gov:iam::111122223333:role/ops/x"
    )


# ---------------------------------------------------------------- end to end


class Org:
    """Member accounts seeded with small fleets, a management account holding the org."""

    def __init__(self, sandbox: Any, tmp: Path, members: int = 5) -> None:
        self.mgmt = Env(sandbox, str(next(_accounts)))
        self.members = [Env(sandbox, str(next(_accounts))) for _ in range(members)]
        for i, m in enumerate(self.members):
            m.load(fleet(in_use=i == 0))
        self.suspended = str(next(_accounts))
        sandbox.set_org(
            [m.account for m in self.members] + [{"id": self.suspended, "status": "SUSPENDED"}],
            management=self.mgmt.account,
        )
        self.sandbox = sandbox
        self.tmp = tmp
        (tmp / "policy.yaml").write_text(POLICY)

    def env(self, db: str, **extra: str) -> dict[str, str]:
        c = self.mgmt.creds()
        return {
            "AWS_ACCESS_KEY_ID": c["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": c["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": c["aws_session_token"],
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.sandbox.endpoint,
            "AMICTL_STATE": f"sqlite:///{self.tmp}/{db}.db",
            "XDG_STATE_HOME": str(self.tmp),
            **extra,
        }

    def run(self, db: str, *args: str, **extra: str) -> tuple[int, str, str]:
        return invoke([*args, "--region", "us-east-1", "--no-progress"], self.env(db, **extra))

    def plan(self, db: str, *more: str) -> tuple[int, Any, str]:
        code, out, err = self.run(
            db, "plan", "-p", str(self.tmp / "policy.yaml"), "--from-state", "--now", NOW,
            "--org", "amictl-test", "-o", "json", *more,
        )  # fmt: skip
        return code, json.loads(out) if code == 0 else None, err

    def inventory(self, db: str, *more: str, **extra: str) -> dict[str, Any]:
        code, out, err = self.run(
            db, "inventory", "--org", "amictl-test", "-o", "json", *more, **extra
        )
        assert code == 0, out + err
        return dict(json.loads(out))


def essence(plan: dict[str, Any]) -> tuple[Any, Any]:
    actions = sorted(
        (a["type"], a["account"], a.get("image_id"), a.get("snapshot_id")) for a in plan["actions"]
    )
    decisions = sorted((d["image_id"], d["verdict"]) for d in plan["decisions"])
    return actions, decisions


@pytest.fixture
def org(sandbox: Any, tmp_path: Path) -> Org:
    return Org(sandbox, tmp_path)


def test_shards_plan_exactly_as_one_process(org: Org) -> None:
    single = org.inventory("single")
    scanned = {r["account"] for r in single["per_region"]}
    # --org: the ACTIVE members and the management account, not the suspended one
    assert scanned == {m.account for m in org.members} | {org.mgmt.account}
    code, one, err = org.plan("single")
    assert code == 0, err
    # issue 31: the suspended member is named, on stderr and in JSON, never skipped silently
    assert f"skipped: account {org.suspended}" in err and "SUSPENDED" in err
    assert [a["id"] for a in single["skipped_accounts"]] == [org.suspended]
    # ... and each plan group says whose it is when more than one account is planned
    code, text, err = org.run(
        "single", "plan", "-p", str(org.tmp / "policy.yaml"), "--from-state", "--now", NOW,
        "--org", "amictl-test", COLUMNS="200",
    )  # fmt: skip
    assert code == 0, err
    heads = [line for line in text.splitlines() if line and not line.startswith(" ")]
    groups = [h for h in heads if " us-east-1" in h]
    assert len(groups) >= 2 and all(re.search(r" account \d{12}", h) for h in groups), text
    assert {re.search(r"account (\d{12})", h)[1] for h in groups} == {  # type: ignore[index]
        m.account for m in org.members
    }

    shards = [org.inventory("sharded", "--shard", f"{k}/3") for k in (1, 2, 3)]
    parts = [{r["account"] for r in s["per_region"]} for s in shards]
    assert set().union(*parts) == scanned and sum(map(len, parts)) == len(scanned)
    # the shards together make no more calls than the one process (the ListAccounts of
    # each shard's discovery aside: they are not scan calls)
    assert sum(s["api_calls_total"] for s in shards) <= single["api_calls_total"]
    code, sharded, err = org.plan("sharded")
    assert code == 0, err
    assert essence(sharded) == essence(one)
    # 2 retired images an account (mark, deregister, delete snapshot), v1 in use in one
    assert len(one["actions"]) == 3 * (2 * len(org.members) - 1)


def test_missing_or_old_shard_refuses_naming_the_accounts(org: Org) -> None:
    code, _plan, err = org.plan("partial")
    assert code == 3 and "no stored inventory" in err
    first = org.inventory("partial", "--shard", "1/3")
    done = {r["account"] for r in first["per_region"]}
    code, _plan, err = org.plan("partial")
    assert code == 3, err
    # (the suspended member is named on a line of its own: it is not a missing shard)
    refusal = "\n".join(line for line in err.splitlines() if not line.startswith("skipped:"))
    named = set(re.findall(r"\d{12}", refusal))
    everyone = {m.account for m in org.members} | {org.mgmt.account}
    assert named == everyone - done  # exactly the accounts of the missing shards
    for k in (2, 3):
        org.inventory("partial", "--shard", f"{k}/3")
    assert org.plan("partial")[0] == 0
    code, _plan, err = org.plan("partial", "--max-age", "0h")
    assert code == 3 and "older than --max-age" in err
    refusal = "\n".join(line for line in err.splitlines() if not line.startswith("skipped:"))
    assert set(re.findall(r"\d{12}", refusal)) == everyone


def test_shard_needs_accounts_and_a_valid_role(org: Org) -> None:
    code, _out, err = org.run("x", "inventory", "--shard", "1/2")
    assert code == 2 and "--org, --accounts-file or --role-arn" in err
    code, _out, err = org.run("x", "inventory", "--org", "arn:aws:iam::1:role/x", "--shard", "1/2")
    assert code == 2 and "--org" in err


def render(args: list[str], env: dict[str, str]) -> list[str]:
    """Kubernetes' $(VAR) expansion of a container's args from its env."""
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in args]


def test_kubernetes_indexed_job_example_runs_against_the_sandbox(org: Org) -> None:
    docs = list(yaml.safe_load_all((EXAMPLES / "k8s-indexed-job.yaml").read_text()))
    scan = next(d for d in docs if d["spec"].get("completionMode") == "Indexed")
    plan_job = next(d for d in docs if d is not scan)
    n = scan["spec"]["completions"]
    container = scan["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["amictl"]
    assert f"auto/{n}" in container["args"], "--shard auto/N must match completions"

    def cenv(c: dict[str, Any]) -> dict[str, str]:
        # plain values as given; the state URL (a secret) is the test's store; one region
        # instead of four keeps the test fast
        out = {e["name"]: e["value"] for e in c["env"] if "value" in e}
        out["AMICTL_REGIONS"] = "us-east-1"
        return out

    for index in range(n):  # each pod, one after the other
        args = render(container["args"], cenv(container))
        code, out, err = invoke(args, org.env("k8s", JOB_COMPLETION_INDEX=str(index)))
        assert code == 0, out + err
    pc = plan_job["spec"]["template"]["spec"]["containers"][0]
    args = render(pc["args"], cenv(pc))
    args[args.index("/policy/cleanup.yaml")] = str(org.tmp / "policy.yaml")
    args[args.index("/tmp/plan.json")] = str(org.tmp / "k8s-plan.json")
    code, out, err = invoke([*args, "--now", NOW], org.env("k8s"))
    assert code == 0, out + err
    # the same plan as one process scanning the whole organization
    assert org.inventory("single")["complete"]
    code, ref, err = org.plan("single")
    assert code == 0, err
    assert essence(json.loads((org.tmp / "k8s-plan.json").read_text())) == essence(ref)


def test_github_actions_example_matrix_matches_its_shard_count() -> None:
    wf = yaml.safe_load((EXAMPLES / "github-actions-matrix.yml").read_text())
    matrix = wf["jobs"]["scan"]["strategy"]["matrix"]["shard"]
    assert matrix == list(range(1, int(wf["env"]["SHARDS"]) + 1))
    step = wf["jobs"]["scan"]["steps"][-1]["run"]
    assert "--shard" in step and "--org" in step
    assert wf["jobs"]["plan"]["needs"] == "scan"
