"""Per-call costs of moto's dispatch and serializer that AWS's endpoints do not have.

moto lists the public methods of a response class (``inspect.getmembers``) on every
call to find the action's handler; the classes are final once the patches are applied,
so the list is computed once per class. moto's generic serializer re-derives, for every
member of every object it writes, which attribute holds it and whether a response
transformer applies; those answers are remembered. (The routing of a request to its
service's app, which lists moto's package directory per request under a lock, is cached
in server.py.) tests/test_sandbox_httpd.py checks that the answers are byte-identical
with and without these patches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import moto.core.responses as responses
import moto.core.serialize as serialize
from moto.core.utils import MISSING
from moto.core.utils import get_value as moto_get_value

from .helpers import patch

_METHODS: dict[type, frozenset[str]] = {}
# what the patches below replaced: (owner, attribute) -> moto's own function
ORIGINALS: dict[tuple[Any, str], Any] = {}


@contextmanager
def moto_unpatched() -> Iterator[None]:
    """moto's own dispatch and serializer for a while (tests compare the answers)."""
    # what is there now, raw from the owner's dict: a staticmethod stays one
    current = {(owner, name): vars(owner)[name] for owner, name in ORIGINALS}
    for (owner, name), fn in ORIGINALS.items():
        setattr(owner, name, fn)
    try:
        yield
    finally:
        for (owner, name), fn in current.items():
            setattr(owner, name, fn)


@patch("dispatch: a response class's handler names computed once, not on every call")
def cached_method_names() -> None:
    plain = responses.method_names_from_class
    ORIGINALS[(responses, "method_names_from_class")] = plain

    def method_names_from_class(clazz: Any) -> frozenset[str]:
        names = _METHODS.get(clazz)
        if names is None:
            names = _METHODS[clazz] = frozenset(plain(clazz))
        return names

    responses.method_names_from_class = method_names_from_class  # type: ignore[assignment]


_KEYS: dict[tuple[Any, ...], tuple[str, ...]] = {}
_TRANSFORMS: dict[tuple[int, str], Any] = {}
_TRANSFORMERS_KEPT: dict[int, Any] = {}  # keeps each transformer table (and its id) alive
_NONE: Any = object()


@patch("serializer: a member's attribute names and response transformer found once, not per object")
def memoized_attribute_picking() -> None:
    """moto's serializer asks, for every member of every object it writes, six alias
    providers which attribute names to try, then matches the member's path against every
    response transformer of the service (tens of thousands of times for a page of 1,000
    instances). Both answers depend only on the picker's class and providers, the object's
    class, the member's name and shape (and the shape's parent structure), or the member's
    path: each is found once with moto's own code and remembered by those, by name."""
    for cls in (serialize.AttributePicker, serialize.XFormedAttributePicker):
        plain = cls.get_possible_keys
        ORIGINALS[(cls, "get_possible_keys")] = plain

        def get_possible_keys(
            self: Any, context: Any, _plain: Any = plain, _cls: type = cls
        ) -> tuple[str, ...]:
            shape = context.shape
            parent = getattr(shape, "parent", None) if shape is not None else None
            model = context.service_model
            key = (
                _cls,
                tuple(self.alias_providers),
                type(context.obj),
                context.key,
                None if model is None else model.service_name,
                None
                if shape is None
                else (shape.name, shape.type_name, shape.serialization.get("name")),
                None if parent is None else (parent.name, parent.type_name),
            )
            found = _KEYS.get(key)
            if found is None:
                found = _KEYS[key] = tuple(_plain(self, context))
            return found

        cls.get_possible_keys = get_possible_keys  # type: ignore[assignment,method-assign]

    def pick(self: Any, context: Any) -> Any:  # AttributePicker.__call__, same steps
        obj = context.obj
        for possible_key in self.get_possible_keys(context):
            value = moto_get_value(obj, possible_key, MISSING)
            if value is not MISSING:
                break
        else:
            value = None
        transformers = self.response_transformers
        if transformers:
            path = f"{context.key_path}.{context.key}"
            tkey = (id(transformers), path)
            transform = _TRANSFORMS.get(tkey)
            if transform is None:
                transform = _NONE
                for transform_path, fn in transformers.items():
                    if path.endswith(transform_path):
                        transform = fn
                        break
                _TRANSFORMERS_KEPT[id(transformers)] = transformers
                _TRANSFORMS[tkey] = transform
            if transform is not _NONE:
                value = transform(value)
        return value

    ORIGINALS[(serialize.AttributePicker, "__call__")] = serialize.AttributePicker.__call__
    serialize.AttributePicker.__call__ = pick  # type: ignore[method-assign]


@patch("dispatch: the RequestId of a response set without scanning a big body that has none")
def request_id_without_a_scan() -> None:
    """moto writes its request id into every answer with a look-behind regular expression
    run over the whole body (``BaseResponse._enrich_response``): 20 ms of the sandbox's CPU
    for a 1.5 MB DescribeImages page, a fifth of what the page costs it. EC2's documents
    name it ``<requestId>`` and never match; the expression is asked only of a body that
    contains ``<RequestId>``, so every answer is the same."""
    plain = responses.BaseResponse._enrich_response
    # (the staticmethod itself, so that moto_unpatched puts back what was there)
    ORIGINALS[(responses.BaseResponse, "_enrich_response")] = vars(responses.BaseResponse)[
        "_enrich_response"
    ]

    def enrich(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        if isinstance(body, str) and "<RequestId>" not in body:
            if "status" in headers:
                headers["status"] = str(headers["status"])
            responses.gen_amzn_requestid_long(headers)  # sets the header, as moto's does
            return headers, body
        return plain(headers, body)

    responses.BaseResponse._enrich_response = staticmethod(enrich)  # type: ignore[method-assign,assignment]
