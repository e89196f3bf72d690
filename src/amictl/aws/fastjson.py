"""JSON at orjson's speed where it is installed (a declared dependency), json's otherwise.

orjson reads the values json reads, and refuses (``ValueError``) what it would read
differently: NaN and Infinity, integers past 64 bits, lone surrogates. Told to pass
datetimes, dataclasses and subclasses of JSON types through with no default, it refuses
(``TypeError``) to write them, as json does; it writes a float NaN as null where json
writes NaN, so :func:`dumps` is for values without floats (callers say why theirs have none).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

loads: Callable[[bytes], Any]
dumps: Callable[[Any], bytes]

try:
    import orjson

    _OPTIONS = (
        orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_SUBCLASS
    )
    loads = orjson.loads

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value, option=_OPTIONS)

except ImportError:  # pragma: no cover - a platform without its wheel

    def loads(data: bytes) -> Any:
        return json.loads(data)

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()
