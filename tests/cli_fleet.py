"""A test account seeded from a fleet file and driven through the CLI (tests/test_cost.py,
test_audit.py, test_report*.py), and the report fleet shared by tests/test_report*.py."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from amictl.cli.main import cli
from amictl.errors import AmictlError
from amictl.model import Inventory
from amictl.state.store import Store
from conftest import Env, _accounts

EVIL = "<img src=x onerror=alert(1)>"
FLEET = f"""
images:
  - {{alias: base, name: base-1, age_days: 200, tags: {{family: base, version: "1"}},
     snapshots: [{{size_gib: 8}}]}}
  - {{alias: web-1, name: web-1, age_days: 120, source: base, tags: {{family: web, version: "1"}},
     snapshots: [{{size_gib: 10}}]}}
  - {{alias: web-2, name: web-2, age_days: 30, source: web-1, tags: {{family: web, version: "2"}},
     public: true, snapshots: [{{size_gib: 10}}]}}
  - {{alias: web-3, name: web-3, age_days: 3, source: web-2, tags: {{family: web, version: "3"}},
     imds_support: v2.0, snapshots: [{{size_gib: 12, encrypted: true}}]}}
  - {{alias: old, name: old-1, age_days: 400, disabled: true, tags: {{family: old, version: "1"}},
     snapshots: [{{size_gib: 20, storage_tier: archive}}]}}
  - {{alias: evil, name: evil-1, age_days: 60, tags: {{family: "{EVIL}", version: "1"}},
     snapshots: [{{size_gib: 4}}]}}
ssm_parameters:
  - {{alias: prod, name: /amictl/channels/web/prod, image: web-2}}
snapshots:
  - {{alias: orphan, size_gib: 6, made_for_deleted_image: true}}
"""


def invoke(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr). An AmictlError is mapped to its
    exit code and its message appended to stderr, as main() does; anything else is raised."""
    res = CliRunner().invoke(cli, args, env=env)
    code, err = res.exit_code, res.stderr
    if isinstance(res.exception, AmictlError):
        code, err = res.exception.exit_code, err + res.exception.message
    elif res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return code, res.stdout, err


class CliFleet:
    """A fresh account in the shared sandbox, seeded with ``text``, with its own state store."""

    def __init__(self, sandbox: Any, text: str, tmp: Path, regions: str | None = None) -> None:
        self.env = Env(sandbox, str(next(_accounts)))
        self.ids = self.env.load(text)["aliases"]
        self.vars = self.env.cli_env(tmp)
        self.tmp = tmp
        self.regions = ["--region", regions] if regions else []

    def run(self, *args: str, **env: str) -> tuple[int, str, str]:
        """(exit code, stdout, stderr); an AmictlError is mapped to its exit code as main() does."""
        return invoke([*args, *self.env.cli_args(), *self.regions], {**self.vars, **env})

    __call__ = run

    def json(self, *args: str, **env: str) -> Any:
        code, out, err = self.run(*args, "-o", "json", **env)
        assert code == 0, out + err
        return json.loads(out)


def run_or_traceback(f: CliFleet, *args: str) -> tuple[Any, str]:
    """(exit code, or the exception a user would see as a traceback; stdout + stderr)."""
    try:
        code, out, err = f(*args)
    except Exception as exc:  # noqa: BLE001 - main() re-raises these: a traceback
        return f"traceback: {type(exc).__name__}", str(exc)[:200]
    return code, out + err


class ReportFleet(CliFleet):
    def __init__(self, sandbox: Any, tmp: Path) -> None:
        super().__init__(sandbox, FLEET, tmp)
        self.path = tmp / "report.html"

    def write(self, *args: str, path: Path | None = None) -> dict[str, Any]:
        return dict(self.json("report", "--html", str(path or self.path), *args))


_SHARED: dict[int, ReportFleet] = {}


@pytest.fixture
def report_fleet(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> ReportFleet:
    """The fleet, two saved inventories and report.html (with the audit), made once per
    sandbox and shared by the test modules that import this fixture."""
    if id(sandbox) not in _SHARED:
        f = ReportFleet(sandbox, tmp_path_factory.mktemp("report"))
        f.run("inventory")
        store = Store(f.vars["AMICTL_STATE"])  # and a copy of it a week older: two points
        fresh = store.latest_inventory()[1]  # type: ignore[index]
        old = Inventory.from_dict(fresh.to_dict())
        old.scanned_at = fresh.scanned_at - dt.timedelta(days=7)  # type: ignore[operator]
        store.save_inventory(old)
        store.save_inventory(fresh)  # the latest again, for --from-state
        f.out = f.write("--from-state")  # type: ignore[attr-defined]
        f.html = f.path.read_text()  # type: ignore[attr-defined]
        _SHARED[id(sandbox)] = f
    return _SHARED[id(sandbox)]


def sandbox_ec2(sb: Any, region: str = "us-east-1", config: Any = None) -> Any:
    """An EC2 client of the sandbox's default account (its static sandbox keys)."""
    import boto3

    from amictl.sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY

    return boto3.client(
        "ec2",
        endpoint_url=sb.endpoint,
        region_name=region,
        aws_access_key_id=SANDBOX_ACCESS_KEY,
        aws_secret_access_key=SANDBOX_SECRET_KEY,
        config=config,
    )
