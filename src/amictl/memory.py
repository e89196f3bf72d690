"""Keep the heap of a big scan compact (glibc only; a no-op elsewhere).

A scan parses pages of thousands of items in several threads. With glibc's defaults each
thread gets its own malloc arena and freed page buffers raise the mmap threshold, so the
memory of parsed pages stays scattered between the records that outlive them and the
process keeps it: on the 20,000-image fleet that was about a third of a plan's peak RSS.
Two arenas and a fixed 256 KiB mmap threshold (large response bodies go back to the
system as soon as they are freed) bring it down without slowing the scan measurably.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import sys
import threading
from collections.abc import Iterator

M_MMAP_THRESHOLD = -3  # glibc malloc.h
M_ARENA_MAX = -8


def compact_malloc(arenas: int = 2, mmap_threshold: int = 256 * 1024) -> bool:
    """Set glibc's malloc options for this process; True if they were set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt)
    ok = bool(mallopt(M_ARENA_MAX, arenas))
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and ok


_PAUSE_LOCK = threading.Lock()
_pauses = 0  # blocks in gc_paused now, in any thread
_resume = False  # whether the collector was enabled when the first of them began
_promote = False  # whether a block asked that what it made be kept without a walk
_heap_blocks = 0  # frozen_heap blocks open


def promote_young() -> None:
    """Move every object the collector tracks out of its young generations without walking
    them (``gc.freeze``, then ``gc.unfreeze`` into the oldest generation; inside
    :func:`frozen_heap` they join its frozen objects and are unfrozen with them). The
    young generation's count starts again at zero: the first allocation after a pause does
    not walk every object made during it. They are collected at a full collection, as
    long-lived objects are."""
    gc.freeze()
    # (a count of frozen_heap blocks, not gc.get_freeze_count(), which walks every frozen
    # object)
    if not _heap_blocks:
        gc.unfreeze()  # every frozen object: a command's imports too, so no garbage made
        # before the pause stays frozen


@contextlib.contextmanager
def gc_paused(promote: bool = False) -> Iterator[None]:
    """Pause the cyclic garbage collector: the inventory's indexes, the planner and the
    plan's writer make many small objects and no cycles, and full collections over a
    100,000-image inventory's objects cost more than the work itself (bench/plan.py).
    So do a command's imports and botocore's clients (issue 30: a tenth of a second of
    every start). Blocks may nest and overlap in threads: the collector is enabled again
    when the last one ends, if it was enabled when the first began.

    ``promote``: what the block makes outlives it (an inventory's indexes, a plan): when
    the last block ends, the objects made are moved to the oldest generation
    (:func:`promote_young`) rather than walked by the young generation's collection that
    the next allocation would start (a quarter of a second after a 100,000-image plan)."""
    global _pauses, _resume, _promote
    with _PAUSE_LOCK:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
        _promote = _promote or promote
    try:
        yield
    finally:
        with _PAUSE_LOCK:
            _pauses -= 1
            if _pauses == 0:
                if _promote:
                    promote_young()
                _promote = False
                if _resume:
                    gc.enable()


_COMMAND_PROCESS = False  # this process runs one command and ends (command_process)


def command_process() -> None:
    """This process runs one command and ends (the CLI's entry point, not a library
    caller or a test): young collections every 50,000 allocations rather than 700, and
    what a command's imports made (modules, classes, functions: never garbage) left out of
    every collection after them (:func:`imports_done`). A warm plan spent 0.3 s of its
    3.5 s of CPU in collections that found nothing (issue 30); its peak RSS is the same."""
    global _COMMAND_PROCESS
    _COMMAND_PROCESS = True
    gc.set_threshold(50_000, *gc.get_threshold()[1:])


def command_done() -> None:
    """A command's process is about to exit: leave every object out of the collections the
    interpreter runs as it finalizes (its last collection walked every object a plan had
    made, 0.35 s of a 4.5 s warm plan after its output was written). What is left is freed
    as the process ends; atexit handlers (flushing, joining threads) still run first."""
    if _COMMAND_PROCESS:
        gc.disable()
        gc.freeze()


def imports_done() -> None:
    """A command's modules are imported: in a command's process, freeze what is alive."""
    if _COMMAND_PROCESS:
        with _PAUSE_LOCK:
            gc.freeze()


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Leave every object alive now out of the garbage collector's full collections until
    the block ends (``gc.freeze``): a plan's inventory and the botocore clients (half a
    million objects) outlive the decision, and walking them at each full collection that
    the decision's allocations trigger cost a good part of its CPU (issue 30)."""
    global _heap_blocks
    with _PAUSE_LOCK:
        gc.freeze()
        _heap_blocks += 1
    try:
        yield
    finally:
        with _PAUSE_LOCK:
            _heap_blocks -= 1
            if not _heap_blocks:
                gc.unfreeze()  # every frozen object: the imports' too
