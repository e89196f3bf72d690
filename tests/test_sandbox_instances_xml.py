"""DescribeInstances written by fastxml (sandbox/patches/instances.py) parses exactly like
moto's own serializer.

The sandbox app runs in this process (FAST_XML is a process-wide switch) behind a real
HTTP server; real boto3 clients build a rich set of instances (stopped, terminated, tagged,
IAM profile, key pair, spot, two ENIs and volumes, from a launch template, in an Auto
Scaling group, another region, another account) and every read is asked twice, FAST_XML
off then on: boto3's parsed answers must be equal. Regions and names of their own keep
this module apart from the other in-process tests' state.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amictl.sandbox import patches, server
from amictl.sandbox.control import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY
from amictl.sandbox.patches import instances as fast_instances

REGION, OTHER_REGION = "ca-central-1", "sa-east-1"
OTHER_ACCOUNT = "210987654321"


class Served:
    def __init__(self) -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        patches.apply_all()
        self.app = server.SandboxApp()
        self.httpd = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=Quiet)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.creds = (SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, None)
        self._clients: dict[tuple[Any, ...], Any] = {}

    def client(self, service: str, region: str = REGION, creds: Any = None) -> Any:
        key = (service, region, creds)
        if key not in self._clients:
            self._clients[key] = self._new_client(service, region, creds)
        return self._clients[key]

    def _new_client(self, service: str, region: str, creds: Any) -> Any:
        ak, sk, token = creds or self.creds
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=ak,
            aws_secret_access_key=sk,
            aws_session_token=token,
        )

    def both(self, ec2: Any, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The same read with moto's serializer, then with fastxml (no kept answer)."""
        out = []
        for on in (False, True):
            patches.FAST_XML["on"] = on
            self.app.read_cache.written()
            try:
                answer = ec2.describe_instances(**kwargs)
            finally:
                patches.FAST_XML["on"] = True
            answer.pop("ResponseMetadata")
            out.append(answer)
        return out[0], out[1]


def _image(ec2: Any, name: str) -> str:
    vol = ec2.create_volume(Size=8, AvailabilityZone=ec2.meta.region_name + "a")["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    return ec2.register_image(
        Name=name,
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
    )["ImageId"]


def _build(s: Served) -> dict[str, Any]:
    ec2 = s.client("ec2")
    img = _image(ec2, "fi-base")
    ec2.create_key_pair(KeyName="fi-key")
    s.client("iam").create_instance_profile(InstanceProfileName="fi-profile")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24", AvailabilityZone=REGION + "b")
    subnet = sub["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="fi-sg", Description="d", VpcId=vpc)["GroupId"]
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[sg], Description="second")
    tagged = ec2.run_instances(
        ImageId=img,
        MinCount=3,
        MaxCount=3,
        InstanceType="t3.micro",
        KeyName="fi-key",
        IamInstanceProfile={"Name": "fi-profile"},
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "Name", "Value": "a&b <c> 'd'"}, {"Key": "empty", "Value": ""}],
            }
        ],
        MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
        BlockDeviceMappings=[
            {"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 20, "DeleteOnTermination": False}}
        ],
    )["Instances"]
    ids = [i["InstanceId"] for i in tagged]
    ec2.stop_instances(InstanceIds=[ids[0]])
    ec2.terminate_instances(InstanceIds=[ids[1]])
    spot = ec2.run_instances(
        ImageId=img,
        MinCount=1,
        MaxCount=1,
        NetworkInterfaces=[
            {"DeviceIndex": 0, "SubnetId": subnet, "Groups": [sg], "AssociatePublicIpAddress": True}
        ],
        InstanceMarketOptions={"MarketType": "spot"},
        EbsOptimized=True,
        Monitoring={"Enabled": True},
        HibernationOptions={"Configured": True},
        Placement={"Tenancy": "default"},
    )["Instances"][0]["InstanceId"]
    ec2.attach_network_interface(
        NetworkInterfaceId=eni["NetworkInterface"]["NetworkInterfaceId"],
        InstanceId=spot,
        DeviceIndex=1,
    )
    vol = ec2.create_volume(Size=4, AvailabilityZone=REGION + "b")["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=spot, Device="/dev/sdc")
    ec2.create_launch_template(
        LaunchTemplateName="fi-lt",
        LaunchTemplateData={
            "ImageId": img,
            "InstanceType": "t3.small",
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": "lt", "Value": "1"}]}
            ],
        },
    )
    ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "fi-lt"})
    s.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="fi-asg",
        LaunchTemplate={"LaunchTemplateName": "fi-lt"},
        MinSize=2,
        MaxSize=2,
        DesiredCapacity=2,
        AvailabilityZones=[REGION + "a"],
    )
    other = s.client("ec2", OTHER_REGION)
    other.run_instances(ImageId=_image(other, "fi-other"), MinCount=2, MaxCount=2)
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/fi-role"
    c = s.client("sts").assume_role(RoleArn=role, RoleSessionName="fi")["Credentials"]
    creds = (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    foreign = s.client("ec2", REGION, creds)
    foreign.run_instances(ImageId=_image(foreign, "fi-foreign"), MinCount=1, MaxCount=1)
    return {"ids": ids, "spot": spot, "creds": creds}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Served, dict[str, Any]]]:
    s = Served()
    try:
        yield s, _build(s)
    finally:
        s.httpd.shutdown()


