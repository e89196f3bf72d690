"""The sandbox's HTTP/1.1 server: persistent connections, like AWS's endpoints.

werkzeug's development server closes every connection after one response ("Always close
the connection. This disables HTTP/1.1 keep-alive connections", werkzeug/serving.py), so
every AWS call against the sandbox paid a new TCP connection and a new server thread:
work AWS's endpoints do not impose on a client that keeps its connections (botocore keeps
a pool per client). This server keeps a connection open until the client closes it or it
stays idle for ``IDLE_TIMEOUT`` seconds, and serves each connection on its own thread.

It reads the whole request body by its Content-Length before calling the app, so the next
request on the connection is never mistaken for the rest of a body (the reason werkzeug
gives for closing), and always answers with a Content-Length. Chunked request bodies
(which no EC2/SSM/Auto Scaling/STS call sends) are read to the end as well.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

IDLE_TIMEOUT = 120.0  # seconds a kept connection may stay idle before the server closes it
ACCESS_LOG = os.environ.get("AMICTL_SANDBOX_ACCESS_LOG") == "1"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: Server
    _headers_buffer: list[bytes]  # http.server sets it in send_response_only

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _read_body(self) -> bytes | None:
        """The whole body, or None: the client went away before its end (a request cut
        short is never served: "Action=DeregisterImage&ImageId=ami-1..." cut is another
        call), or framed it so it cannot be read (answered 400)."""
        try:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                parts: list[bytes] = []
                while True:
                    line = self.rfile.readline(65537)
                    if not line:
                        return None
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size < 0:
                        raise ValueError(size)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(parts)
                    part = self.rfile.read(size)
                    if len(part) < size:
                        return None
                    parts.append(part)
                    self.rfile.readline()
            # one length, digits only (two that differ: where would the next request start?)
            lengths = {v.strip() for v in self.headers.get_all("Content-Length") or ["0"]}
            if len(lengths) != 1 or not all(c in "0123456789" for c in next(iter(lengths))):
                raise ValueError(lengths)
            length = int(next(iter(lengths)) or "x")
        except ValueError:
            self.send_error(400, "Bad request body framing")
            return None
        body = self.rfile.read(length) if length > 0 else b""
        return body if len(body) == length else None

    def _environ(self, body: bytes) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "REQUEST_URI": self.path,
            "RAW_URI": self.path,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": self.client_address[1],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for key, value in self.headers.items():
            name = "HTTP_" + key.upper().replace("-", "_")
            if name in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            environ[name] = f"{environ[name]},{value}" if name in environ else value
        return environ

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except TimeoutError:
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():  # answers the error itself
            return
        body = self._read_body()
        if body is None:
            self.close_connection = True
            return
        captured: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        try:
            result = self.server.app(self._environ(body), start_response)
            try:
                out = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception as exc:  # noqa: BLE001 - the app answers AWS errors itself; this is a bug
            traceback.print_exc()
            captured = {"status": "500 Internal Server Error", "headers": []}
            out = f"sandbox error: {type(exc).__name__}: {exc}".encode()
            self.close_connection = True
        code, _, reason = captured.get("status", "500 Internal Server Error").partition(" ")
        self.send_response_only(int(code), reason or None)
        for key, value in captured.get("headers", []):
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(out)))
        if self.close_connection:  # the client asked for it (Connection: close / HTTP/1.0)
            self.send_header("Connection", "close")
        # Head and body leave in one write: two small writes on a kept connection meet
        # Nagle's algorithm and the client's delayed ACK (a 40 ms stall per call).
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(out)
        self.flush_headers()
        if ACCESS_LOG:
            self.log_request(int(code), len(out))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        if ACCESS_LOG:
            super().log_message(format, *args)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, app: WsgiApp) -> None:
        self.app = app
        self._open: set[socket.socket] = set()  # kept connections, closed with the server
        self._open_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        """Closes the kept connections too: their threads would serve on (calls to a
        server that is down) until they stay idle for IDLE_TIMEOUT."""
        super().server_close()
        with self._open_lock:
            kept = list(self._open)
        for conn in kept:
            with contextlib.suppress(OSError):  # already gone
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that went away
        super().handle_error(request, client_address)

    @property
    def port(self) -> int:
        return int(self.server_address[1])
