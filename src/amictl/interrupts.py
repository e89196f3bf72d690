"""Stop cleanly on SIGINT / SIGTERM (cli.md: exit 130 / 143).

The CLI installs :func:`handle_signals` once. Outside a cooperative section a signal
interrupts at once (``KeyboardInterrupt`` / :class:`Terminate`), which is right for
read-only work. Inside ``with cooperative():`` (apply, inventory scans) a signal only
sets a flag: the loop stops starting new work, lets in-flight calls finish and be
journaled, then raises :class:`amictl.errors.Interrupted`. Library code never installs
handlers; without them the flag simply never rises.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import FrameType

# The stop flag is a plain value: the signal handler takes no lock (a handler runs between
# two bytecodes of the main thread, which may hold any lock it would take: a deadlock).
_stop = [False]
_signum: list[int] = []
_depth = [0]
_lock = threading.Lock()
POLL_S = 0.05  # how often a wait looks at the stop flag


class _Local(threading.local):
    ending = 0  # this thread's cooperative blocks whose calls end at a stop (aws/stopping.py)


_local = _Local()


class Terminate(BaseException):
    """SIGTERM outside a cooperative section (the CLI exits 143)."""


def stop_requested() -> bool:
    return _stop[0]


def signum() -> int:
    return _signum[0] if _signum else signal.SIGINT


def request_stop(sig: int = signal.SIGINT) -> None:
    """Ask cooperative loops to stop (what the signal handler does; tests call it too)."""
    if not _signum:
        _signum.append(sig)
    _stop[0] = True


def check() -> None:
    """Raise :class:`amictl.errors.Interrupted` once a stop was requested."""
    if _stop[0]:
        from .errors import Interrupted

        sig = signum()
        raise Interrupted(
            sig,
            f"interrupted ({'SIGTERM' if sig == signal.SIGTERM else 'SIGINT'}): stopped cleanly",
        )


def sleep(seconds: float) -> bool:
    """Wait up to ``seconds``, waking within ``POLL_S`` of a stop; True if one was requested."""
    end = time.monotonic() + max(0.0, seconds)
    while not _stop[0]:
        left = end - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, POLL_S))
    return True


def reset() -> None:
    _stop[0] = False
    _signum.clear()


def calls_end() -> bool:
    """True inside a ``cooperative(end_calls=True)`` block of this thread, or in a
    :class:`Pool` worker made inside one."""
    return _local.ending > 0


def _inherit(ending: int) -> None:
    _local.ending = ending


class Pool(ThreadPoolExecutor):
    """A thread pool whose workers' AWS calls end at a stop as its maker's do (made inside a
    ``cooperative(end_calls=True)`` block, or ``end_calls=True``); another thread's block
    never reaches them (a bake's clean-up beside an apply)."""

    def __init__(self, max_workers: int | None = None, *, end_calls: bool = False) -> None:
        ending = _local.ending + end_calls
        super().__init__(max_workers=max_workers, initializer=_inherit, initargs=(ending,))


@contextmanager
def cooperative(end_calls: bool = False) -> Iterator[None]:
    """Within this block, SIGINT/SIGTERM set the stop flag instead of raising.

    ``end_calls``: the AWS calls started in the block (by this thread and the workers of a
    :class:`Pool` made in it) end at a stop while they wait to be sent or retried, when AWS
    can have done none of them
    (:mod:`amictl.aws.stopping`); for work whose caller treats ``Interrupted`` as "not
    started" (apply, scans), never for clean-up that must reach AWS after a stop.
    """
    with _lock:
        _depth[0] += 1
    _local.ending += end_calls
    try:
        yield
    finally:
        _local.ending -= end_calls
        with _lock:
            _depth[0] -= 1


@contextmanager
def end_calls() -> Iterator[None]:
    """The AWS calls of this block (reads only: a waiter's polls) end at a stop, without
    making the block cooperative (outside one a signal still raises at once)."""
    _local.ending += 1
    try:
        yield
    finally:
        _local.ending -= 1


def _handler(sig: int, _frame: FrameType | None) -> None:
    if _depth[0] > 0:
        request_stop(sig)
        return
    request_stop(sig)
    if sig == signal.SIGTERM:
        raise Terminate()
    raise KeyboardInterrupt()


@contextmanager
def handle_signals() -> Iterator[None]:
    """Install the handlers for the duration of a CLI run (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    reset()
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
