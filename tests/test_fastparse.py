"""The fast EC2 parser (aws/fastparse.py) gives exactly botocore's dicts.

Two ways: every EC2 listing the scan reads, answered by the sandbox, parsed by both; and a
Hypothesis property over random XML documents generated from the EC2 output model
(members left out, shuffled, repeated, unknown tags, empty elements, odd timestamps).
"""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.parsers import EC2QueryParser, ResponseParserError, create_parser
from botocore.utils import parse_timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amictl.aws import fastparse
from amictl.aws.fastparse import FastEC2QueryParser, fast_timestamp
from amictl.sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, Sandbox

EC2 = (
    boto3.session.Session()
    .client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    .meta.service_model
)
NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


def both(op: str, body: bytes, status: int = 200) -> tuple[Any, Any]:
    shape = EC2.operation_model(op).output_shape
    resp = {"body": body, "status_code": status, "headers": {}}
    slow = create_parser("ec2").parse(dict(resp), shape)
    fast = FastEC2QueryParser(timestamp_parser=fast_timestamp).parse(dict(resp), shape)
    return slow, fast


def _plain(v: Any) -> Any:
    """XML nodes (botocore leaves some in its result for repeated tags) by content."""
    if isinstance(v, ET.Element):
        return ["<node>", v.tag, v.text, [_plain(c) for c in v]]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def time_as_botocore(text: str) -> None:
    """fast_timestamp answers what botocore's parser answers (repr: value and zone), or
    fails as it does."""
    try:
        want = repr(parse_timestamp(text))
    except ValueError:
        with pytest.raises(ValueError):
            fast_timestamp(text)
        return
    assert repr(fast_timestamp(text)) == want


def same(a: Any, b: Any) -> bool:
    """Equal values, equal key order, equal types (a tzlocal() is not a tzutc())."""
    a, b = _plain(a), _plain(b)
    return bool(a == b) and json.dumps(a, default=repr) == json.dumps(b, default=repr)


# -- the sandbox's own answers


@pytest.fixture(scope="module")
def raw_pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[str, bytes]]]:
    with Sandbox(tmp_path_factory.mktemp("fastparse")) as sb:
        sb.load_builtin("demo")
        sb.load_builtin("large", images=300, snapshots=400, instances=120, launch_templates=20)
        yield _answers(sb)


def _answers(sb: Sandbox) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    for region in ("us-east-1", "eu-west-1"):
        ec2 = boto3.client(
            "ec2",
            region_name=region,
            endpoint_url=sb.endpoint,
            aws_access_key_id=SANDBOX_ACCESS_KEY,
            aws_secret_access_key=SANDBOX_SECRET_KEY,
        )
        ec2.meta.events.register(
            "before-parse.ec2.*",
            lambda response_dict=None, operation_model=None, **_: got.append(
                (operation_model.name, response_dict["body"])
            ),
        )
        images = ec2.describe_images(Owners=["self"])["Images"]
        ec2.describe_images(Owners=["self"], MaxResults=50)
        ec2.describe_snapshots(OwnerIds=["self"])
        ec2.describe_instances()
        ec2.describe_regions(AllRegions=True)
        for t in ec2.describe_launch_templates()["LaunchTemplates"][:10]:
            ec2.describe_launch_template_versions(LaunchTemplateId=t["LaunchTemplateId"])
        for img in images[:5]:
            ec2.describe_image_attribute(ImageId=img["ImageId"], Attribute="launchPermission")
        with pytest.raises(botocore.exceptions.ClientError):
            ec2.describe_images(ImageIds=["ami-00000000000000000"])
    return got


def test_every_listing_of_the_sandbox_parses_the_same(raw_pages: list[tuple[str, bytes]]) -> None:
    ops = {op for op, _ in raw_pages}
    assert {"DescribeImages", "DescribeInstances", "DescribeLaunchTemplateVersions"} <= ops
    for op, body in raw_pages:
        slow, fast = both(op, body)
        assert same(slow, fast), op


def test_error_answers_are_botocores() -> None:
    body = (
        b'<?xml version="1.0"?><Response><Errors><Error><Code>RequestLimitExceeded</Code>'
        b"<Message>Request limit exceeded.</Message></Error></Errors>"
        b"<RequestID>r-1</RequestID></Response>"
    )
    slow, fast = both("DescribeImages", body, status=503)
    assert same(slow, fast) and fast["Error"]["Code"] == "RequestLimitExceeded"


# -- random documents from the model


def _scalar(shape: Shape, rng: random.Random) -> str | None:
    t = shape.type_name
    pick = rng.random()
    if pick < 0.08:
        return None  # an empty element: <x/>
    if t == "boolean":
        return rng.choice(["true", "false", "True", "1"])
    if t in ("integer", "long"):
        return str(rng.randint(-5, 10**6))
    if t in ("float", "double"):
        return rng.choice(["1.5", "0", "-2e3"])
    if t == "timestamp":
        return rng.choice(
            [
                "2026-11-26T10:00:00.000Z",
                "2026-11-26T10:00:00Z",
                "2026-02-03T04:05:06.7Z",
                "2026-11-26T10:00:00+02:00",
                "2026-11-26T10:00:00.000+00:00Z",
                "1700000000",
            ]
        )
    if t == "blob":
        return "aGVsbG8="
    return rng.choice(["", "ami-0abc", "a & b < c", "x" * rng.randint(1, 12), "éü"])


