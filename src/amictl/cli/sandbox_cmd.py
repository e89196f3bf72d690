"""``amictl sandbox up|down|status|load``."""

from __future__ import annotations

import os
from typing import Any

import click

from ..durations import plural
from ..sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, Sandbox
from .common import emit, global_options, info, settings

# How `sandbox up|load` names what a fleet made, in the order a person reads it.
_COUNT_WORDS = [
    ("images", "image"),
    ("snapshots", "snapshot"),
    ("instances", "instance"),
    ("launch_templates", "launch template"),
    ("launch_template_versions", "launch template version"),
    ("launch_configurations", "launch configuration"),
    ("auto_scaling_groups", "auto scaling group"),
    ("ssm_parameters", "SSM parameter"),
]


def seeded_summary(result: dict[str, Any]) -> str:
    """``seeded 41 images, 50 snapshots, ... in 0.1 s`` (counts of zero left out)."""
    counts = dict(result.get("counts") or {})
    parts = [plural(int(counts.pop(k)), w) for k, w in _COUNT_WORDS if counts.get(k)]
    parts += [f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v]
    what = ", ".join(parts) or "nothing"
    return f"seeded {what} in {float(result.get('seconds') or 0):.2f} s"


def _sandbox() -> Sandbox:
    home = os.environ.get("AMICTL_SANDBOX_HOME")
    return Sandbox(home) if home else Sandbox()


def register(cli: click.Group) -> None:
    @cli.group("sandbox")
    @global_options
    def sandbox() -> None:
        """The local EC2-compatible endpoint (moto + the amictl layer) for demos and tests."""

    @sandbox.command("up")
    @click.option(
        "--port",
        type=int,
        default=4566,
        show_default=True,
        help="Port on 127.0.0.1 (0 = any free port).",
    )
    @click.option(
        "--fleet",
        default="none",
        show_default=True,
        help="Seed with: demo, large, none or a fleet FILE.",
    )
    @click.option(
        "--seed", type=int, default=0, show_default=True, help="Seed of the built-in fleets."
    )
    @click.option("--images", type=int, help="large fleet: number of images.")
    @click.option("--snapshots", type=int, help="large fleet: number of snapshots (all kinds).")
    @click.option("--instances", type=int, help="large fleet: number of instances.")
    @click.option("--launch-templates", type=int, help="large fleet: number of launch templates.")
    @click.option("--lt-versions", type=int, help="large fleet: versions per launch template.")
    @click.option(
        "--regions-count", "regions_count", type=int, help="large fleet: number of regions."
    )
    @click.option(
        "--aws-model",
        is_flag=True,
        help="Answer like AWS endpoints: per-call latency, served concurrently, and EC2's "
        "per-API request limits (RequestLimitExceeded when a bucket is empty).",
    )
    @click.option(
        "--latency-ms",
        type=click.FloatRange(0, 10000),
        default=40.0,
        show_default=True,
        help="--aws-model: latency of each call.",
    )
    @global_options
    def up(
        port: int,
        fleet: str,
        seed: int,
        aws_model: bool,
        latency_ms: float,
        **sizes: int | None,
    ) -> None:
        """Start the sandbox in the background on 127.0.0.1, optionally seeded."""
        sb = _sandbox()
        already = sb.running()
        inf = sb.up(port=port or None)
        if already:
            info(f"the sandbox is already running (pid {inf.pid})")
        if aws_model:
            sb.set_aws_model(enabled=True, latency_ms=latency_ms)
            info(f"AWS model on: {latency_ms:g} ms per call, EC2 request limits per account/region")
        result = None
        if fleet != "none":
            info(f"seeding fleet {fleet} ...")
            if fleet in ("demo", "large"):
                # --regions-count is the fleet's `regions` (its own name: not --region's)
                opts = {
                    ("regions" if k == "regions_count" else k): v
                    for k, v in sizes.items()
                    if v is not None
                }
                result = sb.load_builtin(fleet, seed=seed, **opts)
            else:
                result = sb.load_file(fleet)
            info(seeded_summary(result))
        out = {
            "endpoint": inf.endpoint,
            "pid": inf.pid,
            "log": inf.log,
            "export": f"export AWS_ENDPOINT_URL={inf.endpoint} AWS_ACCESS_KEY_ID={SANDBOX_ACCESS_KEY} "
            f"AWS_SECRET_ACCESS_KEY={SANDBOX_SECRET_KEY} AWS_DEFAULT_REGION=us-east-1",
        }
        if result:
            out["seeded"] = {"counts": result["counts"], "seconds": result["seconds"]}
        if settings().output == "json":
            emit(out)
        else:
            click.echo(f"sandbox running at {inf.endpoint} (pid {inf.pid})")
            click.echo(out["export"])

    @sandbox.command("down")
    @global_options
    def down() -> None:
        """Stop the sandbox (only the process recorded in its pid file)."""
        stopped = _sandbox().down()
        info("sandbox stopped" if stopped else "no sandbox was running")

    @sandbox.command("status")
    @global_options
    def status() -> None:
        """Whether the sandbox runs, where, and what it serves."""
        sb = _sandbox()
        inf = sb.running()
        if not inf:
            emit({"running": False}) if settings().output != "table" else click.echo(
                "sandbox: not running"
            )
            return
        health = sb.health()
        data = {
            "running": True,
            "endpoint": inf.endpoint,
            "pid": inf.pid,
            "moto": health["moto"],
            "requests": health["requests"],
            "patches": health["patches"],
        }
        if settings().output == "table":
            click.echo(
                f"sandbox: running at {inf.endpoint} (pid {inf.pid}, moto {health['moto']}, "
                f"{health['requests']} requests served, {len(health['patches'])} AWS-behaviour patches)"
            )
        else:
            emit(data)

    @sandbox.command("load")
    @click.argument("file")
    @global_options
    def load(file: str) -> None:
        """Seed a fleet FILE (or demo / large) into the running sandbox; -o json prints the alias map."""
        sb = _sandbox()
        result = sb.load_builtin(file) if file in ("demo", "large") else sb.load_file(file)
        if settings().output == "table":
            info(seeded_summary(result))
            emit([{"alias": k, "id": v} for k, v in result["aliases"].items()], ["alias", "id"])
        else:
            emit(
                {
                    "aliases": result["aliases"],
                    "counts": result["counts"],
                    "seconds": result["seconds"],
                }
            )
