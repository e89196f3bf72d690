"""The sandbox process: moto in server mode + the amictl layer, on 127.0.0.1 only.

Run as ``python -m amictl.sandbox.server --port N``. Besides the AWS APIs it serves
a small control API under ``/_amictl/`` (health, fleet loading, fault injection,
Run Command outcomes) used by ``amictl sandbox`` and the tests.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import os
import random
import re
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

from moto import __version__ as moto_version  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: E402

from . import patches  # noqa: E402
from .aws_model import AwsModel  # noqa: E402
from .httpd import Server  # noqa: E402
from .readcache import ReadCache, kept_here, may_write  # noqa: E402
from .rwlock import READS_OF_OTHERS, RWLock, local_read, read_only  # noqa: E402

StartResponse = Callable[..., Any]
# JSON services without X-Amz-Target (REST-JSON): their errors are JSON documents too.
REST_JSON = {"batch", "imagebuilder"}
# Signing names that differ from boto3's service names (the call counts use boto3's).
CLIENT_NAMES = {"elasticmapreduce": "emr"}
_REST_OPERATIONS: dict[str, dict[str, str]] = {}


def rest_action(service: str, path: str) -> str:
    """The operation of a REST-JSON request, from its path (botocore's model)."""
    ops = _REST_OPERATIONS.get(service)
    if ops is None:
        import botocore.session

        model = botocore.session.get_session().get_service_model(service)
        ops = _REST_OPERATIONS[service] = {
            model.operation_model(n).http["requestUri"].rstrip("/").lower(): n
            for n in model.operation_names
        }
    return ops.get(path.rstrip("/").lower(), "")


# Control endpoints that change nothing an AWS read shows (the others drop kept answers).
CONTROL_READS = frozenset({"/_amictl/health", "/_amictl/faults", "/_amictl/aws-model"})
SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


class Faults:
    """Injected failures: each rule matches service/region/action and fires with a rate."""

    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []
        self.rng = random.Random(0)
        self.injected = 0
        self.lock = threading.Lock()

    def configure(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.rules = [dict(r, hits=0) for r in body.get("rules", [])]
            self.rng = random.Random(body.get("seed", 0))
            self.injected = 0

    def pick(self, service: str, region: str, action: str) -> dict[str, Any] | None:
        with self.lock:
            for rule in self.rules:
                if rule.get("service") and not fnmatch.fnmatch(service, rule["service"]):
                    continue
                if rule.get("region") and not fnmatch.fnmatch(region, rule["region"]):
                    continue
                if rule.get("action") and not fnmatch.fnmatch(action, rule["action"]):
                    continue
                if rule.get("count") is not None and rule["hits"] >= rule["count"]:
                    continue
                if self.rng.random() >= float(rule.get("rate", 1.0)):
                    continue
                rule["hits"] += 1
                self.injected += 1
                return rule
        return None

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"rules": self.rules, "injected": self.injected}


def error_body(service: str, json_protocol: bool, code: str, message: str) -> tuple[bytes, str]:
    rid = str(uuid.uuid4())
    if json_protocol:
        return json.dumps(
            {"__type": code, "message": message}
        ).encode(), "application/x-amz-json-1.1"
    msg = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if service == "ec2":
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{msg}</Message></Error></Errors>"
            f"<RequestID>{rid}</RequestID></Response>"
        )
    else:
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{msg}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
        )
    return xml.encode(), "text/xml"


