"""Invariants of the Allowed AMIs criteria amictl builds (pure: no sandbox)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from amictl.governance import allowed
from amictl.governance.watermarks import family_watermark_key

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
ME = "111111111111"
OWNERS = ["111111111111", "222222222222", "333333333333"]
FAMILIES = ["web", "db", "batch-worker", "ci"]


@st.composite
def channel_images(draw):
    rows, images = [], {}
    n = draw(st.integers(1, 8))
    for i in range(n):
        fam = draw(st.sampled_from(FAMILIES))
        owner = draw(st.sampled_from(OWNERS))
        conventional = draw(st.booleans())
        name = f"{fam}-{i}.0.{draw(st.integers(0, 9))}" if conventional else f"img{i}x"
        marks = []
        if draw(st.booleans()):
            marks.append({"WatermarkKey": family_watermark_key(owner, fam)})
        if draw(st.booleans()):
            marks.append({"WatermarkKey": f"{owner}:other"})
        iid = f"ami-{i:017x}"
        images[iid] = {
            "ImageId": iid,
            "OwnerId": owner,
            "Name": name,
            "CreationDate": "2026-01-01T00:00:00.000Z",
            "ImageWatermarks": marks,
        }
        rows.append({"family": fam, "channel": "prod", "image_id": iid, "region": "us-east-1"})
    return rows, images


@settings(max_examples=200, deadline=None)
@given(channel_images(), st.lists(st.sampled_from(["amazon", "aws-marketplace"]), unique=True))
def test_criteria_from_channels_allow_every_channel_image(data, also):
    rows, images = data
    criteria, why = allowed.criteria_from_channels(rows, images, also)
    assert len(criteria) <= allowed.MAX_CRITERIA
    for img in images.values():
        # in any account, not only the owner's (owned images are allowed anyway)
        assert allowed.allows(img, criteria, "999999999999", NOW), (img, criteria)
    assert len(why) >= len({r["family"] for r in rows})


@settings(max_examples=200, deadline=None)
@given(channel_images(), st.sampled_from(OWNERS))
def test_criteria_allow_no_stranger_image(data, stranger_name_owner):
    """An image of an account that owns no channel image, without a channel family's
    watermark, is never allowed by criteria built without --also."""
    rows, images = data
    criteria, _ = allowed.criteria_from_channels(rows, images, [])
    stranger = {
        "ImageId": "ami-fffffffffffffffff",
        "OwnerId": "444444444444",
        "Name": next(iter(images.values()))["Name"],  # even with a channel image's name
        "ImageWatermarks": [{"WatermarkKey": f"{stranger_name_owner}:other"}],
    }
    assert not allowed.allows(stranger, criteria, "999999999999", NOW)


@settings(max_examples=200, deadline=None)
@given(channel_images(), st.sampled_from(OWNERS))
def test_owned_images_are_always_allowed_and_adding_criteria_never_disallows(data, account):
    rows, images = data
    criteria, _ = allowed.criteria_from_channels(rows, images, [])
    for img in images.values():
        if img["OwnerId"] == account:
            assert allowed.allows(img, [], account, NOW)
        before = allowed.allows(img, criteria[:1], account, NOW)
        assert not before or allowed.allows(img, criteria, account, NOW)


RECIPE = """\
format: 1
family: web
source: {catalog: al2023}
provision:
  - {name: a, shell: echo a}
"""


def test_recipe_watermark_default_none_and_bad_template():
    import pytest

    from amictl.creation.recipe import parse_recipe_text
    from amictl.errors import InputError

    assert parse_recipe_text(RECIPE).watermark == "amictl/{family}"
    r = parse_recipe_text(RECIPE + "image: {watermark: none}\n")
    assert r.watermark is None
    r = parse_recipe_text(RECIPE + "image: {watermark: 'golden/{family}'}\n")
    assert r.watermark == "golden/{family}"
    with pytest.raises(InputError) as e:
        parse_recipe_text(RECIPE + "image: {watermark: '{nope}'}\n", "r.yaml")
    assert "image.watermark" in e.value.message and "r.yaml:6" in e.value.message
