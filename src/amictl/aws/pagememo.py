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
least recently used dropped first. Where a page's timestamps can be is read from the
operation's output shape (botocore's model), once per shape: a timestamp is kept as EC2's
text and parsed back by the parser's own timestamp function, and only the way down to
those members is walked, never the whole page. A page holding anything else JSON cannot
carry exactly (bytes, a time that does not read back the same) is not kept.

Projection: a collector that reads little of a big page registers what it reads
(:func:`keep_only`, e.g. the instance collector's few members of an instance's ~30); a
memo-enabled client then answers pages of that shape projected to those members, kept or
freshly parsed alike, so what the collector sees never depends on whether the page was
kept. The projection is part of a kept page's key: a projection that changes never reads
a page kept under the old one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import fastjson

# The output shapes whose pages are kept (the scan's big listings). They are written and read
# with orjson (aws.fastjson): 1.2 and 7 ms for 1,000 images where json takes 15 and 15. None
# has a float member (tests/test_pagememo.py), the one value orjson writes otherwise than
# json (NaN as null).
KEPT_SHAPES = frozenset(
    {"DescribeImagesResult", "DescribeInstancesResult", "DescribeSnapshotsResult"}
)
MAX_BYTES = 512 * 1024 * 1024  # ~500 pages of 1,000 images
MAX_PAGE_BYTES = 64 * 1024 * 1024  # a kept page larger than this is not read
REQUEST_ID = re.compile(rb"<requestId>([^<]*)</requestId>")
FORMAT = "2"  # of a kept page: bumped when what a key names changes
WHOLE: Any = True  # in a projection: the member as parsed, whole
_TIME = "t"  # a walk's node for a timestamp member
# A walk over a parsed page (see _node): None (the value as is), _TIME, or
# ("S", {member: node}, whole), ("L", node) for each item, ("M", node) for each value.
Node = Any
_PROJECTIONS: dict[str, Any] = {}  # output shape name -> the members its collector reads


def keep_only(shape_name: str, fields: dict[str, Any]) -> None:
    """Pages of ``shape_name`` are answered projected to ``fields`` by memo-enabled
    clients: ``{member: WHOLE | {member: ...} | [item projection]}``; the top level's
    scalar members (the paginator's tokens) are always kept."""
    if shape_name not in KEPT_SHAPES:
        raise ValueError(f"{shape_name} is not a kept page")
    _PROJECTIONS[shape_name] = fields


def _node(shape: Any, spec: Any, seen: frozenset[str]) -> Node:
    """The walk over values of ``shape`` that reaches every timestamp it can hold and,
    with a projection ``spec``, keeps only the members the spec names."""
    kind = shape.type_name
    if kind == "timestamp":
        return _TIME
    if kind == "structure":
        if spec is WHOLE:
            if shape.name in seen:
                raise _NotKept(shape.name)  # a recursive shape: never walked, never kept
            inner = seen | {shape.name}
            walks = {n: _node(m, WHOLE, inner) for n, m in shape.members.items()}
            kept = {n: w for n, w in walks.items() if w is not None}
            return ("S", kept, True) if kept else None
        return ("S", {n: _node(shape.members[n], s, seen) for n, s in spec.items()}, False)
    if kind == "list":
        sub = _node(shape.member, spec[0] if isinstance(spec, list) else WHOLE, seen)
        return None if sub is None else ("L", sub)
    if kind == "map":
        sub = _node(shape.value, WHOLE, seen)
        return None if sub is None else ("M", sub)
    return None


def is_projected(node: Node) -> bool:
    """Whether ``node`` walks a structure keeping only some of its members."""
    return isinstance(node, tuple) and node[0] == "S" and not node[2]


def cut(value: Any, node: Node) -> Any:
    """``value`` (as botocore parsed it) with only the members ``node`` keeps."""
    return _walk(value, node, _same)


def _same(value: Any) -> Any:
    return value


def _walk(value: Any, node: Node, leaf: Callable[[Any], Any]) -> Any:
    """``value`` with ``leaf`` applied to each timestamp ``node`` reaches (and only the
    members a projection keeps); copies only what it changes."""
    if node is None:
        return value
    if node is _TIME:
        return leaf(value)
    kind, sub = node[0], node[1]
    if kind == "L":
        if not isinstance(value, list):
            raise _NotKept("list")
        return [_walk(v, sub, leaf) for v in value]
    if not isinstance(value, dict):
        raise _NotKept("structure")
    if kind == "M":
        return {k: _walk(v, sub, leaf) for k, v in value.items()}
    if node[2]:  # the whole structure: copied only where a timestamp is in it
        out = value
        for name, walk in sub.items():
            if name in value:
                if out is value:
                    out = dict(value)
                out[name] = _walk(value[name], walk, leaf)
        return out
    return {name: _walk(value[name], walk, leaf) for name, walk in sub.items() if name in value}


