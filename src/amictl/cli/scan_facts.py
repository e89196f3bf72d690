"""Scans that read only what the command needs (issue 14).

``plan``: the scan lists images without their launch permissions; the plan reads them
(live, or from the state store's cache up to ``--max-age``) only for the images it
could retire. ``show`` / ``refs`` / ``explain`` of one image: one region's scan (the
image's own region, found with one DescribeImages per candidate region) and that
image's launch permissions. ``-v`` prints the API calls per operation of the whole
command (the connector's counts: what the sandbox counts for the bench).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import click
from rich.markup import escape

from ..aws.org import account_of_arn
from ..aws.session import Connector, Target, aws_error
from ..channels.record import add_recorded_history
from ..durations import human_duration, parse_duration
from ..errors import InputError
from ..governance.references import second_opinion
from ..governance.usage import consumer_references
from ..iac import IacRead, add_iac_references
from ..inventory import scan
from ..inventory.from_state import inventory_from_state
from ..inventory.kinds import COLLECTORS
from ..inventory.lt_cache import LtVersionCache
from ..inventory.sharing import DEFAULT_MAX_AGE, SharingRead, read_sharing
from ..memory import frozen_heap
from ..model import Image, Inventory
from ..policy.facts import needs_snapshots, plan_reading_sharing
from ..policy.model import Policy
from ..policy.plan_model import Plan
from . import context
from .common import err_console, info, settings
from .phases import Phases
from .progress import scan_progress


def sharing_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--refresh`` and ``--max-age`` of the launch-permission cache."""
    fn = click.option(
        "--max-age",
        default="24h",
        show_default=True,
        help="Reuse launch permissions read at most this long ago (from the state store); "
        "with --from-state, also the oldest stored inventory of an account the plan accepts.",
    )(fn)
    return click.option(
        "--refresh",
        is_flag=True,
        help="Read every needed launch permission and every launch-template version live, "
        "and parse every page afresh (no cache).",
    )(fn)


def iac_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--iac PATH`` (repeatable): the team's infrastructure code, read as references."""
    return click.option(
        "--iac",
        "iac",
        multiple=True,
        metavar="PATH",
        help="Terraform (.tf, state), CloudFormation/SAM or Packer files, or directories / "
        "git checkouts read recursively: an image the code names or looks up is in use "
        "(docs/iac.md). Repeatable; added to the policy's iac: key.",
    )(fn)


def add_iac(inv: Inventory, paths: tuple[str, ...] | list[str]) -> IacRead:
    """Read the code into the inventory's references; one line on stderr, and a warning per
    lookup not evaluated wholly. A file that does not parse is bad input (exit 2)."""
    if not paths:
        return IacRead()
    got = add_iac_references(inv, paths)
    info(f"infrastructure code: {got.files} files read, {len(got.references)} references")
    for w in got.warnings:
        err_console().print(f"[yellow]warning:[/] {w}", highlight=False)
    return got


def expected_accounts() -> list[str] | None:
    """The accounts the caller names (--org, --accounts-file, --role-arn), read off their
    role ARNs; None when it names none (then: every account the state store has)."""
    s = settings()
    if not (s.role_arns or s.accounts_file or s.org):
        return None
    arns = context.connector().role_arns
    return sorted({a for a in map(account_of_arn, arns) if a})


def parse_max_age(text: str) -> dt.timedelta:
    try:
        return parse_duration(text) if text else DEFAULT_MAX_AGE
    except ValueError as exc:
        raise InputError(str(exc), key="--max-age") from None


def print_calls(conn: Connector) -> None:
    """-v: API calls per operation of the whole command."""
    if settings().verbosity > 0:
        calls = conn.counter.snapshot()
        err_console().print(f"API calls: {sum(calls.values())}")
        for op, n in sorted(calls.items()):
            err_console().print(f"  {n:6d}  {op}")


def _scan(
    conn: Connector,
    targets: list[Target],
    family_rule: Any,
    kinds: list[str] | None = None,
    lt_cache: Any = None,
) -> Inventory:

    with scan_progress("scanning") as cb:
        inv = scan(
            conn,
            targets,
            kinds=kinds,
            family_rule=family_rule,
            progress=cb,
            launch_permissions=False,
            lt_cache=lt_cache,
        )
    say_incomplete(inv)
    return inv


