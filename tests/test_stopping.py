"""A stop ends the waits inside a call when AWS can have done none of it (aws/stopping.py).

Each test checks AWS's own state (the tag is on the image or not), not what amictl says.
The guard's twins: treating a 5xx on a mutating call as "not done" would end
``test_a_mutating_call_that_may_have_been_done_is_retried_to_its_answer`` with Interrupted
and no tag; ending calls outside ``end_calls`` blocks would fail
``test_a_stop_never_ends_calls_outside_an_end_calls_block`` (a bake's clean-up).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.retries import bucket

from amictl import interrupts
from amictl.aws import stopping
from amictl.errors import Interrupted

FLEET = "images:\n  - {alias: a1, age_days: 10, tags: {family: f}}\n"


@pytest.fixture(autouse=True)
def _fresh_stop_flag(sandbox):
    interrupts.reset()
    yield
    interrupts.reset()
    sandbox.clear_faults()


def _image(env) -> str:
    env.load(FLEET)
    return env.client("ec2").describe_images(Owners=["self"])["Images"][0]["ImageId"]


def _tags(env, image: str) -> dict[str, str]:
    img = env.client("ec2").describe_images(ImageIds=[image])["Images"][0]
    return {t["Key"]: t["Value"] for t in img.get("Tags", [])}


def _fault(env, action: str, code: str, status: int, count: int | None = None) -> None:
    rule = {"service": "ec2", "action": action, "code": code, "status": status}
    env.sandbox.set_faults([rule if count is None else {**rule, "count": count}])


def _tag(ec2: Any, image: str) -> None:
    ec2.create_tags(Resources=[image], Tags=[{"Key": "k", "Value": "v"}])


def _stop_at_first_answer(client: Any) -> None:
    """The stop arrives between a call's first answer and its retry (as a signal would)."""

    def hook(response: Any = None, **_kw: Any) -> None:
        interrupts.request_stop()

    client.meta.events.register_first("needs-retry.ec2", hook)


def test_adaptive_retry_mode_is_botocore_s_own(env):
    """The client's retries are botocore's standard handler plus adaptive mode's limiter:
    a throttled burst still gets through (the retries work at all after the rebuild)."""
    ec2 = env.connector().client("ec2", "us-east-1", env.role_arn)
    _fault(env, "DescribeRegions", "RequestLimitExceeded", 503, count=2)
    assert ec2.describe_regions()["Regions"]
    assert env.sandbox.fault_state()["injected"] == 2


@pytest.mark.parametrize("code,status", [("RequestLimitExceeded", 503), ("InternalError", 500)])
def test_a_read_waiting_to_be_retried_ends_at_a_stop(env, code, status):
    ec2 = env.connector().client("ec2", "us-east-1", env.role_arn)
    _fault(env, "DescribeImages", code, status)
    _stop_at_first_answer(ec2)
    t0 = time.monotonic()
    with interrupts.cooperative(end_calls=True), pytest.raises(Interrupted):
        ec2.describe_images(Owners=["self"])
    assert time.monotonic() - t0 < 2
    assert env.sandbox.fault_state()["injected"] == 1  # no retry was sent


def test_a_throttled_mutating_call_ends_at_a_stop_and_aws_did_nothing(env):
    image = _image(env)
    ec2 = env.connector().client("ec2", "us-east-1", env.role_arn)
    _fault(env, "CreateTags", "RequestLimitExceeded", 503, count=1)
    _stop_at_first_answer(ec2)
    with interrupts.cooperative(end_calls=True), pytest.raises(Interrupted):
        _tag(ec2, image)
    assert "k" not in _tags(env, image)


def test_a_mutating_call_that_may_have_been_done_is_retried_to_its_answer(env):
    """A 5xx can come after AWS did the call: its outcome must be known, so it is retried."""
    image = _image(env)
    ec2 = env.connector().client("ec2", "us-east-1", env.role_arn)
    _fault(env, "CreateTags", "InternalError", 500, count=1)
    _stop_at_first_answer(ec2)
    with interrupts.cooperative(end_calls=True):
        _tag(ec2, image)
    assert interrupts.stop_requested()
    assert _tags(env, image)["k"] == "v"


def test_nothing_is_sent_by_a_call_started_after_a_stop_in_an_end_calls_block(env):
    image = _image(env)
    ec2 = env.connector().client("ec2", "us-east-1", env.role_arn)
    interrupts.request_stop()
    with interrupts.cooperative(end_calls=True), pytest.raises(Interrupted):
        _tag(ec2, image)
    assert "k" not in _tags(env, image)


def test_a_stop_never_ends_calls_outside_an_end_calls_block(env):
    """A bake terminates its instances in a ``finally`` after the stop: those calls go."""
    image = _image(env)
    ec2 = env.connector().client("ec2", "us-east-1", env.role_arn)
    _fault(env, "CreateTags", "RequestLimitExceeded", 503, count=1)
    interrupts.request_stop()
    with interrupts.cooperative():
        _tag(ec2, image)
    assert _tags(env, image)["k"] == "v"


def test_a_call_waiting_in_the_send_bucket_ends_at_a_stop():
    """Adaptive mode's bucket at its slowest (0.5 sends/s): a waiting call ends at once."""
    b = stopping._Bucket(max_rate=0.5, clock=bucket.Clock())
    b.acquire()  # the one token
    got: list[BaseException | float] = []

    def call() -> None:
        with interrupts.cooperative(end_calls=True):
            t0 = time.monotonic()
            try:
                stopping._tracked(lambda _op, _params: b.acquire())("DescribeImages", {})
                got.append(time.monotonic() - t0)
            except Interrupted as exc:
                got.append(exc)

    th = threading.Thread(target=call)
    th.start()
    time.sleep(0.3)
    interrupts.request_stop()
    t0 = time.monotonic()
    th.join(5)
    assert isinstance(got[0], Interrupted)  # not a token got 1.7 s later
    assert time.monotonic() - t0 < 1.2


def test_the_send_bucket_still_paces_without_a_stop():
    b = stopping._Bucket(max_rate=2, clock=bucket.Clock())
    b.acquire()
    b.acquire()
    t0 = time.monotonic()
    b.acquire()
    assert 0.3 < time.monotonic() - t0 < 3
