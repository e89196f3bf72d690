"""A fast EC2-query XML serializer for the sandbox's big listings.

moto 5 serializes every response through a generic model walker and xmltodict: a page of
1,000 images takes seconds of the sandbox's single lock, where AWS answers in a fraction
of a second. For the listings that return thousands of items (DescribeImages,
DescribeSnapshots) the sandbox builds plain dicts in the API's own shape and this module
writes them as EC2's XML directly, from the same botocore output model (element names
are the members' ``locationName``; lists are ``<xSet><item>..</item></xSet>``), so boto3
parses exactly what it parsed before (tests/test_aws_model.py compares both).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from botocore.model import ListShape, OperationModel, Shape, StructureShape
from moto.core.responses import ActionResult

XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
Writer = Callable[[Any, list[str]], None]
_COMPILED: dict[str, Writer] = {}
# Readers write pages side by side (the sandbox's read lock): a shape is compiled under this
# lock and published whole (a struct writer is cached before its members are filled in).
_COMPILING = threading.Lock()
_OUTPUTS: dict[str, Writer] = {}


def _scalar(shape: Shape) -> Writer:
    if shape.type_name == "boolean":

        def write_bool(v: Any, out: list[str]) -> None:
            out.append("true" if v and v != "false" else "false")

        return write_bool
    if shape.type_name == "timestamp":

        def write_time(v: Any, out: list[str]) -> None:
            if isinstance(v, dt.datetime):
                if v.tzinfo is not None:
                    v = v.astimezone(dt.UTC)
                v = v.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            out.append(escape(str(v)))

        return write_time

    def write_text(v: Any, out: list[str]) -> None:
        out.append(escape(str(v)))

    return write_text


_OTHER, _TEXT, _BOOL = 0, 1, 2


def _inline(shape: Shape) -> int:
    """How a structure writes this member in place, without calling its writer: the
    same text as :func:`_scalar`'s ``write_text`` / ``write_bool`` (a timestamp and any
    other shape go through their writer)."""
    if isinstance(shape, (StructureShape, ListShape)) or shape.type_name in ("timestamp", "map"):
        return _OTHER
    return _BOOL if shape.type_name == "boolean" else _TEXT


def _writer(shape: Shape) -> Writer:
    key = shape.name
    if key in _COMPILED:
        return _COMPILED[key]
    if isinstance(shape, StructureShape):
        # (name, open tag, close tag, writer, how a scalar is written in place: see _inline)
        members: list[tuple[str, str, str, Writer, int]] = []

        def write_struct(v: Any, out: list[str]) -> None:
            get = v.get
            for name, open_tag, close_tag, w, inline in members:
                x = get(name)
                if x is None:
                    continue
                if inline == _TEXT:  # a string or number: one piece, escaped only if needed
                    t = x if type(x) is str else str(x)
                    if "&" in t or "<" in t or ">" in t:
                        t = escape(t)
                    out.append(open_tag + t + close_tag)
                elif inline == _BOOL:
                    out.append(open_tag + ("true" if x and x != "false" else "false") + close_tag)
                else:
                    out.append(open_tag)
                    w(x, out)
                    out.append(close_tag)

        _COMPILED[key] = write_struct  # before the members: shapes may recurse
        for name, m in shape.members.items():
            tag = m.serialization.get("name", name)
            members.append((name, f"<{tag}>", f"</{tag}>", _writer(m), _inline(m)))
        return write_struct
    if isinstance(shape, ListShape):
        item = shape.member.serialization.get("name", "item")
        inner = _writer(shape.member)
        open_item, close_item = f"<{item}>", f"</{item}>"

        def write_list(v: Any, out: list[str]) -> None:
            for x in v:
                out.append(open_item)
                inner(x, out)
                out.append(close_item)

        _COMPILED[key] = write_list
        return write_list
    w = _scalar(shape)
    _COMPILED[key] = w
    return w


def ec2_xml(operation: OperationModel, result: dict[str, Any]) -> str:
    """The EC2 query protocol's response document for ``result`` (a dict in the output shape)."""
    out = [
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{operation.name}Response xmlns="{XMLNS}">'
        f"<requestId>{uuid.uuid4()}</requestId>"
    ]
    shape = operation.output_shape
    assert isinstance(shape, StructureShape)
    write = _OUTPUTS.get(operation.name)
    if write is None:
        with _COMPILING:
            write = _OUTPUTS[operation.name] = _writer(shape)
    write(result, out)
    out.append(f"</{operation.name}Response>")
    return "".join(out)


class FastResult(ActionResult):
    """An ActionResult of plain dicts, written by :func:`ec2_xml` instead of moto's walker."""

    def execute_result(self, context: Any) -> Any:
        if context.service_model.service_name != "ec2" or not isinstance(self.result, dict):
            return super().execute_result(context)
        body = ec2_xml(context.operation_model, self.result)
        return 200, {"Content-Type": "text/xml;charset=UTF-8"}, body
