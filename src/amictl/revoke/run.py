"""Carry out a revocation plan, and undo one (``amictl unrevoke``), journaled.

Every step is written to the state store's journal (plan key ``revoke-<id>``) as
``intended`` before its AWS call and ``done`` after, under the apply lock of each
account/region, so ``amictl revoke --resume`` carries on after Ctrl-C (exit 130), SIGTERM
(143) or a kill. Each step is idempotent (a tag written twice, a channel set to the value it
holds, a deprecation already there): a step whose call went through but whose ``done`` row
was lost is simply done again. ``unrevoke`` reads the plan and the journal and undoes, in
reverse order, every step revoke started (journaled as ``unrevoke-<id>``), leaving alone
what someone changed since (a channel promoted again, criteria replaced), and says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import interrupts
from ..aws.session import Connector, Target, aws_error
from ..channels.ops import _put as put_channel
from ..channels.ops import image_by_id, parameter_history
from ..errors import AmictlError, Interrupted, SafetyError, StateError
from ..inventory.releases import describe_promotion, describe_rollback
from ..model import iso, parse_time
from ..state.store import Store
from ..tagnames import REVOKE_TAGS, REVOKED_AT_TAG, REVOKED_BY_TAG, REVOKED_TAG
from .plan import RevokePlan

PERMISSIONS = {
    "sts:GetCallerIdentity",
    "ec2:DescribeImages",
    "ec2:GetImageAncestry",
    "ec2:CreateTags",
    "ec2:DeleteTags",
    "ec2:EnableImageDeprecation",
    "ec2:DisableImageDeprecation",
    "ec2:DisableImage",
    "ec2:EnableImage",
    "ssm:DescribeParameters",
    "ssm:GetParameters",
    "ssm:GetParameterHistory",
    "ssm:PutParameter",
    "ec2:GetAllowedImagesSettings",
    "ec2:DescribeInstanceImageMetadata",
    "ec2:ReplaceImageCriteriaInAllowedImagesSettings",
}
"""What ``amictl revoke`` and ``unrevoke`` call besides the inventory's reads."""

# Tests: called with (step id, "before" | "after") around each step's AWS call, between its
# `intended` and `done` rows (tests/test_revoke.py sends a signal there). Empty in normal runs.
HOOKS: list[Callable[[str, str], None]] = []

KILL_AT_ENV = "AMICTL_TEST_KILL_AT"
"""Tests only: ``K:before`` or ``K:after`` makes the process SIGKILL itself around the AWS
call of the K-th step (from 0) this run carries out, between its ``intended`` and ``done``
rows: the kill-point property of tests/test_revoke.py runs ``amictl revoke`` as a
subprocess with it. Unset in normal runs; read here only."""


def kill_point() -> tuple[int, str] | None:
    """(step number, "before" | "after") from ``AMICTL_TEST_KILL_AT``, else None."""
    raw = os.environ.get(KILL_AT_ENV, "")
    n, _, when = raw.partition(":")
    if not n.isdigit() or when not in ("before", "after"):
        return None
    return int(n), when


def _maybe_kill(at: tuple[int, str] | None, n: int, when: str) -> None:
    if at == (n, when):
        os.kill(os.getpid(), signal.SIGKILL)


Step = tuple[str, str, dict[str, Any]]  # (action id, kind, the plan row it acts on)


class Journal:
    def __init__(self, store: Store, key: str, caller: str) -> None:
        self.store, self.key, self.caller = store, key, caller

    def write(
        self, action: str, kind: str, row: dict[str, Any] | None, status: str, **m: Any
    ) -> None:
        row = row or {}
        try:
            self.store.journal_write(
                plan_checksum=self.key,
                action_id=action[:32],
                type=kind[:32],
                account=row.get("account", ""),
                region=row.get("region", ""),
                resource=str(row.get("image_id") or row.get("parameter") or "")[:64],
                status=status,
                message=json.dumps(m, default=str) if m else None,
                caller=self.caller,
            )
        except Exception as exc:  # noqa: BLE001 - the store failing mid-run
            raise StateError(f"cannot write the revoke journal: {exc}") from None

    def states(self) -> dict[str, tuple[str, dict[str, Any]]]:
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        for r in self.store.journal_rows(plan_checksum=self.key, limit=100000):
            out[r["action_id"]] = (r["status"], json.loads(r["message"] or "{}"))
        return out