def say_incomplete(inv: Inventory) -> None:
    """``incomplete: ACCOUNT REGION KIND: CODE: why``, one line per slice not read; the
    code and the kind are said once, not again from AWS's message (issue 31)."""
    for s in inv.incomplete_slices():
        why = s.error or ""
        for prefix in (f"{s.kind} in {s.region}: ", f"{s.kind}: "):
            why = why.removeprefix(prefix)
        why = why.removeprefix(f"{s.error_code}: ") if s.error_code else why
        code = f"{s.error_code}: " if s.error_code else ""
        err_console().print(
            f"[yellow]incomplete:[/] {s.account} {s.region} {s.kind}: {code}{escape(why)}".rstrip(),
            markup=True,
            highlight=False,
        )


def plan_live(
    policy: Policy,
    now: dt.datetime,
    *,
    from_state: bool = False,
    refresh: bool = False,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    also: str | None = None,
    explain: bool = False,
    phases: Phases | None = None,
) -> tuple[Plan, dict[str, Any], Inventory]:
    """Scan (or take the stored inventory), read the sharing the plan needs, plan.

    ``also``: an image whose launch permissions are read in any case (explain).
    ``phases``: filled with the seconds of each phase (scan, decide, store) for ``-v``.
    Returns the plan, what the sharing read did (live / cached / failed) and the inventory."""
    phases = phases if phases is not None else Phases()
    phases.start("scan")
    st = context.store()
    conn: Connector | None = None
    roles: dict[str, str | None] = {}
    kinds: list[str] | None = None
    if from_state:
        # the newest complete stored scan of every account (shards store one run each);
        # an account missing or older than --max-age refuses the plan (exit 3)
        inv = inventory_from_state(st, expected_accounts(), max_age)
        inv.resolve_families(policy.families)
        # The stored launch permissions may be days old: the plan reads those it needs
        # (from the cache, up to --max-age, or live) like a fresh scan's.
        for img in inv.images:
            if img.state != "disabled" and img.lp != "unread":
                img.lp, img.lp_read_at, img.shared_with = "unread", None, []
        inv.facts_changed()
    else:
        # pages parsed by earlier scans are not parsed again (the same bytes; a plan is
        # re-decided live by apply, whose own reads parse every page); --refresh parses all
        conn = context.connector(page_memo=not refresh)
        targets = conn.targets()
        roles = {t.account: t.role_arn for t in targets}
        # snapshots only when a decision can depend on them (holds, snapshot actions, orphans)
        kinds = None if needs_snapshots(policy) else [k for k in COLLECTORS if k != "snapshots"]
        # launch-template versions read by earlier scans are reused (immutable; they only
        # keep images); --refresh reads every one live
        cache = None if refresh else LtVersionCache(st)
        inv = _scan(conn, targets, policy.families, kinds, cache)
    add_recorded_history(inv, st)  # rollback targets SSM's 100-version history lost
    phases.stop("scan")
    add_iac(inv, policy.iac)  # the team's code (the policy's iac: and --iac), before deciding
    stats = SharingRead()

    def read(images: list[Image], live: bool = False) -> None:
        nonlocal conn
        if conn is None:
            conn = context.connector()
            roles.update({t.account: t.role_arn for t in conn.targets()})
        got = read_sharing(
            conn,
            inv,
            images,
            roles=roles,
            store=st,
            max_age=max_age,
            refresh=refresh or live,
            now=now,
        )
        stats.live += got.live
        stats.cached += got.cached
        stats.errors.extend(got.errors)
        if got.oldest is not None and (stats.oldest is None or got.oldest > stats.oldest):
            stats.oldest = got.oldest
        for e in got.errors[:5]:
            err_console().print(f"[yellow]launch permissions not read:[/] {e}", highlight=False)

    extra = [inv.by_id[also]] if also and also in inv.by_id else []

    def ask_aws(ids: list[str]) -> tuple[list[Any], list[str], list[str]]:
        nonlocal conn
        if conn is None:
            conn = context.connector()
        targets = [Target(a, r, roles.get(a)) for a in inv.accounts for r in inv.regions]
        by_image, disagreements, problems = second_opinion(conn, targets, inv, ids)
        refs = [r for found in by_image.values() for r in found]
        shared = [inv.by_id[i] for i in ids if i in inv.by_id and inv.by_id[i].shared]
        for img in shared:  # retired although shared (shared: false): who still launches it
            t = Target(img.account, img.region, roles.get(img.account))
            refs.extend(consumer_references(conn, t, [img]))
        return refs, disagreements, problems

    with frozen_heap():  # the inventory outlives the decision: no full collection walks it
        phases.start("decide")
        created_at = dt.datetime.now(dt.UTC)
        p = plan_reading_sharing(
            inv, policy, now, read, created_at=created_at, second_opinion=ask_aws
        )
        if explain or extra:
            # explain: the actions (and their ids a1, a2, ...) are those of the plan `plan`
            # makes from the same inventory; the second pass (every keep condition evaluated,
            # the explained image's sharing read) only gives the decision its every reason.
            plain = p.actions
            p = plan_reading_sharing(
                inv,
                policy,
                now,
                read,
                created_at=created_at,
                extra=extra,
                explain=explain,
                second_opinion=ask_aws,
            )
            p = dataclasses.replace(p, actions=plain)
        phases.stop("decide")
        with phases("store"):
            if not from_state and kinds is None:
                st.save_inventory(
                    inv
                )  # a partial scan (no snapshots) is not stored as the inventory
    if conn is not None:
        print_calls(conn)
    return p, stats.to_dict(), inv


