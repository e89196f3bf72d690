"""The sandbox's launch templates as AWS answers (issue 27 (a)), one test per row of
docs/sandbox.md, through boto3 over HTTP: what Terraform reads back, what rollout builds on."""

from __future__ import annotations

import botocore.exceptions
import pytest

from conftest import Env

FLEET = """
images:
  - {alias: web1, name: web-1, tags: {family: web, version: "1"}}
  - {alias: web2, name: web-2, tags: {family: web, version: "2"}}
  - {alias: vendor, name: vendor-appliance-7, owner: "444455556666", public: true}
"""


def test_create_launch_template_tags_the_template_not_its_data(env: Env) -> None:
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    made = ec2.create_launch_template(
        LaunchTemplateName="tf-web",
        LaunchTemplateData={
            "ImageId": ids["web1"],
            "InstanceType": "t3.micro",
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]}
            ],
        },
        TagSpecifications=[
            {"ResourceType": "launch-template", "Tags": [{"Key": "team", "Value": "a"}]}
        ],
    )["LaunchTemplate"]
    assert made["Tags"] == [{"Key": "team", "Value": "a"}]
    (v,) = ec2.describe_launch_template_versions(LaunchTemplateId=made["LaunchTemplateId"])[
        "LaunchTemplateVersions"
    ]
    # only the instance tags the data names, not the template's own tags
    assert v["LaunchTemplateData"]["TagSpecifications"] == [
        {"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]}
    ]
    lt = ec2.describe_launch_templates(LaunchTemplateIds=[made["LaunchTemplateId"]])
    assert lt["LaunchTemplates"][0]["Tags"] == [{"Key": "team", "Value": "a"}]


def test_create_launch_template_version_builds_on_its_source_version(env: Env) -> None:
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    tid = ec2.create_launch_template(
        LaunchTemplateName="src",
        LaunchTemplateData={"ImageId": ids["web1"], "InstanceType": "t3.micro", "KeyName": "k"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(
        LaunchTemplateId=tid,
        LaunchTemplateData={"ImageId": ids["web1"], "InstanceType": "c5.xlarge"},
    )
    made = ec2.create_launch_template_version(
        LaunchTemplateId=tid, SourceVersion="1", LaunchTemplateData={"ImageId": ids["web2"]}
    )["LaunchTemplateVersion"]
    assert made["VersionNumber"] == 3
    want = {"ImageId": ids["web2"], "InstanceType": "t3.micro", "KeyName": "k"}
    assert {k: made["LaunchTemplateData"].get(k) for k in want} == want
    (v3,) = ec2.describe_launch_template_versions(LaunchTemplateId=tid, Versions=["3"])[
        "LaunchTemplateVersions"
    ]
    assert {k: v3["LaunchTemplateData"].get(k) for k in want} == want
    # without SourceVersion the version holds only what the call names
    bare = ec2.create_launch_template_version(
        LaunchTemplateId=tid, LaunchTemplateData={"ImageId": ids["web2"]}
    )["LaunchTemplateVersion"]
    assert "InstanceType" not in bare["LaunchTemplateData"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_launch_template_version(
            LaunchTemplateId=tid, SourceVersion="99", LaunchTemplateData={"ImageId": ids["web2"]}
        )
    assert "NotFound" in e.value.response["Error"]["Code"]


def test_run_instances_through_a_launch_template_applies_allowed_amis(env: Env) -> None:
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    tid = ec2.create_launch_template(
        LaunchTemplateName="gov",
        LaunchTemplateData={"ImageId": ids["vendor"], "InstanceType": "t3.micro"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    ec2.replace_image_criteria_in_allowed_images_settings(
        ImageCriteria=[{"ImageProviders": ["amazon"]}]  # not the vendor's account
    )
    ec2.enable_allowed_images_settings(AllowedImagesSettingsState="enabled")
    try:  # owned images are always allowed; the vendor's is not
        spec = {"LaunchTemplateId": tid, "Version": "1"}
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.run_instances(LaunchTemplate=spec, MinCount=1, MaxCount=1)
        assert e.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"
        assert "Allowed AMIs" in e.value.response["Error"]["Message"]
        ec2.create_launch_template_version(
            LaunchTemplateId=tid, SourceVersion="1", LaunchTemplateData={"ImageId": ids["web1"]}
        )
        res = ec2.run_instances(
            LaunchTemplate={"LaunchTemplateId": tid, "Version": "2"}, MinCount=1, MaxCount=1
        )
        assert res["Instances"][0]["ImageId"] == ids["web1"]
    finally:
        ec2.disable_allowed_images_settings()
