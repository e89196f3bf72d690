"""A faster drop-in for botocore's EC2 response parser: same dicts, less CPU.

botocore parses an EC2 (query-protocol XML) response by walking the output model: for
every XML structure it first builds a name -> node dict of the children (a regex per
child to strip the namespace), then visits every member of the shape (an EC2 ``Image``
has 35, most absent) and dispatches each through ``getattr``. On a scan of 20,000 images
and 5,000 instances that walk, not the network, is most of the client's CPU: 0.15 s per
page of 1,000 images, 0.6 s per page of 1,000 instances.

:class:`FastEC2QueryParser` keeps botocore's parser and changes only the two hot
handlers, for the shapes where the result is provably the same: a structure is parsed by
visiting its XML children once, each looked up in a per-shape table compiled from the
same model (``locationName``, member order, the same scalar rules: ``<x/>`` is ``''``,
booleans are ``== 'true'``, integers ``int()``; timestamps, floats, blobs and maps go
through botocore's own handlers). Anything unusual falls back to botocore's code for that
node: a repeated child tag (botocore aggregates those), XML attributes, exception and
union shapes, flattened lists. Keys come out in the model's member order, as botocore
writes them. Errors and everything outside EC2 are botocore's parsers untouched.

It is installed per botocore session (:func:`install`), never globally, and
``AMICTL_BOTOCORE_PARSER=1`` turns it off. tests/test_fastparse.py checks it against
botocore's parser on every EC2 response shape the sandbox produces.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any

from botocore.compat import ETree, XMLParseError
from botocore.model import Shape, StructureShape
from botocore.parsers import (
    EC2QueryParser,
    QueryParser,
    ResponseParserError,
    ResponseParserFactory,
)
from botocore.utils import parse_timestamp as DEFAULT_TIMESTAMP_PARSER

from .pagememo import KEPT_SHAPES, PageMemo, cut, is_projected

_STRUCT, _LIST, _STRING, _BOOL, _INT, _OTHER = range(6)
_FEED = 128 * 1024  # bytes of XML given to expat at a time
_KINDS = {
    "structure": _STRUCT,
    "list": _LIST,
    "string": _STRING,
    "character": _STRING,
    "boolean": _BOOL,
    "integer": _INT,
    "long": _INT,
}
_MISSING: Any = object()
_Plan = dict[str, tuple[str, Shape, int, int] | None]
# id(the shape's model dict) -> (that dict, {xml local name: (member name, member shape,
# kind, member index)} or None where botocore's own walk must run). Keyed by the model
# dict, not the shape's name: two models (EC2's API versions, e.g. api_version=
# "2014-09-01") have structures of one name with other members; the dict is kept so its
# id is never reused.
_PLANS: dict[int, tuple[Any, _Plan | None]] = {}
_LOCAL: dict[str, str] = {}  # "{namespace}tag" -> "tag"
_NAMESPACE_RE = re.compile("{.*}")  # botocore's ('.' stops at a newline)
_Z_ZONE: Any = None  # the tzinfo botocore gives a "...Z" time on this machine
_Z_NAME: Any = None  # its tzname() for that time
# EC2's own timestamp format, ASCII digits only: Python's fromisoformat also reads week
# dates, "10:00:00:000", "10:00.5", which dateutil rejects or reads otherwise
_EC2_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z")
# A time with no zone, as moto writes Auto Scaling's: seconds and, if any, six digits of
# fraction (what dateutil and fromisoformat read alike, as naive times)
_NAIVE_TIME = re.compile(
    r"(?:19|20)[0-9]{2}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{6})?"
)


def _compile(shape: StructureShape) -> _Plan | None:
    if shape.metadata.get("exception") or shape.is_tagged_union or shape.is_document_type:
        return None
    plan: _Plan = {}
    for i, (name, member) in enumerate(shape.members.items()):
        ser = member.serialization
        if ser.get("xmlAttribute") or ser.get("eventheader") or ser.get("flattened"):
            return None
        if ser.get("location") in EC2QueryParser.KNOWN_LOCATIONS:
            continue  # botocore skips these members too
        xml_name = ser.get("name") or name
        if xml_name in plan:
            return None
        plan[xml_name] = (name, member, _KINDS.get(member.type_name, _OTHER), i)
    return plan


def _local(tag: str) -> str:
    local = _LOCAL.get(tag)
    if local is None:
        local = _NAMESPACE_RE.sub("", tag)  # botocore's _node_tag
        _LOCAL[tag] = local
    return local


class _Repeated(Exception):
    pass


class FastEC2QueryParser(EC2QueryParser):
    memo: PageMemo | None = None  # pages parsed before (aws.pagememo), where a command uses it

    def _do_parse(self, response: Any, shape: Any) -> Any:
        memo = self.memo
        body = response.get("body")
        if memo is None or shape is None or shape.name not in KEPT_SHAPES or not body:
            return super()._do_parse(response, shape)
        key, rid = memo.key(shape, body)
        parsed = None if memo.bypassing() else memo.get(key, shape)
        if parsed is None:
            node = memo.projection(shape)
            try:
                if node is None:
                    parsed = super()._do_parse(response, shape)
                else:
                    parsed = self._parse_projected(response, shape, node)
            except Exception:  # noqa: BLE001 - botocore's parse decides: its result or error
                parsed = memo.project(shape, super()._do_parse(response, shape))
            memo.put(key, parsed, shape)
        elif rid is not None:
            parsed["ResponseMetadata"] = {"RequestId": rid}
        return parsed

    def _parse_xml_string_to_dom(self, xml_string: bytes) -> Any:
        """botocore's, fed a piece at a time: the same tree (expat parses incrementally)
        and the same errors, but a 1.5 MB page no longer holds the interpreter lock for
        the whole of its parse (~60 ms), so the scan's other threads (launch-template
        versions paced by EC2's bucket) get it between pieces."""
        if len(xml_string) <= _FEED:
            return super()._parse_xml_string_to_dom(xml_string)
        try:
            parser = ETree.XMLParser(target=ETree.TreeBuilder(), encoding=self.DEFAULT_ENCODING)
            for at in range(0, len(xml_string), _FEED):
                parser.feed(xml_string[at : at + _FEED])
            return parser.close()
        except XMLParseError as e:
            raise ResponseParserError(
                f"Unable to parse response ({e}), "
                f"invalid XML received. Further retries may succeed:\n{xml_string!r}"
            ) from None

    def _parse_projected(self, response: Any, shape: Any, node: Any) -> Any:
        """A page parsed to the members a collector reads (``node``: its projection,
        aws.pagememo): botocore's parse cut to them, without walking the rest (an instance's
        ~30 members, its interfaces and volumes, for the 5 the instance collector reads)."""
        root = self._parse_xml_string_to_dom(response["body"])
        start = root
        if "resultWrapper" in shape.serialization:
            start = self._find_result_wrapped_shape(shape.serialization["resultWrapper"], root)
        parsed = self._projected_structure(shape, start, node)
        self._inject_response_metadata(root, parsed)
        return parsed

    def _projected_structure(self, shape: Any, xml: Any, node: Any) -> dict[str, Any]:
        members = node[1]
        plan = self._plan(shape)
        if plan is None or isinstance(xml, list):
            return cut(self._handle_structure(shape, xml), node)
        out: dict[str, Any] = {}
        for child in xml:
            entry = plan.get(_LOCAL.get(child.tag) or _local(child.tag))
            if entry is None or entry[0] not in members:
                continue  # not a member, or one nobody reads
            name, member = entry[0], entry[1]
            if name in out:  # a repeated tag: botocore's aggregation rules, then the cut
                return cut(self._handle_structure(shape, xml), node)
            sub = members[name]
            if is_projected(sub):
                out[name] = self._projected_structure(member, child, sub)
            elif (
                isinstance(sub, tuple)
                and sub[0] == "L"
                and is_projected(sub[1])
                and not member.serialization.get("flattened")
            ):
                out[name] = [self._projected_structure(member.member, i, sub[1]) for i in child]
            else:
                out[name] = self._parse_shape(member, child)
        return out

    def _plan(self, shape: Any) -> _Plan | None:
        model = shape._shape_model
        entry = _PLANS.get(id(model))
        if entry is None:
            entry = _PLANS[id(model)] = (model, _compile(shape))
        return entry[1]

    def _handle_structure(self, shape: Any, node: Any) -> Any:
        plan = self._plan(shape)
        if plan is None or isinstance(node, list):
            return super()._handle_structure(shape, node)
        try:
            return self._fast_structure(plan, node)
        except Exception:  # noqa: BLE001 - botocore's walk decides: its result, or its error
            # (a repeated tag, or a bad value botocore never reads because of one)
            return super()._handle_structure(shape, node)

    def _fast_structure(self, plan: _Plan, node: Any) -> Any:
        parsed: dict[str, Any] = {}
        last, ordered = -1, True
        get = plan.get
        for child in node:
            tag = child.tag
            entry = get(tag, _MISSING)  # by the namespaced tag once it was seen
            if entry is _MISSING:
                entry = get(_LOCAL.get(tag) or _local(tag))
                plan[tag] = entry  # (None: not a member) the same answer each time
            if entry is None:
                continue  # not a member: botocore ignores it too
            name, member, kind, index = entry
            if name in parsed:  # a repeated tag: botocore's aggregation rules apply
                raise _Repeated(name)
            if kind == _STRING:
                parsed[name] = child.text or ""
            elif kind == _STRUCT:
                sub = self._plan(member)
                if sub is not None:
                    # an error in it falls back to botocore's walk of this structure's parent
                    parsed[name] = self._fast_structure(sub, child)
                else:
                    parsed[name] = self._handle_structure(member, child)
            elif kind == _LIST:
                parsed[name] = self._handle_list(member, child)
            elif kind == _BOOL:
                parsed[name] = child.text == "true"
            elif kind == _INT:
                parsed[name] = int(child.text or "")
            else:
                parsed[name] = self._parse_shape(member, child)
            if index < last:
                ordered = False
            last = index
        if not ordered:  # botocore writes the keys in the model's member order
            # (a snapshot: other threads add the tags they meet to the plan)
            rank = {e[0]: e[3] for e in tuple(plan.values()) if e is not None}
            parsed = dict(sorted(parsed.items(), key=lambda kv: rank[kv[0]]))
        return parsed

    def _handle_list(self, shape: Any, node: Any) -> Any:
        if isinstance(node, list) or shape.serialization.get("flattened"):
            return super()._handle_list(shape, node)
        member = shape.member
        kind = _KINDS.get(member.type_name, _OTHER)
        if kind == _STRUCT:
            plan = self._plan(member)
            if plan is not None:
                fast = self._fast_structure
                try:
                    return [fast(plan, item) for item in node]
                except Exception:  # noqa: BLE001 - botocore's walk of each item decides
                    pass
            return [self._handle_structure(member, item) for item in node]
        if kind == _STRING:
            return [item.text or "" for item in node]
        return [self._parse_shape(member, item) for item in node]