def save_plan(store: Store, plan: RevokePlan) -> None:
    Journal(store, plan.journal_key, plan.caller).write(
        "plan", "revoke-plan", None, "planned", plan=plan.to_dict()
    )


def load_plan(
    store: Store, revoke_id: str | None = None, unfinished: bool = False
) -> RevokePlan | None:
    """The revocation ``revoke_id`` (else the newest one; with ``unfinished`` only when it
    did not end: what ``--resume`` carries on)."""
    keys = (
        [f"revoke-{revoke_id}"]
        if revoke_id
        else [r["plan_checksum"] for r in store.journal_rows(plan_prefix="revoke-", limit=1)]
    )
    if not keys:
        return None
    rows = store.journal_rows(plan_checksum=keys[0], limit=100000)
    if unfinished and any(r["action_id"] == "end" for r in rows):
        return None
    head = next((r for r in rows if r["action_id"] == "plan"), None)
    return None if head is None else RevokePlan.from_dict(json.loads(head["message"])["plan"])


def steps(plan: RevokePlan) -> list[Step]:
    """The plan's steps in order: tag, deprecate, disable each image; move each channel;
    replace each region's Allowed AMIs criteria."""
    out: list[Step] = []
    for n, img in enumerate(plan.images):
        if REVOKED_TAG not in img["revoke_tags"]:
            out.append((f"tag{n}", "revoke-tag", img))
        dep = parse_time(img["deprecation_time"])
        if dep is None or dep > parse_time(plan.at):  # type: ignore[operator]
            out.append((f"dep{n}", "revoke-deprecate", img))
        if plan.disable and img["state"] == "available":
            out.append((f"dis{n}", "revoke-disable", img))
    for n, ch in enumerate(plan.channels):
        if ch["new_image_id"]:
            out.append((f"ch{n}", "revoke-channel", ch))
    for n, al in enumerate(plan.allowed):
        out.append((f"al{n}", "revoke-allowed", al))
    return out


def lock_keys(plan: RevokePlan) -> list[str]:
    rows = [*plan.images, *plan.channels, *plan.allowed]
    return sorted({f"{r['account']}/{r['region']}" for r in rows})


def _target(row: dict[str, Any]) -> Target:
    return Target(row["account"], row["region"], row.get("role_arn"))


def _call(conn: Connector, row: dict[str, Any], op: str, method: str, **kw: Any) -> Any:
    client = conn.client("ec2", row["region"], row.get("role_arn"))
    try:
        return getattr(client, method)(**kw)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, op, row["region"]) from None


def _deprecate_at(
    conn: Connector, row: dict[str, Any], image_id: str, at: dt.datetime
) -> dict[str, Any]:
    _call(
        conn,
        row,
        "EnableImageDeprecation",
        "enable_image_deprecation",
        ImageId=image_id,
        DeprecateAt=at,
    )
    return {"deprecate_at": iso(at)}


def _next_minute() -> dt.datetime:
    # AWS refuses a time in the past and rounds to the minute (apply's deprecate does so too)
    return (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)


