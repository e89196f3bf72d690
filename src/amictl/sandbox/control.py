"""Start, stop, query and seed the sandbox process (client side).

The sandbox runs in the background; its pid, port and log live in a small JSON
file under the state directory, and ``down`` stops only the pid recorded there,
after checking that the process really is an amictl sandbox.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, SandboxError
from ..paths import state_dir
from ..procs import pid_alive

SANDBOX_ACCESS_KEY = "AKIAAMICTLSANDBOX000"
SANDBOX_SECRET_KEY = "amictl-sandbox-secret"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(
    endpoint: str, path: str, method: str = "GET", body: Any = None, timeout: float = 600
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        endpoint + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        payload = json.loads(exc.read() or b"{}")
        if exc.code == 400 and payload.get("exit_code") == 2:
            raise InputError(payload.get("error", "invalid fleet")) from None
        raise SandboxError(f"sandbox {path} failed: {payload.get('error', exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SandboxError(
            f"cannot reach the sandbox at {endpoint}: {exc}",
            hint="start it with `amictl sandbox up`",
        ) from None


@dataclass
class SandboxInfo:
    pid: int
    port: int
    endpoint: str
    log: str
    started_at: float


class Sandbox:
    """One sandbox process. ``home`` holds its pid file and log."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = Path(home) if home else state_dir() / "sandbox"
        self.home.mkdir(parents=True, exist_ok=True)
        self.pidfile = self.home / "sandbox.json"

    # -- info
    def info(self) -> SandboxInfo | None:
        try:
            data = json.loads(self.pidfile.read_text())
            return SandboxInfo(**data)
        except (OSError, ValueError, TypeError):
            return None

    @staticmethod
    def _is_ours(pid: int) -> bool:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            try:
                os.kill(pid, 0)
            except OSError:
                return False
            return True  # no /proc: trust the pid file
        return b"amictl.sandbox.server" in cmd

    def running(self) -> SandboxInfo | None:
        info = self.info()
        if info and self._is_ours(info.pid):
            return info
        return None

    @property
    def endpoint(self) -> str:
        info = self.running()
        if not info:
            raise SandboxError(
                "the sandbox is not running", hint="start it with `amictl sandbox up`"
            )
        return info.endpoint

    def health(self) -> dict[str, Any]:
        return dict(_request(self.endpoint, "/_amictl/health", timeout=5))

    # -- lifecycle
    def up(self, port: int | None = None, wait: float = 60.0) -> SandboxInfo:
        info = self.running()
        if info:
            return info
        port = port or free_port()
        log = self.home / "sandbox.log"
        env = dict(os.environ)
        env.pop("AWS_ENDPOINT_URL", None)
        with open(log, "ab") as fh:
            proc = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", "amictl.sandbox.server", "--port", str(port)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        endpoint = f"http://127.0.0.1:{port}"
        info = SandboxInfo(
            pid=proc.pid, port=port, endpoint=endpoint, log=str(log), started_at=time.time()
        )
        deadline = time.monotonic() + wait
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise SandboxError(
                    f"the sandbox exited at start (code {proc.returncode}):\n{tail}",
                    hint=f"is port {port} free? see {log}",
                )
            try:
                _request(endpoint, "/_amictl/health", timeout=2)
                break
            except SandboxError:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise SandboxError(
                        f"the sandbox did not answer within {wait:.0f} s", hint=f"see {log}"
                    ) from None
                time.sleep(0.1)
        self.pidfile.write_text(json.dumps(info.__dict__))
        return info

    def down(self, timeout: float = 10.0) -> bool:
        """Stop the recorded sandbox process; True if one was stopped."""
        info = self.info()
        if not info:
            return False
        stopped = False
        if self._is_ours(info.pid):
            try:
                os.kill(info.pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and self._alive(info.pid):
                    time.sleep(0.05)
                if self._alive(info.pid):
                    os.kill(info.pid, signal.SIGKILL)
                    while self._alive(info.pid):
                        time.sleep(0.05)
                stopped = True
            except ProcessLookupError:
                pass
        self.pidfile.unlink(missing_ok=True)
        return stopped

    @staticmethod
    def _alive(pid: int) -> bool:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        return pid_alive(pid)

    # -- seeding and test hooks
    def load_text(self, text: str, file: str = "<fleet>") -> dict[str, Any]:
        return dict(_request(self.endpoint, "/_amictl/load", "POST", {"text": text, "file": file}))

    def load_file(self, path: str) -> dict[str, Any]:
        from ..yamlpos import read_text

        text = read_text(path)
        # validate locally first: errors name the user's file and line
        from .fleet import parse_text

        parse_text(text, path)
        return self.load_text(text, path)

    def load_builtin(self, name: str, seed: int = 0, **options: Any) -> dict[str, Any]:
        return dict(
            _request(
                self.endpoint,
                "/_amictl/load",
                "POST",
                {"fleet": name, "seed": seed, "options": options},
            )
        )

    def set_faults(self, rules: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
        return dict(
            _request(self.endpoint, "/_amictl/faults", "POST", {"rules": rules, "seed": seed})
        )

    def fault_state(self) -> dict[str, Any]:
        """The active fault rules with their hit counts, and how many faults were injected."""
        return dict(_request(self.endpoint, "/_amictl/faults", "GET"))

    def clear_faults(self) -> dict[str, Any]:
        return dict(_request(self.endpoint, "/_amictl/faults", "DELETE"))

    def set_aws_model(self, **settings: Any) -> dict[str, Any]:
        """AWS latency and request limits (aws_model.py): enabled, latency_ms, buckets."""
        return dict(_request(self.endpoint, "/_amictl/aws-model", "POST", settings))

    def aws_model_state(self) -> dict[str, Any]:
        """The model's settings and the calls served (and throttled) per service.Action."""
        return dict(_request(self.endpoint, "/_amictl/aws-model", "GET"))

    def reset_call_counts(self) -> dict[str, Any]:
        """Zero the calls counted per service.Action (the model's settings stay)."""
        return dict(_request(self.endpoint, "/_amictl/aws-model", "POST", {"reset_counts": True}))

    def reset_aws_model(self) -> dict[str, Any]:
        """Model off, default buckets, call counts cleared."""
        return dict(_request(self.endpoint, "/_amictl/aws-model", "DELETE"))

    def set_run_command(self, key: str = "*", **outcome: Any) -> dict[str, Any]:
        return dict(
            _request(self.endpoint, "/_amictl/run-command", "POST", {"key": key, **outcome})
        )

    def set_findings(self, image_id: str | None = None, **scan: Any) -> dict[str, Any]:
        """Amazon Inspector's scan of an image (patches/findings.py): ``scanned_days_ago``,
        ``items`` [{severity, title, score, fix_available_days_ago, ...}]; ``unscanned=True``
        forgets it; ``reset=True`` (no image) forgets every scan."""
        body = {"image_id": image_id, **scan} if image_id else scan
        return dict(_request(self.endpoint, "/_amictl/findings", "POST", body))

    def set_ssm(self, **settings: Any) -> dict[str, Any]:
        """SSM managed nodes: ``managed_after`` (seconds from launch), ``unmanaged`` (ids or
        "*"), ``reset``."""
        return dict(_request(self.endpoint, "/_amictl/ssm", "POST", settings))

    def sent(self, account: str) -> dict[str, Any]:
        """What the account's SNS topics and SES sent: ``{emails: [...], sns: [...]}``."""
        return dict(_request(self.endpoint, "/_amictl/sent", "POST", {"account": account}))

    def set_retention(self, **settings: Any) -> dict[str, Any]:
        """Stored-image tasks (``sandbox/patches/retention.py``): ``store_seconds``, how long
        a CreateStoreImageTask stays InProgress."""
        return dict(_request(self.endpoint, "/_amictl/retention", "POST", settings))

    def set_instance_refresh(self, **outcome: Any) -> dict[str, Any]:
        """Auto Scaling instance refresh outcome (``sandbox/patches/refresh.py``): ``asg``
        (a group name or "*"), ``outcome`` succeed|fail|hang, ``at`` (percent), ``reason``;
        or ``reset=True``."""
        return dict(_request(self.endpoint, "/_amictl/instance-refresh", "POST", outcome))

    def set_org(
        self, accounts: list[Any], management: str = "123456789012", reset: bool = False
    ) -> dict[str, Any]:
        """An AWS Organization of these member account ids (or {id, name, status}) in the
        management account, for ``--org`` (patches/org.py)."""
        body = {"management": management, "accounts": accounts, "reset": reset}
        return dict(_request(self.endpoint, "/_amictl/org", "POST", body))

    def env(self) -> dict[str, str]:
        """Environment that points boto3 and amictl at this sandbox."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": SANDBOX_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SANDBOX_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def __enter__(self) -> Sandbox:
        self.up()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.down()
