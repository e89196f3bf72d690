"""Per-request costs of moto's dispatch that AWS's endpoints do not have.

moto lists the public methods of a response class (``inspect.getmembers``) on every
call to find the action's handler; the classes are final once the patches are applied,
so the list is computed once per class. (The routing of a request to its service's app,
which lists moto's package directory per request under a lock, is cached in server.py.)
"""

from __future__ import annotations

from typing import Any

import moto.core.responses as responses

from .patches import patch

_METHODS: dict[type, frozenset[str]] = {}


@patch("dispatch: a response class's handler names computed once, not on every call")
def cached_method_names() -> None:
    plain = responses.method_names_from_class

    def method_names_from_class(clazz: Any) -> frozenset[str]:
        names = _METHODS.get(clazz)
        if names is None:
            names = _METHODS[clazz] = frozenset(plain(clazz))
        return names

    responses.method_names_from_class = method_names_from_class  # type: ignore[assignment]