def _instances(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for r in answer["Reservations"] for i in r["Instances"]]


def test_fast_describe_instances_parses_like_motos(served: tuple[Served, dict[str, Any]]) -> None:
    s, made = served
    ec2 = s.client("ec2")
    before = dict(fast_instances.STATS)
    slow, fast = s.both(ec2)
    assert fast == slow
    found = _instances(slow)
    assert len(found) == 7  # 3 tagged, spot, from the template, 2 in the group
    by_id = {i["InstanceId"]: i for i in found}
    assert by_id[made["ids"][0]]["State"]["Name"] == "stopped"
    assert by_id[made["ids"][1]]["State"]["Name"] == "terminated"
    assert by_id[made["ids"][2]]["KeyName"] == "fi-key"
    # moto associates the profile with the first instance of the launch only
    assert by_id[made["ids"][0]]["IamInstanceProfile"]["Arn"].endswith("/fi-profile")
    assert {"Key": "Name", "Value": "a&b <c> 'd'"} in by_id[made["ids"][2]]["Tags"]
    assert len(by_id[made["ids"][2]]["BlockDeviceMappings"]) == 2
    spot = by_id[made["spot"]]
    assert spot["InstanceLifecycle"] == "spot" and len(spot["NetworkInterfaces"]) == 2
    assert len(spot["BlockDeviceMappings"]) == 2 and spot["HibernationOptions"]["Configured"]
    tags = [t["Key"] for i in found for t in i.get("Tags", [])]
    assert "aws:autoscaling:groupName" in tags and "aws:ec2launchtemplate:id" in tags

    running = [{"Name": "instance-state-name", "Values": ["running"]}]
    reads = [
        (s.client("ec2", OTHER_REGION), {}),
        (s.client("ec2", REGION, made["creds"]), {}),
        (ec2, {"Filters": running}),
        (ec2, {"InstanceIds": [made["spot"], made["ids"][0]]}),
    ]
    for client, kwargs in reads:
        slow, fast = s.both(client, **kwargs)
        assert fast == slow and _instances(slow), kwargs
    # pages: MaxResults / NextToken as moto gives them
    token: dict[str, Any] = {}
    pages = 0
    while True:
        slow, fast = s.both(ec2, MaxResults=2, **token)
        assert fast == slow
        pages += 1
        if not slow.get("NextToken"):
            break
        token = {"NextToken": slow["NextToken"]}
    assert pages >= 2
    after = fast_instances.STATS
    assert after["moto"] == before["moto"]  # every page above was written by fastxml
    assert after["fast"] >= before["fast"] + 5 + pages


