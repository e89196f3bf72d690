"""Seed the issue-26 sections of a fleet (CloudFormation stacks, Elastic Beanstalk
environments, Image Builder recipes) into the sandbox's backends, after the images."""

from __future__ import annotations

import json
from typing import Any

from moto.cloudformation.models import cloudformation_backends
from moto.elasticbeanstalk.models import eb_backends

from .fleet import Fleet
from .patches import imagebuilder
from .patches.stacks import EB_NAMESPACE

BUILD_COMPONENT = "arn:aws:imagebuilder:{region}:aws:component/update-linux/x.x.x"


def existing_names(account: str) -> list[tuple[str, str, Any]]:
    """(section, what, region -> names already loaded) for ``seed.preflight``: a second
    load of the same names would fail half-way (a recipe's name is taken whatever its
    version)."""

    def stacks(region: str) -> set[str]:
        live = cloudformation_backends[account][region].stacks.values()
        return {s.name for s in live if s.status != "DELETE_COMPLETE"}

    def environments(region: str) -> set[str]:
        apps = eb_backends[account][region].applications.values()
        return {name for app in apps for name in app.environments}

    def recipes(kind: str) -> Any:
        def names(region: str) -> set[str]:
            with imagebuilder.LOCK:
                found = imagebuilder.resources(account, region, kind).values()
                return {str(r["name"]) for r in found}

        return names

    return [
        ("cloudformation_stacks", "CloudFormation stack", stacks),
        ("beanstalk_environments", "Elastic Beanstalk environment", environments),
        ("image_recipes", "image recipe", recipes("image-recipe")),
        ("container_recipes", "container recipe", recipes("container-recipe")),
    ]


def stack_template(stack: dict[str, Any], aliases: dict[str, Any]) -> str:
    """A JSON template with the stack's image parameters and literal image id."""
    params: dict[str, Any] = {}
    if stack["image"]:
        params["ImageId"] = {"Type": "AWS::EC2::Image::Id"}
    if stack["images"]:
        params["ImageIds"] = {"Type": "List<AWS::EC2::Image::Id>"}
    handle: dict[str, Any] = {"Type": "AWS::CloudFormation::WaitConditionHandle"}
    if stack["template_image"]:
        handle["Metadata"] = {"BaseImage": aliases[stack["template_image"]]}
    return json.dumps({"Parameters": params, "Resources": {"Handle": handle}})


def seed_services(fleet: Fleet, aliases: dict[str, Any]) -> None:
    acct = fleet.account
    for stack in fleet.cloudformation_stacks:
        params = {}
        if stack["image"]:
            params["ImageId"] = aliases[stack["image"]]
        if stack["images"]:
            params["ImageIds"] = ",".join(aliases[a] for a in stack["images"])
        cfn = cloudformation_backends[acct][stack["region"]]
        made = cfn.create_stack(stack["name"], stack_template(stack, aliases), params)
        aliases[stack["alias"]] = made.stack_id
    for env in fleet.beanstalk_environments:
        eb = eb_backends[acct][env["region"]]
        app = eb.applications.get(env["application"]) or eb.create_application(env["application"])
        environment: Any = eb.create_environment(app, env["name"], "64bit Amazon Linux 2023", {})
        environment.amictl_options = [
            {"Namespace": EB_NAMESPACE, "OptionName": "ImageId", "Value": aliases[env["image"]]}
        ]
        aliases[env["alias"]] = environment.environment_arn
    with imagebuilder.LOCK:
        for kind, section in (
            ("image-recipe", fleet.image_recipes),
            ("container-recipe", fleet.container_recipes),
        ):
            for r in section:
                data: dict[str, Any] = {
                    "name": r["name"],
                    "semanticVersion": r["version"],
                    "components": [{"componentArn": BUILD_COMPONENT.format(region=r["region"])}],
                }
                if kind == "image-recipe":
                    data["parentImage"] = aliases[r["image"]]
                else:
                    data["parentImage"] = r["parent"]
                    data["containerType"] = "DOCKER"
                    data["instanceConfiguration"] = {"image": aliases[r["image"]]}
                recipe = imagebuilder.create(kind, data, acct, r["region"])
                aliases[r["alias"]] = recipe["arn"]
