"""The sandbox's AMI governance APIs (issue 20), one test per API row of docs/sandbox.md,
through boto3 over HTTP, compared with what the EC2 API reference documents."""

from __future__ import annotations

import datetime as dt

import botocore.exceptions
import pytest

from conftest import Env, _accounts

FLEET = """
regions: [us-east-1, eu-west-1]
images:
  - {alias: web1, name: web-1, tags: {family: web, version: "1"}}
  - {alias: web2, name: web-2, tags: {family: web, version: "2"}}
  - {alias: pub, name: pub-1, public: true, tags: {family: pub, version: "1"}}
  - {alias: al2023, name: al2023-ami-2023.6-x86_64, owner: "137112412989",
     owner_alias: amazon, public: true, age_days: 30}
  - {alias: vendor, name: vendor-appliance-7, owner: "444455556666", public: true,
     age_days: 400}
"""


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def other_env(env: Env) -> Env:
    return Env(env.sandbox, str(next(_accounts)))


# ---------------------------------------------------------------- Allowed AMIs


def test_allowed_images_settings_state_and_criteria(env):
    ec2 = env.client("ec2")
    got = ec2.get_allowed_images_settings()
    assert got["State"] == "disabled" and got["ManagedBy"] == "account"
    assert "ImageCriteria" not in got or got["ImageCriteria"] == []
    crit = [
        {"ImageProviders": ["amazon", "123456789012"]},
        {"ImageNames": ["web-*"], "CreationDateCondition": {"MaximumDaysSinceCreated": 300}},
    ]
    assert ec2.replace_image_criteria_in_allowed_images_settings(ImageCriteria=crit)["ReturnValue"]
    r = ec2.enable_allowed_images_settings(AllowedImagesSettingsState="audit-mode")
    assert r["AllowedImagesSettingsState"] == "audit-mode"
    got = ec2.get_allowed_images_settings()
    assert got["State"] == "audit-mode" and got["ImageCriteria"] == crit
    # per region
    assert env.client("ec2", "eu-west-1").get_allowed_images_settings()["State"] == "disabled"
    assert ec2.disable_allowed_images_settings()["AllowedImagesSettingsState"] == "disabled"
    assert ec2.get_allowed_images_settings()["ImageCriteria"] == crit  # criteria are kept


@pytest.mark.parametrize(
    "criteria",
    [
        [{"ImageProviders": ["amazon"]}] * 11,  # at most 10 criteria
        [{"ImageProviders": ["none", "amazon"]}],  # none stands alone
        [{"ImageProviders": ["12345"]}],  # not an alias nor a 12-digit account
        [{"ImageNames": [f"n{i}-*" for i in range(51)]}],  # at most 50 names
        [{"ImageNames": ["bad<name>"]}],
    ],
)
def test_allowed_images_criteria_limits(env, criteria):
    ec2 = env.client("ec2")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.replace_image_criteria_in_allowed_images_settings(ImageCriteria=criteria)
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.enable_allowed_images_settings(AllowedImagesSettingsState="on")
    assert code(e) == "InvalidParameterValue"


