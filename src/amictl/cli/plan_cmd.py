"""``policy validate|schema``, ``plan``, ``explain``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from ..approvals import note_planner
from ..errors import InputError
from ..model import parse_time
from ..policy import load_policy
from ..policy.parse import iac_paths
from ..policy.plan_io import write_plan
from ..policy.plan_model import ACTION_TYPES, Plan, action_order
from ..policy.schema import json_schema
from . import context
from .common import emit, global_options, info, out_console, settings
from .notices import notify_options, send_notices
from .output import hanging, indented, text_width, wrap_width
from .owners import owner_column
from .phases import Phases
from .scan_facts import (
    describe_sharing,
    iac_option,
    parse_max_age,
    plan_live,
    sharing_options,
)


def parse_now(now: str | None) -> dt.datetime:
    if not now:
        return dt.datetime.now(dt.UTC)
    try:
        t = parse_time(now)
    except ValueError:
        raise InputError(f"--now {now!r} is not an ISO 8601 time", key="--now") from None
    assert t is not None
    return t


def make_plan(
    policy_path: str,
    now: str | None,
    from_state: bool = False,
    refresh: bool = False,
    max_age: str = "24h",
    iac: tuple[str, ...] = (),
) -> Plan:
    """Scan (launch permissions only where the plan needs them, cached up to max_age), plan.
    ``iac``: more infrastructure-code paths (``--iac``), carried by the plan's policy."""
    return plan_and_owners(policy_path, now, from_state, refresh, max_age, iac)[0]


def plan_and_owners(
    policy_path: str,
    now: str | None,
    from_state: bool = False,
    refresh: bool = False,
    max_age: str = "24h",
    iac: tuple[str, ...] = (),
    phases: Phases | None = None,
) -> tuple[Plan, dict[str, str | None]]:
    """The plan, and the owner of each image it decides on (cli/owners.py); ``phases``:
    the seconds of each phase, for ``-v``."""
    policy = load_policy(policy_path)
    if iac:
        policy = dataclasses.replace(policy, iac=iac_paths([*policy.iac, *iac]))
    p, sharing, inv = plan_live(
        policy,
        parse_now(now),
        from_state=from_state,
        refresh=refresh,
        max_age=parse_max_age(max_age),
        phases=phases,
    )
    describe_sharing(sharing)
    rows: list[dict[str, Any]] = [{"image_id": d.image_id} for d in p.decisions]
    owner_column(inv.images, rows)
    return p, {str(r["image_id"]): r["owner"] for r in rows}


PLAN_CSV_COLUMNS = [
    "id",
    "type",
    "account",
    "region",
    "family",
    "version",
    "image_id",
    "snapshot_id",
    "rule",
    "after",
    "size_gib",
    "unsafe",
    "reasons",
]


def plan_csv_rows(p: Plan) -> list[dict[str, Any]]:
    """`plan -o csv`: one row per action in apply's order, flat columns (lists joined)."""
    versions = {d.image_id: d.version for d in p.decisions}
    rows = []
    for a in sorted(p.actions, key=lambda x: action_order(x.id)):
        rows.append(
            {
                "id": a.id,
                "type": a.type,
                "account": a.account,
                "region": a.region,
                "family": a.family or "",
                "version": versions.get(a.image_id or "", "") if not a.snapshot_id else "",
                "image_id": a.image_id or "",
                "snapshot_id": a.snapshot_id or "",
                "rule": a.rule,
                "after": " ".join(a.after),
                "size_gib": a.size_gib or "",
                "unsafe": "true" if a.unsafe else "false",
                "reasons": "; ".join(a.reasons),
            }
        )
    return rows


def plan_line(
    con: Console, head: str, why: str, width: int, head_markup: str | None = None
) -> None:
    """An action line; its reason on the same line when it fits ``width``, else wrapped
    under the action (indented), so no line is wider than the terminal."""
    lines = hanging(head, why, width)
    shown = escape(head) if head_markup is None else head_markup
    if len(lines) == 1:
        con.print(f"{shown} [dim]{escape(why)}[/]" if why else shown.rstrip())
        return
    con.print(shown.rstrip())
    for line in lines[1:]:
        con.print(f"[dim]{escape(line)}[/]")


