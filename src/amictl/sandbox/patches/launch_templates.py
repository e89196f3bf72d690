"""EC2 launch templates where moto 5.2.5 differs from AWS (what Terraform and rollout see).

As the EC2 API reference documents them
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplate.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplateVersion.html):

* CreateLaunchTemplate: ``TagSpecifications`` tag the launch template itself; they are not
  launch parameters (moto copies them into the version's ``LaunchTemplateData``).
* CreateLaunchTemplateVersion ``SourceVersion``: the new version inherits the source
  version's launch parameters, and those the call gives overwrite them (moto keeps only
  what the call names).
* RunInstances through a launch template (no ImageId in the call) launches the template
  version's image, which the Allowed AMIs settings (``governance.py``) and the
  ``resolve:ssm:`` resolution (``refresh.py``) apply to as to a direct ImageId.
"""

from __future__ import annotations

import copy
from typing import Any

from moto.core.responses import ActionResult

from .helpers import patch


@patch(
    "CreateLaunchTemplate: TagSpecifications tag the template, not its launch template data; "
    "CreateLaunchTemplateVersion SourceVersion: the source version's data overlaid by the given"
)
def launch_template_versions() -> None:
    from moto.ec2.responses.launch_templates import LaunchTemplates
    from moto.ec2.utils import parse_user_data

    def create_launch_template(self: Any) -> ActionResult:
        name = self._get_param("LaunchTemplateName")
        description = self._get_param("VersionDescription")
        tag_spec = self._parse_tag_specification()
        data = self._get_param("LaunchTemplateData", {})
        data["UserData"] = parse_user_data(self._get_param("LaunchTemplateData.UserData"))
        self.error_on_dryrun()
        template = self.ec2_backend.create_launch_template(name, description, data, tag_spec)
        version = template.default_version()
        return ActionResult(
            {
                "LaunchTemplate": {
                    "CreateTime": version.create_time,
                    "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                    "DefaultVersionNumber": template.default_version_number,
                    "LatestVersionNumber": version.number,
                    "LaunchTemplateId": template.id,
                    "LaunchTemplateName": template.name,
                    "Tags": template.tags,
                }
            }
        )

    def create_launch_template_version(self: Any) -> ActionResult:
        name = self._get_param("LaunchTemplateName")
        tmpl_id = self._get_param("LaunchTemplateId")
        if tmpl_id:
            template = self.ec2_backend.get_launch_template(tmpl_id)
        else:
            template = self.ec2_backend.get_launch_template_by_name(name)
        description = self._get_param("VersionDescription")
        given = dict(self._get_param("LaunchTemplateData", {}) or {})
        if "UserData" in given:
            given["UserData"] = parse_user_data(given["UserData"])
        source = self._get_param("SourceVersion")
        data = given
        if source:
            # InvalidLaunchTemplateVersion.NotFound for a version that does not exist
            data = {**copy.deepcopy(template.get_version(source).data), **given}
        self.error_on_dryrun()
        version = template.create_version(data, description)
        return ActionResult(
            {
                "LaunchTemplateVersion": {
                    "CreateTime": version.create_time,
                    "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                    "DefaultVersion": template.is_default(version),
                    "LaunchTemplateData": version.data,
                    "LaunchTemplateId": template.id,
                    "LaunchTemplateName": template.name,
                    "VersionDescription": version.description,
                    "VersionNumber": version.number,
                }
            }
        )

    LaunchTemplates.create_launch_template = create_launch_template  # type: ignore[method-assign]
    LaunchTemplates.create_launch_template_version = create_launch_template_version  # type: ignore[method-assign]


@patch(
    "RunInstances through a launch template: the version's ImageId (resolve:ssm: too) is "
    "checked against the Allowed AMIs settings as a direct ImageId is"
)
def run_instances_from_template() -> None:
    from moto.ec2.models.instances import InstanceBackend

    inner = InstanceBackend.run_instances  # governance's check of a direct ImageId inside

    def run_instances(self: Any, image_id: str, count: int, *args: Any, **kw: Any) -> Any:
        spec = kw.get("launch_template")
        if spec and not image_id:
            image = self._get_template_from_args(spec).image_id
            if image:
                # through the outermost wrapper: resolve:ssm: first, then the Allowed AMIs check
                return InstanceBackend.run_instances(self, image, count, *args, **kw)
        return inner(self, image_id, count, *args, **kw)

    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]
