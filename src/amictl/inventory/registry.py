"""The registry of reference finders ("collectors"): one per resource kind, each with the
IAM permissions it needs, so ``iam-policy``, the docs and the scan's "incomplete kinds"
column are generated from it.

A collector reads one (account, region) slice of one kind, to the last page, with
botocore paginators at the maximum page size, and returns what it found; the scanner
records any failure as an incomplete slice. Collectors never guess: a page that failed
is a failure, never an empty list.

EC2's, Auto Scaling's and SSM's own kinds live in :mod:`amictl.inventory.collectors`; the
other services that launch from AMI ids have a module each in
:mod:`amictl.inventory.launchers`. Import ``COLLECTORS`` from :mod:`amictl.inventory.kinds`,
which loads every module that registers one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import interrupts
from ..model import Image, Reference, Snapshot

# The maximum page size of each listing (AWS limits); tests lower them to force many pages.
PAGE_SIZES = {
    "describe_images": 1000,
    "describe_snapshots": 1000,
    "describe_instances": 1000,
    "describe_launch_templates": 200,
    "describe_launch_template_versions": 200,
    "describe_launch_configurations": 100,
    "describe_auto_scaling_groups": 100,
    "describe_parameters": 50,
    "get_parameter_history": 50,
    "describe_environments": 1000,  # Elastic Beanstalk
    "list_image_recipes": 100,  # EC2 Image Builder
    "list_container_recipes": 100,
    "list_distribution_configurations": 100,
}


# Pages of the big listings (1,000 items: megabytes of XML, its tree and the parsed dicts)
# are fetched, parsed and turned into compact records at most this many at a time, so the
# peak memory of a scan does not grow with the number of regions read at once.
HEAVY = frozenset({"describe_images", "describe_snapshots", "describe_instances"})
HEAVY_PAGES = threading.BoundedSemaphore(2)


def pages(client: Any, operation: str, **kwargs: Any) -> Any:
    """The operation's pages; stops between pages once an interrupt was requested. An
    operation without a page size (CloudFormation's DescribeStacks) gets AWS's own."""
    config = {"PageSize": PAGE_SIZES[operation]} if operation in PAGE_SIZES else {}
    pages = iter(client.get_paginator(operation).paginate(**kwargs, PaginationConfig=config))
    heavy = operation in HEAVY
    while True:
        if heavy:
            HEAVY_PAGES.acquire()
        try:
            page = next(pages, None)
            if page is None:
                return
            interrupts.check()
            yield page  # the caller turns it into records before asking for the next
            page = None
        finally:
            if heavy:
                HEAVY_PAGES.release()


@dataclass
class SliceData:
    images: list[Image] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    items: int = 0


@dataclass(frozen=True)
class CollectorSpec:
    kind: str
    service: str
    permissions: tuple[str, ...]
    description: str
    fn: Callable[..., SliceData]
    depends_on: tuple[str, ...] = ()


COLLECTORS: dict[str, CollectorSpec] = {}


def collector(
    kind: str,
    service: str,
    permissions: list[str],
    description: str,
    depends_on: tuple[str, ...] = (),
) -> Callable[[Callable[..., SliceData]], Callable[..., SliceData]]:
    def deco(fn: Callable[..., SliceData]) -> Callable[..., SliceData]:
        COLLECTORS[kind] = CollectorSpec(
            kind, service, tuple(permissions), description, fn, depends_on
        )
        return fn

    return deco
