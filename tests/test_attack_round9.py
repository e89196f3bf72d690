"""Round 9 attacks (hostile5): this session's speed work (issue 30) against the code before
it (commit ac6ecef). Each test here fails on main and is marked xfail(strict) until fixed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from amictl import memory


@pytest.fixture
def command_process_gc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI process's collector settings (memory.command_process, then a command's
    imports frozen by memory.imports_done), put back afterwards."""
    threshold = gc.get_threshold()
    monkeypatch.setattr(memory, "_FREEZE_IMPORTS", False)
    monkeypatch.setattr(memory, "_imports_frozen", False)
    try:
        memory.command_process()
        memory.imports_done()
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


class _Node:
    """One object of a reference cycle (what botocore's exceptions, tracebacks and
    responses leave behind): only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.mark.xfail(
    strict=True,
    reason="memory.promote_young (src/amictl/memory.py:53-56) freezes every object alive, "
    "garbage included, and never unfreezes once a command's imports are frozen: each "
    "gc_paused(promote=True) of a long command (apply's live view scans every wave, "
    "model.py:445 build_indexes) leaks the cycles made so far",
)
def test_promoted_pause_in_a_command_process_frees_cyclic_garbage(
    command_process_gc: None,
) -> None:
    """apply reads a live view each wave (apply/live.py scan -> Inventory.build_indexes,
    a gc_paused(promote=True) block); cyclic garbage of the previous waves must still be
    collected, as it was before issue 30 (ac6ecef had no freeze)."""
    refs = []
    for _ in range(3):  # three waves
        node = _Node()
        refs.append(weakref.ref(node))
        del node  # garbage now: only a cyclic collection frees it
        with memory.gc_paused(promote=True):  # the wave's live view's indexes
            pass
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
