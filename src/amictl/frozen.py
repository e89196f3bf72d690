"""Cheaper construction of frozen, slotted dataclasses (a plan makes 200,000 of them).

A frozen dataclass's generated ``__init__`` sets each field with
``object.__setattr__(self, name, value)``: a generic attribute lookup per field, which
made building a 100,000-image plan's actions and decisions a good part of its CPU
(bench/plan.py). :func:`fast_init` gives the class an ``__init__`` with the same
signature that sets each slot through its own member descriptor (what
``object.__setattr__`` ends in), about twice as fast. Everything else of the dataclass
(frozen ``__setattr__``, ``__eq__``, ``__hash__``, ``__repr__``, ``replace``) is unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def fast_init(cls: type[T]) -> type[T]:
    """Replace the ``__init__`` of a frozen ``slots=True`` dataclass whose fields have no
    ``default_factory`` and that has no ``__post_init__`` (TypeError otherwise)."""
    params = dataclasses.fields(cls)  # type: ignore[arg-type]
    dc_params = vars(cls).get("__dataclass_params__")
    if dc_params is None or not dc_params.frozen or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__}: not a frozen slots dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: has __post_init__")
    ns: dict[str, Any] = {}
    args, body = [], []
    for n, f in enumerate(params):
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: only plain init fields are supported")
        if f.default is dataclasses.MISSING:
            args.append(f.name)
        else:
            ns[f"_d{n}"] = f.default
            args.append(f"{f.name}=_d{n}")
        ns[f"_s{n}"] = vars(cls)[f.name].__set__  # the slot's member descriptor
        body.append(f"    _s{n}(self, {f.name})")
    src = f"def __init__(self, {', '.join(args)}):\n" + "\n".join(body or ["    pass"]) + "\n"
    exec(src, ns)  # noqa: S102 - generated from the field names, as dataclasses does
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = getattr(cls.__init__, "__doc__", None)
    type.__setattr__(cls, "__init__", init)
    return cls
