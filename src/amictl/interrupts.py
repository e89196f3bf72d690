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


@contextmanager
def cooperative() -> Iterator[None]:
    """Within this block, SIGINT/SIGTERM set the stop flag instead of raising."""
    with _lock:
        _depth[0] += 1
    try:
        yield
    finally:
        with _lock:
            _depth[0] -= 1


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
