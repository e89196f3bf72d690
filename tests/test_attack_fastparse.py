"""Attacks on the fast EC2 parser (aws/fastparse.py): inputs where it gave other values
than botocore's parser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.parsers import create_parser

from amictl.aws.fastparse import FastEC2QueryParser, fast_timestamp
from test_fastparse import EC2, both, same, time_as_botocore


@pytest.mark.parametrize(
    "text",
    [
        "2026-W48-4T10:00:00Z",  # an ISO week date: botocore raises, fromisoformat reads it
        "2026-11-26T10:01:10:000Z",  # ':' before the fraction
        "2526-11-26T10:00:00:000Z",
        "2026-11-26T10:00.0050Z",  # dateutil drops the fraction, fromisoformat keeps it
        "2026-11-26T10:00:00.1234567Z",
        "2026-11-26T10:00:00.9999999Z",
        "2026-11-26T23:59:60.000Z",
        "0000-11-26T10:00:00.000Z",
    ],
)
def test_timestamps_outside_ec2s_format_are_botocores(text: str) -> None:
    time_as_botocore(text)


def test_z_times_in_a_local_zone_that_is_utc_only_in_winter() -> None:
    # dateutil answers tzlocal() for "Z" only where the local zone reads UTC at that time;
    # the zone of a winter time must not be reused for a summer one (an hour off)
    code = (
        "from botocore.utils import parse_timestamp as p\n"
        "from amictl.aws.fastparse import fast_timestamp as f\n"
        "for t in ('2026-01-01T10:00:00.000Z', '2026-07-01T10:00:00.000Z'):\n"
        "    a, b = p(t), f(t)\n"
        "    assert repr(a) == repr(b) and a.utcoffset() == b.utcoffset(), (t, a, b)\n"
    )
    env = {**os.environ, "TZ": "UTC0BST,M3.5.0/1,M10.5.0"}
    env["PYTHONPATH"] = str(Path(__file__).parents[1] / "src")
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def test_a_namespace_with_a_newline_is_not_stripped_as_botocore_does_not() -> None:
    # botocore strips namespaces with re '{.*}', whose '.' stops at a newline
    for body in (
        b'<DescribeImagesResponse xmlns="a&#10;b"><imagesSet><item><imageId>ami-1</imageId>'
        b"</item></imagesSet></DescribeImagesResponse>",
        b'<DescribeImagesResponse><imagesSet><item><x:imageId xmlns:x="a&#10;b">ami-1'
        b"</x:imageId><name>n</name></item></imagesSet></DescribeImagesResponse>",
    ):
        slow, fast = both("DescribeImages", body)
        assert same(slow, fast)


def test_structures_of_one_name_in_two_ec2_models() -> None:
    # EC2's older API versions ship with botocore: their Image has fewer members
    old = (
        boto3.session.Session()
        .client(
            "ec2",
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            api_version="2014-09-01",
        )
        .meta.service_model
    )
    body = (
        b"<DescribeImagesResponse><imagesSet><item><imageId>ami-1</imageId>"
        b"<platformDetails>Linux</platformDetails></item></imagesSet></DescribeImagesResponse>"
    )
    fast = FastEC2QueryParser(timestamp_parser=fast_timestamp)
    for model in (EC2, old, EC2):
        shape = model.operation_model("DescribeImages").output_shape
        resp = {"body": body, "status_code": 200, "headers": {}}
        assert same(create_parser("ec2").parse(dict(resp), shape), fast.parse(dict(resp), shape))
