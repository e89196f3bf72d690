"""Issue 30.3: a plan is written and hashed in one streamed pass, and the checksum is the
one plans always had: plan files written before (tests/data, made on main before the
change by tests/data/make_plan_issue30.py) still verify, and are written again byte for
byte."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amictl import model
from amictl.model import FamilyRule, Image
from amictl.policy import parse_policy_text, plan
from amictl.policy.plan_io import CHUNK, streamed_checksum, write_plan
from amictl.policy.plan_model import Plan

DATA = Path(__file__).resolve().parent / "data"
BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("name", ["plan_issue30_streamed.json", "plan_issue30_to_json.json"])
def test_plans_written_before_still_verify(name: str, tmp_path: Path) -> None:
    text = (DATA / name).read_text()
    body = json.loads(text)
    p = Plan.from_dict(body, verify=True, file=name, text=text)  # raises if it does not
    assert streamed_checksum(p) == body["checksum"] == p.checksum
    out = tmp_path / "again.json"
    assert write_plan(p, out) == body["checksum"]
    assert json.loads(out.read_text()) == body
    if name == "plan_issue30_streamed.json":  # the file layout of `plan --out` is unchanged
        assert out.read_bytes() == (DATA / name).read_bytes()


def _bench() -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        import plan as bench_plan  # bench/plan.py's synthetic inventory
    finally:
        sys.path.remove(str(BENCH))
    return bench_plan


@pytest.mark.parametrize(
    ("dup", "want"),
    [
        (False, "4e828641ac620b57a5243110c6f59abef8a305c6d832b443e7f088ef8273cb87"),
        (True, "0f7fe73164119d2a4fc8fb323f8d7488166202842e7c0d85dc78671c4d32a797"),
    ],
)
def test_inventory_fingerprint_unchanged(dup: bool, want: str) -> None:
    """The fingerprint (hashed a chunk at a time now) is the value main computed before
    issue 30 for the same inventory, with unique image ids and with repeated ones."""
    b = _bench()
    inv = b.build(300, 500, 100, seed=2)
    inv.images[5].tags["z"] = "\u00e9'\""
    if dup:
        inv.merge(b.build(30, 40, 10, seed=5))
    inv.resolve_families(FamilyRule())
    assert inv.fingerprint() == want


def test_streamed_file_and_checksum_equal_the_canonical_form(tmp_path: Path) -> None:
    """More items than one chunk, odd strings, a signature made from the checksum."""
    bench_plan = _bench()
    inv = bench_plan.build(CHUNK + 300, CHUNK + 400, 50, seed=1)
    for n, img in enumerate(inv.images):  # few families: most images retire
        img.tags["family"] = f"ci-{n % 20}" if n % 2 else f"app-{n % 20}"
    inv.images[0].tags["family"] = 'ci-\u00e9"\\\n\u2603'
    policy = parse_policy_text(bench_plan.POLICY, "p.yaml")
    p = plan(inv, policy, bench_plan.NOW)
    assert len(p.actions) > CHUNK and len(p.decisions) > CHUNK
    out = tmp_path / "plan.json"
    checksum = write_plan(p, out, lambda c: {"signature": "sig:" + c})
    body = json.loads(out.read_text())
    assert checksum == p.checksum == streamed_checksum(p) == Plan.checksum_of(body)
    assert body == {**p.to_dict(), "signature": "sig:" + checksum}
    assert Plan.from_dict(body).checksum == checksum


def test_empty_plan(tmp_path: Path) -> None:
    p = Plan("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", {}, {"complete": True}, (), (), {})
    out = tmp_path / "empty.json"
    assert write_plan(p, out) == p.checksum
    assert json.loads(out.read_text()) == p.to_dict()


TEXT = st.text(alphabet=st.sampled_from(["a", "'", '"', "\\", "\u00e9", "\n", "\x00", "\U0001f600", " "]), max_size=6)  # fmt: skip
IMAGES = st.builds(
    Image,
    image_id=TEXT,
    account=st.just("1"),
    region=st.just("r"),
    state=TEXT,
    tags=st.dictionaries(TEXT, TEXT, max_size=3),
    block_devices=st.lists(
        st.fixed_dictionaries({}, optional={"snapshot_id": st.one_of(st.none(), TEXT)}), max_size=3
    ),  # fmt: skip
    deprecation_time=st.one_of(st.none(), st.just(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))),
    shared_with=st.lists(TEXT, max_size=2),
    public=st.booleans(),
)


@settings(max_examples=100, deadline=None)
@given(IMAGES)
def test_fingerprint_row_text_is_the_rows_repr(img: Image) -> None:
    """The fingerprint hashes each image's row text made from its parts' reprs: exactly
    the repr of the row it hashed before (quotes, escapes, non-ASCII, None, empty lists)."""
    assert model._fingerprint_row_text(img) == repr(model._fingerprint_row(img))


REFS = st.lists(
    st.builds(
        model.Reference, kind=st.sampled_from(["instance", "ssm-parameter", "a'"]), id=TEXT,
        detail=st.just("d"), image_id=st.sampled_from(["ami-1", "ami-2", "ami-\u00e9'"]),
        account=st.just("1"), region=st.just("r"),
    ),
    max_size=8,
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(REFS)
def test_references_text_is_the_sorted_rows_repr(refs: list[model.Reference]) -> None:
    """The fingerprint's references part, sorted by three stable sorts and written from each
    part's repr: exactly the repr of the sorted tuples it hashed before (ties, odd strings)."""
    want = repr(sorted([(r.image_id, r.kind, r.id) for r in refs]))
    assert model._references_text(refs) == want
