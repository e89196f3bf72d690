"""JSON at orjson's speed where it is installed (a declared dependency), json's otherwise.

orjson reads the values json reads, and refuses (``ValueError``) what it would read
differently (NaN and Infinity, lone surrogates), but for an integer past 64 bits, which it
reads as a float: a text with a run of 19 digits or more anywhere (1 ms a megabyte to
find) is read by json. Told to pass datetimes, dataclasses and subclasses of JSON types
through with no default, it refuses (``TypeError``) to write them, as json does; it
writes a float NaN as null where json writes NaN, so :func:`dumps` is for values without
floats (callers say why theirs have none).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

loads: Callable[[bytes], Any]
dumps: Callable[[Any], bytes]
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))  # digits -> "0"
_LONG_RUN = b"0" * 19  # the fewest digits of an integer past 64 bits (-2**63 - 1)

try:
    import orjson

    _OPTIONS = (
        orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_SUBCLASS
    )

    def loads(data: bytes) -> Any:
        if _LONG_RUN in data.translate(_DIGITS):  # maybe an integer past 64 bits
            return json.loads(data)
        return orjson.loads(data)

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value, option=_OPTIONS)

except ImportError:  # pragma: no cover - a platform without its wheel

    def loads(data: bytes) -> Any:
        return json.loads(data)

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()
