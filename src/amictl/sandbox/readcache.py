"""Answers to the sandbox's costliest reads, kept until anything is written.

moto writes a DescribeInstances page through its generic model walker: about 2.5 ms of
the sandbox's CPU per instance, so a region of 1,250 instances costs ~3 s on the same
cores as the tool being measured, every time it is read (fastxml, patches/instances.py,
brings that to ~0.2 ms; a page it cannot write still goes through moto). AWS serves that
page from its own machines. The sandbox keeps the answer to such a read, keyed by the
request itself (account, region, the signed body), and drops every kept answer at the end
of any call that may write (:func:`may_write`: anything but a Describe, List or Get that
does not advance a state machine; it holds the state lock alone, so no read runs beside
it), or a control-API call that changes the fleet. A read that started before a write
finished is never kept under the new generation. What is cached answers exactly what moto
would answer again: nothing in a DescribeInstances answer moves with the clock alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .rwlock import WRITING_DESCRIBES

# Reads (by name) that change nothing another service shows. They may still take the state
# lock alone (SSM's GetParameter* load moto's /aws/service tree); the sandbox's own
# writing describes (rwlock.WRITING_DESCRIBES) are writes here too.
READ_VERBS = ("Describe", "List", "Get")


def may_write(service: str, action: str) -> bool:
    """Whether a call may change what a kept answer shows."""
    if action in WRITING_DESCRIBES.get(service, frozenset()):
        return True
    return not action.startswith(READ_VERBS)


def _always(account: str, region: str) -> bool:
    return True


# (service, action) whose answers are kept -> whether they are, for the caller's (account,
# region), now. Only reads whose answer depends on moto's state alone (not on the time of
# the call) belong here. DescribeImages is added by the Allowed AMIs patch
# (patches/governance.py): only while the caller's Allowed AMIs settings are disabled, as
# its criteria can name an image's age, and a page of 1,000 images costs the sandbox ~50 ms.
CACHED: dict[tuple[str, str], Callable[[str, str], bool]] = {("ec2", "DescribeInstances"): _always}


def kept_here(service: str, action: str, account: str, region: str) -> bool:
    """Whether this read's answer is kept (:data:`CACHED`)."""
    when = CACHED.get((service, action))
    return when is not None and when(account, region)


MAX_ENTRIES = 64


class ReadCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.generation = 0
        self._entries: dict[tuple[Any, ...], tuple[str, list[tuple[str, str]], bytes]] = {}
        self.hits = 0

    def written(self) -> None:
        """Something may have changed: no kept answer holds any more."""
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def get(self, key: tuple[Any, ...]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        with self._lock:
            found = self._entries.get((self.generation, *key))
            if found is not None:
                self.hits += 1
            return found

    def put(
        self,
        generation: int,
        key: tuple[Any, ...],
        answer: tuple[str, list[tuple[str, str]], bytes],
    ) -> None:
        with self._lock:
            if generation != self.generation:  # a write ended while this read ran
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[(generation, *key)] = answer