def print_plan(p: Plan, owners: dict[str, str | None] | None = None) -> None:
    width = wrap_width()
    con = out_console(text_width())
    if not p.inventory["complete"]:
        con.print(
            "[yellow]The inventory is INCOMPLETE[/] "
            f"({escape('; '.join(map(str, p.inventory.get('incomplete', []))))}): no destructive action is planned there."
        )
    # One group per family, region and account; the account is said in each header when
    # more than one is planned (issue 31: two accounts' `svc us-east-1` were one group).
    groups: dict[tuple[str, str, str], list] = defaultdict(list)
    for a in p.actions:
        fam = a.family or (
            "(orphaned snapshots)" if a.rule == "snapshots.orphaned" else "(no family)"
        )
        groups[(fam, a.region, a.account)].append(a)
    accounts = {a.account for a in p.actions} | set(p.inventory.get("accounts") or [])
    if not groups:
        con.print("Nothing to do: the plan is empty.")
    versions = {d.image_id: d.version for d in p.decisions}
    for key in sorted(groups):
        fam, region, account = key
        who = sorted(
            {
                str(owners.get(a.image_id))
                for a in groups[key]
                if a.image_id and owners and owners.get(a.image_id)
            }
        )
        owned = f" [dim]owner {escape(', '.join(who))}[/]" if who else ""
        acct = f" [dim]account {escape(account)}[/]" if len(accounts) > 1 else ""
        con.print(f"[bold]{escape(fam)}[/] [dim]{region}[/]{acct}{owned}")
        for a in sorted(groups[key], key=lambda x: action_order(x.id)):
            target = a.snapshot_id or a.image_id or ""
            ver = f"v{versions[a.image_id]}" if a.image_id in versions and not a.snapshot_id else ""
            after = f"after {','.join(a.after)}" if a.after else ""
            unsafe = "UNSAFE " if a.unsafe else ""
            why = a.reasons[-1] if a.reasons else ""
            head = f"  {a.id:<5} {a.type:<16} {target:<22} {ver:<7} {unsafe}{after:<10}"
            pad = " " * max(0, 10 - len(after))
            markup = (
                f"  {escape(a.id):<5} {a.type:<16} {target:<22} {escape(ver):<7} "
                f"{'[red]UNSAFE[/] ' if a.unsafe else ''}"
                + (f"[dim]{escape(after)}[/]" if after else "")
                + pad
            )
            plan_line(con, head, why, width, markup)
    kept = [d for d in p.decisions if d.verdict == "keep"]
    s = p.summary
    counts = ", ".join(f"{k} {v}" for k, v in s.items() if k in ACTION_TYPES and v)
    savings = s.get("monthly_savings_usd")
    money = f"${savings:.2f}/month" if isinstance(savings, int | float) else "unknown"
    con.print(
        f"{s.get('images_selected', len(p.decisions))} images selected, {len(kept)} kept; "
        f"{escape(counts) or 'no actions'}; estimated savings {money}."
    )
    for w in p.warnings:
        con.print(f"[dim]note: {escape(w)}[/]")