def fast_timestamp(text: str) -> Any:
    """botocore's timestamp parser (dateutil), with a fast path for EC2's own format
    (``2026-11-26T10:00:00.000Z``): the same value in the same zone object (dateutil
    answers ``tzlocal()`` for "Z" on a machine whose zone is UTC, ``tzutc()`` elsewhere:
    the zone is taken from botocore's own parse of a "Z" time, once)."""
    if len(text) in (19, 26) and _NAIVE_TIME.fullmatch(text):
        # no zone (moto's Auto Scaling times): dateutil reads a naive time, as fromisoformat
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:  # (a day or month out of range): botocore's error
            return DEFAULT_TIMESTAMP_PARSER(text)
    if len(text) >= 20 and text[-1] == "Z" and _EC2_TIME.fullmatch(text):
        try:
            naive = dt.datetime.fromisoformat(text[:-1])
        except ValueError:
            return DEFAULT_TIMESTAMP_PARSER(text)
        global _Z_ZONE, _Z_NAME
        if _Z_ZONE is None:
            ref = DEFAULT_TIMESTAMP_PARSER("2000-01-01T00:00:00Z")
            _Z_NAME, _Z_ZONE = ref.tzname(), ref.tzinfo
        aware = naive.replace(tzinfo=_Z_ZONE)
        # dateutil gives tzlocal() only where the local zone reads UTC at that time (a
        # zone like "UTC0BST,M3.5.0/1,M10.5.0" is UTC in winter only): else its own parse
        if aware.utcoffset() == dt.timedelta(0) and aware.tzname() == _Z_NAME:
            return aware
    return DEFAULT_TIMESTAMP_PARSER(text)


class FastParserFactory(ResponseParserFactory):
    """botocore's factory, with :class:`FastEC2QueryParser` for the ``ec2`` protocol."""

    def __init__(self, memo: PageMemo | None = None) -> None:
        super().__init__()
        self.memo = memo

    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "ec2":
            parser = FastEC2QueryParser(**{"timestamp_parser": fast_timestamp, **self._defaults})
            parser.memo = self.memo
            return parser
        if protocol_name == "query":  # Auto Scaling, STS, CloudFormation: botocore's parser
            return QueryParser(**{"timestamp_parser": fast_timestamp, **self._defaults})
        return super().create_parser(protocol_name)


def page_memo(directory: Path) -> PageMemo:
    """Pages parsed before, kept in ``directory`` (``aws.pagememo``)."""
    return PageMemo(directory, fast_timestamp)


def install(botocore_session: Any, memo: PageMemo | None = None) -> None:
    """Clients made from this botocore session from now on parse EC2 responses faster;
    with ``memo``, pages parsed before are not parsed again."""
    if os.environ.get("AMICTL_BOTOCORE_PARSER") == "1":
        return
    botocore_session.register_component("response_parser_factory", FastParserFactory(memo))
