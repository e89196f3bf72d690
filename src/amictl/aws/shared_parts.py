"""What botocore builds for every client from a service's data alone, built once a process.

botocore makes, for each client (``botocore/client.py`` ``ClientCreator.create_client``):

- a ``ServiceModel`` of the service's model (``_load_service_model``: ``ServiceModel(
  json_model, service_name=service_name)``, the only use of the name ``ServiceModel`` in
  ``botocore/client.py``), whose operation models and shapes each client then resolves
  again for the calls it makes;
- an ``EndpointProvider`` (``botocore/regions.py``, ``EndpointRulesetResolver.__init__``:
  ``EndpointProvider(ruleset_data=..., partition_data=..., excluded_params=...)``), which
  parses the service's endpoint rule set (``RuleSet.__init__``: every parameter and rule).

A plan makes a client per service and region (8 x 4): the rule sets alone were a tenth of
a second of its start (issue 30). Both depend on their arguments alone: a ``ServiceModel``
only reads its description and caches what it derives from it (nothing in botocore sets
an attribute on one after it is made); ``RuleSet`` reads the rule set, never keeps or
changes it, and ``EndpointProvider.resolve_endpoint`` is a function of its input
parameters (the region, ``--endpoint-url``, FIPS, ...; botocore's own
``lru_cache_weakref`` of it is already one per process). The loader is shared
(``session._share_loader``) and caches what it loaded (``botocore/loaders.py``
``instance_cache``), so every client of a service is given the same description, rule set
and partitions objects: each is made once per those objects and handed to every client,
each of which still resolves its own region's endpoint at each call.

Guarded: each wrapper is installed only where botocore still has the function it
replaces, taking the arguments above; with any other botocore each client builds its own,
as botocore does.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

PROVIDER_PARAMETERS = ["self", "ruleset_data", "partition_data", "excluded_params"]
SERVICE_MODEL_PARAMETERS = ["self", "service_description", "service_name"]
MAX_SLOTS = 64


def _parameters(fn: Any) -> list[str]:
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []


def providers_supported() -> bool:
    """botocore's resolver builds providers the way this module relies on."""
    import botocore.endpoint_provider
    import botocore.regions

    provider = getattr(botocore.endpoint_provider, "EndpointProvider", None)
    if provider is None or getattr(botocore.regions, "EndpointProvider", None) is not provider:
        return False
    return _parameters(provider.__init__) == PROVIDER_PARAMETERS  # type: ignore[misc]


def service_models_supported() -> bool:
    """botocore's client creator builds service models the way this module relies on."""
    import botocore.client
    import botocore.model

    model = getattr(botocore.model, "ServiceModel", None)
    if model is None or getattr(botocore.client, "ServiceModel", None) is not model:
        return False
    return _parameters(model.__init__) == SERVICE_MODEL_PARAMETERS  # type: ignore[misc]


class _Made:
    """Objects made from data, one per slot, handed out again while the slot holds the same
    data objects (checked by identity, and kept alive with it, so an ``id`` is never
    reused). At most ``MAX_SLOTS``, the least recently used dropped: a process that makes
    clients from other loaders too (boto3 sessions of its own) keeps no more than that."""

    def __init__(self, make: Callable[..., Any]) -> None:
        self.make = make
        self.slots: OrderedDict[Any, tuple[tuple[Any, ...], Any]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, slot: Any, data: tuple[Any, ...], *args: Any, **kw: Any) -> Any:
        with self.lock:
            got = self.slots.get(slot)
            if got is not None and all(a is b for a, b in zip(got[0], data, strict=True)):
                self.slots.move_to_end(slot)
                return got[1]
        obj = self.make(*args, **kw)
        with self.lock:
            self.slots[slot] = (data, obj)
            self.slots.move_to_end(slot)
            while len(self.slots) > MAX_SLOTS:
                self.slots.popitem(last=False)
        return obj


def install() -> tuple[bool, bool]:
    """Share providers and service models from now on (once a process); each False where
    botocore differs (its own path kept)."""
    return _share_providers(), _share_service_models()


def _replace(module: Any, name: str, supported: Callable[[], bool], wrap: Any) -> bool:
    """Put ``wrap(made)`` in place of ``module.name`` (botocore's class), where ``made``
    hands out what that class makes; once a process, and only where ``supported``."""
    current = getattr(module, name)
    if getattr(current, "_amictl_shared", False):
        return True
    if not supported():
        return False
    shared = wrap(_Made(current))
    shared._amictl_shared = True
    shared.original = current
    setattr(module, name, shared)
    return True


def _share_providers() -> bool:
    import botocore.regions

    def wrap(made: _Made) -> Any:
        def shared_provider(
            ruleset_data: Any, partition_data: Any, excluded_params: Any = None
        ) -> Any:
            excluded = None if excluded_params is None else frozenset(excluded_params)  # S3's
            return made.get(
                (id(ruleset_data), id(partition_data), excluded),
                (ruleset_data, partition_data),
                ruleset_data=ruleset_data,
                partition_data=partition_data,
                excluded_params=excluded_params,
            )

        return shared_provider

    return _replace(botocore.regions, "EndpointProvider", providers_supported, wrap)


def _share_service_models() -> bool:
    import botocore.client

    def wrap(made: _Made) -> Any:
        def shared_model(service_description: Any, service_name: Any = None) -> Any:
            version = service_description.get("metadata", {}).get("apiVersion")
            return made.get(  # one slot per service and API version: another loader's replaces
                (service_name, version),
                (service_description,),
                service_description,
                service_name=service_name,
            )

        return shared_model

    return _replace(botocore.client, "ServiceModel", service_models_supported, wrap)
