"""Least-privilege IAM policies, generated from the registered collectors and executors."""

from __future__ import annotations

from typing import Any

from .apply.actions import EXECUTORS
from .apply.recheck import RECHECK_PERMISSIONS
from .audit import PERMISSIONS as AUDIT_PERMISSIONS
from .catalog import PERMISSIONS as CATALOG_PERMISSIONS
from .channels import PERMISSIONS as CHANNEL_PERMISSIONS
from .conventions import PERMISSIONS as LINT_PERMISSIONS
from .creation.bake import PERMISSIONS as BAKE_PERMISSIONS
from .creation.builder_role import PERMISSIONS as BUILDER_ROLE_PERMISSIONS
from .creation.create import CREATE_PERMISSIONS
from .creation.stale import PERMISSIONS as STALE_PERMISSIONS
from .creation.volumes import PERMISSIONS as VOLUME_PERMISSIONS
from .distribute import PERMISSIONS as DISTRIBUTE_PERMISSIONS
from .governance.permissions import PERMISSIONS as GOVERNANCE_PERMISSIONS
from .governance.permissions import REFS_PERMISSIONS
from .inventory.kinds import COLLECTORS
from .launch import PERMISSIONS as LAUNCH_PERMISSIONS
from .notify import PERMISSIONS as NOTIFY_PERMISSIONS
from .recyclebin import ALL_PERMISSIONS as RECYCLE_BIN_PERMISSIONS
from .retention import RESTORE_PERMISSIONS, RETAIN_PERMISSIONS
from .revoke import PERMISSIONS as REVOKE_PERMISSIONS
from .rollout import PERMISSIONS as ROLLOUT_PERMISSIONS

BASE = {"sts:GetCallerIdentity", "ec2:DescribeRegions"}
READ_COMMANDS = ("inventory", "ls", "show", "refs", "snapshots", "plan", "explain", "versions")
COMMANDS: tuple[str, ...] = (*READ_COMMANDS, "apply", "recycle-bin", *CHANNEL_PERMISSIONS, "create")
COMMANDS = (*COMMANDS, *DISTRIBUTE_PERMISSIONS, "launch", "lint")
COMMANDS = (*COMMANDS, "catalog")
COMMANDS = (*COMMANDS, "cost", "audit", "report")  # issue 11: cost, audit, report
COMMANDS = (*COMMANDS, "bake", "stale")
SINGLE_IMAGE = ("deprecate", "disable", "retire")  # one-action plans: what apply needs
COMMANDS = (*COMMANDS, *SINGLE_IMAGE, "tag")
COMMANDS = (*COMMANDS, "rollout", "drift")  # issue 21
COMMANDS = (*COMMANDS, "bake-setup")  # issue 23: `amictl bake setup` (IAM only)
COMMANDS = (*COMMANDS, *GOVERNANCE_PERMISSIONS)  # issue 20: allowed-images, lineage, usage
COMMANDS = (*COMMANDS, "retain", "restore")  # issue 29: retention AWS enforces
COMMANDS = (*COMMANDS, "approve", "approval-config")  # issue 29: the caller's identity only
# the approval thresholds are judged on the live images' families and snapshots' sizes
COMMANDS = (*COMMANDS, "approvals")
APPROVAL_FACTS = {"ec2:DescribeImages", "ec2:DescribeSnapshots"}
COMMANDS = (*COMMANDS, "notify")  # issue 29: the plan's images, the channels, the notified tag
COMMANDS = (*COMMANDS, "revoke", "unrevoke")  # issue 28

# Commands that make no AWS call at all: `iam-policy` says so instead of "unknown command".
NO_AWS_COMMANDS: dict[str, str] = {
    "journal": "it reads the state store only",
    "state": "it works on the state store only",
    "policy": "it checks a policy file",
    "recipe": "it checks a recipe file",
    "iam-policy": "it prints a policy document",
    "sandbox": "it runs the local sandbox, not AWS",
    "demo": "it runs against its own private sandbox",
}


# boto3's service names whose IAM action prefix differs (call counters name boto3's).
IAM_PREFIXES = {"emr": "elasticmapreduce"}