def register(cli: click.Group) -> None:
    @cli.group("policy")
    @global_options
    def policy_group() -> None:
        """Lifecycle policies: validate a file, print the JSON Schema."""

    @policy_group.command("validate")
    @click.argument("file")
    @global_options
    def validate(file: str) -> None:
        """Check a policy; errors name file:line, the key and what was expected (exit 2)."""
        p = load_policy(file)
        data = {
            "valid": True,
            "file": file,
            "rules": [r.name for r in p.rules],
            "holds": len(p.holds),
            "sha256": p.sha256,
        }
        if settings().output == "table":
            click.echo(
                f"{file}: valid ({len(p.rules)} rules: {', '.join(r.name for r in p.rules)}; "
                f"{len(p.holds)} holds)"
            )
        else:
            emit(data)

    @policy_group.command("schema")
    @global_options
    def schema() -> None:
        """Print the policy's JSON Schema (generated from the registered keys), for editors."""
        click.echo(json.dumps(json_schema(), indent=2))

    @cli.command("plan")
    @click.option(
        "-p", "--policy", "policy_path", required=True, help="The lifecycle policy (YAML)."
    )
    @click.option(
        "--out", type=click.Path(dir_okay=False), help="Save the plan (JSON) to this file."
    )
    @click.option("--now", help="Plan as if it were this time (ISO 8601).")
    @click.option(
        "--from-state", is_flag=True, help="Plan on the last stored inventory instead of scanning."
    )
    @sharing_options
    @iac_option
    @click.option(
        "--notify",
        "send_notify",
        is_flag=True,
        help="Then send each owner their digest, as `amictl notify PLAN` does (needs --notify-config).",
    )
    @notify_options
    @global_options
    def plan_cmd(
        policy_path: str,
        out: str | None,
        now: str | None,
        from_state: bool,
        refresh: bool,
        max_age: str,
        iac: tuple[str, ...],
        send_notify: bool,
        config_path: str | None,
        conventions_file: str | None,
    ) -> None:
        """Compute the plan (changes nothing): actions by family, reasons, savings; -o json for the exact JSON."""
        phases = Phases()
        p, owners = plan_and_owners(policy_path, now, from_state, refresh, max_age, iac, phases)
        phases.start("write")
        store = context.store()
        key, why_unsigned = store.plan_key_or_none()

        def sign(checksum: str) -> dict[str, str]:
            return {"signature": Plan.signature_of(checksum, key)} if key is not None else {}

        if why_unsigned:
            info(f"[yellow]note:[/] the plan is not signed: {why_unsigned}")
        if now:
            info(
                f"[yellow]preview[/] for {now}: apply refuses a plan made for a time later than "
                "the real one"
            )
        if out:
            try:
                # one pass: each item written and hashed as it is made (issue 30: a
                # 100,000-image plan is not held as dicts and JSON strings on top of itself)
                checksum = write_plan(p, out, sign)
            except OSError as exc:
                raise InputError(f"cannot write the plan: {exc.strerror}", file=out) from None
            signature = sign(checksum).get("signature")
            signed = "signed by this state store" if signature else "NOT signed"
            info(f"plan saved to {out} (checksum {checksum[:12]}..., {signed})")
            if signature:  # issue 29: who planned it, for second-person approvals
                planner = note_planner(  # a connector only if approvals are required
                    store, checksum, lambda: context.connector().identity()["arn"]
                )
                if planner:
                    info(f"planned by {planner} (approvals by another identity count)")
        if settings().output == "table":
            print_plan(p, owners)
        elif settings().output == "csv":
            emit(plan_csv_rows(p), PLAN_CSV_COLUMNS)
        elif out:
            # the whole plan is in the file: stdout gets its summary, not megabytes of JSON
            emit({"out": out, "checksum": checksum, "summary": p.summary})
        else:
            body = p.to_dict()
            body["signature"] = sign(body["checksum"]).get("signature")
            emit(body)
        phases.stop("write")
        if settings().verbosity > 0:  # issue 30: the bench's breakdown of a run
            info(phases.line())
        if send_notify:
            send_notices(p, config_path, conventions_file, dry_run=False, json_out=False)

    @cli.command("explain")
    @click.argument("ami")
    @click.option(
        "-p", "--policy", "policy_path", required=True, help="The lifecycle policy (YAML)."
    )
    @click.option("--now", help="As if it were this time (ISO 8601).")
    @click.option(
        "--from-state", is_flag=True, help="Use the last stored inventory instead of scanning."
    )
    @global_options
    def explain(ami: str, policy_path: str, now: str | None, from_state: bool) -> None:
        """Why the image is kept or retired: the governing rule and every reason."""
        policy = load_policy(policy_path)
        p, _sharing, inv = plan_live(
            policy, parse_now(now), from_state=from_state, also=ami, explain=True
        )
        if ami not in inv.by_id:
            raise InputError(
                f"no image {ami} in the scanned accounts and regions",
                hint="check the id, or pass --region for the region it lives in",
            )
        d = p.decision(ami)
        img = inv.by_id[ami]
        acts = [a.to_dict() for a in p.actions if a.image_id == ami]
        if d is None:
            why = (
                "not owned by the account: amictl never acts on it"
                if not img.owned
                else f"no rule selects it (family {img.family!r}); it stays"
            )
            data: dict[str, Any] = {
                "image_id": ami,
                "verdict": "keep",
                "rule": None,
                "reasons": [why],
                "checks": [],
                "actions": [],
            }
        else:
            data = {
                "image_id": ami,
                "family": d.family,
                "version": d.version,
                "verdict": d.verdict,
                "rule": d.rule,
                "reasons": list(d.reasons),
                "checks": [{"condition": c, "holds": h, "detail": det} for c, h, det in d.checks],
                "actions": acts,
            }
        if settings().output != "table":
            emit(data)
            return
        con = out_console()
        con.print(
            f"[bold]{ami}[/] {img.name} (family {img.family}, version {img.version}, {img.region})"
        )
        con.print(f"verdict: [bold]{data['verdict']}[/]   rule: {data['rule'] or '(none)'}")
        width = wrap_width()
        for r in data["reasons"]:
            # a long reason continues under itself, never at column 0 (issue 31)
            for line in indented(f"  - {r}", width, 4):
                con.print(escape(line), soft_wrap=True)
        if data["checks"]:
            con.print("keep conditions:")
            for c in data["checks"]:
                yes = "yes" if c["holds"] else "no "
                lines = indented(f"  {yes} {c['condition']}: {c['detail']}", width, 6)
                colour = "green" if c["holds"] else "dim"
                con.print(f"  [{colour}]{yes}[/]{escape(lines[0][5:])}", soft_wrap=True)
                for line in lines[1:]:
                    con.print(escape(line), soft_wrap=True)
        for a in acts:
            con.print(f"  action {a['id']}: {a['type']}")