def _do(conn: Connector, plan: RevokePlan, kind: str, row: dict[str, Any]) -> dict[str, Any]:
    """One revoke step; what it did (journaled with its ``done`` row)."""
    iid = row.get("image_id")
    if kind == "revoke-tag":
        tags = {REVOKED_TAG: plan.reason, REVOKED_AT_TAG: plan.at, REVOKED_BY_TAG: plan.caller}
        _call(
            conn,
            row,
            "CreateTags",
            "create_tags",
            Resources=[iid],
            Tags=[{"Key": k, "Value": v[:256]} for k, v in tags.items()],
        )
        return {"tags": sorted(tags)}
    if kind == "revoke-deprecate":
        cur = image_by_id(conn, _target(row), str(iid))
        if cur is not None and cur.deprecation_time and cur.deprecation_time <= _next_minute():
            return {"deprecate_at": iso(cur.deprecation_time), "already": True}
        return _deprecate_at(conn, row, str(iid), _next_minute())
    if kind == "revoke-disable":
        cur = image_by_id(conn, _target(row), str(iid))
        if cur is not None and cur.state == "available":
            _call(conn, row, "DisableImage", "disable_image", ImageId=iid)
        return {}
    if kind == "revoke-channel":
        hist = parameter_history(conn, _target(row), row["parameter"]) or []
        if hist and hist[-1]["value"] == row["new_image_id"]:
            return {"already": True}
        if hist and hist[-1]["value"] != row["image_id"]:
            return {"skipped": f"the channel holds {hist[-1]['value']} now, not {row['image_id']}"}
        put_channel(
            conn,
            _target(row),
            row["parameter"],
            row["new_image_id"],
            describe_rollback(
                row["family"], row["channel"], row["new_version"] or row["new_image_id"]
            ),
        )
        return {"from": row["image_id"], "to": row["new_image_id"]}
    if kind == "revoke-allowed":
        _call(
            conn,
            row,
            "ReplaceImageCriteriaInAllowedImagesSettings",
            "replace_image_criteria_in_allowed_images_settings",
            ImageCriteria=row["new_criteria"],
        )
        return {}
    raise AssertionError(kind)  # pragma: no cover


