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
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_stop = threading.Event()
_signum: list[int] = []
_depth = [0]
_ending = [0]  # cooperative blocks whose calls end at a stop (amictl.aws.stopping)
_lock = threading.Lock()


class Terminate(BaseException):
    """SIGTERM outside a cooperative section (the CLI exits 143)."""


def stop_requested() -> bool:
    return _stop.is_set()


def signum() -> int:
    return _signum[0] if _signum else signal.SIGINT


def request_stop(sig: int = signal.SIGINT) -> None:
    """Ask cooperative loops to stop (what the signal handler does; tests call it too)."""
    if not _signum:
        _signum.append(sig)
    _stop.set()


def check() -> None:
    """Raise :class:`amictl.errors.Interrupted` once a stop was requested."""
    if _stop.is_set():
        from .errors import Interrupted

        sig = signum()
        raise Interrupted(
            sig,
            f"interrupted ({'SIGTERM' if sig == signal.SIGTERM else 'SIGINT'}): stopped cleanly",
        )


def sleep(seconds: float) -> bool:
    """Wait up to ``seconds``, waking at once when a stop is requested; True if one was."""
    return _stop.wait(max(0.0, seconds))


def reset() -> None:
    _stop.clear()
    _signum.clear()


def calls_end() -> bool:
    """True inside a ``cooperative(end_calls=True)`` block (of any thread)."""
    return _ending[0] > 0


@contextmanager
def cooperative(end_calls: bool = False) -> Iterator[None]:
    """Within this block, SIGINT/SIGTERM set the stop flag instead of raising.

    ``end_calls``: the AWS calls started in the block (by any thread) end at a stop while
    they wait to be sent or retried, when AWS can have done none of them
    (:mod:`amictl.aws.stopping`); for work whose caller treats ``Interrupted`` as "not
    started" (apply, scans), never for clean-up that must reach AWS after a stop.
    """
    with _lock:
        _depth[0] += 1
        _ending[0] += end_calls
    try:
        yield
    finally:
        with _lock:
            _depth[0] -= 1
            _ending[0] -= end_calls


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