class SandboxApp:
    """WSGI middleware in front of moto: control API, faults, AWS-shaped server errors."""

    def __init__(self) -> None:
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.lock = RWLock()  # `with self.lock` alone; `self.lock.read()` beside other reads
        self.faults = Faults()
        self.requests = 0
        self._requests_lock = threading.Lock()
        self.aws_model = AwsModel()
        self.read_cache = ReadCache()
        self._accounts: dict[str, str] = {}
        self._apps: dict[tuple[str, str], Any] = {}

    # -- control API
    def control(self, environ: dict[str, Any], body: bytes) -> tuple[int, Any]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        data = json.loads(body or b"{}") if method in ("POST", "PUT") else {}
        if path == "/_amictl/health":
            return 200, {
                "ok": True,
                "pid": os.getpid(),
                "moto": moto_version,
                "patches": [p[0] for p in patches.PATCHES],
                "requests": self.requests,
                "read_cache_hits": self.read_cache.hits,
            }
        if path == "/_amictl/load" and method == "POST":
            from . import builtin, fleet, seed

            name = data.get("fleet")
            if data.get("text") is not None:
                fl = fleet.parse_text(data["text"], data.get("file", "<fleet>"))
            elif name:
                fl = builtin.build(name, seed=int(data.get("seed", 0)), **data.get("options", {}))
            else:
                return 400, {"error": "give 'text' or 'fleet'"}
            with self.lock:
                return 200, seed.seed(fl)
        if path == "/_amictl/faults":
            if method == "POST":
                self.faults.configure(data)
            elif method == "DELETE":
                self.faults.configure({})
            return 200, self.faults.state()
        if path == "/_amictl/aws-model":
            if method == "POST" and data.get("reset_counts"):
                self.aws_model.reset_counts()
            elif method == "POST":
                try:
                    self.aws_model.configure(data)
                except (ValueError, TypeError, IndexError) as exc:
                    return 400, {"error": f"aws-model: {exc}", "exit_code": 2}
            elif method == "DELETE":
                self.aws_model.configure({"enabled": False, "defaults": True})
                self.aws_model.reset_counts()
            return 200, self.aws_model.state()
        if path == "/_amictl/run-command" and method == "POST":
            from .patches import ssm as patches_ssm

            try:
                patches_ssm.check_outcome(data)
            except ValueError as exc:
                return 400, {"error": str(exc), "exit_code": 2}
            key = data.pop("key", "*")
            if data.get("clear"):
                patches.RUN_COMMAND_OUTCOMES.clear()
            else:
                patches.RUN_COMMAND_OUTCOMES[key] = data
            return 200, {"outcomes": patches.RUN_COMMAND_OUTCOMES}
        if path == "/_amictl/findings" and method == "POST":
            from .patches import findings as patches_findings

            try:
                return 200, patches_findings.control(data)
            except ValueError as exc:
                return 400, {"error": f"findings: {exc}", "exit_code": 2}
        if path == "/_amictl/ssm" and method == "POST":
            from .patches import ssm as patches_ssm

            return 200, patches_ssm.control(data)
        if path == "/_amictl/sent" and method == "POST":
            from .patches import messages as patches_messages

            return 200, patches_messages.sent(data)
        if path == "/_amictl/retention" and method == "POST":
            from .patches import retention as patches_retention

            return 200, patches_retention.control(data)
        if path == "/_amictl/instance-refresh" and method == "POST":
            from .patches import refresh as patches_refresh

            return 200, patches_refresh.control(data)
        if path == "/_amictl/org" and method == "POST":
            from .patches import org as patches_org

            with self.lock:
                try:
                    return 200, patches_org.define(data)
                except ValueError as exc:
                    return 400, {"error": f"org: {exc}", "exit_code": 2}
        return 404, {"error": f"no control endpoint {method} {path}"}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_amictl/"):
            try:
                status, payload = self.control(environ, body)
            except Exception as exc:  # noqa: BLE001 - reported to the caller
                from ..errors import AmictlError

                status = 400 if isinstance(exc, AmictlError) else 500
                payload = {
                    "error": str(exc),
                    "type": type(exc).__name__,
                    "exit_code": getattr(exc, "exit_code", 1),
                }
                if status == 500:
                    payload["traceback"] = traceback.format_exc()
            finally:
                if path not in CONTROL_READS:
                    self.read_cache.written()
            out = json.dumps(payload, default=str).encode()
            start_response(
                f"{status} X",
                [("Content-Type", "application/json"), ("Content-Length", str(len(out)))],
            )
            return [out]

        auth = environ.get("HTTP_AUTHORIZATION", "")
        m = SCOPE_RE.search(auth)
        region, service = (m.group(1), m.group(2)) if m else ("us-east-1", "unknown")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        json_protocol = bool(target) or service in REST_JSON
        if target:
            action = target.split(".")[-1]
        else:
            qs = (
                parse_qs(body.decode("utf-8", "replace"))
                if body
                else parse_qs(environ.get("QUERY_STRING", ""))
            )
            action = (qs.get("Action") or [""])[0]
            if not action and service in REST_JSON:  # rest-json: the operation is the path
                action = rest_action(service, path)
        # moto reads the action from the URL's query when the body is not a form: a request
        # naming two actions (a read in its body, a write in its URL) is served as a write
        url_actions = set(parse_qs(environ.get("QUERY_STRING", "")).get("Action") or [])
        two_actions = bool(url_actions - {action})
        writes = two_actions or may_write(service, action)  # kept answers dropped after it
        counted = CLIENT_NAMES.get(service, service)
        account = self._account_of(auth)
        with self._requests_lock:
            self.requests += 1
        # AWS's latency and request limits (--aws-model): slept here, before the global lock
        if not self.aws_model.admit(counted, account, region, action, {} if target else qs):
            self.aws_model.delay()
            out, ctype = error_body(
                service, json_protocol, "RequestLimitExceeded", "Request limit exceeded."
            )
            start_response(
                "503 Service Unavailable",
                [("Content-Type", ctype), ("Content-Length", str(len(out)))],
            )
            return [out]
        self.aws_model.delay()

        rule = self.faults.pick(service, region, action)
        if rule is not None:
            code = rule.get("code", "InternalError")
            status = int(rule.get("status", 500))
            out, ctype = error_body(
                service, json_protocol, code, rule.get("message", f"injected fault: {code}")
            )
            start_response(
                f"{status} Fault", [("Content-Type", ctype), ("Content-Length", str(len(out)))]
            )
            return [out]

        if service in ("rbin", "imagebuilder"):
            # served outside moto, without the state lock: may change what EC2 reads show
            try:
                if service == "rbin":
                    return self.recycle_bin(environ, body, auth, region, start_response)
                # moto has no Image Builder (patches/imagebuilder.py)
                return self.image_builder(environ, body, auth, region, start_response)
            finally:
                if writes:
                    self.read_cache.written()

        captured: dict[str, Any] = {}

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        reading = read_only(service, action) and not two_actions
        cache_key = (
            (account, region, path, environ.get("QUERY_STRING", ""), body)
            if reading and kept_here(counted, action, account, region)
            else None
        )
        try:
            app = self._app_for(service, region, environ) if m else self.moto
            if reading:
                other = READS_OF_OTHERS.get((service, action))
                held: Any = self.lock.local(other) if other else self.lock.read()
            elif not writes and local_read(service, action):
                held = self.lock.local(service)
            else:
                held = self.lock
            with held:
                cpu = time.thread_time()
                generation = self.read_cache.generation
                kept = self.read_cache.get(cache_key) if cache_key else None
                if kept is not None:
                    start_response(kept[0], kept[1])
                    return [kept[2]]
                try:
                    chunks = b"".join(app(environ, capture))
                finally:
                    if writes:
                        self.read_cache.written()
                self.aws_model.spent(counted, action, time.thread_time() - cpu)
        except Exception as exc:  # noqa: BLE001 - becomes an AWS error document
            traceback.print_exc()
            name = "NotImplemented" if isinstance(exc, NotImplementedError) else "InternalError"
            out, ctype = error_body(service, json_protocol, name, f"{type(exc).__name__}: {exc}")
            start_response(
                "500 Internal Server Error",
                [("Content-Type", ctype), ("Content-Length", str(len(out)))],
            )
            return [out]
        status = captured.get("status", "500 Internal Server Error")
        headers = captured.get("headers", [])
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
        if status.startswith("5") and ("html" in ctype or not chunks.strip()):
            out, ctype = error_body(
                service, json_protocol, "InternalError", "the sandbox failed to serve this request"
            )
            start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(out)))])
            return [out]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(chunks))))
        if cache_key and status.startswith("200"):
            self.read_cache.put(generation, cache_key, (status, headers, chunks))
        start_response(status, headers)
        return [chunks]

    def _app_for(self, service: str, region: str, environ: dict[str, Any]) -> Any:
        """moto's app for a signed request's service, as moto routes it (once per service
        and region: moto's router lists its package directory on every request, under
        its own lock)."""
        key = (service, region)
        app = self._apps.get(key)
        if app is None:
            app = self._apps[key] = self.moto.get_application(environ)
        return app

    def _account_of(self, auth: str) -> str:
        """The account of the request's access key (cached; moto's lookup under the lock)."""
        m = re.search(r"Credential=([^/]+)/", auth)
        key = m.group(1) if m else ""
        account = self._accounts.get(key)
        if account is None:
            from moto.iam.models import get_account_id_from

            with self.lock:
                account = get_account_id_from(key) if key else "123456789012"
            self._accounts[key] = account
        return account

    def recycle_bin(
        self,
        environ: dict[str, Any],
        body: bytes,
        auth: str,
        region: str,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        from moto.iam.models import get_account_id_from

        from . import rbin

        m = re.search(r"Credential=([^/]+)/", auth)
        with self.lock:
            account = get_account_id_from(m.group(1)) if m else "123456789012"
        headers = [("Content-Type", "application/json")]
        try:
            status, payload = rbin.handle(
                environ.get("REQUEST_METHOD", "GET"),
                environ.get("PATH_INFO", ""),
                body,
                account,
                region,
            )
        except rbin.RbinError as exc:
            status, payload = exc.status, {"message": exc.message}
            headers.append(("x-amzn-ErrorType", exc.code))
        out = json.dumps(payload, default=str).encode() if status != 204 else b""
        headers.append(("Content-Length", str(len(out))))
        start_response(f"{status} X", headers)
        return [out]

    def image_builder(
        self,
        environ: dict[str, Any],
        body: bytes,
        auth: str,
        region: str,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        from .patches import imagebuilder

        headers = [("Content-Type", "application/json")]
        try:
            status, payload = imagebuilder.handle(
                environ.get("REQUEST_METHOD", "GET"),
                environ.get("PATH_INFO", ""),
                environ.get("QUERY_STRING", ""),
                body,
                self._account_of(auth),
                region,
            )
        except imagebuilder.ImageBuilderError as exc:
            status, payload = exc.status, {"message": exc.message}
            headers.append(("x-amzn-ErrorType", exc.code))
        out = json.dumps(payload, default=str).encode()
        headers.append(("Content-Length", str(len(out))))
        start_response(f"{status} X", headers)
        return [out]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="amictl-sandbox")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4566)
    ap.add_argument("--aws-model", action="store_true", help="AWS latency and request limits")
    ap.add_argument("--latency-ms", type=float, default=None)
    args = ap.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("the sandbox listens on loopback only", file=sys.stderr)
        return 2
    from .patches import images as patches_images  # noqa: F401  (registers its @patch behaviours)

    patches.apply_all()
    app = SandboxApp()
    if args.aws_model:
        app.aws_model.configure({"enabled": True, "latency_ms": args.latency_ms})
    server = Server(args.host, args.port, app)

    def stop(_sig: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"amictl sandbox (moto {moto_version}) on http://{args.host}:{server.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
