"""The sandbox's kept answers (sandbox/readcache.py) are never older than the last write.

A repeated DescribeInstances is answered from what the sandbox kept; every kind of call
that can change an instance (EC2's own, another service's that launches instances, the
control API's fleet load) is seen by the next read, also while other readers race it.
"""

from __future__ import annotations

import threading
from typing import Any

from conftest import Env, _accounts

FLEET = """regions: [us-east-1]
images:
  - {alias: base, age_days: 5}
instances:
  - {alias: web, image: base, count: 2, tags: {app: one}}
"""


def _instances(ec2: Any, **kw: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for page in ec2.get_paginator("describe_instances").paginate(**kw):
        for r in page["Reservations"]:
            for i in r["Instances"]:
                out[i["InstanceId"]] = i
    return out


def _tags(i: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in i.get("Tags") or []}


def test_repeated_reads_are_kept_and_every_write_is_seen(env: Env) -> None:
    env.load(FLEET)
    ec2 = env.client("ec2")
    first = _instances(ec2)
    hits = env.sandbox.health()["read_cache_hits"]
    assert _instances(ec2) == first
    assert env.sandbox.health()["read_cache_hits"] > hits, "a repeated read was not kept"

    iid = sorted(first)[0]
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "app", "Value": "two"}])
    assert _tags(_instances(ec2)[iid])["app"] == "two"
    ec2.stop_instances(InstanceIds=[iid])
    assert _instances(ec2)[iid]["State"]["Name"] == "stopped"
    image = first[iid]["ImageId"]
    run = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    assert run["InstanceId"] in _instances(ec2)
    ec2.terminate_instances(InstanceIds=[run["InstanceId"]])
    assert _instances(ec2)[run["InstanceId"]]["State"]["Name"] == "terminated"

    # another service launching instances: an Auto Scaling group's capacity
    asg = env.client("autoscaling")
    lt = ec2.create_launch_template(
        LaunchTemplateName="rc-lt", LaunchTemplateData={"ImageId": image}
    )["LaunchTemplate"]
    before = set(_instances(ec2))
    asg.create_auto_scaling_group(
        AutoScalingGroupName="rc-asg",
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"]},
        MinSize=0,
        MaxSize=3,
        DesiredCapacity=2,
        AvailabilityZones=["us-east-1a"],
    )
    assert len(set(_instances(ec2)) - before) == 2

    # the control API's fleet load
    before = set(_instances(ec2))
    env.load(FLEET)
    assert len(set(_instances(ec2)) - before) == 2


def test_the_same_request_in_another_account_is_its_own(env: Env, sandbox: Any) -> None:
    env.load(FLEET)
    other = Env(sandbox, str(next(_accounts)))
    mine, theirs = _instances(env.client("ec2")), _instances(other.client("ec2"))
    assert mine and not theirs


def test_a_read_racing_writes_never_answers_older_than_the_last_write(env: Env) -> None:
    env.load(FLEET)
    ec2 = env.client("ec2")
    iid = sorted(_instances(ec2))[0]
    stop = threading.Event()

    def reader() -> None:
        r = env.client("ec2")
        while not stop.is_set():
            _instances(r, InstanceIds=[iid])

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for n in range(25):
            ec2.create_tags(Resources=[iid], Tags=[{"Key": "n", "Value": str(n)}])
            assert _tags(_instances(ec2, InstanceIds=[iid])[iid])["n"] == str(n)
    finally:
        stop.set()
        for t in threads:
            t.join()


def _images(ec2: Any) -> dict[str, dict[str, Any]]:
    pages = ec2.get_paginator("describe_images").paginate(Owners=["self"], IncludeDeprecated=True)
    return {i["ImageId"]: i for p in pages for i in p["Images"]}


def test_images_are_kept_while_allowed_amis_are_off_and_every_write_is_seen(env: Env) -> None:
    # DescribeImages is kept only while the caller's Allowed AMIs settings are disabled:
    # their criteria may name an image's age, which moves with the clock alone
    env.load(FLEET)
    ec2 = env.client("ec2")
    first = _images(ec2)
    hits = env.sandbox.health()["read_cache_hits"]
    assert _images(ec2) == first
    assert env.sandbox.health()["read_cache_hits"] > hits, "a repeated read was not kept"
    (image,) = first
    ec2.create_tags(Resources=[image], Tags=[{"Key": "k", "Value": "v"}])
    assert {"Key": "k", "Value": "v"} in _images(ec2)[image]["Tags"]
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)
    assert _images(ec2)[image].get("LastLaunchedTime")
    ec2.enable_allowed_images_settings(AllowedImagesSettingsState="audit-mode")
    _images(ec2)
    hits = env.sandbox.health()["read_cache_hits"]
    assert "ImageAllowed" in _images(ec2)[image]
    assert env.sandbox.health()["read_cache_hits"] == hits, "kept while Allowed AMIs are on"
    ec2.disable_allowed_images_settings()
    ec2.deregister_image(ImageId=image)
    assert image not in _images(ec2)
