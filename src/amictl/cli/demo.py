"""``amictl demo``: a private sandbox, the demo fleet, and the lifecycle explained."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections import Counter

import click
from rich.console import Console

from ..aws.session import AwsConfig, Connector
from ..durations import plural
from ..inventory import scan, views
from ..sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, Sandbox
from ..state.store import Store
from .common import global_options, out_console


def register(cli: click.Group) -> None:
    @cli.command("demo")
    @click.option("--seed", type=int, default=0, show_default=True, help="Seed of the demo fleet.")
    @click.option(
        "--report",
        "report_path",
        type=click.Path(dir_okay=False, writable=True),
        help="Keep the demo's HTML report in this file (the demo's other files are removed).",
    )
    @global_options
    def demo(seed: int, report_path: str | None) -> None:
        """Start a private sandbox, seed the demo fleet and walk through the lifecycle.

        Everything it writes goes to a temporary directory, removed when it ends (also on
        an error); --report FILE keeps the HTML report.
        """
        con = out_console()
        # Everything the demo writes (sandbox home, state store) is removed when it ends.
        with tempfile.TemporaryDirectory(prefix="amictl-demo-", ignore_cleanup_errors=True) as wd:
            _run_demo(con, wd, seed, report_path)
        con.rule("[bold]done")
        con.print(
            "The sandbox is stopped and its files are removed; nothing is left running. Point "
            "the same commands at AWS with --profile / --region (see README)."
        )


def _run_demo(con: Console, workdir: str, seed: int, report_path: str | None) -> None:
    con.rule("[bold]amictl demo")
    con.print(
        "Starting a private sandbox (moto + the amictl AWS-behaviour layer) on a free port..."
    )
    with Sandbox(os.path.join(workdir, "sandbox")) as sb:
        result = sb.load_builtin("demo", seed=seed)
        c = result["counts"]
        con.print(
            f"Seeded the demo fleet in {result['seconds']:.2f} s: {c['images']} images, "
            f"{c['snapshots']} snapshots, {c['instances']} instances, {c['launch_templates']} launch "
            f"templates, {c['launch_configurations']} launch configurations, "
            f"{c['auto_scaling_groups']} ASGs, {c['ssm_parameters']} SSM parameters "
            f"in {', '.join(result['regions'])}."
        )
        conn = Connector(
            AwsConfig(
                regions=list(result["regions"]),
                endpoint_url=sb.endpoint,
                access_key=SANDBOX_ACCESS_KEY,
                secret_key=SANDBOX_SECRET_KEY,
            )
        )
        store = Store(f"sqlite:///{os.path.join(workdir, 'state.db')}")
        ctx = DemoContext(con, conn, store, result["aliases"])
        ctx.workdir, ctx.report_path = workdir, report_path
        ctx.step_inventory()
        from .demo_lifecycle import run_lifecycle

        run_lifecycle(ctx)
        __import__(f"{__package__}.demo_bake", fromlist=["run_bakes"]).run_bakes(ctx, sb)
        __import__(f"{__package__}.demo_rollout", fromlist=["x"]).run_rollout(ctx)  # issue 31
        __import__(f"{__package__}.demo_revoke", fromlist=["x"]).run_revoke(ctx)  # issue 28
        __import__(f"{__package__}.demo_report", fromlist=["x"]).run_report(ctx)  # issue 11
        store.engine.dispose()


class DemoContext:
    def __init__(self, con, conn, store, aliases):  # type: ignore[no-untyped-def]
        self.con = con
        self.conn = conn
        self.store = store
        self.aliases = aliases
        self.inv = None
        self.workdir = ""
        self.report_path: str | None = None

    def step_inventory(self) -> None:
        con = self.con
        con.rule("1. Inventory: every image, snapshot and reference")
        inv = scan(self.conn)
        self.store.save_inventory(inv)
        self.inv = inv
        calls = sum(inv.api_calls.values())
        con.print(
            f"Scanned {len(inv.regions)} regions x {len(inv.slices) // max(len(inv.regions), 1)} kinds "
            f"with {calls} API calls in {inv.duration:.2f} s; complete: {inv.complete}."
        )
        fams = Counter((i.region, i.family or "(no family)") for i in inv.images if i.owned)
        for (region, fam), n in sorted(fams.items()):
            con.print(f"  {region:<10} {fam:<20} {plural(n, 'version')}")
        kinds = Counter(r.kind for r in inv.references)
        con.print("References found: " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
        now = dt.datetime.now(dt.UTC)
        telling = [
            ("db-lc-old", "app-db-v1", "only an UNATTACHED launch configuration uses it"),
            ("web-lt v1", "web-server-v5", "only a NON-default launch template version uses it"),
            ("ssm", "batch-worker-v6", "only an SSM parameter names it"),
            ("mixed", "batch-worker-v4", "only a mixed-instances override of an ASG uses it"),
        ]
        for _label, alias, why in telling:
            ami = self.aliases[alias]
            rows = views.refs_rows(inv, ami, now, dt.timedelta(days=30))
            con.print(
                f"\n[bold]{alias}[/] ({ami}): {why}; a check of instances and default launch "
                f"template versions alone would call it unused. `amictl refs`:"
            )
            for r in rows:
                con.print(f"    {r['kind']:<24} {r['id']:<28} {r['detail']}")