def _run_steps(
    conn: Connector,
    store: Store,
    journal: Journal,
    keys: list[str],
    owner: str,
    todo: list[Step],
    act: Callable[[str, dict[str, Any]], dict[str, Any]],
    progress: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    """Each step not yet done, journaled, under the lock; Ctrl-C/SIGTERM stop between steps."""
    done = journal.states()
    results: dict[str, dict[str, Any]] = {a: m for a, (s, m) in done.items() if s == "done"}
    kill_at, n = kill_point(), 0
    with ExitStack() as stack:
        stack.enter_context(store.lock(keys, owner=owner, caller=journal.caller))
        try:
            with interrupts.cooperative():
                for aid, kind, row in todo:
                    if done.get(aid, ("",))[0] == "done":
                        continue
                    interrupts.check()
                    journal.write(aid, kind, row, "intended")
                    for hook in HOOKS:
                        hook(aid, "before")
                    _maybe_kill(kill_at, n, "before")
                    try:
                        res = act(kind, row)
                    except AmictlError as exc:
                        journal.write(aid, kind, row, "failed", error=exc.message)
                        raise
                    for hook in HOOKS:
                        hook(aid, "after")
                    _maybe_kill(kill_at, n, "after")
                    n += 1
                    journal.write(aid, kind, row, "done", **res)
                    results[aid] = res
                    progress(
                        f"{aid}: {kind} {row.get('image_id') or row.get('parameter') or row['region']} {res or ''}".rstrip()
                    )
        except Interrupted:
            journal.write("interrupted", "note", None, "interrupted")
            raise
    return results


def execute(
    conn: Connector, store: Store, plan: RevokePlan, progress: Callable[[str], None] | None = None
) -> dict[str, dict[str, Any]]:
    """Carry out (or carry on) the plan; the result of each step by action id."""
    journal = Journal(store, plan.journal_key, plan.caller)
    out = _run_steps(
        conn,
        store,
        journal,
        lock_keys(plan),
        f"revoke {plan.revoke_id}",
        steps(plan),
        lambda kind, row: _do(conn, plan, kind, row),
        progress or (lambda _m: None),
    )
    journal.write("end", "end", None, "done")
    return out


# ---------------------------------------------------------------- unrevoke


def _undo(
    conn: Connector,
    plan: RevokePlan,
    kind: str,
    row: dict[str, Any],
    keep: dict[tuple[str, str, str], RevokePlan] | None = None,
) -> dict[str, Any]:
    """One unrevoke step. ``keep``: the images an earlier revocation still revokes (by
    account, region, id): they stay revoked, with that revocation's tags."""
    iid = row.get("image_id")
    other = (keep or {}).get((row["account"], row["region"], str(iid)))
    if other is not None and kind in ("unrevoke-deprecate", "unrevoke-disable"):
        return {"skipped": f"revocation {other.revoke_id} still revokes it"}
    if other is not None and kind == "unrevoke-tag":
        tags = {REVOKED_TAG: other.reason, REVOKED_AT_TAG: other.at, REVOKED_BY_TAG: other.caller}
        _call(
            conn,
            row,
            "CreateTags",
            "create_tags",
            Resources=[iid],
            Tags=[{"Key": k, "Value": v[:256]} for k, v in tags.items()],
        )
        return {"skipped": f"revocation {other.revoke_id} still revokes it: its tags kept"}
    if kind == "unrevoke-allowed":
        from ..governance.allowed import read_settings

        now = read_settings(conn, _target(row))["criteria"]
        canon = sorted(json.dumps(c, sort_keys=True) for c in now)
        if canon == sorted(json.dumps(c, sort_keys=True) for c in row["old_criteria"]):
            return {"already": True}
        if canon != sorted(json.dumps(c, sort_keys=True) for c in row["new_criteria"]):
            return {"skipped": "the criteria were changed since the revocation"}
        _call(
            conn,
            row,
            "ReplaceImageCriteriaInAllowedImagesSettings",
            "replace_image_criteria_in_allowed_images_settings",
            ImageCriteria=row["old_criteria"],
        )
        return {}
    if kind == "unrevoke-channel":
        hist = parameter_history(conn, _target(row), row["parameter"]) or []
        cur = hist[-1]["value"] if hist else None
        if cur == row["image_id"]:
            return {"already": True}
        if cur != row["new_image_id"]:
            return {"skipped": f"the channel holds {cur} now, not {row['new_image_id']}"}
        put_channel(
            conn,
            _target(row),
            row["parameter"],
            row["image_id"],
            describe_promotion(row["family"], row["channel"], row["version"] or row["image_id"]),
        )
        return {"from": row["new_image_id"], "to": row["image_id"]}
    if kind == "unrevoke-disable":
        cur = image_by_id(conn, _target(row), str(iid))
        if cur is not None and cur.state == "disabled":
            _call(conn, row, "EnableImage", "enable_image", ImageId=iid)
        return {}
    if kind == "unrevoke-deprecate":
        cur = image_by_id(conn, _target(row), str(iid))
        # revoke deprecates at the next minute, so by now its time is past (or within a
        # minute): a later time, or none, was set by someone since, and is theirs to keep
        if cur is None or cur.deprecation_time is None:
            return {"skipped": "the image is no longer deprecated: left as it is"}
        if cur.deprecation_time > _next_minute():
            return {
                "skipped": f"deprecated at {iso(cur.deprecation_time)} since the revocation: "
                "left as it is"
            }
        before = parse_time(row["deprecation_time"])
        if before is None:
            _call(conn, row, "DisableImageDeprecation", "disable_image_deprecation", ImageId=iid)
            return {}
        return _deprecate_at(conn, row, str(iid), before)
    if kind == "unrevoke-tag":
        _call(
            conn,
            row,
            "DeleteTags",
            "delete_tags",
            Resources=[iid],
            Tags=[{"Key": k} for k in REVOKE_TAGS],
        )
        return {}
    raise AssertionError(kind)  # pragma: no cover


def _images(plan: RevokePlan) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(i["account"], i["region"], i["image_id"]): i for i in plan.images}