def iam_action(call: str) -> str:
    """The IAM action of a counted call: ``emr.ListClusters`` -> ``elasticmapreduce:ListClusters``."""
    service, _, operation = call.partition(".")
    return f"{IAM_PREFIXES.get(service, service)}:{operation}"


def permissions(command: str) -> set[str]:
    if command not in COMMANDS:
        raise KeyError(command)
    perms = set(BASE)
    if command == "recycle-bin":  # status, ensure, ls, restore
        return perms | RECYCLE_BIN_PERMISSIONS
    if command in CHANNEL_PERMISSIONS:  # promote, rollback, channels
        return perms | CHANNEL_PERMISSIONS[command]
    if command == "create":  # from-instance, from-snapshot (--volume: encrypted copies)
        return perms | CREATE_PERMISSIONS | VOLUME_PERMISSIONS
    if command in DISTRIBUTE_PERMISSIONS:  # copy, share, unshare, sharing
        return perms | DISTRIBUTE_PERMISSIONS[command]
    if command == "launch":
        return perms | LAUNCH_PERMISSIONS
    if command == "lint":  # scan owned images; --fix: CreateTags
        return perms | LINT_PERMISSIONS
    if command == "rollout":  # issue 21: templates, groups, instance refreshes
        return perms | ROLLOUT_PERMISSIONS
    if command == "catalog":  # catalog list, catalog find
        return perms | CATALOG_PERMISSIONS
    if command in ("audit", "report"):  # the checks' reads, then the inventory's collectors
        perms |= AUDIT_PERMISSIONS
    if command == "bake-setup":  # the builder role and instance profile
        return perms | BUILDER_ROLE_PERMISSIONS
    if command == "bake":  # bake (also --cleanup); stale: the inventory's, plus look-ups
        perms |= BAKE_PERMISSIONS | CREATE_PERMISSIONS | CATALOG_PERMISSIONS | LAUNCH_PERMISSIONS
        return perms | DISTRIBUTE_PERMISSIONS["copy"] | DISTRIBUTE_PERMISSIONS["share"]
    if command == "tag":
        return perms | {"ec2:DescribeImages", "ec2:CreateTags"}
    if command == "stale":
        perms |= STALE_PERMISSIONS
    if command == "allowed-images":  # set reads every launcher kind (issue 27, R7)
        for spec in COLLECTORS.values():
            perms.update(spec.permissions)
    if command in GOVERNANCE_PERMISSIONS:
        return perms | GOVERNANCE_PERMISSIONS[command]
    if command == "approval-config":
        return perms
    if command in ("approve", "approvals"):  # the plan's images and snapshots, live
        return perms | APPROVAL_FACTS
    if command == "notify":
        return perms | NOTIFY_PERMISSIONS | {"ec2:DescribeImages", "ec2:CreateTags"}
    if command == "restore":
        return perms | RESTORE_PERMISSIONS
    if command == "retain":  # the inventory's reads, then the locks and store tasks
        perms |= RETAIN_PERMISSIONS
    if command == "unrevoke":  # issue 28: the journal says what to undo
        return perms | REVOKE_PERMISSIONS
    if command == "revoke":  # the inventory's reads below, then tags, channels, criteria
        perms |= REVOKE_PERMISSIONS
    if command in ("refs", "plan", "explain"):  # AWS's reference check (plan: the retiring)
        perms |= REFS_PERMISSIONS
    for spec in COLLECTORS.values():
        perms.update(spec.permissions)
    if command == "apply" or command in SINGLE_IMAGE:
        for ex in EXECUTORS.values():
            perms.update(ex.permissions)
        perms.update(RECHECK_PERMISSIONS)
    return perms


def policy_document(commands: list[str]) -> dict[str, Any]:
    actions: set[str] = set()
    for c in commands:
        actions |= permissions(c)
    read = sorted(a for a in actions if a.split(":")[1].startswith(("Describe", "Get", "List")))
    write = sorted(actions - set(read))
    statements: list[dict[str, Any]] = [
        {"Sid": "AmictlRead", "Effect": "Allow", "Action": read, "Resource": "*"}
    ]
    if write:
        statements.append(
            {"Sid": "AmictlWrite", "Effect": "Allow", "Action": write, "Resource": "*"}
        )
    return {"Version": "2012-10-17", "Statement": statements}
