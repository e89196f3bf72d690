"""One endpoint rule set per service, parsed once a process (issue 30).

botocore parses a service's endpoint rule set into an ``EndpointProvider`` for every
client it makes (``botocore/regions.py``, ``EndpointRulesetResolver.__init__``:
``self._provider = EndpointProvider(ruleset_data=..., partition_data=...,
excluded_params=...)``); a plan makes a client per service and region (8 x 4), and the
parse (``RuleSet.__init__``: every parameter and rule) was a tenth of a second of its start.

A provider depends on its three arguments alone: ``RuleSet`` reads the rule set, never
keeps or changes it, and ``EndpointProvider.resolve_endpoint`` is a function of its
input parameters (the region, ``--endpoint-url``, FIPS, ...; botocore's own
``lru_cache_weakref`` cache of it is already one per process, keyed by the provider and
those parameters). The loader is shared (``session._share_loader``) and caches what it
loaded (``botocore/loaders.py`` ``instance_cache``), so every client of a service is
given the same rule set and partitions objects: a provider is made once per those
objects (kept alive with it, so an ``id`` is never reused) and handed to every client.

Guarded: the wrapper is installed only when ``botocore.regions`` still names
botocore's own ``EndpointProvider`` and its constructor takes the arguments above;
with any other botocore each client builds its own, as botocore does.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

EXPECTED_PARAMETERS = ["self", "ruleset_data", "partition_data", "excluded_params"]


def supported() -> bool:
    """botocore's resolver builds providers the way this module relies on."""
    import botocore.endpoint_provider
    import botocore.regions

    provider = getattr(botocore.endpoint_provider, "EndpointProvider", None)
    if provider is None or getattr(botocore.regions, "EndpointProvider", None) is not provider:
        return False
    try:
        params = list(inspect.signature(provider.__init__).parameters)  # type: ignore[misc]
    except (TypeError, ValueError):
        return False
    return params == EXPECTED_PARAMETERS


def install() -> bool:
    """Share providers from now on (once a process); False where botocore differs."""
    import botocore.regions

    if getattr(botocore.regions.EndpointProvider, "_amictl_shared", False):
        return True
    if not supported():
        return False
    original = botocore.regions.EndpointProvider
    made: dict[tuple[int, int, Any], tuple[Any, Any, Any]] = {}
    lock = threading.Lock()

    def shared_provider(ruleset_data: Any, partition_data: Any, excluded_params: Any = None) -> Any:
        key = (id(ruleset_data), id(partition_data), excluded_params)
        with lock:
            got = made.get(key)
        if got is not None and got[0] is ruleset_data and got[1] is partition_data:
            return got[2]
        provider = original(
            ruleset_data=ruleset_data,
            partition_data=partition_data,
            excluded_params=excluded_params,
        )
        with lock:
            made.setdefault(key, (ruleset_data, partition_data, provider))
        return provider

    shared_provider._amictl_shared = True  # type: ignore[attr-defined]
    shared_provider.original = original  # type: ignore[attr-defined]
    botocore.regions.EndpointProvider = shared_provider  # type: ignore[misc,assignment]
    return True