def standing_others(
    store: Store, plan: RevokePlan
) -> list[tuple[RevokePlan, set[tuple[str, str, str]], bool]]:
    """The other revocations that ran, are not undone and revoke one of ``plan``'s images
    too: (that revocation, the images both revoke, whether it was planned after ``plan``)."""
    rows = store.journal_rows(plan_prefix="revoke-", limit=10_000_000)
    heads = [r for r in rows if r["action_id"] == "plan"]
    ran = {r["plan_checksum"] for r in rows if r["action_id"] != "plan"}
    keys = [r["plan_checksum"] for r in heads]
    mine = keys.index(plan.journal_key) if plan.journal_key in keys else len(keys)
    ours = _images(plan)
    out = []
    for n, head in enumerate(heads):
        if n == mine or head["plan_checksum"] not in ran:
            continue  # itself, or planned and never carried out: it revoked nothing
        other = RevokePlan.from_dict(json.loads(head["message"])["plan"])
        both = set(_images(other)) & set(ours)
        if both and not _undone(store, other):
            out.append((other, both, n > mine))
    return out


def _names(plan: RevokePlan, keys: set[tuple[str, str, str]]) -> list[str]:
    imgs = _images(plan)
    return [f"{imgs[k]['name'] or ''} ({k[2]})".lstrip() for k in sorted(keys)]


def _undone(store: Store, plan: RevokePlan) -> bool:
    rows = store.journal_rows(plan_checksum=f"unrevoke-{plan.revoke_id}", limit=100000)
    return any(r["action_id"] == "end" for r in rows)


def check_no_later_standing(store: Store, plan: RevokePlan) -> None:
    """Refuse (exit 3) to undo ``plan`` while a later revocation of one of its images
    stands: it would leave that image unrevoked. Undo the later one first."""
    later = [(o, both) for o, both, after in standing_others(store, plan) if after]
    if later:
        other, both = later[0]
        more = f" (and {len(later) - 1} more revocation(s))" if len(later) > 1 else ""
        raise SafetyError(
            f"revocation {other.revoke_id} ({other.reason}) also revokes "
            f"{', '.join(_names(plan, both)[:5])} and stands{more}: undoing "
            f"{plan.revoke_id} would lift it",
            hint=f"undo the later one first (`amictl unrevoke {other.revoke_id}`), then "
            f"`amictl unrevoke {plan.revoke_id}`",
        )


def unrevoke(
    conn: Connector,
    store: Store,
    plan: RevokePlan,
    caller: str,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Undo, in reverse order, every step of the revocation that was started; refused
    while a later revocation of one of its images stands (``check_no_later_standing``)."""
    check_no_later_standing(store, plan)
    keep = {k: o for o, both, _after in standing_others(store, plan) for k in both}
    started = Journal(store, plan.journal_key, plan.caller).states()
    todo = [
        (f"u-{aid}", kind.replace("revoke-", "unrevoke-"), row)
        for aid, kind, row in reversed(steps(plan))
        if aid in started
    ]
    if not todo:  # e.g. a second revocation of images already revoked: it still stands
        if set(started) <= {"plan"}:
            raise AmictlError(f"revocation {plan.revoke_id} never ran: nothing to undo")
        (progress or (lambda _m: None))(
            f"revocation {plan.revoke_id} changed nothing in AWS: it is marked undone"
        )
    journal = Journal(store, f"unrevoke-{plan.revoke_id}", caller)
    out = _run_steps(
        conn,
        store,
        journal,
        lock_keys(plan),
        f"unrevoke {plan.revoke_id}",
        todo,
        lambda kind, row: _undo(conn, plan, kind, row, keep),
        progress or (lambda _m: None),
    )
    revoke_journal = Journal(store, plan.journal_key, plan.caller)
    if "end" not in started:  # an interrupted revoke is not resumed once undone
        revoke_journal.write("end", "end", None, "undone")
    journal.write("end", "end", None, "done")
    return out


def check_not_undone(store: Store, plan: RevokePlan) -> None:
    if _undone(store, plan):
        raise SafetyError(f"revocation {plan.revoke_id} was already undone")
