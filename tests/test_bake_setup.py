"""Bake out of the box (issue 23 item 3): the example recipes bake on a fresh demo fleet
with no extra step, `amictl bake setup` makes (and then finds) the builder role and
instance profile, and the sandbox's Run Command control API refuses what it does not know."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from amictl.creation import builder_role
from amictl.errors import InputError
from amictl.sandbox import builtin
from cli_fleet import invoke

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "examples" / "recipes"


@pytest.fixture
def outcomes(sandbox):
    yield sandbox
    sandbox.set_run_command(clear=True)
    sandbox.set_ssm(reset=True)


@pytest.fixture
def cli(env, tmp_path, monkeypatch):
    for k, v in {**env.cli_env(tmp_path), "AMICTL_BAKE_POLL": "0.05"}.items():
        monkeypatch.setenv(k, v)

    def run(*args: str) -> tuple[int, str, str]:
        return invoke([*args, *env.cli_args()])

    return run


def demo_in(env, without: tuple[str, ...] = ()) -> dict:
    """The built-in demo fleet, seeded into the test's own (fresh) account."""
    data = builtin.demo()
    data["account"] = env.account
    for key in without:
        data.pop(key)
    return env.sandbox.load_text(json.dumps(data), "<demo fleet>")["aliases"]


# Both example recipes baked on a fresh demo fleet, and `bake setup` finding everything
# there: tests/test_newcomer_fleet.py (with what their headers say, and no prod moved).


def test_bake_setup_shows_asks_creates_and_is_idempotent(env, cli):
    iam = env.client("iam")
    code, out, err = cli("bake", "setup", "-o", "json")  # no terminal, no --yes: refused
    assert code == 2 and "without confirmation" in err  # issue 31: one code
    planned = json.loads(out)["planned"]
    assert [(r["resource"], r["status"]) for r in planned] == [
        ("role", "create"),
        ("policy", "attach"),
        ("instance-profile", "create"),
    ]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName="amictl-builder")
    code, out, err = cli("bake", "setup", "--yes", "-o", "json")
    assert code == 0, out + err
    assert [r["status"] for r in json.loads(out)["result"]] == ["created", "attached", "created"]
    role = iam.get_role(RoleName="amictl-builder")["Role"]
    assert builder_role._trusts_ec2(role["AssumeRolePolicyDocument"])
    attached = iam.list_attached_role_policies(RoleName="amictl-builder")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [builder_role.SSM_CORE_POLICY]
    profile = iam.get_instance_profile(InstanceProfileName="amictl-builder")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["amictl-builder"]
    # again: everything is there, nothing asked, nothing changed
    code, out, err = cli("bake", "setup")
    assert code == 0, out + err
    assert "nothing to do" in err + out
    # the policy detached by someone: only that is redone
    iam.detach_role_policy(RoleName="amictl-builder", PolicyArn=builder_role.SSM_CORE_POLICY)
    code, out, err = cli("bake", "setup", "--yes", "-o", "json")
    assert code == 0, out + err
    assert [r["status"] for r in json.loads(out)["result"]] == ["ok", "attached", "ok"]


def test_bake_setup_never_changes_a_role_that_does_not_fit(env, cli):
    iam = env.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(RoleName="amictl-builder", AssumeRolePolicyDocument=json.dumps(trust))
    code, out, err = cli("bake", "setup", "--yes")
    assert code == 3, out + err
    assert "trust policy" in err
    assert not iam.list_attached_role_policies(RoleName="amictl-builder")["AttachedPolicies"]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_instance_profile(InstanceProfileName="amictl-builder")
    # another name is set up beside it
    code, out, err = cli("bake", "setup", "--yes", "--name", "team-builder", "-o", "json")
    assert code == 0, out + err
    assert iam.get_instance_profile(InstanceProfileName="team-builder")
    code, _out, err = cli("bake", "setup", "--name", "no spaces")
    assert code == 2 and "--name" in err
    code, _out, err = cli("bake", "some.recipe.yaml", "--name", "x")
    assert code == 2 and "bake setup" in err


def test_bake_setup_permissions_are_registered():
    code, out, err = invoke(["iam-policy", "bake-setup"])
    assert code == 0, err
    actions = {a for st in json.loads(out)["Statement"] for a in st["Action"]}
    assert actions >= builder_role.PERMISSIONS
    assert "iam:CreateRole" in actions and "ec2:RunInstances" not in actions


def test_run_command_control_refuses_unknown_keys(sandbox, outcomes):
    with pytest.raises(InputError, match="unknown key.*stauts"):
        sandbox.set_run_command("*", stauts="Failed")
    with pytest.raises(InputError, match="status 'Broken'"):
        sandbox.set_run_command("*", status="Broken")
    with pytest.raises(InputError, match="polls must be a int"):
        sandbox.set_run_command("*", polls="2")
    req = urllib.request.Request(
        sandbox.endpoint + "/_amictl/run-command",
        data=json.dumps({"key": "*", "statuss": "Failed"}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=30)
    assert exc.value.code == 400
    # nothing was stored by the refused bodies; a good one is
    assert sandbox.set_run_command("*", status="Success", polls=1)["outcomes"] == {
        "*": {"status": "Success", "polls": 1}
    }


def test_without_the_builder_profile_the_example_recipe_cannot_bake(sandbox, tmp_path, monkeypatch):
    """The twin of the first test: the demo fleet minus what `bake setup` makes fails as the
    issue found (so the first test proves the demo fleet's setting is what makes it work)."""
    from conftest import Env, _accounts

    other = Env(sandbox, str(next(_accounts)))
    demo_in(other, without=("builder_instance_profile",))
    for k, v in {**other.cli_env(tmp_path), "AMICTL_BAKE_POLL": "0.05"}.items():
        monkeypatch.setenv(k, v)
    web = str(RECIPES / "web-service.recipe.yaml")
    code, out, err = invoke(["bake", web, "--region", "us-east-1", *other.cli_args()])
    assert code != 0 and "amictl-builder" in err, out + err
