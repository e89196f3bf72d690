"""Round 9 attacks (hostile5): this session's speed work (issue 30) against the code before
it (commit ac6ecef). Each test here failed on main before its fix (the comment above it says which).

Held (no test here): the planner's shortcuts (plainly_kept, one-step usable_ranks, holds
asked only where one can be found, channel references filtered only when the inventory
has one, RuleTexts, snapshot and orphan actions by position, the references text of the
fingerprint) gave byte-identical plans, checks and fingerprints to ac6ecef's over 2,700
generated inventories x 2-4 policies, with and without explain; the sandbox's inline
scalars, DescribeLaunchTemplates by fastxml, the request-id patch and the DescribeImages
read cache; botocore's data files read by orjson (all 2,013 the same as json's)."""

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
    monkeypatch.setattr(memory, "_COMMAND_PROCESS", False)
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


# Worked (round 9), fixed: memory.promote_young unfreezes a command's frozen imports too.
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


# Worked (round 9), fixed: aws.fastjson reads a text with a 19-digit run by json.
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


# ---------------------------------------------------------------- sandbox: SSM "local" reads


def _signed(client: Any, service: str, body: str, target: str = "") -> Any:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from amictl.sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY

    ctype = "application/x-amz-json-1.1" if target else "application/x-www-form-urlencoded"
    headers = {"Content-Type": ctype} | ({"X-Amz-Target": target} if target else {})
    req = AWSRequest(method="POST", url="http://localhost/", data=body, headers=headers)
    creds = Credentials(SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY)
    SigV4Auth(creds, service, "us-east-1").add_auth(req)
    return client.post("/", data=body, headers=dict(req.headers))


# Worked (round 9), fixed: DescribeImageReferences holds SSM's mutex (rwlock.READS_OF_OTHERS).
def test_an_ssm_read_that_loads_parameters_never_runs_beside_an_ec2_read_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json
    import threading

    from moto.ssm.models import ParameterDict
    from werkzeug.test import Client

    from amictl.sandbox import patches, server

    patches.apply_all()
    app = server.SandboxApp()
    made = _signed(
        Client(app),
        "ec2",
        "Action=RegisterImage&Version=2016-11-15&Name=r9-1&ImageLocation=bkt/r9.manifest.xml",
    )
    image_id = made.data.split(b"<imageId>")[1].split(b"<")[0].decode()
    tree = "/aws/service/ami-amazon-linux-latest"
    loading, go = threading.Event(), threading.Event()
    orig = ParameterDict._check_loading_status

    def check(self: Any, key: str) -> None:
        if str(key or "").startswith(tree):  # moto is about to fill the dict (the window)
            loading.set()
            go.wait(3)
        orig(self, key)

    monkeypatch.setattr(ParameterDict, "_check_loading_status", check)
    body = json.dumps({"Name": f"{tree}/al2023-ami-kernel-default-x86_64"})
    ssm = threading.Thread(
        target=_signed, args=(Client(app), "ssm", body, "AmazonSSM.GetParameter")
    )
    refs: list[Any] = []
    query = (
        "Action=DescribeImageReferences&Version=2016-11-15&ImageId.1="
        f"{image_id}&IncludeAllResourceTypes=true"
    )
    ec2 = threading.Thread(target=lambda: refs.append(_signed(Client(app), "ec2", query)))
    try:
        ssm.start()
        assert loading.wait(5)  # the SSM read is inside moto's parameter dict
        ec2.start()
        ec2.join(0.3)
        beside = not ec2.is_alive()  # answered while SSM's dict was being changed
    finally:
        go.set()
        ssm.join(5)
        ec2.join(5)
    assert refs and refs[0].status_code == 200
    assert not beside