def one_image_inventory(ami: str) -> tuple[Inventory, Image]:
    """The inventory of the image's own (account, region), with its launch permissions,
    and of what elsewhere can reference it."""
    conn = context.connector()
    targets = conn.targets()
    found: Target | None = None
    for t in _home_first(targets, conn.home_region()):
        ec2 = conn.client("ec2", t.region, t.role_arn)
        try:
            resp = ec2.describe_images(ImageIds=[ami], IncludeDeprecated=True, IncludeDisabled=True)
        except Exception as exc:  # noqa: BLE001 - not there (malformed / unknown id) or unreadable
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code.startswith("InvalidAMIID"):
                continue
            raise aws_error(exc, "DescribeImages", t.region) from None
        if any(d.get("ImageId") == ami for d in resp.get("Images", [])):
            found = t
            break
    if found is None:
        raise InputError(
            f"no image {ami} in the scanned accounts and regions",
            hint="check the id, or pass --region for the region it lives in",
        )
    inv = _scan(conn, [found], None)
    # What elsewhere can name it: another account of its region (shared: instances,
    # launch templates, ...), and any region's copies built from it (SourceImageId) and
    # SSM parameters (plain text can hold another region's id). No snapshots there.
    near = [t for t in targets if t != found and t.region == found.region]
    far = [t for t in targets if t.region != found.region]
    for group, kinds in (
        (near, [k for k in COLLECTORS if k != "snapshots"]),
        (far, ["images", "ssm-parameters"]),
    ):
        if group:
            more = _scan(conn, group, None, kinds)
            inv.merge(more)
            inv.build_indexes()
    img = inv.by_id.get(ami)
    if img is None:
        raise InputError(f"image {ami} disappeared while it was scanned", hint="run it again")
    read_sharing(conn, inv, [img], roles={found.account: found.role_arn}, store=context.store())
    print_calls(conn)
    return inv, img


def _home_first(targets: list[Target], home: str) -> list[Target]:
    return sorted(targets, key=lambda t: (t.region != home, t.account, t.region))


def cached_age(seconds: int) -> str:
    """How old the oldest cached launch permission is, as a person says it."""
    if seconds < 60:
        return "read less than a minute ago"
    return f"the oldest read {human_duration(dt.timedelta(seconds=seconds))} ago"


def describe_sharing(stats: dict[str, Any]) -> None:
    """One line on stderr: how the plan's launch permissions were read."""
    if stats["live"] or stats["cached"] or stats["failed"]:
        age = stats.get("oldest_cached_seconds")
        cached = f", {stats['cached']} from the state store" if stats["cached"] else ""
        if age is not None:
            cached += f" ({cached_age(age)})"
        failed = f", {stats['failed']} could not be read" if stats["failed"] else ""
        info(f"launch permissions: {stats['live']} read live{cached}{failed}")