def _element(tag: str, shape: Shape, rng: random.Random, depth: int) -> str:
    if isinstance(shape, StructureShape):
        inner = "".join(_members(shape, rng, depth + 1))
        return f"<{tag}>{inner}</{tag}>"
    if isinstance(shape, ListShape):
        item = shape.member.serialization.get("name", "item")
        n = 0 if depth > 6 else rng.randint(0, 3)
        return f"<{tag}>{''.join(_element(item, shape.member, rng, depth + 1) for _ in range(n))}</{tag}>"
    if isinstance(shape, MapShape):
        return f"<{tag}/>"
    text = _scalar(shape, rng)
    if text is None:
        return f"<{tag}/>"
    return f"<{tag}>{text.replace('&', '&amp;').replace('<', '&lt;')}</{tag}>"


def _members(shape: StructureShape, rng: random.Random, depth: int) -> list[str]:
    if depth > 7:
        return []
    members = list(shape.members.items())
    chosen = [m for m in members if rng.random() < 0.6]
    if rng.random() < 0.3:
        rng.shuffle(chosen)  # out of the model's order
    out = [_element(m.serialization.get("name", n), m, rng, depth) for n, m in chosen]
    if chosen and rng.random() < 0.05:
        n, m = rng.choice(chosen)
        out.append(_element(m.serialization.get("name", n), m, rng, depth))  # a repeated tag
    if rng.random() < 0.1:
        out.insert(rng.randint(0, len(out)), "<notAMember>1</notAMember>")
    return out


OPS = [
    "DescribeImages",
    "DescribeInstances",
    "DescribeSnapshots",
    "DescribeLaunchTemplates",
    "DescribeLaunchTemplateVersions",
    "DescribeImageAttribute",
    "DescribeRegions",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=st.sampled_from(OPS), seed=st.integers(0, 2**32))
def test_random_documents_parse_the_same(op: str, seed: int) -> None:
    rng = random.Random(seed)
    shape = EC2.operation_model(op).output_shape
    inner = "".join(_members(shape, rng, 0))
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><{op}Response xmlns="{NS}">'
        f"<requestId>r-{seed}</requestId>{inner}</{op}Response>"
    ).encode()
    try:
        slow: Any = create_parser("ec2").parse(
            {"body": body, "status_code": 200, "headers": {}}, shape
        )
    except Exception as exc:  # noqa: BLE001 - then the fast parser must fail the same way
        with pytest.raises(type(exc)):
            both(op, body)
        return
    _, fast = both(op, body)
    assert same(slow, fast)


def test_timestamps_match_botocores_in_any_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    for zone in ("UTC", "Europe/Berlin", "America/New_York"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        monkeypatch.setattr(fastparse, "_Z_ZONE", None)
        for text in ["2026-11-26T10:00:00.000Z", "2026-07-01T00:00:00.5Z", "2026-11-26T10:00:00Z"]:
            a, b = parse_timestamp(text), fast_timestamp(text)
            assert a == b and type(a.tzinfo) is type(b.tzinfo) and a.utcoffset() == b.utcoffset()
    monkeypatch.delenv("TZ")
    time.tzset()


def test_the_fast_path_is_taken_and_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.session

    s = botocore.session.get_session()
    fastparse.install(s)
    assert isinstance(
        s.get_component("response_parser_factory").create_parser("ec2"), FastEC2QueryParser
    )
    assert not isinstance(
        s.get_component("response_parser_factory").create_parser("query"), FastEC2QueryParser
    )
    monkeypatch.setenv("AMICTL_BOTOCORE_PARSER", "1")
    s2 = botocore.session.get_session()
    fastparse.install(s2)
    assert type(s2.get_component("response_parser_factory").create_parser("ec2")) is EC2QueryParser


@pytest.mark.parametrize("cut", [200_000, 300_001])
def test_a_big_page_cut_short_fails_as_botocores(cut: int) -> None:
    # a big page is given to expat a piece at a time: the same error, the same message
    item = f"<item><imageId>ami-{'0' * 17}</imageId><name>n &amp; m</name></item>"
    body = (
        f'<DescribeImagesResponse xmlns="{NS}"><requestId>r</requestId><imagesSet>'
        + item * 5000
        + "</imagesSet></DescribeImagesResponse>"
    ).encode()
    assert len(body) > 2 * fastparse._FEED
    slow, fast = both("DescribeImages", body)
    assert same(slow, fast) and len(fast["Images"]) == 5000
    errors = []
    for parser in (create_parser("ec2"), FastEC2QueryParser(timestamp_parser=fast_timestamp)):
        with pytest.raises(ResponseParserError) as exc:
            parser.parse(
                {"body": body[:cut], "status_code": 200, "headers": {}},
                EC2.operation_model("DescribeImages").output_shape,
            )
        errors.append(str(exc.value))
    assert errors[0] == errors[1]


@settings(max_examples=200, deadline=None)
@given(
    st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?Z?\Z",
        fullmatch=True,
    )
)
def test_any_iso_time_with_or_without_zone_is_botocores(text: str) -> None:
    # the fast paths (EC2's "Z" times; zone-less times, as moto writes Auto Scaling's)
    # answer what botocore's dateutil answers, or fail as it does
    time_as_botocore(text)


def test_query_protocol_parsers_read_times_on_the_fast_path() -> None:
    import botocore.session
    from botocore.parsers import QueryParser

    s = botocore.session.get_session()
    fastparse.install(s)
    parser = s.get_component("response_parser_factory").create_parser("query")
    assert type(parser) is QueryParser and parser._timestamp_parser is fast_timestamp