def _with_spot_request_id(made: dict[str, Any]) -> Any:
    """A member the fast path does not write, set on one instance."""
    from moto.ec2.models import ec2_backends

    inst = ec2_backends["123456789012"][REGION].get_instance(made["spot"])
    inst.spot_instance_request_id = "sir-fi000001"
    return inst


def test_unwritten_member_falls_back_to_moto(served: tuple[Served, dict[str, Any]]) -> None:
    s, made = served
    inst = _with_spot_request_id(made)
    try:
        before = dict(fast_instances.STATS)
        slow, fast = s.both(s.client("ec2"), InstanceIds=[made["spot"]])
        assert fast == slow
        assert _instances(fast)[0]["SpotInstanceRequestId"] == "sir-fi000001"
        assert fast_instances.STATS["moto"] == before["moto"] + 1
    finally:
        del inst.spot_instance_request_id


def test_twin_without_the_check_answers_differently(
    served: tuple[Served, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "go" twin: with the absent-member check patched out the fast page silently
    drops what moto writes."""
    s, made = served
    monkeypatch.setattr(fast_instances, "_silent", lambda obj, _shape: obj)
    inst = _with_spot_request_id(made)
    try:
        slow, fast = s.both(s.client("ec2"), InstanceIds=[made["spot"]])
        assert "SpotInstanceRequestId" in _instances(slow)[0]
        assert "SpotInstanceRequestId" not in _instances(fast)[0]
    finally:
        del inst.spot_instance_request_id


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("&<>'\""),
    max_size=12,
)


@settings(max_examples=8, deadline=None)
@given(
    tags=st.dictionaries(
        _TEXT.filter(lambda k: k.strip() and not k.startswith("aws:")), _TEXT, max_size=4
    )
)
def test_any_tags_parse_alike(served: tuple[Served, dict[str, Any]], tags: dict[str, str]) -> None:
    s, made = served
    ec2 = s.client("ec2")
    instance = made["ids"][2]
    old = [{"Key": k} for k in ("Name", "empty")]
    ec2.delete_tags(Resources=[instance], Tags=old + [{"Key": k} for k in tags])
    if tags:
        ec2.create_tags(
            Resources=[instance], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
    try:
        slow, fast = s.both(ec2, InstanceIds=[instance])
        assert fast == slow
        got = {t["Key"]: t["Value"] for t in _instances(fast)[0].get("Tags", [])}
        assert got == tags
    finally:
        if tags:
            ec2.delete_tags(Resources=[instance], Tags=[{"Key": k} for k in tags])
        ec2.create_tags(
            Resources=[instance],
            Tags=[{"Key": "Name", "Value": "a&b <c> 'd'"}, {"Key": "empty", "Value": ""}],
        )


def test_pages_written_side_by_side_on_first_use(
    served: tuple[Served, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads run side by side (the read lock): a shape compiled by one must never be seen
    half built by another (its struct writer is cached before its members are filled)."""
    import re
    from concurrent.futures import ThreadPoolExecutor

    from amictl.sandbox import fastxml

    s, made = served
    s.app.read_cache.written()
    client = s.client("ec2")
    view = fast_instances.describe_instances_view(
        {"Reservations": _reservations(made["spot"]), "NextToken": None}
    )
    assert view is not None
    op = client.meta.service_model.operation_model("DescribeInstances")
    for _ in range(3):
        monkeypatch.setattr(fastxml, "_COMPILED", {})
        monkeypatch.setattr(fastxml, "_OUTPUTS", {})
        barrier = threading.Barrier(8)

        def write(_i: int, barrier: threading.Barrier = barrier) -> str:
            barrier.wait()
            return re.sub(r"<requestId>[^<]*</requestId>", "", fastxml.ec2_xml(op, view))

        with ThreadPoolExecutor(8) as pool:
            pages = list(pool.map(write, range(8)))
        assert len(set(pages)) == 1 and "<instanceId>" in pages[0]


def _reservations(instance_id: str) -> list[Any]:
    from moto.ec2.models import ec2_backends

    return ec2_backends["123456789012"][REGION].get_reservations_by_instance_ids([instance_id])
