"""Pages a scan has parsed before: the same bytes are not parsed twice.

A warm plan must read every DescribeImages, DescribeInstances and DescribeSnapshots page
live (what they say can change at any time, and AWS offers no "changed since"). What it
need not do is parse a page whose bytes it has parsed before: on a fleet of 20,000 images
that parse (XML, then botocore's shape walk) is most of the client's CPU, while most
pages of an unchanged estate come back byte for byte as last time, but for their
``<requestId>``. So the parser (``aws.fastparse``) keys each page of those operations by
a BLAKE2b digest of its body without the request id and, when that digest was parsed
before, answers the parsed page kept under it, the request id put back in. A page that
differs by one byte (an image tagged, an instance stopped, a page boundary moved) is
parsed as usual and kept for next time. The result is the parser's by construction: the
same bytes give the same dict.

Scope: only the commands whose output apply never trusts use it (``plan`` and
``inventory``, see ``cli.context.connector``). apply's live view, the single-image
commands and everything that acts parse every page afresh, so a kept page written by
anyone but amictl can at worst change what a plan proposes, which apply re-decides live.

Kept pages are JSON files (never pickle: a file in the state directory must not be able
to run code) under ``$XDG_STATE_HOME/amictl/pages/``, at most ``MAX_BYTES`` of them, the
least recently used dropped first. A timestamp is kept as EC2's text (its path listed
beside the page) and parsed back by the parser's own timestamp function; a page holding
anything else JSON cannot carry exactly (bytes) is not kept.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The output shapes whose pages are kept (the scan's big listings).
KEPT_SHAPES = frozenset(
    {"DescribeImagesResult", "DescribeInstancesResult", "DescribeSnapshotsResult"}
)
MAX_BYTES = 512 * 1024 * 1024  # ~500 pages of 1,000 images
MAX_PAGE_BYTES = 64 * 1024 * 1024  # a kept page larger than this is not read
REQUEST_ID = re.compile(rb"<requestId>([^<]*)</requestId>")
_TIMES = "$times"  # the paths of the page's timestamps, kept as EC2's text


class PageMemo:
    def __init__(self, directory: Path, timestamp: Callable[[str], Any]) -> None:
        self.dir = directory
        self.timestamp = timestamp
        self.hits = 0  # pages answered from a kept copy
        self._lock = threading.Lock()
        self._pruned = False

    def key(self, shape: str, body: bytes) -> tuple[str, str | None]:
        """(the page's key, its request id)."""
        m = REQUEST_ID.search(body, 0, 512)
        rid = None
        if m is not None:
            rid = m.group(1).decode("utf-8", "replace")
            body = body[: m.start()] + body[m.end() :]
        return f"{shape}-{hashlib.blake2b(body, digest_size=20).hexdigest()}", rid

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            page = self._read(self.dir / f"{key}.json")
        except Exception:  # noqa: BLE001 - whatever is wrong with a kept page, parse the page
            page = None
        if not isinstance(page, dict):
            return None
        with self._lock:
            self.hits += 1
        with contextlib.suppress(OSError):
            os.utime(self.dir / f"{key}.json")  # the oldest pruned first: this one is in use
        return page

    def _read(self, path: Path) -> Any:
        """A kept page, or None: only a regular file of at most MAX_PAGE_BYTES is read
        (opened without blocking, so a FIFO or a device put there is refused, not read)."""
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_PAGE_BYTES:
                return None
            text = fh.read(MAX_PAGE_BYTES + 1)
        page = json.loads(text)  # no object hook: C speed; the times are put back below
        for path_ in page.pop(_TIMES, []):
            *parents, last = path_
            node = page
            for step in parents:
                node = node[step]
            node[last] = self.timestamp(node[last])
        return page

    def put(self, key: str, parsed: dict[str, Any]) -> None:
        page = {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
        times: list[list[str | int]] = []
        try:
            plain = self._plain(page, [], times)
        except _NotKept:
            return
        plain[_TIMES] = times
        text = json.dumps(plain, separators=(",", ":"))
        try:  # a page that cannot be kept is parsed again next time: nothing else changes
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, self.dir / f"{key}.json")
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        self._prune()

    def _plain(self, value: Any, path: list[str | int], times: list[list[str | int]]) -> Any:
        """``value`` with each timestamp as EC2's text (its path noted in ``times``)."""
        if isinstance(value, dict):
            return {k: self._plain(v, [*path, k], times) for k, v in value.items()}
        if isinstance(value, list):
            return [self._plain(v, [*path, i], times) for i, v in enumerate(value)]
        if isinstance(value, str | int | float | bool) or value is None:
            return value
        times.append(path)
        return self._time_text(value)

    def _time_text(self, value: Any) -> str:
        if (
            isinstance(value, dt.datetime)
            and value.tzinfo is not None
            and value.utcoffset() == dt.timedelta(0)
        ):
            text = value.strftime("%Y-%m-%dT%H:%M:%S")
            if value.microsecond:
                text += f".{value.microsecond:06d}"
            text += "Z"
            back = self.timestamp(text)
            if back == value and type(back.tzinfo) is type(value.tzinfo):
                return text
        raise _NotKept

    def _prune(self) -> None:
        """At most MAX_BYTES kept, the least recently used dropped (once per process)."""
        with self._lock:
            if self._pruned:
                return
            self._pruned = True
        try:
            files = [(p.stat(), p) for p in self.dir.glob("*.json")]
        except OSError:
            return
        files.sort(key=lambda f: f[0].st_mtime, reverse=True)
        total = 0
        for st, path in files:
            total += st.st_size
            if total > MAX_BYTES:
                with contextlib.suppress(OSError):
                    path.unlink()


class _NotKept(TypeError):
    """A value JSON cannot carry exactly: the page is not kept."""