class PageMemo:
    def __init__(self, directory: Path, timestamp: Callable[[str], Any]) -> None:
        self.dir = directory
        self.timestamp = timestamp
        self.hits = 0  # pages answered from a kept copy
        self._lock = threading.Lock()
        self._pruned = False
        self._thread = threading.local()  # .hits: pages answered in this thread; .off
        self._nodes: dict[int, tuple[Any, Node, str]] = {}  # id(shape model) -> walk, tag

    def thread_hits(self) -> int:
        """Pages answered from a kept copy in the calling thread."""
        return int(getattr(self._thread, "hits", 0))

    def bypassing(self) -> bool:
        """Whether the calling thread is in :meth:`bypassed`."""
        return bool(getattr(self._thread, "off", False))

    @contextlib.contextmanager
    def bypassed(self) -> Iterator[None]:
        """In this block the calling thread's pages are all parsed (and kept afresh):
        for a read that failed on a kept page (forged or damaged in a way no parse gives,
        e.g. a member of the wrong type), which is then read again."""
        self._thread.off = True
        try:
            yield
        finally:
            self._thread.off = False

    def _shape(self, shape: Any) -> tuple[Node, str]:
        """The walk over pages of ``shape`` (the output shape, projected where a collector
        registered one) and the tag that names it in keys. Keyed by the shape's model dict
        (kept alive, so its id is never reused), like aws.fastparse's plans."""
        model = shape._shape_model
        entry = self._nodes.get(id(model))
        if entry is None:
            spec = _PROJECTIONS.get(shape.name)
            if spec is None:
                node, tag = _node(shape, WHOLE, frozenset()), FORMAT
            else:
                tops = {n: WHOLE for n, m in shape.members.items() if m.type_name == "string"}
                node = _node(shape, {**tops, **spec}, frozenset())
                digest = hashlib.blake2b(repr(sorted(spec.items())).encode(), digest_size=4)
                tag = f"{FORMAT}p{digest.hexdigest()}"
            entry = self._nodes[id(model)] = (model, node, tag)
        return entry[1], entry[2]

    def projection(self, shape: Any) -> Node:
        """The walk that projects pages of ``shape`` (None where they are kept whole): the
        parser (aws.fastparse) parses only the members it keeps."""
        try:
            node, _ = self._shape(shape)
        except _NotKept:
            return None
        return node if is_projected(node) else None

    def project(self, shape: Any, parsed: dict[str, Any]) -> dict[str, Any]:
        """A page botocore parsed whole, as the memo answers it (projected, if its shape is)."""
        node = self.projection(shape)
        if node is None:
            return parsed
        out = cut(parsed, node)
        if "ResponseMetadata" in parsed:
            out["ResponseMetadata"] = parsed["ResponseMetadata"]
        return out

    def key(self, shape: Any, body: bytes) -> tuple[str, str | None]:
        """(the page's key, its request id). ``shape``: the operation's output shape."""
        try:
            tag = self._shape(shape)[1]
        except _NotKept:
            tag = "x"  # never kept (put refuses it): a key still
        m = REQUEST_ID.search(body, 0, 512)
        rid = None
        if m is not None:
            rid = m.group(1).decode("utf-8", "replace")
            body = body[: m.start()] + body[m.end() :]
        return f"{shape.name}-{tag}-{hashlib.blake2b(body, digest_size=20).hexdigest()}", rid

    def get(self, key: str, shape: Any) -> dict[str, Any] | None:
        try:
            page = self._read(self.dir / f"{key}.json", shape)
        except Exception:  # noqa: BLE001 - whatever is wrong with a kept page, parse the page
            page = None
        if not isinstance(page, dict):
            return None
        with self._lock:
            self.hits += 1
        self._thread.hits = self.thread_hits() + 1
        with contextlib.suppress(OSError):
            os.utime(self.dir / f"{key}.json")  # the oldest pruned first: this one is in use
        return page

    def _read(self, path: Path, shape: Any) -> Any:
        """A kept page, or None: only a regular file of at most MAX_PAGE_BYTES is read
        (opened without blocking, so a FIFO or a device put there is refused, not read)."""
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_PAGE_BYTES:
                return None
            text = fh.read(MAX_PAGE_BYTES + 1)
        page = fastjson.loads(text)  # no object hook: C speed; the times are put back below
        node, _ = self._shape(shape)
        return _walk(page, node, self._time_value)

    def _time_value(self, text: Any) -> Any:
        if not isinstance(text, str):
            raise _NotKept("a kept time is not text")
        return self.timestamp(text)

    def put(self, key: str, parsed: dict[str, Any], shape: Any) -> None:
        """Keep a page as ``project`` answered it."""
        page = {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
        try:
            node, _ = self._shape(shape)
            text = fastjson.dumps(_walk(page, node, self._time_text))
        except (_NotKept, TypeError, ValueError):
            return  # bytes, a time JSON cannot carry exactly, a shape never kept
        try:  # a page that cannot be kept is parsed again next time: nothing else changes
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(text)
            os.replace(tmp, self.dir / f"{key}.json")
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        self._prune()

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
