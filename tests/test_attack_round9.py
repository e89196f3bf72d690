"""Round 9 attacks (hostile5): this session's speed work (issue 30) against the code before
it (commit ac6ecef). Each test here fails on main and is marked xfail(strict) until fixed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

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


# ---------------------------------------------------------------- kept pages read by orjson


@pytest.mark.xfail(
    strict=True,
    reason="aws/fastjson.py:26 loads = orjson.loads reads an integer past 64 bits as a "
    "float (18446744073709551616 -> 1.8446744073709552e+19, -2**63-1 likewise), where "
    "json read it exactly; fastjson's docstring says orjson refuses it. A page kept by "
    "ac6ecef (json.dumps writes any int) is read differently: pagememo.py:247",
)
def test_a_page_kept_by_the_old_writer_reads_as_json_read_it(tmp_path: Any) -> None:
    import datetime as dt
    import json

    import botocore.session

    from amictl.aws.pagememo import PageMemo

    model = botocore.session.get_session().get_service_model("ec2")
    shape = model.operation_model("DescribeSnapshots").output_shape
    sizes = [2**64, 10**23 - 1, -(2**63) - 1]  # botocore's int() parse of <volumeSize>
    page = {
        "Snapshots": [{"SnapshotId": f"snap-{n}", "VolumeSize": v} for n, v in enumerate(sizes)]
    }
    # as ac6ecef's PageMemo.put wrote it
    (tmp_path / "old.json").write_text(json.dumps(page, separators=(",", ":")))
    memo = PageMemo(tmp_path, dt.datetime.fromisoformat)
    got = memo.get("old", shape)
    # a kept page is either read as it was written, or refused (then the page is parsed)
    assert (
        got is None or got == page and all(type(s["VolumeSize"]) is int for s in got["Snapshots"])
    )
