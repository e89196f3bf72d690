"""``bake RECIPE``, ``recipe validate|schema``, ``stale``: upkeep of image families."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from typing import Any

import click
from rich.markup import escape

from .. import interrupts
from ..creation import bake as baking
from ..creation import builder_role
from ..creation.cleanup import cleanup as cleanup_bakes
from ..creation.create import single_target
from ..creation.recipe import json_schema, load_recipe, max_age_option
from ..creation.runsteps import Waits
from ..creation.stale import stale_reason
from ..durations import plural
from ..errors import AmictlError, InputError, PartialFailure
from . import context
from .common import emit, global_options, info, settings
from .confirm import ask

STEP_COLUMNS = ["phase", "name", "document", "status", "response_code", "seconds"]
STALE_COLUMNS = ["family", "kind", "region", "image_id", "version", "age_days", "detail"]
CLEANUP_COLUMNS = ["bake_id", "instance_id", "image_id", "region", "action", "reason"]


def _waits() -> Waits:
    """AWS pauses; ``AMICTL_BAKE_POLL`` (seconds) shortens them (sandbox, tests, demo)."""
    poll = os.environ.get("AMICTL_BAKE_POLL")
    if not poll:
        return Waits()
    try:
        p = float(poll)
    except ValueError:
        raise InputError(f"AMICTL_BAKE_POLL={poll!r} is not a number of seconds") from None
    return Waits(poll=p, waiter_delay=max(1, round(p)), grace=max(p * 10, 0.5))


# One line for people per bake event kind; list fields read as "a, b"
EVENT_LINES = {
    "start": "bake {bake_id}: {family} in {region}",
    "source": "source {image_id} ({reason})",
    "launched": "{role} {instance_id} launched from {image_id}",
    "managed": "{role} {instance_id} running and SSM-managed",
    "step-start": "{phase} {step}: {document} (timeout {timeout} s)",
    "step-status": "{phase} {step}: {status}",
    "step-end": "{phase} {step}: {mark} in {seconds:.1f} s",
    "image": "image {image_id} ({name}), version {version}",
    "image-available": "image {image_id} available",
    "terminated": "terminated {instance_ids}",
    "terminate-failed": "could NOT terminate {instance_ids}: run `amictl bake --cleanup`",
    "copied": "copied to {regions}",
    "shared": "shared with {accounts}",
    "promoted": "promoted {version} to channel {channel} in {regions}",
}
SHOWN_STEP_STATUSES = ("InProgress", "Delayed", "Cancelling")


def describe_event(e: dict[str, Any]) -> str | None:
    """One line for people per bake event (None: not worth a line)."""
    template = EVENT_LINES.get(e["event"])
    if template is None or (e["event"] == "step-status" and e["status"] not in SHOWN_STEP_STATUSES):
        return None
    fields = {k: ", ".join(v) if isinstance(v, list) else v for k, v in e.items()}
    if e["event"] == "step-end":
        fields["mark"] = "ok" if e["status"] == "Success" else e["status"]
    return template.format(**fields)


def _progress(e: dict[str, Any]) -> None:
    line = describe_event(e)
    if line and settings().verbosity >= 0 and settings().output == "table":
        info(escape(line))


def _report(rec: dict[str, Any]) -> None:
    if settings().output != "table":
        emit(rec)
        return
    emit(rec["steps"], STEP_COLUMNS, title=f"bake {rec['bake_id']}: {rec['status']}")
    fs = rec.get("failed_step")
    if fs:
        info(
            f"[bold red]failed:[/] {escape(fs['phase'])} step {escape(fs['name'])}: "
            f"{fs['status']} (exit {fs['response_code']})"
        )
        for stream in ("output", "error"):
            if fs.get(stream):
                info(f"--- {stream} ---\n{escape(fs[stream].rstrip())}")
    if rec.get("image_id"):
        info(f"image {rec['image_id']} ({rec.get('image_name')}), version {rec.get('version')}")


SETUP_COLUMNS = ["account", "resource", "name", "status", "detail"]


def _setup(conn: Any, name: str, yes: bool) -> None:
    """``bake setup``: show what is missing, ask, make it; ``-o json``: {planned, result}."""
    if not re.match(r"^[\w+=,.@-]{1,64}$", name):  # IAM's role / instance profile names
        raise InputError(f"{name!r} is not an IAM role name", key="--name")
    targets = conn.targets()
    rows = builder_role.check(conn, targets, name)
    table = settings().output == "table"
    todo = builder_role.todo(rows)
    data: dict[str, Any] = {"name": name, "planned": rows, "result": None}
    if table:
        emit(rows, SETUP_COLUMNS, title=f"bake setup: role and instance profile {name}")
    if not todo:
        if table:
            info(f"{name} is set up: nothing to do")
        else:
            emit(data)
        return
    if builder_role.conflicts(rows):
        if not table:
            emit(data)
        builder_role.apply(conn, targets, rows, name)  # refuses (exit 3), changing nothing
    if not yes and not sys.stdin.isatty() and not table:
        emit(data)
    ask(
        yes,
        f"Make these {len(todo)} IAM changes?",
        "change IAM",
        "review what `bake setup` will create above, then pass --yes",
    )
    data["result"] = builder_role.apply(conn, targets, rows, name)
    if table:
        emit(data["result"], SETUP_COLUMNS, title=f"bake setup: {name}")
    else:
        emit(data)


def register(cli: click.Group) -> None:
    @cli.group("recipe")
    @global_options
    def recipe_group() -> None:
        """Bake recipes: validate a file, print the JSON Schema."""

    @recipe_group.command("validate")
    @click.argument("file")
    @global_options
    def validate(file: str) -> None:
        """Check a recipe; errors name file:line, the key and what was expected (exit 2)."""
        r = load_recipe(file)
        data = {
            "valid": True,
            "file": file,
            "family": r.family,
            "source": r.source_ref,
            "provision": [s.name for s in r.provision],
            "tests": [s.name for s in r.tests],
            "promote": r.promote,
            "sha256": r.sha256,
        }
        if settings().output == "table":
            click.echo(
                f"{file}: valid (family {r.family} from {r.source_ref}; "
                f"{len(r.provision)} provision and {len(r.tests)} test steps"
                + (f"; promotes to {r.promote})" if r.promote else ")")
            )
            return
        emit(data)

    @recipe_group.command("schema")
    @global_options
    def schema() -> None:
        """Print the recipe's JSON Schema (generated from the registered keys), for editors."""
        click.echo(json.dumps(json_schema(), indent=2))

    @cli.command("bake")
    @click.argument("recipe_file", metavar="RECIPE | setup", required=False)
    @click.option(
        "--dry-run", is_flag=True, help="Print the resolved recipe and the steps; change nothing."
    )
    @click.option(
        "--if-stale",
        is_flag=True,
        help="Bake only when the source image changed since the last successful bake, "
        "or the newest version is older than --max-age / the recipe's stale.max_age.",
    )
    @click.option("--max-age", metavar="DURATION", help="With --if-stale: e.g. 30d.")
    @click.option(
        "--cleanup",
        is_flag=True,
        help="Terminate the instances killed bakes left (from the journal and by tag).",
    )
    @click.option("--yes", is_flag=True, help="With `setup`: do not ask for confirmation.")
    @click.option(
        "--name",
        "profile_name",
        default=builder_role.BUILDER_NAME,
        show_default=True,
        help="With `setup`: the role and instance profile name (a recipe's "
        "builder.instance_profile).",
    )
    @global_options
    def bake_cmd(
        recipe_file: str | None,
        dry_run: bool,
        if_stale: bool,
        max_age: str | None,
        cleanup: bool,
        yes: bool,
        profile_name: str,
    ) -> None:
        """Build, test and promote a new version of a family from RECIPE.

        Launches a builder from the source, runs the provision steps (SSM Run Command),
        creates the image (tagged with the recipe hash, source image and steps), launches
        a test instance from it and runs the tests; on success tags it tested, copies and
        shares it and promotes it; on failure tags it failed and reports the failing step
        with its output (exit 1). Builder and test instances are always terminated; Ctrl-C
        stops cleanly (exit 130). `-o json` prints the bake record.

        `amictl bake setup` creates or checks, in each account, the builder role (trusted
        by EC2, with AmazonSSMManagedInstanceCore) and its instance profile: it shows what
        it will create and asks (--yes: don't); run again, it finds everything ok.
        """
        conn = context.connector()
        if recipe_file == "setup" and not os.path.isfile("setup"):
            if dry_run or if_stale or max_age or cleanup:
                raise InputError("`bake setup` takes --yes and --name only", key="setup")
            _setup(conn, profile_name, yes)
            return
        if yes or profile_name != builder_role.BUILDER_NAME:
            raise InputError("--yes and --name go with `amictl bake setup`", key="--name")
        if cleanup:
            if recipe_file:
                raise InputError("--cleanup takes no RECIPE", key="--cleanup")
            rows = cleanup_bakes(conn, conn.targets(), context.store())
            emit(rows, CLEANUP_COLUMNS, title=plural(len(rows), "leftover") + " of killed bakes")
            return
        if not recipe_file:
            raise InputError("give a RECIPE (or --cleanup)", key="RECIPE")
        recipe = load_recipe(recipe_file)
        if max_age and not if_stale:
            raise InputError("--max-age goes with --if-stale", key="--max-age")
        age = max_age_option(max_age) if max_age else recipe.max_age_days
        target = single_target(conn)
        if dry_run:
            data = baking.plan(conn, target, recipe)
            if if_stale:
                data["stale"] = stale_reason(conn, target, recipe, data["source"]["image_id"], age)
            if settings().output != "table":
                emit(data)
                return
            info(
                f"would bake {data['family']} {data['version']} ({data['name']}) in "
                f"{data['account']}/{data['region']} from {data['source']['image_id']} "
                f"({data['source']['reason']})"
            )
            emit(data["steps"], ["phase", "name", "document", "timeout", "does"], title="steps")
            if recipe.promote:
                info(f"then, when every test passes: promote to channel {recipe.promote}")
            return
        if if_stale:
            source = baking.resolve_source(conn, target, recipe)
            why = stale_reason(conn, target, recipe, source.image_id, age)
            if why is None:
                skipped = {
                    "status": "skipped",
                    "family": recipe.family,
                    "reason": f"nothing changed: source {source.image_id} is the one of the last "
                    "successful bake"
                    + (f", and the newest version is less than {age:g} days old" if age else ""),
                    "source": {"ref": recipe.source_ref, "image_id": source.image_id},
                }
                if settings().output == "table":
                    info(f"skipped: {skipped['reason']}")
                else:
                    emit(skipped)
                return
            info(f"stale: {why}")
        store = context.store()
        with interrupts.cooperative():
            rec = baking.bake(conn, target, recipe, store, progress=_progress, waits=_waits())
        _report(rec)
        left = rec.get("not_terminated") or []
        if rec["status"] == "succeeded" and left:  # the image is good; the bill is not
            raise PartialFailure(
                f"bake {rec['bake_id']} succeeded, but {', '.join(left)} could not be"
                " terminated: they still run; `amictl bake --cleanup` removes them",
                hint="or terminate them by hand (TerminateInstances was refused)",
            )
        if rec["status"] != "succeeded":
            raise AmictlError(
                f"bake {rec['bake_id']} failed: {rec.get('error')}; nothing was promoted",
                hint="the failing step's output is above (or in `-o json`: failed_step)",
            )

    @cli.command("stale")
    @click.argument("families", nargs=-1, metavar="[FAMILY]...")
    @click.option(
        "--days",
        type=click.FloatRange(min=0),
        default=30,
        show_default=True,
        help="A family whose newest version is older than this is stale.",
    )
    @click.option("--strict", is_flag=True, help="Exit 1 when anything is stale (for CI).")
    @click.option(
        "--findings",
        "min_severity",
        metavar="SEVERITY",
        help="Also list channels whose image has Amazon Inspector findings this severe or "
        "worse (informational|low|medium|high|critical), or was never scanned.",
    )
    @click.option(
        "--from-state", is_flag=True, help="Use the last stored inventory instead of scanning."
    )
    @global_options
    def stale_cmd(
        families: tuple[str, ...],
        days: float,
        strict: bool,
        min_severity: str | None,
        from_state: bool,
    ) -> None:
        """Families whose newest version is older than --days, whose base has a newer image
        upstream, and images in channels whose parent was deprecated or retired.

        One row per finding (kind old, base-moved, parent-retired); `-o json` for scripts;
        with --strict, exit 1 when there is any.
        """
        from ..creation.stale import find_stale
        from ..findings import check_severity
        from ..findings.stale import channel_rows
        from ..model import FamilyRule
        from .inventory_cmd import load_inventory

        sev = check_severity(min_severity, "--findings") if min_severity else None
        inv = load_inventory(from_state, family_rule=FamilyRule())
        now = dt.datetime.now(dt.UTC)
        rows = find_stale(inv, now, days, context.connector(), list(families) or None)
        if sev is not None:  # issue 28: Amazon Inspector's findings on channel images
            rows += channel_rows(inv, sev, list(families) or None, now)
        emit(rows, STALE_COLUMNS, title=plural(len(rows), "stale finding"))
        if strict and rows:
            raise AmictlError(
                f"{plural(len(rows), 'stale finding')} (--strict)",
                hint="bake new versions (`amictl bake RECIPE --if-stale`)",
            )
