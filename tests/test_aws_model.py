"""The sandbox's AWS model (--aws-model): latency outside the lock, EC2 request limits.

A private sandbox for this module (the model is process-wide), with small buckets and a
short latency set through the control API so the tests stay fast.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import botocore.exceptions
import pytest
from botocore.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st

from amictl.sandbox.aws_model import bucket_class
from amictl.sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, Sandbox
from cli_fleet import sandbox_ec2


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    s = Sandbox(tmp_path_factory.mktemp("aws-model"))
    s.up()
    yield s
    s.down()


def ec2(sb: Sandbox, region: str, mode: str = "standard", attempts: int = 1):  # noqa: ANN201
    cfg = Config(retries={"mode": mode, "max_attempts": attempts}, max_pool_connections=32)
    return sandbox_ec2(sb, region, cfg)


def test_bucket_classes() -> None:
    assert bucket_class("DescribeSnapshots", {"OwnerId.1": ["self"]}) == "unfiltered"
    assert bucket_class("DescribeSnapshots", {"MaxResults": ["1000"]}) == "non-mutating"
    assert bucket_class("DescribeImages", {"Owner.1": ["self"]}) == "non-mutating"
    assert bucket_class("DescribeImageAttribute", {}) == "non-mutating"
    assert bucket_class("AuthorizeSecurityGroupIngress", {}) == "resource-intensive"
    assert bucket_class("EnableImageDeprecation", {}) == "mutating"
    # the actions the page sizes individually (tests/test_pacing.py checks the sizes)
    assert bucket_class("CreateTags", {}) == "uncategorized"
    assert bucket_class("RunInstances", {}) == "uncategorized"


def test_burst_is_throttled_then_adaptive_retries_get_through(sb: Sandbox) -> None:
    sb.reset_aws_model()
    sb.set_aws_model(
        enabled=True, latency_ms=5, buckets={"non-mutating": [5, 0.01], "unfiltered": [5, 0.01]}
    )
    try:
        plain = ec2(sb, "eu-west-1")
        codes = []
        for _ in range(12):
            try:
                plain.describe_regions()
                codes.append("ok")
            except botocore.exceptions.ClientError as exc:
                codes.append(exc.response["Error"]["Code"])
                assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert codes[:5] == ["ok"] * 5  # the bucket's burst
        assert codes[5:8] == ["RequestLimitExceeded"] * 3
        state = sb.aws_model_state()
        assert state["throttled"].get("ec2.DescribeRegions", 0) >= 1

        sb.set_aws_model(buckets={"non-mutating": [4, 2]})  # full buckets again (slow refill:
        # 8 calls at once overrun it even when a loaded machine spreads them over a second)
        adaptive = ec2(sb, "eu-west-1", "adaptive", 20)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _i: adaptive.describe_regions(), range(8)))
        served = sb.aws_model_state()
        assert served["calls"]["ec2.DescribeRegions"] == 5 + 8
        assert served["throttled_total"] > state["throttled_total"]  # it was throttled ...
        # ... and every call got through: 8 at once from a bucket of 4
    finally:
        sb.reset_aws_model()


def test_regions_served_in_parallel_outside_the_lock(sb: Sandbox) -> None:
    sb.reset_aws_model()
    sb.set_aws_model(enabled=True, latency_ms=300)
    try:
        regions = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"]
        clients = [ec2(sb, r) for r in regions]
        for c in clients:  # connections and signing warmed up
            c.describe_availability_zones()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(regions)) as pool:
            list(pool.map(lambda c: c.describe_availability_zones(), clients))
        wall = time.perf_counter() - t0
        # served one after another this would take 4 x 300 ms
        assert 0.3 <= wall < 0.9, wall
        # and each region has its own buckets: a throttled region leaves another alone
        sb.set_aws_model(latency_ms=0, buckets={"non-mutating": [2, 0.5]})
        east = ec2(sb, "us-east-1")
        for _ in range(2):
            east.describe_availability_zones()
        with pytest.raises(botocore.exceptions.ClientError, match="RequestLimitExceeded"):
            east.describe_availability_zones()
        ec2(sb, "us-west-2").describe_availability_zones()
    finally:
        sb.reset_aws_model()


def test_counts_calls_when_off_and_rejects_bad_settings(sb: Sandbox) -> None:
    from amictl.errors import InputError

    sb.reset_aws_model()
    t0 = time.time()
    ec2(sb, "us-east-1").describe_availability_zones()
    ec2(sb, "us-east-1").describe_availability_zones()
    state = sb.aws_model_state()
    assert state["enabled"] is False
    assert state["calls"] == {"ec2.DescribeAvailabilityZones": 2}
    # when the first of them was served (the benchmark's first DeregisterImage time)
    first = state["first_call_at"]["ec2.DescribeAvailabilityZones"]
    assert t0 <= first <= time.time()
    assert sb.reset_call_counts()["first_call_at"] == {}
    with pytest.raises(InputError, match="unknown bucket class"):
        sb.set_aws_model(buckets={"fast": [1, 1]})


def test_fast_xml_parses_exactly_like_motos_serializer() -> None:
    """DescribeImages / DescribeSnapshots pages written by fastxml: boto3 parses the same."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.parsers import create_parser
    from werkzeug.test import Client

    from amictl.sandbox import builtin, patches, seed, server  # noqa: F401
    from amictl.sandbox.patches import images  # noqa: F401

    patches.apply_all()
    app = server.SandboxApp()
    fl = builtin.build(
        "large", seed=3, images=60, snapshots=90, instances=2, launch_templates=2, regions=1
    )
    seed.seed(fl)
    model = botocore.session.get_session().get_service_model("ec2")
    client = Client(app)

    def call(action: str, query: str) -> dict:
        body = f"Action={action}&Version=2016-11-15&{query}"
        req = AWSRequest(
            method="POST",
            url="http://localhost/",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        SigV4Auth(Credentials(SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY), "ec2", "us-east-1").add_auth(
            req
        )
        r = client.post("/", data=body, headers=dict(req.headers))
        out = create_parser("ec2").parse(
            {"body": r.data, "headers": dict(r.headers), "status_code": r.status_code},
            model.operation_model(action).output_shape,
        )
        out.pop("ResponseMetadata", None)
        return out

    cases = [
        (
            "DescribeImages",
            "Owner.1=self&IncludeDeprecated=true&IncludeDisabled=true&MaxResults=50",
        ),
        ("DescribeSnapshots", "Owner.1=self&MaxResults=60"),
    ]
    cases.append(("DescribeLaunchTemplates", "MaxResults=10"))
    templates = call("DescribeLaunchTemplates", "MaxResults=10")["LaunchTemplates"]
    cases.append(
        (
            "DescribeLaunchTemplateVersions",
            f"LaunchTemplateId={templates[0]['LaunchTemplateId']}",
        )
    )
    try:
        for action, query in cases:
            patches.FAST_XML["on"] = False
            slow = call(action, query)
            patches.FAST_XML["on"] = True
            fast = call(action, query)
            items = (
                slow.get("Images")
                or slow.get("Snapshots")
                or slow.get("LaunchTemplates")
                or slow["LaunchTemplateVersions"]
            )
            assert items and len(items) >= (40 if "Launch" not in action else 2)
            assert action != "DescribeImages" or any(i.get("Tags") for i in items)
            assert fast == slow
    finally:
        patches.FAST_XML["on"] = True


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
    value=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
    public=st.booleans(),
    size=st.integers(min_value=0, max_value=16384),
)
def test_fast_xml_writes_any_text_and_scalar_as_boto3_reads_it(
    name: str, value: str, public: bool, size: int
) -> None:
    # scalars are written in place by their structure, escaped only when they hold & < >
    import botocore.session
    from botocore.parsers import create_parser

    from amictl.sandbox import fastxml

    model = botocore.session.get_session().get_service_model("ec2")
    op = model.operation_model("DescribeImages")
    image = {
        "ImageId": "ami-0123456789abcdef0",
        "Name": name,
        "Public": public,
        "Tags": [{"Key": "k<&>", "Value": value}],
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": size}}],
    }
    body = fastxml.ec2_xml(op, {"Images": [image]}).encode()
    out = create_parser("ec2").parse(
        {"body": body, "headers": {}, "status_code": 200}, op.output_shape
    )
    # (XML has no carriage return in text: a parser reads one as a newline)
    assert out["Images"] == [
        {
            **image,
            "Name": name.replace("\r", "\n"),
            "Tags": [{"Key": "k<&>", "Value": value.replace("\r", "\n")}],
        }
    ]