def test_image_allowed_audit_mode_reports_enabled_hides_and_refuses(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    wanted = [ids["web1"], ids["al2023"], ids["vendor"]]
    view = {i["ImageId"]: i for i in ec2.describe_images(ImageIds=wanted)["Images"]}
    assert all("ImageAllowed" not in i for i in view.values())  # disabled: no field
    ec2.replace_image_criteria_in_allowed_images_settings(
        ImageCriteria=[{"ImageProviders": ["amazon"]}]
    )
    ec2.enable_allowed_images_settings(AllowedImagesSettingsState="audit-mode")
    view = {i["ImageId"]: i for i in ec2.describe_images(ImageIds=wanted)["Images"]}
    assert view[ids["web1"]]["ImageAllowed"] is True  # owned: never restricted
    assert view[ids["al2023"]]["ImageAllowed"] is True
    assert view[ids["vendor"]]["ImageAllowed"] is False
    # audit-mode only reports: the vendor image still launches
    ec2.run_instances(ImageId=ids["vendor"], MinCount=1, MaxCount=1)
    ec2.enable_allowed_images_settings(AllowedImagesSettingsState="enabled")
    seen = {i["ImageId"] for i in ec2.describe_images(ImageIds=wanted)["Images"]}
    assert seen == {ids["web1"], ids["al2023"]}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.run_instances(ImageId=ids["vendor"], MinCount=1, MaxCount=1)
    assert code(e) == "InvalidAMIID.NotFound"
    ec2.run_instances(ImageId=ids["web1"], MinCount=1, MaxCount=1)  # owned: launches
    # a name criterion with an age limit: the 400-day-old vendor image stays out
    ec2.replace_image_criteria_in_allowed_images_settings(
        ImageCriteria=[
            {"ImageNames": ["vendor-*"], "CreationDateCondition": {"MaximumDaysSinceCreated": 300}}
        ]
    )
    assert ec2.describe_images(ImageIds=[ids["vendor"]])["Images"] == []
    ec2.replace_image_criteria_in_allowed_images_settings(
        ImageCriteria=[{"ImageNames": ["vendor-*"]}]
    )
    assert len(ec2.describe_images(ImageIds=[ids["vendor"]])["Images"]) == 1


BRACKETS = """
images:
  - {alias: lit, name: "gold[p]-7", owner: "210987654321", public: true}
  - {alias: cls, name: goldp-7, owner: "210987654321", public: true}
  - {alias: one, name: gold-x7, owner: "210987654321", public: true}
"""


def test_image_names_only_star_and_question_mark_are_wildcards(env):
    """Round 5: in ImageNames `[`/`]` match themselves (no character class); the sandbox
    and amictl's own evaluation share one matcher and agree with AWS's ImageAllowed."""
    from amictl.governance.allowed import criterion_allows

    ids = env.load(BRACKETS)["aliases"]
    ec2 = env.client("ec2")
    crit = [{"ImageProviders": ["210987654321"], "ImageNames": ["gold[p]-7", "gold-?7"]}]
    ec2.replace_image_criteria_in_allowed_images_settings(ImageCriteria=crit)
    ec2.enable_allowed_images_settings(AllowedImagesSettingsState="audit-mode")
    got = ec2.describe_images(ImageIds=list(ids.values()))["Images"]
    view = {i["ImageId"]: i["ImageAllowed"] for i in got}
    assert view == {ids["lit"]: True, ids["cls"]: False, ids["one"]: True}
    at = dt.datetime.now(dt.UTC)
    assert {i["ImageId"]: criterion_allows(i, crit[0], at) for i in got} == view


def test_describe_instance_image_metadata(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    own = ec2.run_instances(ImageId=ids["web2"], MinCount=1, MaxCount=1)["Instances"][0]
    ven = ec2.run_instances(ImageId=ids["vendor"], MinCount=1, MaxCount=1)["Instances"][0]
    ec2.replace_image_criteria_in_allowed_images_settings(
        ImageCriteria=[{"ImageProviders": ["amazon"]}]
    )
    ec2.enable_allowed_images_settings(AllowedImagesSettingsState="audit-mode")
    pages = ec2.get_paginator("describe_instance_image_metadata").paginate(
        PaginationConfig={"PageSize": 5}
    )
    rows = {r["InstanceId"]: r for p in pages for r in p["InstanceImageMetadata"]}
    assert rows[own["InstanceId"]]["ImageMetadata"]["ImageAllowed"] is True
    meta = rows[ven["InstanceId"]]["ImageMetadata"]
    assert meta["ImageId"] == ids["vendor"] and meta["ImageAllowed"] is False
    assert meta["OwnerId"] == "444455556666" and meta["Name"] == "vendor-appliance-7"
    assert rows[ven["InstanceId"]]["State"] == {"Code": 16, "Name": "running"}
    bad = ec2.describe_instance_image_metadata(
        Filters=[
            {"Name": "image-allowed", "Values": ["false"]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    )["InstanceImageMetadata"]
    assert [r["InstanceId"] for r in bad] == [ven["InstanceId"]]
    # the image of an instance is still described once the image is deregistered
    ec2.deregister_image(ImageId=ids["web2"])
    got = ec2.describe_instance_image_metadata(InstanceIds=[own["InstanceId"]])
    meta = got["InstanceImageMetadata"][0]["ImageMetadata"]
    assert meta["ImageId"] == ids["web2"] and meta["State"] == "deregistered"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_instance_image_metadata(InstanceIds=["i-0123456789abcdef0"])
    assert code(e) == "InvalidInstanceID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_instance_image_metadata(Filters=[{"Name": "nope", "Values": ["x"]}])
    assert code(e) == "InvalidParameterValue"


# ---------------------------------------------------------------- watermarks


def test_watermarks_attach_detach_limits(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    key = ec2.attach_image_watermark(ImageId=ids["web1"], WatermarkName="amictl/web")[
        "WatermarkKey"
    ]
    assert key == f"{env.account}:amictl/web"
    # attaching the same name again changes nothing
    ec2.attach_image_watermark(ImageId=ids["web1"], WatermarkName="amictl/web")
    img = ec2.describe_images(ImageIds=[ids["web1"]])["Images"][0]
    (mark,) = img["ImageWatermarks"]
    assert mark["WatermarkKey"] == key and mark["SourceImageId"] == ids["web1"]
    assert mark["SourceImageRegion"] == "us-east-1"
    assert isinstance(mark["WatermarkCreationTime"], dt.datetime)
    found = ec2.describe_images(
        Owners=["self"], Filters=[{"Name": "image-watermark-key", "Values": [f"{env.account}:*"]}]
    )["Images"]
    assert [i["ImageId"] for i in found] == [ids["web1"]]
    for n in range(2, 6):
        ec2.attach_image_watermark(ImageId=ids["web1"], WatermarkName=f"mark-{n}")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.attach_image_watermark(ImageId=ids["web1"], WatermarkName="mark-6")
    assert code(e) == "ResourceLimitExceeded"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.attach_image_watermark(ImageId=ids["pub"], WatermarkName="amictl/pub")
    assert code(e) == "OperationNotPermitted"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.attach_image_watermark(ImageId=ids["web2"], WatermarkName="bad!name")
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:  # someone else's image
        ec2.attach_image_watermark(ImageId=ids["al2023"], WatermarkName="mine")
    assert code(e) == "AuthFailure"
    assert ec2.detach_image_watermark(ImageId=ids["web1"], WatermarkKey=key)["Return"]
    assert ec2.detach_image_watermark(ImageId=ids["web1"], WatermarkKey=key)["Return"]
    img = ec2.describe_images(ImageIds=[ids["web1"]])["Images"][0]
    assert key not in [m["WatermarkKey"] for m in img["ImageWatermarks"]]


def test_watermarks_inherited_by_create_and_copy_and_allow_listed(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    eu = env.client("ec2", "eu-west-1")
    key = ec2.attach_image_watermark(ImageId=ids["web1"], WatermarkName="golden")["WatermarkKey"]
    inst = ec2.run_instances(ImageId=ids["web1"], MinCount=1, MaxCount=1)["Instances"][0]
    made = ec2.create_image(InstanceId=inst["InstanceId"], Name="web-made")["ImageId"]
    copy = eu.copy_image(SourceImageId=made, SourceRegion="us-east-1", Name="web-made")["ImageId"]
    for client, image in ((ec2, made), (eu, copy)):
        (mark,) = client.describe_images(ImageIds=[image])["Images"][0]["ImageWatermarks"]
        assert mark["WatermarkKey"] == key and mark["SourceImageId"] == ids["web1"]
    # detaching from the source leaves what derivatives carry
    ec2.detach_image_watermark(ImageId=ids["web1"], WatermarkKey=key)
    assert ec2.describe_images(ImageIds=[made])["Images"][0]["ImageWatermarks"]
    # another account may allow-list the watermark: the shared image is allowed by it
    other = other_env(env)
    for image in (made, ids["web2"]):
        ec2.modify_image_attribute(
            ImageId=image, LaunchPermission={"Add": [{"UserId": other.account}]}
        )
    oc = other.client("ec2")
    oc.replace_image_criteria_in_allowed_images_settings(
        ImageCriteria=[{"ImageWatermarks": [{"WatermarkKey": f"{env.account}:gold*"}]}]
    )
    oc.enable_allowed_images_settings(AllowedImagesSettingsState="enabled")
    shown = oc.describe_images(ImageIds=[made, ids["web2"]])["Images"]
    assert [(i["ImageId"], i["ImageAllowed"]) for i in shown] == [(made, True)]


# ---------------------------------------------------------------- ancestry


def test_image_ancestry_through_create_and_cross_region_copy(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    eu = env.client("ec2", "eu-west-1")
    inst = ec2.run_instances(ImageId=ids["web1"], MinCount=1, MaxCount=1)["Instances"][0]
    made = ec2.create_image(InstanceId=inst["InstanceId"], Name="child")["ImageId"]
    copy = eu.copy_image(SourceImageId=made, SourceRegion="us-east-1", Name="child")["ImageId"]
    img = eu.describe_images(ImageIds=[copy])["Images"][0]
    assert (img["SourceImageId"], img["SourceImageRegion"]) == (made, "us-east-1")
    assert (
        ec2.describe_images(ImageIds=[made])["Images"][0]["SourceInstanceId"] == inst["InstanceId"]
    )
    chain = eu.get_image_ancestry(ImageId=copy)["ImageAncestryEntries"]
    assert [e["ImageId"] for e in chain] == [copy, made, ids["web1"]]
    assert chain[0]["SourceImageRegion"] == "us-east-1" and chain[1]["SourceImageId"] == ids["web1"]
    assert "SourceImageId" not in chain[-1]  # the root
    assert all(isinstance(e["CreationDate"], dt.datetime) for e in chain)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.get_image_ancestry(ImageId="ami-0123456789abcdef0")
    assert code(e) == "InvalidAMIID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.get_image_ancestry(ImageId="nope")
    assert code(e) == "InvalidAMIID.Malformed"


# ---------------------------------------------------------------- references


def test_describe_image_references(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    ssm = env.client("ssm")
    inst = ec2.run_instances(ImageId=ids["web1"], MinCount=1, MaxCount=1)["Instances"][0]
    lt = ec2.create_launch_template(
        LaunchTemplateName="deep", LaunchTemplateData={"ImageId": ids["web2"]}
    )["LaunchTemplate"]
    for _ in range(10):  # web2 is now version 1 of 11: beyond the default depth of 10
        ec2.create_launch_template_version(
            LaunchTemplateId=lt["LaunchTemplateId"], LaunchTemplateData={"ImageId": ids["web1"]}
        )
    ssm.put_parameter(
        Name="/golden/web", Value=ids["web2"], Type="String", DataType="aws:ec2:image"
    )
    ssm.put_parameter(Name="/text/web", Value=ids["web2"], Type="String")  # text: not reported
    refs = ec2.get_paginator("describe_image_references").paginate(
        ImageIds=[ids["web1"], ids["web2"]], IncludeAllResourceTypes=True
    )
    got = {(r["ImageId"], r["ResourceType"], r["Arn"]) for p in refs for r in p["ImageReferences"]}
    acct = env.account
    assert got == {
        (
            ids["web1"],
            "ec2:Instance",
            f"arn:aws:ec2:us-east-1:{acct}:instance/{inst['InstanceId']}",
        ),
        (
            ids["web1"],
            "ec2:LaunchTemplate",
            f"arn:aws:ec2:us-east-1:{acct}:launch-template/{lt['LaunchTemplateId']}",
        ),
        (ids["web2"], "ssm:Parameter", f"arn:aws:ssm:us-east-1:{acct}:parameter/golden/web"),
    }
    deeper = ec2.describe_image_references(
        ImageIds=[ids["web2"]],
        ResourceTypes=[
            {
                "ResourceType": "ec2:LaunchTemplate",
                "ResourceTypeOptions": [{"OptionName": "version-depth", "OptionValues": ["11"]}],
            }
        ],
    )["ImageReferences"]
    assert [r["ResourceType"] for r in deeper] == ["ec2:LaunchTemplate"]
    stopped_only = ec2.describe_image_references(
        ImageIds=[ids["web1"]],
        ResourceTypes=[
            {
                "ResourceType": "ec2:Instance",
                "ResourceTypeOptions": [{"OptionName": "state-name", "OptionValues": ["stopped"]}],
            }
        ],
    )["ImageReferences"]
    assert stopped_only == []
    for kwargs, want in (
        (
            {"ImageIds": [ids["web1"]] * 11, "IncludeAllResourceTypes": True},
            "InvalidParameterValue",
        ),
        ({"ImageIds": [ids["web1"]]}, "MissingParameter"),
        (
            {"ImageIds": ["ami-0123456789abcdef0"], "IncludeAllResourceTypes": True},
            "InvalidAMIID.NotFound",
        ),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.describe_image_references(**kwargs)
        assert code(e) == want, kwargs


# ---------------------------------------------------------------- usage reports


def test_image_usage_reports_consumers_async_expiry_delete(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    consumer, bystander = other_env(env), other_env(env)
    for acct in (consumer.account, bystander.account):
        ec2.modify_image_attribute(
            ImageId=ids["web1"], LaunchPermission={"Add": [{"UserId": acct}]}
        )
    cc = consumer.client("ec2")
    cc.run_instances(ImageId=ids["web1"], MinCount=2, MaxCount=2)
    cc.create_launch_template(
        LaunchTemplateName="uses-web1", LaunchTemplateData={"ImageId": ids["web1"]}
    )
    ec2.run_instances(ImageId=ids["web1"], MinCount=1, MaxCount=1)  # the owner's own: not counted
    rid = ec2.create_image_usage_report(
        ImageId=ids["web1"],
        ResourceTypes=[{"ResourceType": "ec2:Instance"}, {"ResourceType": "ec2:LaunchTemplate"}],
        AccountIds=[consumer.account, bystander.account],
        TagSpecifications=[
            {"ResourceType": "image-usage-report", "Tags": [{"Key": "k", "Value": "v"}]}
        ],
    )["ReportId"]
    (rep,) = ec2.describe_image_usage_reports(ReportIds=[rid])["ImageUsageReports"]
    assert rep["State"] == "pending" and rep["ImageId"] == ids["web1"]
    assert rep["ExpirationTime"] - rep["CreationTime"] == dt.timedelta(days=30)
    assert ec2.describe_image_usage_report_entries(ReportIds=[rid])["ImageUsageReportEntries"] == []
    ec2.get_waiter("image_usage_report_available").wait(
        ReportIds=[rid], WaiterConfig={"Delay": 1, "MaxAttempts": 10}
    )
    entries = ec2.describe_image_usage_report_entries(ReportIds=[rid])["ImageUsageReportEntries"]
    got = {(e["AccountId"], e["ResourceType"], e["UsageCount"]) for e in entries}
    assert got == {
        (consumer.account, "ec2:Instance", 2),
        (consumer.account, "ec2:LaunchTemplate", 1),
    }
    only = ec2.describe_image_usage_report_entries(
        ImageIds=[ids["web1"]], Filters=[{"Name": "resource-type", "Values": ["ec2:Instance"]}]
    )["ImageUsageReportEntries"]
    assert [e["UsageCount"] for e in only] == [2]
    tagged = ec2.describe_image_usage_reports(Filters=[{"Name": "tag:k", "Values": ["v"]}])
    assert [r["ReportId"] for r in tagged["ImageUsageReports"]] == [rid]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_image_usage_report(
            ImageId=ids["web1"],
            ResourceTypes=[{"ResourceType": "ec2:Instance"}],
            AccountIds=["1" * 12] * 201,
        )
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:  # not the owner
        cc.create_image_usage_report(
            ImageId=ids["web1"], ResourceTypes=[{"ResourceType": "ec2:Instance"}]
        )
    assert code(e) == "AuthFailure"
    assert ec2.delete_image_usage_report(ReportId=rid)["Return"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_image_usage_reports(ReportIds=[rid])
    assert code(e) == "InvalidImageUsageReportId.NotFound"


def test_usage_report_expiry_rule():
    """A report disappears 30 days after its creation (checked on the model: the sandbox
    cannot wait a month)."""
    from amictl.sandbox.patches import usage as pu

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rep = {"CreationTime": t0, "ExpirationTime": t0 + pu.REPORT_LIFETIME}
    pu.REPORTS[("111122223333", "us-east-1")] = {"amiur-1": rep}
    try:
        assert pu.report_state(rep, t0) == "pending"
        assert pu.report_state(rep, t0 + dt.timedelta(seconds=5)) == "available"
        assert pu.live_reports("111122223333", "us-east-1", t0 + dt.timedelta(days=29))
        assert not pu.live_reports("111122223333", "us-east-1", t0 + dt.timedelta(days=30))
    finally:
        pu.REPORTS.pop(("111122223333", "us-east-1"), None)
