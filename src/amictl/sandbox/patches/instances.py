"""DescribeInstances written by fastxml: moto's Instance objects as plain dicts in the API's
output shape, exactly what moto's generic serializer emits for them.

moto writes a page of instances through its model walker and xmltodict, about 2.5 ms of
the sandbox's CPU per instance. Selection (filters, InstanceIds, MaxResults/NextToken) is
moto's own; only the writing changes. A member this module does not write is checked on
every object with moto's own attribute lookup (:func:`_silent`): if moto would write
anything for it, the page goes through moto's serializer (never a different answer).
tests/test_sandbox_instances_xml.py compares what boto3 parses with FAST_XML on and off.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from botocore.model import ServiceModel, StructureShape
from botocore.utils import parse_to_aware_datetime
from moto.core.responses import ActionResult
from moto.core.serialize import AttributePickerContext, XFormedAttributePicker
from moto.core.utils import MISSING, get_value
from moto.ec2.models.instances import Instance

from ..fastxml import FastResult
from .helpers import FAST_XML, patch

# Pages written here / by moto because an object held something not written here.
STATS = {"fast": 0, "moto": 0}


class Uncovered(Exception):
    """moto would write something this module does not: the page goes through moto."""


@functools.cache
def _ec2_model() -> ServiceModel:
    import botocore.session

    return botocore.session.get_session().get_service_model("ec2")


def _shape(name: str) -> StructureShape:
    shape = _ec2_model().shape_for(name)
    assert isinstance(shape, StructureShape)
    return shape


_PICKER = XFormedAttributePicker()
_SHAPES: dict[str, StructureShape] = {}

# Members written here, per shape (anything else must be absent or None on the object).
WRITTEN: dict[str, frozenset[str]] = {
    "Reservation": frozenset({"ReservationId", "OwnerId", "Groups", "Instances"}),
    "Instance": frozenset(
        {
            "AmiLaunchIndex",
            "Architecture",
            "BlockDeviceMappings",
            "ClientToken",
            "EbsOptimized",
            "HibernationOptions",
            "Hypervisor",
            "IamInstanceProfile",
            "ImageId",
            "InstanceId",
            "InstanceLifecycle",
            "InstanceType",
            "KernelId",
            "KeyName",
            "LaunchTime",
            "MetadataOptions",
            "Monitoring",
            "NetworkInterfaces",
            "Placement",
            "Platform",
            "PrivateDnsName",
            "PrivateIpAddress",
            "ProductCodes",
            "PublicDnsName",
            "PublicIpAddress",
            "RootDeviceName",
            "RootDeviceType",
            "SecurityGroups",
            "SourceDestCheck",
            "SriovNetSupport",
            "State",
            "StateReason",
            "StateTransitionReason",
            "SubnetId",
            "Tags",
            "VirtualizationType",
            "VpcId",
        }
    ),
    "EbsInstanceBlockDevice": frozenset(
        {"AttachTime", "DeleteOnTermination", "Status", "VolumeId"}
    ),
    "InstanceBlockDeviceMapping": frozenset({"DeviceName", "Ebs"}),
    "IamInstanceProfile": frozenset({"Arn", "Id"}),
    "HibernationOptions": frozenset({"Configured"}),
    "Monitoring": frozenset({"State"}),
    "InstanceState": frozenset({"Code", "Name"}),
    "StateReason": frozenset({"Code", "Message"}),
    "Placement": frozenset({"AvailabilityZone", "GroupName", "Tenancy", "HostId"}),
    "InstanceMetadataOptionsResponse": frozenset(
        {
            "State",
            "HttpTokens",
            "HttpPutResponseHopLimit",
            "HttpEndpoint",
            "HttpProtocolIpv6",
            "InstanceMetadataTags",
        }
    ),
    "GroupIdentifier": frozenset({"GroupId", "GroupName"}),
    "InstanceNetworkInterface": frozenset(
        {
            "Association",
            "Attachment",
            "Description",
            "Groups",
            "InterfaceType",
            "Ipv6Addresses",
            "MacAddress",
            "NetworkInterfaceId",
            "OwnerId",
            "PrivateDnsName",
            "PrivateIpAddress",
            "PrivateIpAddresses",
            "SourceDestCheck",
            "Status",
            "SubnetId",
            "VpcId",
        }
    ),
    "InstanceNetworkInterfaceAssociation": frozenset({"IpOwnerId", "PublicDnsName", "PublicIp"}),
    "InstanceNetworkInterfaceAttachment": frozenset(
        {
            "AttachTime",
            "AttachmentId",
            "DeleteOnTermination",
            "DeviceIndex",
            "NetworkCardIndex",
            "Status",
        }
    ),
    "InstancePrivateIpAddress": frozenset({"Association", "Primary", "PrivateIpAddress"}),
    "InstanceIpv6Address": frozenset({"Ipv6Address", "IsPrimaryIpv6"}),
}


class _Unwritten:
    """For one class of object and one shape: the attribute names moto's picker tries, in
    its order, for each member not written here (found once, with moto's own code)."""

    def __init__(self, obj: Any, shape_name: str) -> None:
        shape = _SHAPES.get(shape_name)
        if shape is None:
            shape = _SHAPES[shape_name] = _shape(shape_name)
        names = []
        for name, member in shape.members.items():
            if name in WRITTEN[shape_name]:
                continue
            member.parent = shape  # type: ignore[attr-defined]  # as moto's walker sets it
            ctx = AttributePickerContext(obj=obj, key=name, shape=member)
            names.append(tuple(_PICKER.get_possible_keys(ctx)))
        self.names = tuple(names)
        every = {n for ns in names for n in ns}
        cls = type(obj)
        # Plain objects whose class defines none of the names (no property, no method):
        # moto finds a name only in the object's own __dict__.
        self.only_own = (
            cls is dict
            or not hasattr(cls, "__getitem__")
            and not hasattr(cls, "__getattr__")
            and hasattr(obj, "__dict__")
            and not any(hasattr(cls, n) for n in every)
        )
        self.every = frozenset(every)


_UNWRITTEN: dict[tuple[type, str], _Unwritten] = {}


def _silent(obj: Any, shape_name: str) -> Any:
    """``obj`` itself, after checking that moto writes nothing for the members of
    ``shape_name`` this module leaves out (the first attribute moto finds is None)."""
    key = (type(obj), shape_name)
    found = _UNWRITTEN.get(key)
    if found is None:
        found = _UNWRITTEN[key] = _Unwritten(obj, shape_name)
    if found.only_own and found.every.isdisjoint(obj if type(obj) is dict else vars(obj)):
        return obj  # none of the names exists: moto finds nothing (same answer, faster)
    for names in found.names:
        for name in names:
            value = get_value(obj, name, MISSING)
            if value is not MISSING:
                if value is not None:
                    raise Uncovered(f"{shape_name}: {names[0]}")
                break
    return obj


# moto's conversions of a member's value by the member's type (serialize.py)
def _bool(v: Any) -> bool | None:
    return None if v is None else (v is True or str(v).lower() == "true")


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _time(v: Any) -> str | None:
    if v is None:
        return None
    if type(v) is not dt.datetime or v.tzinfo is not None:
        v = parse_to_aware_datetime(v)  # what moto does; a naive datetime keeps its fields
    return v.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _known_dict(v: Any, shape_name: str, keys: frozenset[str]) -> dict[str, Any]:
    """``v``, a dict holding only ``keys`` (moto's own dicts for these members; any other
    key might be one moto's picker finds first)."""
    if type(v) is not dict or not keys.issuperset(v):
        raise Uncovered(shape_name)
    return _silent(v, shape_name)


def _plain_dict(v: Any, shape_name: str, kinds: dict[str, Any]) -> dict[str, Any] | None:
    """A dict member whose keys are the members' names (moto's picker reads them as is)."""
    if v is None:
        return None
    _known_dict(v, shape_name, frozenset(kinds))
    return {k: conv(v.get(k)) for k, conv in kinds.items()}


def _text(v: Any) -> Any:
    return v


def _group(g: Any) -> dict[str, Any]:
    _silent(g, "GroupIdentifier")
    return {"GroupId": g.group_id, "GroupName": g.group_name}


def _ebs(device: str, block: Any) -> dict[str, Any]:
    _silent(block, "EbsInstanceBlockDevice")
    return {
        "DeviceName": device,
        "Ebs": {
            "AttachTime": _time(block.attach_time),
            "DeleteOnTermination": _bool(block.delete_on_termination),
            "Status": Instance.get_block_device_status(block.status),
            "VolumeId": block.volume_id,
        },
    }


# the keys of moto's NetworkInterface.association and instance_private_ip_address_list
_ASSOCIATION_KEYS = frozenset(
    {"allocationId", "associationId", "natEnabled", "publicIp", "publicDnsName", "ipOwnerId"}
)
_PRIVATE_IP_KEYS = frozenset({"PrivateIpAddress", "Primary", "Association"})


def _association(a: Any) -> dict[str, Any] | None:
    if a is None:
        return None
    _known_dict(a, "InstanceNetworkInterfaceAssociation", _ASSOCIATION_KEYS)
    return {
        "IpOwnerId": a.get("ipOwnerId"),
        "PublicDnsName": a.get("publicDnsName"),
        "PublicIp": a.get("publicIp"),
    }


def _private_ip(item: Any) -> dict[str, Any]:
    _known_dict(item, "InstancePrivateIpAddress", _PRIVATE_IP_KEYS)
    return {
        "Association": _association(item.get("Association")),
        "Primary": _bool(item.get("Primary")),
        "PrivateIpAddress": item.get("PrivateIpAddress"),
    }


def _attachment(a: Any) -> dict[str, Any] | None:
    if a is None:
        return None
    _silent(a, "InstanceNetworkInterfaceAttachment")
    return {
        "AttachTime": _time(a.attach_time),
        "AttachmentId": a.attachment_id,
        "DeleteOnTermination": _bool(a.delete_on_termination),
        "DeviceIndex": _int(a.device_index),
        "NetworkCardIndex": _int(a.network_card_index),
        "Status": a.status,
    }


def _nic(n: Any) -> dict[str, Any]:
    _silent(n, "InstanceNetworkInterface")
    return {
        "Association": _association(n.association),
        "Attachment": _attachment(n.attachment),
        "Description": n.description,
        "Groups": [_group(g) for g in n.group_set],
        "Ipv6Addresses": [
            _plain_dict(x, "InstanceIpv6Address", {"Ipv6Address": _text, "IsPrimaryIpv6": _bool})
            for x in n.instance_ipv6_address_list
        ],
        "MacAddress": n.mac_address,
        "NetworkInterfaceId": n.id,
        "OwnerId": n.owner_id,
        "PrivateDnsName": getattr(n, "private_dns_name", None),  # set only with an IP
        "PrivateIpAddress": n.private_ip_address,
        "PrivateIpAddresses": [_private_ip(x) for x in n.instance_private_ip_address_list],
        "SourceDestCheck": _bool(n.source_dest_check),
        "Status": n.status,
        "SubnetId": n.subnet_id,
        "VpcId": n.vpc_id,
        "InterfaceType": n.interface_type,
    }


def _placement(p: Any) -> dict[str, Any] | None:
    if p is None:
        return None
    _silent(p, "Placement")
    return {
        "GroupName": p.group_name,
        "HostId": p.host_id,
        "Tenancy": p.tenancy,
        "AvailabilityZone": p.availability_zone,
    }


def _metadata(m: Any) -> dict[str, Any] | None:
    if m is None:
        return None
    _silent(m, "InstanceMetadataOptionsResponse")
    return {
        "State": m.state,
        "HttpTokens": m.http_tokens,
        "HttpPutResponseHopLimit": _int(m.http_put_response_hop_limit),
        "HttpEndpoint": m.http_endpoint,
        "HttpProtocolIpv6": m.http_protocol_ipv6,
        "InstanceMetadataTags": m.instance_metadata_tags,
    }


def _state_reason(s: Any) -> dict[str, Any] | None:
    if s is None:
        return None
    _silent(s, "StateReason")
    return {"Code": s.code, "Message": s.message}


def _state(s: Any) -> dict[str, Any]:
    _silent(s, "InstanceState")
    return {"Code": _int(s.code), "Name": s.name}


def _instance_view(i: Any) -> dict[str, Any]:
    """The Instance shape as moto's serializer writes ``i`` for DescribeInstances."""
    _silent(i, "Instance")
    if i.product_codes:
        raise Uncovered("Instance: ProductCodes")
    state = i.instance_state
    tags = [{"Key": k, "Value": v} for k, v in (i.ec2_backend.tags.get(i.id) or {}).items()]
    return {
        "Architecture": i.architecture,
        "BlockDeviceMappings": [_ebs(d, b) for d, b in i.get_block_device_mapping],
        "ClientToken": i.client_token,
        "EbsOptimized": _bool(i.ebs_optimized),
        "Hypervisor": i.hypervisor,
        "IamInstanceProfile": _plain_dict(
            i.iam_instance_profile, "IamInstanceProfile", {"Arn": _text, "Id": _text}
        ),
        "InstanceLifecycle": i.lifecycle,
        "NetworkInterfaces": [_nic(n) for n in i.network_interfaces],
        "RootDeviceName": i.root_device_name,
        "RootDeviceType": i.root_device_type,
        "SecurityGroups": [_group(g) for g in i.security_groups],
        "SourceDestCheck": _bool(i.source_dest_check),
        "SriovNetSupport": i.sriov_net_support,
        "StateReason": _state_reason(i.state_reason),
        "Tags": tags or None,
        "VirtualizationType": i.virtualization_type,
        "HibernationOptions": _plain_dict(
            i.hibernation_options, "HibernationOptions", {"Configured": _bool}
        ),
        "MetadataOptions": _metadata(i.metadata_options),
        "InstanceId": i.id,
        "ImageId": i.image_id,
        "State": None if state is None else _state(state),
        "PrivateDnsName": i.private_dns_name,
        "PublicDnsName": i.public_dns_name,
        "StateTransitionReason": i.state_transition_reason,
        "KeyName": i.key_name,
        "AmiLaunchIndex": _int(i.ami_launch_index),
        "ProductCodes": [],
        "InstanceType": i.instance_type,
        "LaunchTime": _time(i.launch_time),
        "Placement": _placement(i.placement),
        "KernelId": i.kernel_id,
        "Platform": i.platform,
        "Monitoring": _plain_dict(i.monitoring, "Monitoring", {"State": _text}),
        "SubnetId": i.subnet_id,
        "VpcId": i.vpc_id,
        "PrivateIpAddress": i.private_ip_address,
        "PublicIpAddress": i.public_ip_address,
    }


def _reservation_view(r: Any) -> dict[str, Any]:
    _silent(r, "Reservation")
    if r.groups:
        raise Uncovered("Reservation: Groups")
    return {
        "ReservationId": r.id,
        "OwnerId": r.owner_id,
        "Groups": [],
        "Instances": [_instance_view(i) for i in r.instances],
    }


def describe_instances_view(result: dict[str, Any]) -> dict[str, Any] | None:
    """The DescribeInstances output for moto's result (its Reservation objects), or None
    when an object holds something this module does not write."""
    try:
        view: dict[str, Any] = {
            "Reservations": [_reservation_view(r) for r in result["Reservations"]]
        }
    except Uncovered:
        return None
    if result.get("NextToken"):
        view["NextToken"] = result["NextToken"]
    return view


def _members_known() -> None:
    """Every name in WRITTEN is a member of its shape (a typo would write nothing)."""
    for name, members in WRITTEN.items():
        shape = _shape(name)
        unknown = members - set(shape.members)
        assert not unknown, (name, unknown)


@patch(
    "DescribeInstances: the page written by fastxml (moto's serializer costs ~2.5 ms of CPU per "
    "instance); moto selects, filters and pages as before"
)
def describe_instances_fast() -> None:
    from moto.ec2.responses.instances import InstanceResponse

    _members_known()
    orig = InstanceResponse.describe_instances

    def describe_instances(self: Any) -> ActionResult:
        found = orig(self)
        if FAST_XML["on"] and isinstance(found.result, dict):
            view = describe_instances_view(found.result)
            STATS["fast" if view is not None else "moto"] += 1
            if view is not None:
                return FastResult(view)
        return found

    InstanceResponse.describe_instances = describe_instances  # type: ignore[method-assign]
