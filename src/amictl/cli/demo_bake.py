"""The demo's upkeep story: a bake that passes and promotes, one whose test fails and does
not, then ``--if-stale`` and ``stale``. The same library calls as ``amictl bake``."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from typing import Any

from rich.markup import escape

from ..aws.session import Target
from ..creation.bake import bake, resolve_source
from ..creation.recipe import parse_recipe_text
from ..creation.runsteps import Waits
from ..creation.stale import stale_reason
from ..errors import AmictlError
from .bake_cmd import describe_event

SERVICE = """\
format: 1
family: web-service
version: {bump: minor}
source: {catalog: al2023}
builder: {instance_type: t3.small, ready_timeout: 10m}
provision:
  - {name: patch, document: AWS-RunPatchBaseline, parameters: {Operation: Install}, timeout: 30m}
  - name: install-nginx
    shell: |
      dnf install -y nginx
      systemctl enable --now nginx
    timeout: 10m
image:
  tags: {team: web}
  copy_to: [eu-west-1]
tests:
  steps:
    - {name: nginx-active, shell: systemctl is-active nginx, timeout: 2m}
promote: staging
"""

HARDENED = """\
format: 1
family: hardened-web
version: {bump: patch}
source: {image: web-service@staging}
provision:
  - name: harden-ssh
    shell: sed -i 's/^#\\?PermitRootLogin.*/PermitRootLogin no/' /etc/ssh/sshd_config
    timeout: 2m
tests:
  steps:
    - {name: root-login-off, shell: "sshd -T | grep -qx 'permitrootlogin no'", timeout: 1m}
    - {name: fips-enabled, shell: "test $(cat /proc/sys/crypto/fips_enabled) = 1", timeout: 1m}
promote: staging
"""


def run_bakes(ctx: Any, sandbox: Any) -> None:
    con = ctx.con
    con.rule("8. Upkeep: bake, test, promote (SSM Run Command outcomes set in the sandbox)")
    first = ctx.conn.targets()[0]
    target = Target(first.account, "us-east-1", first.role_arn)
    workdir = tempfile.mkdtemp(prefix="recipes-", dir=getattr(ctx, "workdir", None) or None)

    def show(e: dict[str, Any]) -> None:
        line = describe_event(e)
        if line and e["event"] not in ("start",):
            con.print(f"    {escape(line)}")

    def one(name: str, text: str) -> dict[str, Any] | None:
        path = os.path.join(workdir, f"{name}.recipe.yaml")
        with open(path, "w") as fh:
            fh.write(text)
        recipe = parse_recipe_text(text, path)
        con.print(f"[bold]`amictl bake {name}.recipe.yaml`[/] ({recipe.source_ref}):")
        try:
            rec = bake(ctx.conn, target, recipe, ctx.store, progress=show, waits=Waits.fast())
        except AmictlError as exc:
            con.print(f"    bake stopped: {exc.message}")
            return None
        if rec["status"] == "succeeded":
            con.print(
                f"    [green]succeeded[/]: {rec['image_id']} ({rec['image_name']}) tagged tested, "
                f"lineage: recipe {rec['recipe']['sha256'][:12]}, source {rec['source']['image_id']}"
            )
        else:
            fs = rec["failed_step"] or {}
            con.print(
                f"    [red]failed[/]: {fs.get('phase')} step {fs.get('name')} {fs.get('status')} "
                f"(exit {fs.get('response_code')}), output: {escape(repr(fs.get('output')))}; image "
                f"{rec['image_id']} tagged failed; nothing promoted"
            )
        return rec

    sandbox.set_run_command(
        "comment:* provision patch", status="Success", output="Installed 12 patches", polls=2
    )
    sandbox.set_run_command(
        "comment:* test fips-enabled", status="Failed", response_code=1, output="fips_enabled=0"
    )
    try:
        one("web-service", SERVICE)
        one("hardened-web", HARDENED)
    finally:
        sandbox.set_run_command(clear=True)
    recipe = parse_recipe_text(SERVICE, "web-service.recipe.yaml")
    src = resolve_source(ctx.conn, target, recipe)
    why = stale_reason(ctx.conn, target, recipe, src.image_id, 30, dt.datetime.now(dt.UTC))
    con.print(
        "`amictl bake web-service.recipe.yaml --if-stale --max-age 30d`: "
        + (
            f"would bake: {why}"
            if why
            else "skipped, nothing changed (same al2023 image, fresh version)"
        )
    )
    con.print(
        "Builder and test instances were terminated in every case; `amictl stale` lists families "
        "whose newest version is old, whose base moved, or whose channel image's parent was retired."
    )
