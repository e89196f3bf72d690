"""Cheaper construction of frozen, slotted dataclasses (a plan makes 200,000 of them).

A frozen dataclass's generated ``__init__`` sets each field with
``object.__setattr__(self, name, value)``: a generic attribute lookup per field, which
made building a 100,000-image plan's actions and decisions a good part of its CPU
(bench/plan.py). Setting each slot through its member descriptor's ``__set__`` is about
twice as fast, but is still a call per field.

:func:`fast_init` builds each instance as an instance of a plain slotted twin class (the
same slots, an ordinary ``__init__``: one store per field, as for any mutable object),
then gives it the frozen class (``__class__`` assignment: the two have the same layout).
The class gets a ``__new__`` with the dataclass's signature that does this, and
``object.__init__``; everything else of the dataclass (frozen ``__setattr__``, ``__eq__``,
``__hash__``, ``__repr__``, ``replace``, pickling) is unchanged. Three to four times
cheaper than the dataclass's own ``__init__`` for the plan's actions.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def fast_init(cls: type[T]) -> type[T]:
    """Make a frozen ``slots=True`` dataclass whose fields have no ``default_factory`` and
    that has no ``__post_init__`` cheaper to build (TypeError otherwise). Not for a class
    that is subclassed: an instance is always built as ``cls`` itself's layout."""
    params = dataclasses.fields(cls)  # type: ignore[arg-type]
    dc_params = vars(cls).get("__dataclass_params__")
    if dc_params is None or not dc_params.frozen or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__}: not a frozen slots dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: has __post_init__")
    names = [f.name for f in params]
    if sorted(names) != sorted(vars(cls)["__slots__"]):
        raise TypeError(f"{cls.__name__}: its slots are not its fields")
    ns: dict[str, Any] = {}
    args = []
    for n, f in enumerate(params):
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: only plain init fields are supported")
        if f.default is dataclasses.MISSING:
            args.append(f.name)
        else:
            ns[f"_d{n}"] = f.default
            args.append(f"{f.name}=_d{n}")
    fields = ", ".join(names)
    # generated from the field names, as dataclasses does
    exec(  # noqa: S102
        f"def __init__(self, {fields}):\n" + "".join(f"    self.{x} = {x}\n" for x in names), ns
    )
    ns["_twin"] = type(
        f"_{cls.__name__}Slots", (), {"__slots__": tuple(names), "__init__": ns["__init__"]}
    )
    exec(  # noqa: S102
        f"def __new__(cls, {', '.join(args)}):\n"
        f"    self = _twin({fields})\n"
        "    self.__class__ = cls\n"
        "    return self\n",
        ns,
    )
    new = ns["__new__"]
    new.__qualname__ = f"{cls.__qualname__}.__new__"
    new.__module__ = cls.__module__
    new.__doc__ = getattr(cls.__init__, "__doc__", None)

    def __getnewargs__(self: Any) -> tuple[Any, ...]:  # pickle and copy call __new__ so
        return tuple(getattr(self, x) for x in names)

    type.__setattr__(cls, "__new__", new)
    type.__setattr__(cls, "__init__", object.__init__)  # (extra arguments: __new__'s)
    type.__setattr__(cls, "__getnewargs__", __getnewargs__)
    return cls
