"""botocore's data files (service models, endpoints) parsed at the JSON decoder's speed.

botocore's ``JSONFileLoader._load_file`` (``botocore/loaders.py``) decodes each file with
``json.loads(payload, object_pairs_hook=OrderedDict)``: an ``OrderedDict`` per JSON
object, which botocore chose in Python 2 days to keep the files' key order (botocore
issue 51). A ``dict`` keeps insertion order in every Python amictl runs on, and botocore
uses the loaded data through the mapping API only (no ``move_to_end``, ``popitem`` or
``OrderedDict`` type checks in botocore 1.44): the same keys, values and order, decoded
by the C decoder without a Python call per object. On the models a plan loads (EC2's is
3 MB of JSON) that was 0.1 s of every start (issue 30).

Used through botocore's own extension point, the loader's ``file_loader`` (the
``Loader(file_loader=...)`` argument), on the process's shared loader
(``session._share_loader``), and only where the file loader is botocore's own
``JSONFileLoader`` with the ``_load_file(full_path, open_method)`` this replaces;
otherwise botocore's is kept.
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Any

from botocore.loaders import JSONFileLoader

from . import fastjson

EXPECTED_PARAMETERS = ["self", "full_path", "open_method"]


class DictJSONFileLoader(JSONFileLoader):
    """botocore's JSON file loader, each JSON object decoded as a ``dict``."""

    def _load_file(self, full_path: str, open_method: Any) -> Any:
        if not os.path.isfile(full_path):
            return None
        with open_method(full_path, "rb") as fp:
            payload = fp.read()
        try:  # orjson (aws.fastjson): EC2's model in 24 ms where json takes 45
            return fastjson.loads(payload)
        except ValueError:  # what orjson refuses (NaN, lone surrogates): json's reading
            return json.loads(payload.decode("utf-8"))


def supported() -> bool:
    try:
        params = list(inspect.signature(JSONFileLoader._load_file).parameters)
    except (AttributeError, TypeError, ValueError):
        return False
    return params == EXPECTED_PARAMETERS


def use_dicts(loader: Any) -> bool:
    """Give ``loader`` the dict-decoding file loader; False (left as it is) where its file
    loader is not botocore's own or botocore's differs from the one this replaces."""
    if isinstance(getattr(loader, "file_loader", None), DictJSONFileLoader):
        return True
    if type(getattr(loader, "file_loader", None)) is not JSONFileLoader or not supported():
        return False
    loader.file_loader = DictJSONFileLoader()
    return True
