"""The sandbox's state lock: many readers at once, one writer alone.

moto's backends are plain dicts, so a call that changes them must run alone. A call that
only reads them (Describe*, Get*) may run beside other reads: AWS serves concurrent calls
concurrently, and one long listing (a page of 1,000 instances through moto's serializer)
must not hold every other caller's small read behind it. Writers are preferred: once a
writer waits, new readers wait behind it, so a stream of reads cannot starve a change.
The writer side is re-entrant (the seeding and control paths nest).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Calls that only read moto's state (the sandbox's own patches included: none of these
# advances a state machine on read). Anything else takes the lock alone. Not SSM's
# GetParameter(s)/GetParametersByPath: moto loads a region's /aws/service/... parameters
# on their first read (ParameterDict._check_loading_status), and readers side by side
# each loaded them again.
READ_ONLY_PREFIXES = {"ec2": ("Describe",), "autoscaling": ("Describe",)}
READ_ONLY_ACTIONS = {
    # not SSM: its parameter store loads moto's /aws/service tree on first use, from reads
    # (GetParameter*, and DescribeParameters filtered by such a path)
    "sts": frozenset({"GetCallerIdentity"}),
}


# Reads of services whose moto backend changes only its own state when read: SSM loads its
# /aws/service tree on first use and makes an empty entry for a name it is asked and lacks
# (ParameterDict.__getitem__ on a defaultdict), and the sandbox's Run Command counts polls
# down on GetCommandInvocation. Such a read cannot run beside another read of the same
# service, and another service's reads see what it changes only through READS_OF_OTHERS
# (which take its mutex too): it runs beside every other service's reads (holding the
# state lock's read side and its service's own mutex), and alone against any write.
# Taking the whole lock for it made one SSM call, waiting as a writer, hold every EC2 page
# behind the pages already being served.
LOCAL_READ_PREFIXES = {
    "ssm": ("Get", "Describe", "List"),
    "cloudformation": ("Describe", "List", "Get"),
    "batch": ("Describe", "List"),
    "elasticbeanstalk": ("Describe",),
    "emr": ("Describe", "List"),
}


# Describe calls that write: moto's DescribeManagedPrefixLists counts a deleted list down
# and drops it from the backend's dict (ManagedPrefixListBackend.describe_managed_prefix_lists)
WRITING_DESCRIBES = {
    "ec2": frozenset({"DescribeManagedPrefixLists"}),
    # the sandbox's instance refresh advances one step per DescribeInstanceRefreshes
    "autoscaling": frozenset({"DescribeInstanceRefreshes"}),
}


def read_only(service: str, action: str) -> bool:
    if action in WRITING_DESCRIBES.get(service, frozenset()):
        return False
    return action.startswith(READ_ONLY_PREFIXES.get(service, ("\0",))) or action in (
        READ_ONLY_ACTIONS.get(service, frozenset())
    )


# Reads of one service that read another's state a local read of it may be changing: they
# hold that service's mutex too (EC2's DescribeImageReferences walks SSM's parameter dict,
# patches/usage.py, which an SSM read can be filling with moto's /aws/service tree).
READS_OF_OTHERS = {("ec2", "DescribeImageReferences"): "ssm"}


def local_read(service: str, action: str) -> bool:
    """A read that changes at most its own service's state (:data:`LOCAL_READ_PREFIXES`)."""
    return action.startswith(LOCAL_READ_PREFIXES.get(service, ("\0",)))


class RWLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None  # the thread id holding the write side
        self._depth = 0
        self._writers_waiting = 0
        self._services: dict[str, threading.Lock] = {}
        self._services_lock = threading.Lock()

    @contextmanager
    def read(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._writer == me:  # a writer reading its own state
            yield
            return
        with self._cond:
            while self._writer is not None or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def local(self, service: str) -> Iterator[None]:
        """The read side, and ``service``'s own mutex: a read that changes only that
        service's state (:func:`local_read`), alone among its service's reads."""
        with self._services_lock:
            mutex = self._services.setdefault(service, threading.Lock())
        with self.read(), mutex:
            yield

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
                return
            self._writers_waiting += 1
            try:
                while self._writer is not None or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer, self._depth = me, 1

    def release(self) -> None:
        with self._cond:
            self._depth -= 1
            if not self._depth:
                self._writer = None
                self._cond.notify_all()

    def __enter__(self) -> RWLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
